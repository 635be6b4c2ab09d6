// Package caseapp models an upstream web framework that matches request
// paths to its handlers case-insensitively, as Express does by default and
// ASP.NET, IIS and Spring can: tests ask it which handler such an upstream
// would have served, independently of the gateway's own folding code.
package caseapp

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// EqualRune reports whether some case-insensitive framework takes a and b
// for the same character: Unicode simple case folding (Go's EqualFold,
// JavaScript's /iu: K and the Kelvin sign, s and the long s), equal simple
// upper-case mappings (.NET's OrdinalIgnoreCase: the dotless ı is I), or
// equal lower-case mappings, also of the upper-case ones (Java's
// equalsIgnoreCase: the dotted İ is i).
func EqualRune(a, b rune) bool {
	return a == b || strings.EqualFold(string(a), string(b)) ||
		unicode.ToUpper(a) == unicode.ToUpper(b) || unicode.ToLower(a) == unicode.ToLower(b) ||
		unicode.ToLower(unicode.ToUpper(a)) == unicode.ToLower(unicode.ToUpper(b))
}

// EqualSegment compares two decoded path segments rune by rune with EqualRune.
func EqualSegment(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if !EqualRune(ra, rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b == ""
}

// Serve returns the mount (a decoded path such as "/api/admin"; "/" mounts
// everything) whose handler serves decodedPath: the one with the most
// segments that all equal the path's first segments case-insensitively.
// ok is false when no mount serves the path.
func Serve(mounts []string, decodedPath string) (mount string, ok bool) {
	segs := strings.Split(strings.TrimPrefix(decodedPath, "/"), "/")
	best := -1
	for _, m := range mounts {
		var ms []string
		if m != "/" {
			ms = strings.Split(strings.TrimPrefix(m, "/"), "/")
		}
		if len(ms) > len(segs) || len(ms) <= best {
			continue
		}
		match := true
		for i, s := range ms {
			match = match && EqualSegment(s, segs[i])
		}
		if match {
			mount, best = m, len(ms)
		}
	}
	return mount, best >= 0
}
