package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// sortKey is one op's place in a key sort: the 16 bytes of its key that
// follow the prefix every key of the sort shares, then the op itself.
type sortKey struct {
	hi, lo uint64
	op     int32
}

// sortByKey sets order to the ops idx of b in key order (pebble's
// bytewise order). Comparing whole keys was a sixth of a peer's apply:
// the keys of one shard share a long prefix (the entry tag, the user's
// length, often the user), so every comparison walked it. Here each key
// is abbreviated once to the 16 bytes after the shared prefix, zero
// padded, and only keys whose abbreviations are equal are compared whole.
// A smaller abbreviation means a smaller key: at the first byte where two
// abbreviations differ, either both keys have a byte there, or the
// shorter key ended before it and is a prefix of the longer one.
func sortByKey(order []int32, keys []sortKey, b *Batch, idx []int32) ([]int32, []sortKey) {
	buf := b.buf
	lcp := -1
	var first []byte
	for _, oi := range idx {
		k := b.ops[oi].key(buf)
		if lcp < 0 {
			first, lcp = k, len(k)
			continue
		}
		lcp = commonPrefix(first[:lcp], k)
	}
	keys = keys[:0]
	for _, oi := range idx {
		k := b.ops[oi].key(buf)[lcp:]
		var w [16]byte
		copy(w[:], k)
		keys = append(keys, sortKey{hi: binary.BigEndian.Uint64(w[:8]), lo: binary.BigEndian.Uint64(w[8:]), op: oi})
	}
	slices.SortFunc(keys, func(x, y sortKey) int {
		switch {
		case x.hi != y.hi:
			return cmp.Compare(x.hi, y.hi)
		case x.lo != y.lo:
			return cmp.Compare(x.lo, y.lo)
		}
		return bytes.Compare(b.ops[x.op].key(buf), b.ops[y.op].key(buf))
	})
	order = order[:0]
	for _, k := range keys {
		order = append(order, k.op)
	}
	return order, keys
}

// commonPrefix is the length of the prefix a and b share.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
