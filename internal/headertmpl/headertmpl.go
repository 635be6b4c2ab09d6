// Package headertmpl compiles and renders the identity templates of a
// route's request_headers ("{subject}", "user={email}", "{claims.org.id}").
// A template is parsed once, at config load; rendering walks the parsed
// parts and appends to a caller's buffer, so the request path never parses.
package headertmpl

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/authgateway/authgateway/internal/strategies"
)

// Placeholders lists the names a template may use besides claims.NAME.
var Placeholders = []string{"subject", "email", "roles", "scopes", "client_id", "strategy"}

type field uint8

const (
	literal field = iota
	subject
	email
	roles
	scopes
	clientID
	strategy
	claim
)

type part struct {
	kind  field
	lit   string   // literal
	claim []string // claim: the path's names
}

// Template is a compiled header value template; safe for concurrent use.
type Template struct {
	src   string
	parts []part
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Parse compiles s. "{name}" is a placeholder (subject, email, roles,
// scopes, client_id, strategy, or claims.a.b: a claim, dotted names walking
// into nested objects); "{{" and "}}" write a literal brace. Anything else
// in braces, an unclosed brace or a control character is an error.
func Parse(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: literal, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("template %q holds a control character", s)
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '}':
			return nil, fmt.Errorf("template %q: unmatched '}' (write \"}}\" for a literal brace)", s)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template %q: unclosed '{'", s)
			}
			p, err := placeholder(s[i+1 : i+end])
			if err != nil {
				return nil, fmt.Errorf("template %q: %w", s, err)
			}
			flush()
			t.parts = append(t.parts, p)
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func placeholder(name string) (part, error) {
	switch name {
	case "subject":
		return part{kind: subject}, nil
	case "email":
		return part{kind: email}, nil
	case "roles":
		return part{kind: roles}, nil
	case "scopes":
		return part{kind: scopes}, nil
	case "client_id":
		return part{kind: clientID}, nil
	case "strategy":
		return part{kind: strategy}, nil
	}
	if rest, ok := strings.CutPrefix(name, "claims."); ok {
		path := strings.Split(rest, ".")
		for _, n := range path {
			if n == "" || strings.ContainsAny(n, "{ ") {
				return part{}, fmt.Errorf("bad claim path {%s}", name)
			}
		}
		return part{kind: claim, claim: path}, nil
	}
	return part{}, fmt.Errorf("unknown placeholder {%s} (known: {%s}, {claims.NAME})", name, strings.Join(Placeholders, "}, {"))
}

// Append renders the template for id onto dst. ok is false, and the header
// must not be sent, when a placeholder has no value (empty, absent claim, an
// object) or the value holds a control character, which could split or
// smuggle a header at a lenient upstream.
func (t *Template) Append(dst []byte, id *strategies.Identity) (_ []byte, ok bool) {
	start := len(dst)
	for i := range t.parts {
		p := &t.parts[i]
		before := len(dst)
		switch p.kind {
		case literal:
			dst = append(dst, p.lit...)
			continue
		case subject:
			dst = append(dst, id.Subject...)
		case email:
			dst = append(dst, id.Email...)
		case roles:
			dst = appendJoined(dst, id.Roles, ',')
		case scopes:
			dst = appendJoined(dst, id.Scopes, ' ')
		case clientID:
			dst = append(dst, id.ClientID...)
		case strategy:
			dst = append(dst, id.Strategy...)
		case claim:
			var good bool
			dst, good = appendClaim(dst, lookup(id.ClaimMap(), p.claim), true)
			if !good {
				return dst[:start], false
			}
		}
		if len(dst) == before {
			return dst[:start], false
		}
	}
	for _, c := range dst[start:] {
		if c < 0x20 || c == 0x7f {
			return dst[:start], false
		}
	}
	return dst, len(dst) > start
}

func appendJoined(dst []byte, list []string, sep byte) []byte {
	for i, s := range list {
		if i > 0 {
			dst = append(dst, sep)
		}
		dst = append(dst, s...)
	}
	return dst
}

// lookup walks claims by the names of path.
func lookup(claims map[string]any, path []string) any {
	var v any = claims
	for _, name := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[name]; !ok {
			return nil
		}
	}
	return v
}

// appendClaim writes a claim's value: strings as they are, whole numbers
// without exponent, other numbers in the shortest form, booleans, and lists
// of those joined with "," (top level only). Objects, nested lists and null
// have no header form: ok is false.
func appendClaim(dst []byte, v any, top bool) (_ []byte, ok bool) {
	switch v := v.(type) {
	case string:
		return append(dst, v...), true
	case bool:
		return strconv.AppendBool(dst, v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return strconv.AppendInt(dst, int64(v), 10), true
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return dst, false
		}
		return strconv.AppendFloat(dst, v, 'f', -1, 64), true
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case interface{ String() string }: // json.Number
		return append(dst, v.String()...), true
	case []string:
		if !top {
			return dst, false
		}
		return appendJoined(dst, v, ','), true
	case []any:
		if !top {
			return dst, false
		}
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = appendClaim(dst, e, false); !ok {
				return dst, false
			}
		}
		return dst, true
	}
	return dst, false
}
