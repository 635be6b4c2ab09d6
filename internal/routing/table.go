package routing

import (
	"fmt"
	"strings"
)

// Table maps route path prefixes to values. Match picks the longest prefix
// that ends on a segment boundary of the path.
//
// A table made by NewTable compares paths byte for byte, case-sensitively.
// One made by NewFoldTable serves upstreams that may ignore case (Express,
// ASP.NET, IIS): Match also compares the path case-insensitively, on its
// decoded form, and refuses it (CaseMismatch) when that finds another route
// than its exact spelling does.
//
// It is a trie keyed by path segment (by folded segment in a fold table), so
// the cost of Match depends on the depth of the path, not on the number of
// routes, and Match does not allocate (in a fold table: unless a segment that
// needs folding is longer than foldBuf bytes). Build a Table completely
// (Add) before sharing it; after that, any number of goroutines may call
// Match. A config reload builds a new Table.
type Table[T any] struct {
	root node[T]
	fold bool
}

type node[T any] struct {
	children map[string]*node[T]
	set      bool // a route ends here
	prefix   string
	v        T
}

// Result is what Match found for a path.
type Result uint8

const (
	// NoRoute: no route prefix covers the path.
	NoRoute Result = iota
	// Matched: the returned route serves the path.
	Matched
	// CaseMismatch (fold tables only): the longest prefix the path matches
	// case-insensitively is not the one it matches exactly, or the path
	// matches no prefix exactly. An upstream that ignores case would serve
	// the path as the returned (case-insensitive) route, which the gateway
	// would have applied another route's rules to, or none: the caller must
	// refuse it.
	CaseMismatch
)

func (r Result) String() string {
	switch r {
	case Matched:
		return "matched"
	case CaseMismatch:
		return "case mismatch"
	}
	return "no route"
}

// foldBuf is the size of Match's stack buffer for a folded segment.
const foldBuf = 256

// NewTable returns an empty table that compares paths case-sensitively.
func NewTable[T any]() *Table[T] {
	return &Table[T]{root: node[T]{prefix: "/"}}
}

// NewFoldTable returns an empty table whose Match refuses paths that match
// another route when compared case-insensitively (see Result), and whose Add
// refuses two prefixes that differ only in case.
func NewFoldTable[T any]() *Table[T] {
	return &Table[T]{root: node[T]{prefix: "/"}, fold: true}
}

// Add adds a route. prefix must be canonical (CanonicalPrefix(prefix) returns
// it unchanged) and not already present; in a fold table, no other prefix
// may have the same FoldPrefix.
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
		if t.fold {
			seg = FoldPrefix(seg)
		}
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
	switch {
	case n.set && n.prefix == prefix:
		return fmt.Errorf("duplicate route path %q", prefix)
	case n.set:
		return fmt.Errorf("route paths %q and %q differ only in case", n.prefix, prefix)
	}
	n.set, n.prefix, n.v = true, prefix, v
	return nil
}

// Match returns the value of the longest route prefix that equals path or is
// followed by '/' in it ("/" matches every path that starts with '/'), and
// Matched; or NoRoute. path should be the output of Normalize; a path not
// starting with '/' matches nothing.
//
// In a fold table the walk compares folded segments, so it finds the longest
// prefix F that the path matches case-insensitively. The path's exact match
// is F when F is spelt exactly as the path is, and otherwise another route
// or none (a prefix the path matches exactly also matches it folded, and F
// is the longest of those): then Match returns F with CaseMismatch.
func (t *Table[T]) Match(path string) (v T, prefix string, res Result) {
	if path == "" || path[0] != '/' {
		return v, "", NoRoute
	}
	var buf [foldBuf]byte
	n := &t.root
	best, bestEnd := (*node[T])(nil), 0
	if n.set {
		best, bestEnd = n, 1
	}
	for i := 1; i < len(path) && len(n.children) > 0; {
		end := len(path)
		if j := strings.IndexByte(path[i:], '/'); j >= 0 {
			end = i + j
		}
		seg := path[i:end]
		var c *node[T]
		// Indexing with a substring, or with string(bytes), does not allocate.
		if t.fold && !isFolded(seg) {
			c = n.children[string(appendFold(buf[:0], seg))]
		} else {
			c = n.children[seg]
		}
		if c == nil {
			break
		}
		n = c
		if n.set {
			best, bestEnd = n, end
		}
		i = end + 1
	}
	switch {
	case best == nil:
		return v, "", NoRoute
	case best.prefix != path[:bestEnd]: // only in a fold table
		return best.v, best.prefix, CaseMismatch
	}
	return best.v, best.prefix, Matched
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
