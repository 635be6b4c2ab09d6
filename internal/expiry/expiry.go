// Package expiry drops expired entries from in-memory caches a few at a
// time, as new entries come in.
package expiry

// PerInsert is how many entries a cache's insertion looks at: about a
// quarter of a map is then expired at equilibrium, for a few map reads per
// insertion.
const PerInsert = 4

// Sweep looks at up to n entries of m and deletes those expired says are
// expired. A map's iteration starts at a random place, so successive sweeps
// visit the whole map: called on every insertion with n = k, about 1/k of
// the entries are expired at equilibrium, and the map holds about what is
// live instead of filling with entries that every garbage collection marks.
func Sweep[K comparable, V any](m map[K]V, n int, expired func(V) bool) {
	seen := 0
	for k, v := range m {
		if seen == n {
			return
		}
		seen++
		if expired(v) {
			delete(m, k)
		}
	}
}
