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
	user    []byte
	contact []byte // the first of its contacts; contact[:lcp] is shared by all
	lcp     int
	rank    uint16 // the user's place among the sort's users, in key order
}

// keySorter orders the ops of one shard's apply round by key (pebble's
// bytewise order). Comparing whole keys was a sixth of a peer's apply:
// keys share long prefixes (the entry tag, the user's length, the user,
// often the start of the contact: "contact-3-00…"), so every comparison
// walked them. Each key is abbreviated once to 16 bytes that order as the
// keys do wherever two abbreviations differ, and only ops whose
// abbreviations are equal are compared whole:
//
//   - A round of at most maxRankedUsers users (the usual case: a client's
//     read buffer is one book, and a peer's round a few records of one book
//     each) abbreviates a key to its user's rank among them (2 bytes) and
//     the 14 bytes of its contact past the prefix all of that user's
//     contacts share. Users order first (the key is tag, user length, user,
//     contact).
//   - A round of more users (a transfer, many small books) abbreviates a
//     key to the 16 bytes past the prefix every key of the round shares.
//
// Either way, at the first byte where two zero-padded abbreviations differ,
// either both keys have a byte there, or the shorter ended before it and
// is a prefix of the longer one.
//
// Its scratch is reused from round to round; a keySorter is guarded by its
// shard's lock.
type keySorter struct {
	order  []int32
	keys   []sortKey
	groups []userGroup
	opGrp  []int32
	ranked []int32
	runs   []int32   // where each ascending run of keys starts
	twin   []sortKey // the other buffer of a merge
	// maxRanked, if set, replaces maxRankedUsers (tests reach the other
	// abbreviation with it).
	maxRanked int
}

// maxRankedUsers is how many users a round may hold for its keys to be
// abbreviated by user rank. Users are found by a search of this list, kept
// short: ops come in runs of one user, so the search is rare.
const maxRankedUsers = 16

// sort returns the ops idx of b in key order. The slice is valid until the
// next sort.
func (ks *keySorter) sort(b *Batch, idx []int32) []int32 {
	if ks.group(b, idx) {
		ks.abbreviateByUser(b, idx)
	} else {
		ks.abbreviateByPrefix(b, idx)
	}
	buf := b.buf
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

// group finds the round's users, each with the prefix its contacts share,
// and ranks them in key order. It reports false if there are more than
// maxRankedUsers.
func (ks *keySorter) group(b *Batch, idx []int32) bool {
	limit := maxRankedUsers
	if ks.maxRanked > 0 {
		limit = ks.maxRanked
	}
	buf := b.buf
	ks.groups, ks.opGrp = ks.groups[:0], ks.opGrp[:0]
	var prev []byte
	g := -1
	for _, oi := range idx {
		o := &b.ops[oi]
		u, c := o.user(buf), o.contact(buf)
		if g < 0 || !bytes.Equal(u, prev) {
			g, prev = -1, u
			for i := range ks.groups {
				if bytes.Equal(ks.groups[i].user, u) {
					g = i
					break
				}
			}
			if g < 0 {
				if len(ks.groups) == limit {
					return false
				}
				g = len(ks.groups)
				ks.groups = append(ks.groups, userGroup{user: u, contact: c, lcp: len(c)})
			}
		}
		grp := &ks.groups[g]
		grp.lcp = commonPrefix(grp.contact[:grp.lcp], c)
		ks.opGrp = append(ks.opGrp, int32(g))
	}
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
		ks.groups[gi].rank = uint16(r)
	}
	return true
}

func (ks *keySorter) abbreviateByUser(b *Batch, idx []int32) {
	ks.keys = ks.keys[:0]
	for i, oi := range idx {
		grp := &ks.groups[ks.opGrp[i]]
		var w [16]byte
		binary.BigEndian.PutUint16(w[:2], grp.rank)
		copy(w[2:], b.ops[oi].contact(b.buf)[grp.lcp:])
		ks.keys = append(ks.keys, sortKey{hi: binary.BigEndian.Uint64(w[:8]), lo: binary.BigEndian.Uint64(w[8:]), op: oi})
	}
}

func (ks *keySorter) abbreviateByPrefix(b *Batch, idx []int32) {
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
	ks.keys = ks.keys[:0]
	for _, oi := range idx {
		var w [16]byte
		copy(w[:], b.ops[oi].key(buf)[lcp:])
		ks.keys = append(ks.keys, sortKey{hi: binary.BigEndian.Uint64(w[:8]), lo: binary.BigEndian.Uint64(w[8:]), op: oi})
	}
}

// maxMergeRuns is how many ascending runs the keys may come in for sortKeys
// to merge them rather than sort them. A peer's round is the change-log
// records it was sent, each in key order (shard.appendRecord): a few runs.
// A client's pipeline in key order is one. Keys in no order at all are
// found out within the first few dozen.
const maxMergeRuns = 16

// sortKeys orders ks.keys by compare and returns them (in ks.keys or in its
// twin buffer). Keys that come in at most maxMergeRuns ascending runs are
// merged, pairwise, in log2(runs) passes of one comparison per key; others
// are sorted (pdqsort: about log2(n) comparisons per key).
func (ks *keySorter) sortKeys(compare func(x, y sortKey) int) []sortKey {
	keys := ks.keys
	ks.runs = append(ks.runs[:0], 0)
	for i := 1; i < len(keys) && len(ks.runs) <= maxMergeRuns; i++ {
		if compare(keys[i-1], keys[i]) > 0 {
			ks.runs = append(ks.runs, int32(i))
		}
	}
	switch {
	case len(ks.runs) == 1: // in order already
		return keys
	case len(ks.runs) > maxMergeRuns:
		slices.SortFunc(keys, compare)
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
			mergeRuns(dst[lo:hi], src[lo:mid], src[mid:hi], compare)
			next = append(next, lo)
		}
		ks.runs = next
		src, dst = dst, src
	}
	return src
}

// mergeRuns merges the ascending runs a and b into dst (len(a)+len(b)).
func mergeRuns(dst, a, b []sortKey, compare func(x, y sortKey) int) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if compare(b[j], a[i]) < 0 {
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
