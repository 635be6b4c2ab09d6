// Package routing turns a raw request-target into the one canonical path the
// gateway routes on and forwards, and maps such paths to routes by longest
// whole-segment prefix.
//
// The security contract (DESIGN.md, "Request pipeline" step 2) is that the
// gateway never routes on one spelling of a path and forwards another. So
// Normalize either refuses a path or returns a single canonical spelling, and
// the caller must both Match and forward exactly that string.
package routing

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrBadPath is returned (wrapped with a reason) for a request-target the
// gateway answers with 400.
var ErrBadPath = errors.New("bad request path")

func badPath(reason string) error {
	return fmt.Errorf("%w: %s", ErrBadPath, reason)
}

// Normalize turns a raw request-target (r.RequestURI exactly as received) into
// the canonical escaped path the gateway routes on and forwards, plus the raw
// query without the '?'.
//
// Accepted forms: origin-form ("/path?q") and absolute-form
// ("http(s)://host/path?q", of which only the path and query are used: the
// host a client names is never trusted). Asterisk-form, authority-form and any
// other or opaque form is refused. "//host/path" is origin-form, so it is the
// path "/host/path" after collapsing "//".
//
// Canonical form:
//   - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
//     decoded; every other escape is kept, with upper-case hex;
//   - the raw ASCII characters that RFC 3986 does not allow in a path but
//     browsers send unescaped (" < > [ ] ^ ` { | }) are percent-encoded, so
//     they too have one spelling;
//   - runs of '/' are collapsed, then "." and ".." segments are resolved; ".."
//     above the root is refused; a trailing slash is kept.
//
// Refused (ErrBadPath), raw or percent-encoded in any case: '\', ';', any
// control character; encoded '/', '#', '?', '%'; malformed escapes; raw
// space, raw bytes >= 0x80, and escaped bytes >= 0x80 that are not valid
// UTF-8 (overlong forms such as %C0%AE are a classic way to smuggle a '.'
// past a proxy); a fragment; a query holding control characters, spaces or
// non-ASCII bytes.
//
// An already-canonical path without escapes is returned without allocating.
func Normalize(requestURI string) (path string, rawQuery string, err error) {
	target := requestURI
	if len(target) == 0 {
		return "", "", badPath("empty request-target")
	}
	if target[0] != '/' {
		rest, ok := cutHTTPScheme(target)
		if !ok {
			return "", "", badPath("request-target is not origin-form or absolute-form")
		}
		end := 0
		for end < len(rest) && rest[end] != '/' && rest[end] != '?' && rest[end] != '#' {
			end++
		}
		if end == 0 {
			return "", "", badPath("empty host in absolute-form")
		}
		for i := 0; i < end; i++ {
			if !isAuthorityByte(rest[i]) {
				return "", "", badPath("invalid character in host")
			}
		}
		target = rest[end:]
	}

	query := -1 // index of the first '?', which ends the path
	for i := 0; i < len(target); i++ {
		switch target[i] {
		case '#':
			return "", "", badPath("fragment in request-target")
		case '?':
			if query < 0 {
				query = i
			}
		}
	}
	path = target
	if query >= 0 {
		path, rawQuery = target[:query], target[query+1:]
	}
	if err := checkQuery(rawQuery); err != nil {
		return "", "", err
	}
	if path == "" { // absolute-form with an empty path
		return "/", rawQuery, nil
	}
	if isCanonical(path) {
		return path, rawQuery, nil
	}
	buf, err := canonicalBytes(path)
	if err != nil {
		return "", "", err
	}
	out, err := resolveSegments(buf)
	if err != nil {
		return "", "", err
	}
	return string(out), rawQuery, nil
}

// cutHTTPScheme returns what follows "http://" or "https://" (scheme in any
// case), or false for any other form.
func cutHTTPScheme(s string) (string, bool) {
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(s) >= len(scheme) && equalFoldASCII(s[:len(scheme)], scheme) {
			return s[len(scheme):], true
		}
	}
	return "", false
}

func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isAuthorityByte reports whether c may appear in an RFC 3986 authority
// (userinfo@host:port, IP literals, and %-escapes in zone ids).
func isAuthorityByte(c byte) bool {
	return isUnreserved(c) || isSubDelim(c) || c == ';' ||
		c == ':' || c == '@' || c == '[' || c == ']' || c == '%'
}

// checkQuery refuses bytes that are never valid in a request-target. The query
// is otherwise forwarded exactly as received.
func checkQuery(q string) error {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f {
			return badPath("control character, space or non-ASCII byte in query")
		}
	}
	return nil
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim reports the RFC 3986 sub-delims except ';', which the gateway
// refuses because upstreams disagree on it (path parameters, Tomcat's
// "/a;x/../b").
func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=':
		return true
	}
	return false
}

// isPlain reports whether c stays as it is, raw, in a canonical path.
func isPlain(c byte) bool {
	return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/'
}

// mustEncode reports the printable ASCII characters RFC 3986 does not allow
// raw in a path that clients (browsers) nonetheless send raw. The canonical
// spelling is their escape.
func mustEncode(c byte) bool {
	switch c {
	case '"', '<', '>', '[', ']', '^', '`', '{', '|', '}':
		return true
	}
	return false
}

// rawReason says why raw byte c is refused in a path, or "" if it is not.
func rawReason(c byte) string {
	switch {
	case c < 0x20 || c == 0x7f:
		return "control character in path"
	case c == ' ':
		return "raw space in path"
	case c >= 0x80:
		return "raw non-ASCII byte in path"
	case c == '\\':
		return "backslash in path"
	case c == ';':
		return "semicolon in path"
	case c == '#':
		return "fragment in request-target"
	case isPlain(c) || mustEncode(c) || c == '%':
		return ""
	}
	return "invalid character in path"
}

// escapedReason says why the escape %XX decoding to c is refused, or "".
func escapedReason(c byte) string {
	switch c {
	case '/':
		return "encoded slash in path"
	case '\\':
		return "encoded backslash in path"
	case ';':
		return "encoded semicolon in path"
	case '#':
		return "encoded '#' in path"
	case '?':
		return "encoded '?' in path"
	case '%':
		return "encoded '%' (double encoding) in path"
	}
	if c < 0x20 || c == 0x7f {
		return "encoded control character in path"
	}
	return ""
}

// isCanonical reports whether p (starting with '/') is already canonical and
// holds no escape: only plain bytes, no "//", no dot segment.
func isCanonical(p string) bool {
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !isPlain(p[i]) {
				return false
			}
			continue
		}
		switch p[start:i] {
		case "":
			if i < len(p) { // "//"; an empty last segment is a trailing slash
				return false
			}
		case ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeEscape decodes the escape at p[i] == '%'.
func decodeEscape(p string, i int) (byte, error) {
	if i+2 >= len(p) {
		return 0, badPath("malformed percent-escape in path")
	}
	hi, ok1 := unhex(p[i+1])
	lo, ok2 := unhex(p[i+2])
	if !ok1 || !ok2 {
		return 0, badPath("malformed percent-escape in path")
	}
	return hi<<4 | lo, nil
}

// canonicalBytes applies the per-character rules to path p (which starts with
// '/'): validation, decoding unreserved escapes, upper-casing the rest, and
// escaping mustEncode bytes. Segments are left for resolveSegments.
func canonicalBytes(p string) ([]byte, error) {
	buf := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); {
		c := p[i]
		if c != '%' {
			if r := rawReason(c); r != "" {
				return nil, badPath(r)
			}
			if mustEncode(c) {
				buf = append(buf, '%', upperHex[c>>4], upperHex[c&0xf])
			} else {
				buf = append(buf, c)
			}
			i++
			continue
		}
		v, err := decodeEscape(p, i)
		if err != nil {
			return nil, err
		}
		if r := escapedReason(v); r != "" {
			return nil, badPath(r)
		}
		switch {
		case isUnreserved(v):
			buf = append(buf, v)
			i += 3
		case v < utf8.RuneSelf:
			buf = append(buf, '%', upperHex[v>>4], upperHex[v&0xf])
			i += 3
		default:
			n, err := appendUTF8Escapes(&buf, p, i)
			if err != nil {
				return nil, err
			}
			i += n
		}
	}
	return buf, nil
}

// appendUTF8Escapes reads the escaped multi-byte UTF-8 sequence starting at
// p[i] (an escape of a byte >= 0x80), checks that it is one valid, shortest
// form code point, and appends its escapes in upper case. It returns the
// number of bytes of p consumed.
func appendUTF8Escapes(buf *[]byte, p string, i int) (int, error) {
	var seq [utf8.UTFMax]byte
	lead, err := decodeEscape(p, i)
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case lead&0xE0 == 0xC0:
		n = 2
	case lead&0xF0 == 0xE0:
		n = 3
	case lead&0xF8 == 0xF0:
		n = 4
	default:
		return 0, badPath("invalid utf-8 in path escapes")
	}
	seq[0] = lead
	for k := 1; k < n; k++ {
		j := i + 3*k
		if j >= len(p) || p[j] != '%' {
			return 0, badPath("invalid utf-8 in path escapes")
		}
		v, err := decodeEscape(p, j)
		if err != nil {
			return 0, err
		}
		seq[k] = v
	}
	// DecodeRune refuses overlong forms, surrogates and truncated sequences.
	if r, size := utf8.DecodeRune(seq[:n]); r == utf8.RuneError || size != n {
		return 0, badPath("invalid utf-8 in path escapes")
	}
	for _, v := range seq[:n] {
		*buf = append(*buf, '%', upperHex[v>>4], upperHex[v&0xf])
	}
	return 3 * n, nil
}

// resolveSegments collapses "//" runs and resolves "." and ".." segments of
// buf (which starts with '/') in place, keeping a trailing slash. Collapsing
// comes first: "/a//.." is "/a/.." is "/".
func resolveSegments(buf []byte) ([]byte, error) {
	// out shares buf's array: it never grows past what has been read, because
	// every segment written was preceded by at least one '/' that was read.
	out := buf[:0]
	trailing := false
	for i := 0; i < len(buf); {
		for i < len(buf) && buf[i] == '/' {
			i++
		}
		if i == len(buf) {
			trailing = true
			break
		}
		j := i
		for j < len(buf) && buf[j] != '/' {
			j++
		}
		seg := buf[i:j]
		switch string(seg) {
		case ".":
			trailing = true
		case "..":
			if len(out) == 0 {
				return nil, badPath("dot-dot segment above the root")
			}
			for len(out) > 0 && out[len(out)-1] != '/' {
				out = out[:len(out)-1]
			}
			out = out[:len(out)-1] // drop the '/' that began the popped segment
			trailing = true
		default:
			out = append(out, '/')
			out = append(out, seg...)
			trailing = false
		}
		i = j
	}
	if trailing || len(out) == 0 {
		out = append(out, '/')
	}
	return out, nil
}
