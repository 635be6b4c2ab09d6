package expiry

import "testing"

// TestSweep: a sweep looks at no more than n entries, deletes only expired
// ones, and sweeps repeated as entries come in empty the map of them.
func TestSweep(t *testing.T) {
	m := map[int]bool{} // value: expired
	for i := range 100 {
		m[i] = true
	}
	Sweep(m, 4, func(dead bool) bool { return dead })
	if len(m) != 96 {
		t.Fatalf("%d entries after one sweep of 4 over 100 expired; want 96", len(m))
	}
	for i := range 1000 {
		m[1000+i] = false
		Sweep(m, 4, func(dead bool) bool { return dead })
	}
	live := 0
	for _, dead := range m {
		if !dead {
			live++
		}
	}
	if live != 1000 || len(m) > 1020 {
		t.Fatalf("%d live of 1000 kept, %d entries in all; want every live one and the expired nearly all gone", live, len(m))
	}
}
