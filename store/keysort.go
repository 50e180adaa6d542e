package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// sortKey is one op's place in a key sort: an abbreviation of its key
// that orders as the key does wherever two abbreviations differ, then the
// op itself.
type sortKey struct {
	hi, lo uint64
	op     int32
}

// userGroup is one distinct user among the ops of a sort.
type userGroup struct {
	n       int // its ops
	user    []byte
	contact []byte // the first of its contacts; contact[:lcp] is shared by all
	lcp     int
	rank    uint64 // the user's place among the sort's users, in key order
}

// keySorter orders the ops of one shard's apply round by key (pebble's
// bytewise order). Comparing whole keys was a sixth of a peer's apply:
// keys share long prefixes (the entry tag, the user's length, the user,
// often the start of the contact: "contact-3-00…"), so every comparison
// walked them. Each key is abbreviated once, to the rank of its user among
// the round's users (top 16 bits) and the 14 bytes of its contact that
// follow the prefix all of that user's contacts share, zero padded; only
// ops whose abbreviations are equal are compared whole. A smaller
// abbreviation means a smaller key: users order first (the key is tag,
// user length, user, contact), and at the first contact byte where two
// abbreviations differ, either both contacts have a byte there, or the
// shorter ended before it and is a prefix of the longer one.
//
// Its scratch is reused from round to round; a keySorter is guarded by its
// shard's lock.
type keySorter struct {
	order  []int32
	keys   []sortKey
	groups []userGroup
	byName map[string]int32 // group of a user, once there are many
	opGrp  []int32
	ranked []int32
	runs   []int32   // where each ascending run of keys starts
	twin   []sortKey // the other buffer of a merge
	// maxGroups, if set, replaces the package's (tests reach the fallback
	// with it).
	maxGroups int
}

// maxScanGroups is how many users are searched one by one before a map
// takes over: a round's ops come in runs of one user (a client's read
// buffer is one book), so the search is rare and its list short.
const maxScanGroups = 16

// maxGroups keeps a user's rank in 16 bits; a round with more users falls
// back to whole-key comparisons where abbreviations tie.
const maxGroups = 1 << 16

// sort returns the ops idx of b in key order. The slice is valid until the
// next sort.
func (ks *keySorter) sort(b *Batch, idx []int32) []int32 {
	buf := b.buf
	ks.groups, ks.opGrp = ks.groups[:0], ks.opGrp[:0]
	clear(ks.byName)
	var prev []byte
	g := int32(-1)
	for _, oi := range idx {
		o := &b.ops[oi]
		u, c := o.user(buf), o.contact(buf)
		if g < 0 || !bytes.Equal(u, prev) {
			g, prev = ks.group(u), u
		}
		if grp := &ks.groups[g]; grp.n == 0 {
			grp.n, grp.user, grp.contact, grp.lcp = 1, u, c, len(c)
		} else {
			grp.n++
			grp.lcp = commonPrefix(grp.contact[:grp.lcp], c)
		}
		ks.opGrp = append(ks.opGrp, g)
	}
	limit := maxGroups
	if ks.maxGroups > 0 {
		limit = ks.maxGroups
	}
	ranked := len(ks.groups) <= limit
	if ranked {
		ks.ranked = ks.ranked[:0]
		for i := range ks.groups {
			ks.ranked = append(ks.ranked, int32(i))
		}
		slices.SortFunc(ks.ranked, func(x, y int32) int {
			ux, uy := ks.groups[x].user, ks.groups[y].user
			if len(ux) != len(uy) { // the length byte comes first in the key
				return cmp.Compare(len(ux), len(uy))
			}
			return bytes.Compare(ux, uy)
		})
		for r, gi := range ks.ranked {
			ks.groups[gi].rank = uint64(r)
		}
	}
	ks.keys = ks.keys[:0]
	for i, oi := range idx {
		grp := &ks.groups[ks.opGrp[i]]
		c := b.ops[oi].contact(buf)[grp.lcp:]
		var w [16]byte
		if ranked {
			binary.BigEndian.PutUint16(w[:2], uint16(grp.rank))
			copy(w[2:], c)
		} else {
			copy(w[:], b.ops[oi].key(buf)) // the tag and length bytes tie; often the user too
		}
		ks.keys = append(ks.keys, sortKey{hi: binary.BigEndian.Uint64(w[:8]), lo: binary.BigEndian.Uint64(w[8:]), op: oi})
	}
	sorted := ks.sortKeys(func(x, y sortKey) int {
		switch {
		case x.hi != y.hi:
			return cmp.Compare(x.hi, y.hi)
		case x.lo != y.lo:
			return cmp.Compare(x.lo, y.lo)
		}
		return bytes.Compare(b.ops[x.op].key(buf), b.ops[y.op].key(buf))
	})
	ks.order = ks.order[:0]
	for _, k := range sorted {
		ks.order = append(ks.order, k.op)
	}
	return ks.order
}

// maxMergeRuns is how many ascending runs the keys may come in for sortKeys
// to merge them rather than sort them. A peer's round is the change-log
// records it was sent, each in key order (shard.appendRecord): a few runs.
// A client's pipeline in key order is one. Keys in no order at all are
// found out within the first few dozen.
const maxMergeRuns = 16

// sortKeys orders ks.keys by cmp and returns them (in ks.keys or in its
// twin buffer). Keys that come in at most maxMergeRuns ascending runs are
// merged, pairwise, in log2(runs) passes of one comparison per key; others
// are sorted (pdqsort: about log2(n) comparisons per key).
func (ks *keySorter) sortKeys(cmp func(x, y sortKey) int) []sortKey {
	keys := ks.keys
	ks.runs = append(ks.runs[:0], 0)
	for i := 1; i < len(keys) && len(ks.runs) <= maxMergeRuns; i++ {
		if cmp(keys[i-1], keys[i]) > 0 {
			ks.runs = append(ks.runs, int32(i))
		}
	}
	if len(ks.runs) > maxMergeRuns {
		slices.SortFunc(keys, cmp)
		return keys
	}
	src, dst := keys, append(ks.twin[:0], keys...)
	ks.twin = dst
	for len(ks.runs) > 1 {
		next := ks.runs[:0]
		for j := 0; j < len(ks.runs); j += 2 {
			lo := ks.runs[j]
			mid, hi := int32(len(src)), int32(len(src))
			if j+1 < len(ks.runs) {
				mid = ks.runs[j+1]
			}
			if j+2 < len(ks.runs) {
				hi = ks.runs[j+2]
			}
			mergeRuns(dst[lo:hi], src[lo:mid], src[mid:hi], cmp)
			next = append(next, lo)
		}
		ks.runs = next
		src, dst = dst, src
	}
	return src
}

// mergeRuns merges the ascending runs a and b into dst (len(a)+len(b)).
func mergeRuns(dst, a, b []sortKey, cmp func(x, y sortKey) int) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}

// group returns the index of u's group, adding it if new (empty: sort fills
// it in before the next call).
func (ks *keySorter) group(u []byte) int32 {
	if len(ks.groups) <= maxScanGroups {
		for i := range ks.groups {
			if bytes.Equal(ks.groups[i].user, u) {
				return int32(i)
			}
		}
		if len(ks.groups) == maxScanGroups { // the list is full: index it
			if ks.byName == nil {
				ks.byName = make(map[string]int32)
			}
			for i := range ks.groups {
				ks.byName[string(ks.groups[i].user)] = int32(i)
			}
		}
	}
	if len(ks.groups) > maxScanGroups {
		if g, ok := ks.byName[string(u)]; ok {
			return g
		}
	}
	g := int32(len(ks.groups))
	ks.groups = append(ks.groups, userGroup{})
	if len(ks.groups) > maxScanGroups {
		ks.byName[string(u)] = g
	}
	return g
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
