package routing

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/authgateway/authgateway/internal/testutil/caseapp"
)

// TestFoldRuneClasses checks foldRune on every rune against the model of
// case-insensitive upstreams (caseapp.EqualRune): each rune's fold is a rune
// the model takes for it, runes the model takes for each other (its folding
// orbit and its case mappings) have the same fold, and every class of runes
// with one fold is a set the model takes for one character.
func TestFoldRuneClasses(t *testing.T) {
	classes := map[rune][]rune{} // fold -> the other runes with that fold
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // surrogates never occur in decoded UTF-8
		}
		f := foldRune(r)
		if !caseapp.EqualRune(r, f) {
			t.Fatalf("foldRune(%U) = %U, which no upstream takes for it", r, f)
		}
		if foldRune(f) != f {
			t.Fatalf("foldRune(%U) = %U, whose fold is %U", r, f, foldRune(f))
		}
		related := []rune{unicode.ToUpper(r), unicode.ToLower(r), unicode.ToTitle(r)}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			related = append(related, o)
		}
		for _, o := range related {
			if foldRune(o) != f {
				t.Fatalf("foldRune(%U) = %U but foldRune(%U) = %U", r, f, o, foldRune(o))
			}
		}
		if f != r {
			classes[f] = append(classes[f], r)
		}
	}
	for f, members := range classes {
		members = append(members, f)
		for _, a := range members {
			for _, b := range members {
				if !caseapp.EqualRune(a, b) {
					t.Errorf("%U and %U both fold to %U, but no upstream takes them for one character", a, b, f)
				}
			}
		}
	}
	for _, tc := range []struct{ in, want rune }{{'K', 'k'}, {'\u212A', 'k'}, {'\u017F', 's'}, {'İ', 'i'}, {'ı', 'i'}, {'ς', 'Σ'}, {'é', 'É'}} {
		if got := foldRune(tc.in); got != tc.want {
			t.Errorf("foldRune(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAppendFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/api/admin", "/api/admin"},
		{"/API/Admin", "/api/admin"},
		{"/api/%E2%84%AAeys", "/api/keys"},         // Kelvin sign
		{"/api/key%C5%BF", "/api/keys"},            // long s
		{"/adm%C4%B1n/adm%C4%B0n", "/admin/admin"}, // dotless i, dotted capital I
		{"/a%7Cb/%20X", "/a%7Cb/%20x"},             // escapes of ASCII kept as they are
		{"/caf%C3%A9/CAF%C3%89", "/caf\u00c9/caf\u00c9"},
		{"/%F0%9F%98%80", "/\U0001F600"},
		{"/%EF%BF%BD", "/\uFFFD"},
		{"/x%8", "/x%8"}, // not canonical: copied
		{"/x%80A", "/x%80a"},
		{"/x%E2%84", "/x%E2%84"},
	} {
		got := string(appendFold(nil, tc.in))
		if got != tc.want {
			t.Errorf("appendFold(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > len(tc.in) {
			t.Errorf("appendFold(%q) is longer than its input", tc.in)
		}
		if isFolded(tc.in) != (got == tc.in) && isFolded(tc.in) {
			t.Errorf("isFolded(%q) = true but appendFold changes it", tc.in)
		}
		if FoldPrefix(tc.in) != got {
			t.Errorf("FoldPrefix(%q) = %q, want %q", tc.in, FoldPrefix(tc.in), got)
		}
	}
}

// foldRoutes are the routes of configs/gateway.yaml, a route with a 'k' and
// an 's', and a public area with a protected sub-area.
var foldRoutes = []string{"/api/admin", "/api/data", "/api", "/", "/api/keys", "/docs", "/docs/drafts", "/caf%C3%A9"}

func newFoldTable(tb testing.TB) *Table[string] {
	tb.Helper()
	t := NewFoldTable[string]()
	for _, p := range foldRoutes {
		if err := t.Add(p, p); err != nil {
			tb.Fatalf("Add(%q): %v", p, err)
		}
	}
	return t
}

func TestFoldTableMatch(t *testing.T) {
	tb := newFoldTable(t)
	tests := []struct {
		path, prefix string
		res          Result
	}{
		{"/api/admin/users", "/api/admin", Matched},
		{"/api/admin/Users", "/api/admin", Matched},
		{"/api/admin", "/api/admin", Matched},
		{"/API/ADMIN/USERS", "/api/admin", CaseMismatch},
		{"/api/Admin/users", "/api/admin", CaseMismatch},
		{"/api/ADMIN", "/api/admin", CaseMismatch},
		{"/Api", "/api", CaseMismatch},
		{"/API/DATA/records", "/api/data", CaseMismatch},
		{"/api/DataSets", "/api", Matched},
		{"/api/%E2%84%AAeys", "/api/keys", CaseMismatch},
		{"/api/key%C5%BF/1", "/api/keys", CaseMismatch},
		{"/api/adm%C4%B1n", "/api/admin", CaseMismatch},
		{"/api/keys/%E2%84%AA", "/api/keys", Matched},
		{"/docs/DRAFTS/x", "/docs/drafts", CaseMismatch},
		{"/DOCS/x", "/docs", CaseMismatch},
		{"/docs/x/DRAFTS", "/docs", Matched},
		{"/CAF%C3%89/menu", "/caf%C3%A9", CaseMismatch},
		{"/caf%C3%A9/Menu", "/caf%C3%A9", Matched},
		{"/Favicon.ICO", "/", Matched},
		{"/", "/", Matched},
		{"/api/", "/api", Matched},
		{"/API/", "/api", CaseMismatch},
		{"x", "", NoRoute},
	}
	for _, tc := range tests {
		v, prefix, res := tb.Match(tc.path)
		if res != tc.res || prefix != tc.prefix || (res != NoRoute && v != prefix) {
			t.Errorf("Match(%q) = %q, %q, %v; want %q, %v", tc.path, v, prefix, res, tc.prefix, tc.res)
		}
	}

	// Without a catch-all, a case-changed path that matches no route
	// exactly is refused too: its case-insensitive match is a route.
	noRoot := NewFoldTable[string]()
	for _, p := range []string{"/api", "/public"} {
		if err := noRoot.Add(p, p); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]Result{"/API/x": CaseMismatch, "/Public": CaseMismatch, "/other": NoRoute, "/api/X": Matched} {
		if _, _, res := noRoot.Match(path); res != want {
			t.Errorf("without a catch-all, Match(%q) = %v; want %v", path, res, want)
		}
	}
}

func TestFoldTableAddErrors(t *testing.T) {
	for _, pair := range [][2]string{
		{"/api/keys", "/API/Keys"},
		{"/api/keys", "/api/%E2%84%AAeys"},
		{"/api/keys", "/api/key%C5%BF"},
		{"/caf%C3%A9", "/CAF%C3%89"},
		{"/admin", "/adm%C4%B1n"},
	} {
		tb := NewFoldTable[int]()
		if err := tb.Add(pair[0], 1); err != nil {
			t.Fatal(err)
		}
		err := tb.Add(pair[1], 2)
		if err == nil || !strings.Contains(err.Error(), "differ only in case") {
			t.Errorf("fold table: Add(%q) after %q = %v; want a 'differ only in case' error", pair[1], pair[0], err)
		}
		exact := NewTable[int]()
		if err := exact.Add(pair[0], 1); err != nil {
			t.Fatal(err)
		}
		if err := exact.Add(pair[1], 2); err != nil {
			t.Errorf("case-sensitive table: Add(%q) after %q = %v; want it accepted", pair[1], pair[0], err)
		}
	}
	tb := NewFoldTable[int]()
	_ = tb.Add("/api", 1)
	if err := tb.Add("/api", 2); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("fold table: second Add(/api) = %v; want a duplicate error", err)
	}
}

func TestFoldMatchDoesNotAllocate(t *testing.T) {
	tb := newFoldTable(t)
	for _, path := range []string{"/api/admin/users/42", "/api/admin/Users/42", "/API/ADMIN/USERS", "/api/%E2%84%AAeys", "/api/admin/" + strings.Repeat("X", foldBuf)} {
		allocs := testing.AllocsPerRun(100, func() { tb.Match(path) })
		if allocs != 0 {
			t.Errorf("Match(%.40q) allocs = %v; want 0", path, allocs)
		}
	}
}

// FuzzCaseFoldRoute compares a fold table's decision for a path with a
// model of a case-insensitive upstream (caseapp.Serve: the longest mount
// whose segments equal the decoded path's case-insensitively). Whenever the
// gateway would forward a path as route R (Matched), the upstream must
// serve it as R, and R must be the path's exact match; a path is refused
// (CaseMismatch) only when the upstream would serve another route than the
// exact match. Add must refuse exactly the prefixes that the upstream could
// not tell apart from one already added.
func FuzzCaseFoldRoute(f *testing.F) {
	f.Add("/api/admin\n/api/data\n/api\n/", "/API/ADMIN/USERS")
	f.Add("/api/admin\n/api", "/api/Admin/users")
	f.Add("/api/keys\n/api\n/", "/api/%E2%84%AAeys")
	f.Add("/api/keys\n/api", "/api/key%c5%bf")
	f.Add("/api/admin\n/", "/api/adm%C4%B1n")
	f.Add("/public\n/", "/PUBLIC/x")
	f.Add("/docs\n/docs/drafts", "/docs/DRAFTS")
	f.Add("/caf%C3%A9\n/", "/CAF%C3%89/x")
	f.Add("/%CF%82\n/%CF%83", "/%CE%A3")
	f.Add("/a\n/A", "/a")
	f.Add("/", "/Anything")
	f.Fuzz(func(t *testing.T, routes, target string) {
		tb, exact := NewFoldTable[string](), NewTable[string]()
		canon := map[string]string{} // decoded prefix -> prefix
		var mounts []string
		for _, r := range strings.Split(routes, "\n") {
			c, cerr := CanonicalPrefix(r)
			d, _ := url.PathUnescape(r)
			clash := false
			for _, m := range mounts {
				clash = clash || sameToUpstream(m, d)
			}
			err := tb.Add(r, r)
			if wantOK := cerr == nil && c == r && !clash; (err == nil) != wantOK {
				t.Fatalf("routes %q: Add(%q) = %v; want success %v", mounts, r, err, wantOK)
			}
			if err != nil {
				continue
			}
			if err := exact.Add(r, r); err != nil {
				t.Fatalf("case-sensitive Add(%q) = %v after the fold table took it", r, err)
			}
			if prev, dup := canon[d]; dup {
				t.Fatalf("route paths %q and %q decode to the same %q", prev, r, d)
			}
			canon[d] = r
			mounts = append(mounts, d)
		}
		path, _, err := Normalize(target)
		if err != nil {
			return
		}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			t.Fatalf("PathUnescape(%q): %v", path, err)
		}
		m, served := caseapp.Serve(mounts, decoded)
		upstream := canon[m]

		v, prefix, res := tb.Match(path)
		_, exactPrefix, exactRes := exact.Match(path)
		if res != NoRoute && v != prefix {
			t.Fatalf("Match(%q) = %q, %q", path, v, prefix)
		}
		switch res {
		case Matched:
			if !served || upstream != prefix {
				t.Fatalf("routes %q: the gateway forwards %q as route %q; a case-insensitive upstream serves it as %q (served %v)", mounts, path, prefix, upstream, served)
			}
			if exactRes != Matched || exactPrefix != prefix {
				t.Fatalf("routes %q: the gateway forwards %q as route %q; its exact match is %q (%v)", mounts, path, prefix, exactPrefix, exactRes)
			}
		case NoRoute:
			if served || exactRes != NoRoute {
				t.Fatalf("routes %q: no route for %q; the upstream serves it as %q, the exact match is %q (%v)", mounts, path, upstream, exactPrefix, exactRes)
			}
		case CaseMismatch:
			if !served || upstream != prefix {
				t.Fatalf("routes %q: %q refused as spelt like route %q; the upstream would serve it as %q (served %v)", mounts, path, prefix, upstream, served)
			}
			if exactRes == Matched && exactPrefix == upstream {
				t.Fatalf("routes %q: %q refused although its exact match %q is what the upstream serves", mounts, path, exactPrefix)
			}
		}
	})
}

// sameToUpstream reports whether a case-insensitive upstream takes two
// decoded route paths for the same path.
func sameToUpstream(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if !caseapp.EqualSegment(as[i], bs[i]) {
			return false
		}
	}
	return true
}
