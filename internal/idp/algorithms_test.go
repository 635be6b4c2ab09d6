package idp

import (
	"slices"
	"testing"
)

// TestAlgorithms: Asymmetric is true for exactly the names in Algorithms.
func TestAlgorithms(t *testing.T) {
	for _, a := range Algorithms {
		if !Asymmetric(a) {
			t.Errorf("Asymmetric(%q) = false; it is in Algorithms", a)
		}
	}
	for _, a := range []string{"", "none", "HS256", "HS384", "HS512", "rs256", "RS1024", "ES256K", "Ed25519", "EdDSA ", "PS256\x00"} {
		if Asymmetric(a) {
			t.Errorf("Asymmetric(%q) = true; want false", a)
		}
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(Algorithms)))); n != len(Algorithms) {
		t.Errorf("Algorithms = %v holds a name twice", Algorithms)
	}
}
