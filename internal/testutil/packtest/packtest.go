// Package packtest checks that a cached value was packed (package pack):
// its strings in one block, its lists in one array.
package packtest

import (
	"testing"
	"unsafe"
)

// OneBlock fails t unless the non-empty strs lie one right after another,
// in the order given, in one block, and none of the originals' bytes lie
// in that block (the packed value keeps nothing it pointed at before).
func OneBlock(t testing.TB, what string, strs []string, originals ...string) {
	t.Helper()
	var base, end uintptr
	for _, s := range strs {
		if s == "" {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if base == 0 {
			base, end = p, p
		}
		if p != end {
			t.Fatalf("%s: %q is not packed (offset %d, want %d)", what, s, int(p)-int(base), end-base)
		}
		end += uintptr(len(s))
	}
	for _, o := range originals {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(o))); o != "" && p >= base && p < end {
			t.Fatalf("%s: still shares %q's memory", what, o)
		}
	}
}

// OneArray fails t unless b's elements follow a's in one backing array.
func OneArray(t testing.TB, what string, a, b []string) {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("%s: want two non-empty lists", what)
	}
	if unsafe.Pointer(&b[0]) != unsafe.Add(unsafe.Pointer(&a[0]), len(a)*int(unsafe.Sizeof(""))) {
		t.Fatalf("%s: the lists are not one array", what)
	}
}
