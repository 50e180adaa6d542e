package store

import (
	"bytes"

	"github.com/cespare/xxhash/v2"
)

// hotEntry is a recently written key's committed entry, kept so that the
// merge of a key rewritten often (the common case: a client editing its
// book, a peer replaying it) does not search pebble's memtable, where the
// key's many versions make a seek slow. pLen 0xff means the key is known
// to be absent.
type hotEntry struct {
	stamp   uint32
	deleted bool
	pLen    uint8
	phone   [MaxPhone]byte
}

// hotSlot holds one cached key. key is owned by the slot and its capacity
// reused, so that caching a key allocates nothing once the slot has held
// a key as long.
type hotSlot struct {
	hash uint64 // xxhash of key; compared before the key bytes
	key  []byte // nil: empty
	e    hotEntry
}

// Bounds of a shard's hot-key cache, in slots (powers of two). It starts
// small, so that a store that writes little holds little, and doubles
// while it is more than half full.
const (
	minHotSlots = 1 << 10
	maxHotSlots = 1 << 15
)

// hotCache is a direct-mapped cache from key to committed entry: a key
// lives in the slot its hash picks, and a newer key that picks the same
// slot replaces it. A lookup or an insert touches one slot (one cache
// miss), where a Go map of string keys cost several and allocated a
// string per insert. It is exact: a slot answers only for the key it
// holds, compared byte for byte. Guarded by the shard's mu.
type hotCache struct {
	slots []hotSlot
	used  int
}

func hotHash(k []byte) uint64 { return xxhash.Sum64(k) }

func (c *hotCache) slot(h uint64) *hotSlot { return &c.slots[h&uint64(len(c.slots)-1)] }

// get returns k's cached entry.
func (c *hotCache) get(h uint64, k []byte) (hotEntry, bool) {
	if len(c.slots) == 0 {
		return hotEntry{}, false
	}
	sl := c.slot(h)
	if sl.key == nil || sl.hash != h || !bytes.Equal(sl.key, k) {
		return hotEntry{}, false
	}
	return sl.e, true
}

// put caches e as k's committed entry.
func (c *hotCache) put(h uint64, k []byte, e hotEntry) {
	if len(c.slots) == 0 {
		c.slots = make([]hotSlot, minHotSlots)
	} else if c.used > len(c.slots)/2 && len(c.slots) < maxHotSlots {
		c.grow()
	}
	sl := c.slot(h)
	if sl.key == nil {
		c.used++
	}
	sl.hash, sl.key, sl.e = h, append(sl.key[:0], k...), e
}

// grow doubles the slots and moves every cached key to its new slot (two
// keys that now pick the same slot keep one).
func (c *hotCache) grow() {
	old := c.slots
	c.slots, c.used = make([]hotSlot, 2*len(old)), 0
	for i := range old {
		if sl := &old[i]; sl.key != nil {
			nsl := c.slot(sl.hash)
			if nsl.key == nil {
				c.used++
			}
			*nsl = *sl
		}
	}
}

// forget drops k from the cache.
func (c *hotCache) forget(h uint64, k []byte) {
	if len(c.slots) == 0 {
		return
	}
	if sl := c.slot(h); sl.key != nil && sl.hash == h && bytes.Equal(sl.key, k) {
		sl.key = nil
		c.used--
	}
}

// reset empties the cache (after a failed commit: what it held may no
// longer be what is committed).
func (c *hotCache) reset() { *c = hotCache{} }
