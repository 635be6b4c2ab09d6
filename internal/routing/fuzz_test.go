package routing

import (
	"errors"
	"net/url"
	pathpkg "path"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedTargets are request-targets for the fuzz corpus: the attack list, each
// refusal rule, and ordinary paths.
var seedTargets = []string{
	"/", "/api/admin", "/api//admin", "/api/./admin", "/api/x/../admin", "/api/%61dmin",
	"/api%2Fadmin", "/api/x/..%2fadmin", "/api/admin;x", "/public/../api/admin",
	"/api%252fadmin", "/api\\admin", "/api/%5cadmin", "/api/%2e%2e/api/admin", "/API/admin",
	"/api/administrator", "/api/admin-old", "/api/admin/", "/api/admin/..", "/..", "/a/../..",
	"/a/.%2E/b", "/a/%2E./b", "//host/path", "http://h/a?b", "HTTPS://h:1//a/./b/", "http://h",
	"http:foo", "mailto:x", "*", "foo", "", "/a#b", "/a?x=1&y=2", "/a?x=\x00", "/a%", "/a%G1",
	"/a%4", "/caf%c3%a9", "/caf\xc3\xa9", "/%C0%AE", "/%F0%9F%98%80", "/a|b^c", "/a%7cb",
	"/a%40b@c", "/a b", "/a%20b", "/a%00", "/a\x7f", "/a%3F", "/a%23", "/a%25", "/.", "/./",
	"/a/.", "/a/./", "/a//..", "/%2e", "/%2e%2e", "/a/b/c/../../d/./e//f/",
}

// FuzzNormalize checks Normalize's invariants on any input and that every
// other spelling of an accepted path normalises to the same path and route.
func FuzzNormalize(f *testing.F) {
	for i, s := range seedTargets {
		f.Add(s, uint64(i)*0x9E3779B97F4A7C15)
	}
	tb := newAttackTable(f)
	f.Fuzz(func(t *testing.T, target string, spell uint64) {
		out, query, err := Normalize(target)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Normalize(%q) error %v is not ErrBadPath", target, err)
			}
			if out != "" || query != "" {
				t.Fatalf("Normalize(%q) = %q, %q with an error", target, out, query)
			}
			return
		}
		checkCanonical(t, target, out)
		for i := 0; i < len(query); i++ {
			if c := query[i]; c <= ' ' || c >= 0x7f || c == '#' {
				t.Fatalf("Normalize(%q): query %q holds byte %#x", target, query, c)
			}
		}
		if again, q, err := Normalize(out); err != nil || again != out || q != "" {
			t.Fatalf("Normalize(%q) = %q, %q, %v; want %q unchanged (input %q)", out, again, q, err, out, target)
		}

		// The fast path for canonical input must agree with the general one.
		if buf, err := canonicalBytes(out); err != nil {
			t.Fatalf("canonicalBytes(%q): %v", out, err)
		} else if res, err := resolveSegments(buf); err != nil || string(res) != out {
			t.Fatalf("slow path of %q = %q, %v; want it unchanged", out, res, err)
		}

		// What the upstream will see is the input's decoded path, cleaned.
		if strings.HasPrefix(target, "/") {
			in, _, _ := strings.Cut(target, "?")
			din, err1 := url.PathUnescape(in)
			dout, err2 := url.PathUnescape(out)
			if err1 != nil || err2 != nil {
				t.Fatalf("PathUnescape(%q), (%q): %v, %v", in, out, err1, err2)
			}
			if pathpkg.Clean(din) != pathpkg.Clean(dout) {
				t.Fatalf("Normalize(%q) = %q: decoded %q, cleaned %q; input decoded and cleaned is %q",
					target, out, dout, pathpkg.Clean(dout), pathpkg.Clean(din))
			}
		}

		alt := respell(out, spell)
		got, _, err := Normalize(alt)
		if err != nil || got != out {
			t.Fatalf("Normalize(%q) = %q, %v; want %q (a respelling of %q)", alt, got, err, out, target)
		}
		v1, p1, ok1 := tb.Match(out)
		v2, p2, ok2 := tb.Match(got)
		if v1 != v2 || p1 != p2 || ok1 != ok2 {
			t.Fatalf("Match(%q) = %q, %v; Match of respelling %q = %q, %v", out, p1, ok1, alt, p2, ok2)
		}
	})
}

// checkCanonical asserts the invariants of a path Normalize returned.
func checkCanonical(t *testing.T, target, out string) {
	t.Helper()
	fail := func(why string) { t.Fatalf("Normalize(%q) = %q: %s", target, out, why) }
	if !strings.HasPrefix(out, "/") {
		fail("does not start with '/'")
	}
	if strings.Contains(out, "//") {
		fail(`holds "//"`)
	}
	for _, seg := range strings.Split(out, "/") {
		if seg == "." || seg == ".." {
			fail("holds a dot segment")
		}
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c != '%' {
			if !isPlain(c) {
				fail("holds a raw byte that is not canonical")
			}
			continue
		}
		if i+2 >= len(out) {
			fail("holds a truncated escape")
		}
		h := out[i+1 : i+3]
		if strings.ToUpper(h) != h {
			fail("holds lower-case hex")
		}
		v, err := decodeEscape(out, i)
		if err != nil {
			fail("holds a malformed escape")
		}
		if isUnreserved(v) || escapedReason(v) != "" {
			fail("holds an escape that must be decoded or refused")
		}
		i += 2
	}
	d, err := url.PathUnescape(out)
	if err != nil {
		fail("url.PathUnescape fails: " + err.Error())
	}
	if !utf8.ValidString(d) {
		fail("decodes to invalid UTF-8")
	}
	// The proxy forwards through net/url: with RawPath set, the path sent is
	// exactly the one routed on.
	if u := (url.URL{Path: d, RawPath: out}); u.EscapedPath() != out {
		fail("net/url would forward " + u.EscapedPath())
	}
}

// respell returns another spelling of canonical path p, chosen by the bits of
// seed: escaped unreserved characters, lower-case hex, raw characters that
// Normalize escapes, "//", "/./", "/%2e/", "/x/../" and an absolute-form.
func respell(p string, seed uint64) string {
	next := func() uint64 { // splitmix64
		seed += 0x9E3779B97F4A7C15
		z := seed
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		return z ^ (z >> 31)
	}
	const lowerHex = "0123456789abcdef"
	var b strings.Builder
	if next()%4 == 0 {
		b.WriteString("hTTp://example.com:8080")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		r := next() % 8
		switch {
		case c == '/':
			switch r {
			case 0:
				b.WriteString("//")
			case 1:
				b.WriteString("/./")
			case 2:
				b.WriteString("/%2e/")
			case 3:
				b.WriteString("/x/../")
			default:
				b.WriteByte('/')
			}
		case c == '%':
			v, _ := decodeEscape(p, i)
			switch {
			case r < 2 && mustEncode(v):
				b.WriteByte(v)
			case r < 4:
				b.WriteByte('%')
				b.WriteByte(lowerHex[v>>4])
				b.WriteByte(lowerHex[v&0xf])
			default:
				b.WriteString(p[i : i+3])
			}
			i += 2
		case isUnreserved(c) && r < 2:
			hex := upperHex
			if r == 1 {
				hex = lowerHex
			}
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	if next()%4 == 0 {
		b.WriteString("?q=1")
	}
	return b.String()
}

// FuzzTableMatch checks Match against a linear scan over the same routes.
func FuzzTableMatch(f *testing.F) {
	f.Add("/\n/api\n/api/admin", "/api/admin/x")
	f.Add("/api\n/api/admin", "/api/administrator")
	f.Add("/api/admin", "/API/admin")
	f.Add("/a/b/c\n/a\n/a/b", "/a/b/")
	f.Add("/a\n/a/\n/a//b", "/a//b")
	f.Add("/caf%C3%A9\n/%61", "/caf%C3%A9/x")
	f.Add("/", "")
	f.Fuzz(func(t *testing.T, routes, path string) {
		tb := NewTable[string]()
		var set []string
		for _, r := range strings.Split(routes, "\n") {
			canon, cerr := CanonicalPrefix(r)
			dup := false
			for _, s := range set {
				dup = dup || s == r
			}
			err := tb.Add(r, r)
			if wantOK := cerr == nil && canon == r && !dup; (err == nil) != wantOK {
				t.Fatalf("Add(%q) = %v; want success %v", r, err, wantOK)
			}
			if err == nil {
				set = append(set, r)
			}
		}
		var want string
		found := false
		for _, p := range set {
			matches := strings.HasPrefix(path, "/") &&
				(p == "/" || path == p || strings.HasPrefix(path, p+"/"))
			if matches && (!found || len(p) > len(want)) {
				want, found = p, true
			}
		}
		v, prefix, res := tb.Match(path)
		if ok := res == Matched; ok != found || prefix != want || v != want {
			t.Fatalf("routes %q: Match(%q) = %q, %q, %v; want %q, %v", set, path, v, prefix, res, want, found)
		}
		for _, p := range set {
			if _, got, res := tb.Match(p); res != Matched || got != p {
				t.Fatalf("routes %q: Match(%q) = %q, %v; want itself", set, p, got, res)
			}
		}
	})
}
