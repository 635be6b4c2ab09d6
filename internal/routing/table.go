package routing

import (
	"fmt"
	"strings"
)

// Table maps route path prefixes to values. Match picks the longest prefix
// that ends on a segment boundary of the path; matching is case-sensitive.
//
// It is a trie keyed by path segment, so the cost of Match depends on the
// depth of the path, not on the number of routes, and Match does not
// allocate. Build a Table completely (Add) before sharing it; after that, any
// number of goroutines may call Match. A config reload builds a new Table.
type Table[T any] struct {
	root node[T]
}

type node[T any] struct {
	children map[string]*node[T]
	set      bool // a route ends here
	prefix   string
	v        T
}

// NewTable returns an empty table.
func NewTable[T any]() *Table[T] {
	return &Table[T]{root: node[T]{prefix: "/"}}
}

// Add adds a route. prefix must be canonical (CanonicalPrefix(prefix) returns
// it unchanged) and not already present.
func (t *Table[T]) Add(prefix string, v T) error {
	canon, err := CanonicalPrefix(prefix)
	if err != nil {
		return err
	}
	if canon != prefix {
		return fmt.Errorf("route path %q is not canonical: use %q", prefix, canon)
	}
	n := &t.root
	for rest := prefix[1:]; rest != ""; {
		seg, after, _ := strings.Cut(rest, "/")
		rest = after
		c := n.children[seg]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*node[T])
			}
			c = &node[T]{}
			n.children[seg] = c
		}
		n = c
	}
	if n.set {
		return fmt.Errorf("duplicate route path %q", prefix)
	}
	n.set, n.prefix, n.v = true, prefix, v
	return nil
}

// Match returns the value of the longest route prefix that equals path or is
// followed by '/' in it ("/" matches every path that starts with '/'). path
// should be the output of Normalize; a path not starting with '/' matches
// nothing.
func (t *Table[T]) Match(path string) (v T, prefix string, ok bool) {
	if path == "" || path[0] != '/' {
		return v, "", false
	}
	n := &t.root
	best := (*node[T])(nil)
	if n.set {
		best = n
	}
	for rest := path[1:]; rest != ""; {
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		c := n.children[seg] // indexing with a substring does not allocate
		if c == nil {
			break
		}
		n = c
		if n.set {
			best = n
		}
	}
	if best == nil {
		return v, "", false
	}
	return best.v, best.prefix, true
}

// CanonicalPrefix validates a configured route path and returns its
// canonical form: "/api/admin/" is "/api/admin", "/" stays "/", escapes of
// unreserved characters are decoded and other escapes upper-cased.
//
// Besides what Normalize refuses, it refuses empty and dot segments (they are
// almost certainly mistakes in a config) and the characters that a request
// may spell two ways which Normalize keeps apart (sub-delims, ':' and '@', raw
// or escaped): a route on "/a@b" could be bypassed by "/a%40b", which an
// upstream decodes to the same path. So a route path holds only unreserved
// characters, '/', and escapes whose only canonical spelling is the escape
// (space, non-ASCII, and the ASCII characters Normalize always escapes).
func CanonicalPrefix(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("route path is empty")
	case p[0] != '/':
		return "", fmt.Errorf("route path %q must start with '/'", p)
	case strings.IndexByte(p, '?') >= 0:
		return "", fmt.Errorf("route path %q must not hold a query ('?')", p)
	case strings.IndexByte(p, '#') >= 0:
		return "", fmt.Errorf("route path %q must not hold a fragment ('#')", p)
	case strings.Contains(p, "//"):
		return "", fmt.Errorf("route path %q has an empty segment (\"//\")", p)
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	buf, err := canonicalBytes(p)
	if err != nil {
		return "", fmt.Errorf("route path %q: %w", p, err)
	}
	if len(buf) > 1 {
		for _, seg := range strings.Split(string(buf[1:]), "/") {
			switch seg {
			case "":
				return "", fmt.Errorf("route path %q has an empty segment (\"//\")", p)
			case ".", "..":
				return "", fmt.Errorf("route path %q has a dot segment (%q)", p, seg)
			}
		}
	}
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		if c == '%' {
			v, _ := unhex(buf[i+1])
			lo, _ := unhex(buf[i+2])
			c = v<<4 | lo
			i += 2
			if c >= 0x80 || c == ' ' || mustEncode(c) {
				continue
			}
		} else if isUnreserved(c) || c == '/' {
			continue
		}
		return "", fmt.Errorf("route path %q holds %q, which requests may spell raw or escaped: route paths may hold only letters, digits, '-', '.', '_', '~', '/' and escapes of non-ASCII bytes", p, c)
	}
	return string(buf), nil
}
