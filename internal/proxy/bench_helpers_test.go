package proxy

import "github.com/authgateway/authgateway/internal/routing"

func normalizeForBench(s string) (string, string, error) { return routing.Normalize(s) }
