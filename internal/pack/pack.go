// Package pack copies the strings and string lists of a value about to be
// cached into one allocation each.
//
// The garbage collector visits every object of the live heap on each
// cycle. A cache entry decoded from JSON holds one heap object per string
// (subject, token id, each role) and one per list; with 10,000 cached
// tokens, keys or sessions that is a few hundred thousand objects, and the
// mark phases they cost set the gateway's tail latency. Packed, an entry
// holds one string block (which the collector does not scan) and one list
// block, however many strings it has.
package pack

import "strings"

// Into re-points every string in strs, and every element of every list in
// lists, at one fresh string block holding their bytes; the lists
// themselves are copied into one backing array (each capped to its own
// length, so an append never writes over the next). Empty lists are left
// as they are. The values read the same afterwards; nothing is retained
// from what they pointed at before.
func Into(strs []*string, lists ...*[]string) {
	elems := 0
	for _, l := range lists {
		elems += len(*l)
	}
	var backing []string
	if elems > 0 {
		backing = make([]string, elems)
		at := 0
		for _, l := range lists {
			n := len(*l)
			if n == 0 {
				continue
			}
			copy(backing[at:], *l)
			*l = backing[at : at+n : at+n]
			at += n
		}
	}
	packStrings(strs, backing)
}

func packStrings(strs []*string, elems []string) {
	n := 0
	for _, p := range strs {
		n += len(*p)
	}
	for _, s := range elems {
		n += len(s)
	}
	if n == 0 {
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range strs {
		b.WriteString(*p)
	}
	for _, s := range elems {
		b.WriteString(s)
	}
	block, at := b.String(), 0
	cut := func(s string) string {
		if s == "" {
			return ""
		}
		out := block[at : at+len(s)]
		at += len(s)
		return out
	}
	for _, p := range strs {
		*p = cut(*p)
	}
	for i, s := range elems {
		elems[i] = cut(s)
	}
}
