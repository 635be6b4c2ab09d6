package routing

import (
	"unicode"
	"unicode/utf8"
)

// Case folding of canonical paths, for upstreams that match paths without
// regard to case (Express by default, ASP.NET, IIS, Spring when configured).
//
// Two runes are the same to such an upstream when Unicode simple case
// folding says so (K, k and the Kelvin sign; S, s and the long s; the three
// sigmas), and also for the dotted capital İ and the dotless ı, whose
// simple upper- and lower-case mappings reach I and i although simple
// folding does not: .NET's OrdinalIgnoreCase matches ı to i, Java's
// equalsIgnoreCase both. These two are the only runes whose case mappings
// leave their folding orbit (TestFoldRuneClasses checks every rune), so the
// classes below are exactly "equal under some upstream's case-insensitive
// comparison".

// foldRune returns one fixed member of r's class: the lower-case ASCII
// letter when the class has one (so lower-case ASCII paths are their own
// fold), else the class's smallest rune.
func foldRune(r rune) rune {
	switch {
	case r < utf8.RuneSelf:
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	case r == 'İ' || r == 'ı':
		return 'i'
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if 'a' <= f && f <= 'z' {
			return f
		}
		least = min(least, f)
	}
	return least
}

// isFolded reports whether appendFold would return s unchanged: no
// upper-case ASCII letter and no escape of a non-ASCII byte.
func isFolded(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z':
			return false
		case c == '%' && i+2 < len(s):
			if s[i+1] >= '8' {
				return false
			}
			i += 2
		}
	}
	return true
}

// appendFold appends the case-folded form of s, a canonical path or part of
// one, to dst: ASCII letters in lower case, escapes of ASCII characters kept
// as they are, and escaped UTF-8 sequences decoded, folded with foldRune and
// appended raw (raw bytes >= 0x80 never occur in a canonical path, so the
// two cannot be confused). The result is never longer than s.
//
// An escape that does not begin a valid UTF-8 sequence (input that is not
// canonical) is copied as it is.
func appendFold(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
			i++
		case c == '%' && i+2 < len(s):
			if s[i+1] >= '8' {
				if r, n := decodeEscapedRune(s[i:]); n > 0 {
					dst = utf8.AppendRune(dst, foldRune(r))
					i += n
					continue
				}
			}
			dst = append(dst, s[i:i+3]...)
			i += 3
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// decodeEscapedRune decodes the escaped UTF-8 sequence at the start of s
// ("%E2%84%AA"), returning the rune and the length of its escapes, or n == 0
// when s does not start with one valid, shortest-form sequence.
func decodeEscapedRune(s string) (r rune, n int) {
	var seq [utf8.UTFMax]byte
	k := 0
	for ; k < utf8.UTFMax && 3*k+2 < len(s) && s[3*k] == '%'; k++ {
		hi, ok1 := unhex(s[3*k+1])
		lo, ok2 := unhex(s[3*k+2])
		if !ok1 || !ok2 {
			break
		}
		seq[k] = hi<<4 | lo
		if k > 0 && seq[k]&0xC0 != 0x80 { // not a continuation byte
			break
		}
	}
	r, size := utf8.DecodeRune(seq[:k])
	if r == utf8.RuneError && size <= 1 {
		return 0, 0
	}
	return r, 3 * size
}

// FoldPrefix returns the case-folded form of a canonical route path: two
// route paths that an upstream ignoring case could not tell apart have the
// same fold.
func FoldPrefix(p string) string {
	if isFolded(p) {
		return p
	}
	return string(appendFold(make([]byte, 0, len(p)), p))
}
