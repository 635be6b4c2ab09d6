package pack

import (
	"slices"
	"testing"
	"unsafe"

	"github.com/authgateway/authgateway/internal/testutil/packtest"
)

// TestInto: the values read the same, share one string block and one list
// block, no longer point at what they pointed at, and a list cannot grow
// into its neighbour.
func TestInto(t *testing.T) {
	orig := []string{"key.payload.sig", "alice", "", "jti-1"}
	a, b, c, d := orig[0], orig[1], orig[2], orig[3]
	roles := []string{"admin", "ops"}
	scopes := []string{"read"}
	var none []string
	origRoles := roles

	Into([]*string{&a, &b, &c, &d}, &roles, &none, &scopes)

	if got := []string{a, b, c, d}; !slices.Equal(got, orig) {
		t.Fatalf("strings = %q; want %q", got, orig)
	}
	if !slices.Equal(roles, []string{"admin", "ops"}) || !slices.Equal(scopes, []string{"read"}) || none != nil {
		t.Fatalf("lists = %q %q %v", roles, scopes, none)
	}
	if &roles[0] == &origRoles[0] {
		t.Fatal("roles still share the caller's backing array")
	}
	packtest.OneArray(t, "roles and scopes", roles, scopes)
	if cap(roles) != len(roles) {
		t.Fatalf("roles cap %d; want %d (an append would overwrite scopes)", cap(roles), len(roles))
	}
	roles = append(roles, "x")
	if scopes[0] != "read" {
		t.Fatalf("append to roles changed scopes to %q", scopes[0])
	}

	// One block, in order, and none points at its original bytes.
	packtest.OneBlock(t, "packed", []string{a, b, d, roles[0], roles[1], scopes[0]}, orig...)
	if unsafe.StringData(a) == unsafe.StringData(orig[0]) {
		t.Fatal("a still points at the original string")
	}
	if c != "" {
		t.Fatalf("empty string became %q", c)
	}
}

func TestIntoNothing(t *testing.T) {
	var s string
	var l []string
	Into([]*string{&s}, &l) // no panic, nothing allocated
	Into(nil)
	if s != "" || l != nil {
		t.Fatalf("got %q %v", s, l)
	}
	if n := testing.AllocsPerRun(10, func() { Into([]*string{&s}, &l) }); n != 0 {
		t.Fatalf("packing nothing allocated %.0f times", n)
	}
}

// TestIntoAllocs: two allocations however many strings and lists.
func TestIntoAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		a, b := "subject", "token-id"
		r, s := []string{"a", "b", "c"}, []string{"x", "y"}
		Into([]*string{&a, &b}, &r, &s)
	})
	// The two literals' slices are the test's own (2); packing adds 2.
	if n > 4 {
		t.Fatalf("%.0f allocations; want at most 4 (2 of them packing)", n)
	}
}
