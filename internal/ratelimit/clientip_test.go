package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatalf("ParsePrefix(%q): %v", s, err)
		}
		ps[i] = p
	}
	return ps
}

func TestClientIP(t *testing.T) {
	r := NewIPResolver(mustPrefixes(t,
		"10.0.0.0/8", "192.168.0.0/16", "2001:db8:ffff::/48", "fe80::/10",
		"::ffff:172.16.0.0/108", // IPv4-mapped spelling of 172.16.0.0/12
	))
	tests := []struct {
		name        string
		remote      string
		xff         []string // one element per header line
		want        string   // "" = the zero Addr
		wantTrusted bool
	}{
		{name: "untrusted peer", remote: "203.0.113.7:1234", want: "203.0.113.7"},
		{name: "untrusted peer forges xff", remote: "203.0.113.7:1234", xff: []string{"198.51.100.9"}, want: "203.0.113.7"},
		{name: "untrusted peer forges trusted xff", remote: "203.0.113.7:1234", xff: []string{"10.0.0.1"}, want: "203.0.113.7"},
		{name: "untrusted peer garbage xff", remote: "203.0.113.7:1234", xff: []string{"nonsense"}, want: "203.0.113.7"},
		{name: "trusted peer without xff", remote: "10.0.0.2:1234", want: "10.0.0.2", wantTrusted: true},
		{name: "trusted peer one hop", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "client-forged entries left of the client are ignored", remote: "10.0.0.2:1234", xff: []string{"1.1.1.1, 2.2.2.2, 198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "client forges a trusted address", remote: "10.0.0.2:1234", xff: []string{"10.9.9.9, 198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "chain of trusted proxies", remote: "10.0.0.2:1234", xff: []string{"1.1.1.1, 198.51.100.9, 10.0.0.3, 192.168.1.1"}, want: "198.51.100.9", wantTrusted: true},
		{name: "all trusted takes the left-most", remote: "10.0.0.2:1234", xff: []string{"10.0.0.5, 192.168.0.4"}, want: "10.0.0.5", wantTrusted: true},
		{name: "garbage where the walk reads falls back to peer", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9, garbage"}, want: "10.0.0.2", wantTrusted: true},
		{name: "garbage behind trusted hop falls back to peer", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9, unknown, 10.0.0.3"}, want: "10.0.0.2", wantTrusted: true},
		{name: "client garbage left of the client cannot force fallback", remote: "10.0.0.2:1234", xff: []string{"garbage, 198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "trailing empty entry", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9,"}, want: "10.0.0.2", wantTrusted: true},
		{name: "empty header line", remote: "10.0.0.2:1234", xff: []string{""}, want: "10.0.0.2", wantTrusted: true},
		{name: "cidr is not an address", remote: "10.0.0.2:1234", xff: []string{"198.51.100.0/24"}, want: "10.0.0.2", wantTrusted: true},
		{name: "whitespace around entries", remote: "10.0.0.2:1234", xff: []string{"  198.51.100.9 ,\t10.0.0.3 "}, want: "198.51.100.9", wantTrusted: true},
		{name: "several lines are one list", remote: "10.0.0.2:1234", xff: []string{"1.1.1.1", "198.51.100.9, 10.0.0.3"}, want: "198.51.100.9", wantTrusted: true},
		{name: "client in an earlier line", remote: "10.0.0.2:1234", xff: []string{"1.1.1.1, 198.51.100.9", "10.0.0.3", "192.168.1.1"}, want: "198.51.100.9", wantTrusted: true},
		{name: "all lines trusted takes the left-most", remote: "10.0.0.2:1234", xff: []string{"10.1.1.1", "10.2.2.2"}, want: "10.1.1.1", wantTrusted: true},
		{name: "garbage in a later line", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9", "bad"}, want: "10.0.0.2", wantTrusted: true},
		{name: "xff entry with port", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9:5555"}, want: "198.51.100.9", wantTrusted: true},
		{name: "xff ipv6 with brackets and port", remote: "10.0.0.2:1234", xff: []string{"[2001:db8:1::5]:443"}, want: "2001:db8:1::5", wantTrusted: true},
		{name: "xff ipv6 in brackets", remote: "10.0.0.2:1234", xff: []string{"[2001:db8:1::5]"}, want: "2001:db8:1::5", wantTrusted: true},
		{name: "xff ipv4 in brackets is garbage", remote: "10.0.0.2:1234", xff: []string{"[198.51.100.9]"}, want: "10.0.0.2", wantTrusted: true},
		{name: "xff ipv6", remote: "10.0.0.2:1234", xff: []string{"2001:db8:1::5, 2001:db8:ffff::1"}, want: "2001:db8:1::5", wantTrusted: true},
		{name: "xff ipv4-mapped is unmapped", remote: "10.0.0.2:1234", xff: []string{"::ffff:198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "xff ipv4-mapped trusted hop is skipped", remote: "10.0.0.2:1234", xff: []string{"198.51.100.9, ::ffff:10.0.0.3"}, want: "198.51.100.9", wantTrusted: true},
		{name: "ipv4-mapped peer is trusted by ipv4 prefix", remote: "[::ffff:10.0.0.2]:1234", xff: []string{"198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "ipv4-mapped untrusted peer is unmapped", remote: "[::ffff:203.0.113.7]:1234", xff: []string{"198.51.100.9"}, want: "203.0.113.7"},
		{name: "trusted by ipv4-mapped prefix", remote: "172.16.5.5:1234", xff: []string{"198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "trusted ipv6 peer", remote: "[2001:db8:ffff::1]:1234", xff: []string{"198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "untrusted ipv6 peer", remote: "[2001:db8:1::1]:1234", xff: []string{"198.51.100.9"}, want: "2001:db8:1::1"},
		{name: "zoned peer is trusted and zone dropped", remote: "[fe80::1%eth0]:1234", want: "fe80::1", wantTrusted: true},
		{name: "remote without port", remote: "203.0.113.7", xff: []string{"198.51.100.9"}, want: "203.0.113.7"},
		{name: "trusted remote without port", remote: "10.0.0.2", xff: []string{"198.51.100.9"}, want: "198.51.100.9", wantTrusted: true},
		{name: "ipv6 remote without port", remote: "2001:db8:1::1", want: "2001:db8:1::1"},
		{name: "bracketed ipv6 remote without port", remote: "[2001:db8:1::1]", want: "2001:db8:1::1"},
		{name: "empty remote", remote: "", xff: []string{"198.51.100.9"}, want: ""},
		{name: "unix socket remote", remote: "@", xff: []string{"198.51.100.9"}, want: ""},
		{name: "hostname remote", remote: "localhost:80", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			ip, trusted := r.ClientIP(req)
			got := ""
			if ip.IsValid() {
				got = ip.String()
			}
			if got != tt.want || trusted != tt.wantTrusted {
				t.Errorf("ClientIP(remote %q, xff %q) = %q, %v; want %q, %v", tt.remote, tt.xff, got, trusted, tt.want, tt.wantTrusted)
			}
		})
	}
}

func TestClientIPNoTrustedProxies(t *testing.T) {
	for _, trusted := range [][]netip.Prefix{nil, {netip.Prefix{}}} {
		r := NewIPResolver(trusted)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "10.0.0.2:1234"
		req.Header.Set("X-Forwarded-For", "198.51.100.9")
		ip, ok := r.ClientIP(req)
		if ip != netip.MustParseAddr("10.0.0.2") || ok {
			t.Errorf("trusted %v: ClientIP = %v, %v; want 10.0.0.2, false", trusted, ip, ok)
		}
	}
}

func TestClientIPLongHeader(t *testing.T) {
	// A client can send a long list; the walk stops at the first untrusted
	// entry from the right, so what precedes it does not matter.
	r := NewIPResolver(mustPrefixes(t, "10.0.0.0/8"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1234"
	req.Header.Set("X-Forwarded-For", strings.Repeat("junk,", 10000)+"198.51.100.9, 10.0.0.3")
	if ip, _ := r.ClientIP(req); ip != netip.MustParseAddr("198.51.100.9") {
		t.Errorf("ClientIP = %v; want 198.51.100.9", ip)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		ip   netip.Addr
		want string
	}{
		{netip.MustParseAddr("203.0.113.7"), "203.0.113.7"},
		{netip.MustParseAddr("::ffff:203.0.113.7"), "203.0.113.7"},
		{netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"},
		// Rotating through the /64 does not give a new key.
		{netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64"},
		{netip.MustParseAddr("2001:db8:1:2::"), "2001:db8:1:2::/64"},
		{netip.MustParseAddr("2001:db8:1:3::1"), "2001:db8:1:3::/64"},
		{netip.MustParseAddr("fe80::1%eth0"), "fe80::/64"},
		{netip.MustParseAddr("::1"), "::/64"},
		{netip.Addr{}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.ip.String(), func(t *testing.T) {
			if got := Key(tt.ip); got != tt.want {
				t.Errorf("Key(%v) = %q; want %q", tt.ip, got, tt.want)
			}
		})
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:1234", "198.51.100.9, 10.0.0.3")
	f.Add("203.0.113.7:1", "1.1.1.1")
	f.Add("[::ffff:10.0.0.2]:1", "[2001:db8::1]:443,,")
	f.Add("10.0.0.2", "garbage, ::ffff:10.1.1.1")
	r := NewIPResolver(mustPrefixes(f, "10.0.0.0/8", "2001:db8:ffff::/48"))
	f.Fuzz(func(t *testing.T, remote, xff string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		req.Header.Set("X-Forwarded-For", xff)
		ip, trusted := r.ClientIP(req)
		peer, ok := parseAddr(remote)
		if !ok && (ip.IsValid() || trusted) {
			t.Fatalf("unparsable remote %q gave %v, %v", remote, ip, trusted)
		}
		if ok && !trusted && ip != peer {
			t.Fatalf("untrusted peer %v: client %v from xff %q", peer, ip, xff)
		}
		if ip.IsValid() && (ip.Is4In6() || ip.Zone() != "") {
			t.Fatalf("address %v not normalised", ip)
		}
		_ = Key(ip)
	})
}

func BenchmarkClientIP(b *testing.B) {
	r := NewIPResolver(mustPrefixes(b, "10.0.0.0/8", "192.168.0.0/16", "2001:db8:ffff::/48"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1234"
	req.Header.Set("X-Forwarded-For", "1.1.1.1, 198.51.100.9, 10.0.0.3, 192.168.1.1")
	b.ReportAllocs()
	for b.Loop() {
		if ip, _ := r.ClientIP(req); !ip.IsValid() {
			b.Fatal("no ip")
		}
	}
}

func BenchmarkKey(b *testing.B) {
	for _, s := range []string{"198.51.100.9", "2001:db8:1:2:3:4:5:6"} {
		ip := netip.MustParseAddr(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Key(ip)
			}
		})
	}
}
