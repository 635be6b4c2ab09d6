package main

import (
	"net"
	"net/netip"
)

// loopbackAddr reports whether addr is a host:port on a loopback IP, the
// only place a debug build (-tags pprofdebug, see pprof_debug.go) will serve
// profiles: they show request data.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
