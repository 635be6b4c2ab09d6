package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// IPResolver decides the client IP of a request. It is the one place that
// does: X-Forwarded-For is client-controlled, so it is believed only as far
// as it was written by proxies we trust.
//
// An IPResolver is immutable and safe for concurrent use.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver returns a resolver that believes X-Forwarded-For only from
// peers inside trusted. With no trusted prefixes the peer address is always
// the client. Invalid (zero) prefixes are ignored; IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) are taken as the IPv4 prefix they denote, because
// addresses are unmapped before they are compared.
func NewIPResolver(trusted []netip.Prefix) *IPResolver {
	r := &IPResolver{trusted: make([]netip.Prefix, 0, len(trusted))}
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r
}

// ClientIP returns the client address of req and whether the direct peer
// (RemoteAddr) is a trusted proxy; the caller uses peerTrusted to decide
// whether to believe other forwarding headers (X-Forwarded-Proto,
// X-Original-URI).
//
// The client is the peer, unless the peer is trusted: then X-Forwarded-For
// (all header lines, read as one comma-separated list) is walked from the
// right, skipping trusted addresses, and the first untrusted address is the
// client. Everything left of it may have been written by the client and is
// never looked at. If every address is trusted, the left-most one is the
// client. An entry that is not an IP address (optionally with a port) met
// during the walk means a trusted proxy sent something we cannot read, so
// the peer address is used instead.
//
// Returned addresses are unmapped (::ffff:1.2.3.4 becomes 1.2.3.4) and carry
// no IPv6 zone. When RemoteAddr is not an address (a Unix socket), ip is the
// zero Addr and peerTrusted is false.
func (r *IPResolver) ClientIP(req *http.Request) (ip netip.Addr, peerTrusted bool) {
	peer, ok := parseAddr(req.RemoteAddr)
	if !ok || !r.isTrusted(peer) {
		return peer, false
	}
	xff := req.Header.Values("X-Forwarded-For")
	var leftmost netip.Addr
	// Walk the header lines from the last one, and each line from its end,
	// without splitting: the header may be long and is attacker-supplied,
	// and the walk usually stops after one or two entries.
	for i := len(xff) - 1; i >= 0; i-- {
		for rest, more := xff[i], true; more; {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, more = rest, false
			}
			a, ok := parseAddr(strings.TrimSpace(entry))
			if !ok {
				return peer, true
			}
			if !r.isTrusted(a) {
				return a, true
			}
			leftmost = a
		}
	}
	if leftmost.IsValid() {
		return leftmost, true
	}
	return peer, true
}

func (r *IPResolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads "ip", "ip:port", "[ipv6]" or "[ipv6]:port", as found in
// RemoteAddr and in X-Forwarded-For entries, and normalises the address so
// that prefix checks and keys see one spelling per host.
func parseAddr(s string) (netip.Addr, bool) {
	var a netip.Addr
	var err error
	// Pick the one parser that fits the shape rather than trying each in
	// turn: a failed parse allocates its error, on every request.
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		if a, err = netip.ParseAddr(s[1 : len(s)-1]); err == nil && !a.Is6() {
			return netip.Addr{}, false // "[1.2.3.4]" is no spelling of an address
		}
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1:
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		a = ap.Addr()
	default:
		a, err = netip.ParseAddr(s)
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// Key is the rate-limit key of an address: an IPv4 address as is; an IPv6
// address masked to its /64, because a single host usually holds a whole
// /64 and could otherwise rotate through it to escape its limit.
// IPv4-mapped IPv6 addresses are unmapped first, so one IPv4 client has one
// key whichever way its address is spelt. The zero Addr (no usable client
// address) gets the fixed key "unknown": such requests share one budget
// rather than escaping the limit.
func Key(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.Is4():
		return ip.String()
	case ip.Is6():
		p, _ := ip.Prefix(64) // cannot fail: 64 <= 128
		return p.String()
	default:
		return "unknown"
	}
}
