package main

import (
	"time"
)

type timeDuration = time.Duration
