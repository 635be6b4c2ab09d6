package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

type timeDuration = time.Duration

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "authgateway keys: not available yet")
	return exitFailure
}
