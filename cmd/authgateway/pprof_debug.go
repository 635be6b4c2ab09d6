//go:build pprofdebug

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // profiling endpoints, in a debug build only
	"os"
	"runtime"
	"strconv"
)

// A debug build (go build -tags pprofdebug) serves net/http/pprof on
// $AUTHGATEWAY_PPROF for profiling under load (bench/README.md). Release
// builds contain none of this. Only a loopback address is accepted: the
// profiles show request data.
func init() {
	addr := os.Getenv("AUTHGATEWAY_PPROF")
	if addr == "" {
		return
	}
	if !loopbackAddr(addr) {
		fmt.Fprintf(os.Stderr, "authgateway: AUTHGATEWAY_PPROF=%q: want a loopback host:port; profiling off\n", addr)
		return
	}
	// A finer heap sampling rate (bytes per sample; 1 records every
	// allocation) for counting the objects a cache keeps live.
	if rate, err := strconv.Atoi(os.Getenv("AUTHGATEWAY_MEMPROFILERATE")); err == nil && rate > 0 {
		runtime.MemProfileRate = rate
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintf(os.Stderr, "authgateway: pprof listener: %v\n", err)
		}
	}()
}
