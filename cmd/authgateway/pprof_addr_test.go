package main

import "testing"

// TestLoopbackAddr: the debug build's profiling listener refuses anything
// reachable from outside the host.
func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "127.9.9.9:1": true,
		":6060": false, "0.0.0.0:6060": false, "[::]:6060": false, "10.0.0.5:6060": false,
		"localhost:6060": false, "127.0.0.1": false, "": false, "evil.example:6060": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
