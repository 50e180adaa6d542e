package store

import (
	"hash/maphash"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// numShards splits the index so that writers to different users rarely
// contend; a power of two keeps shard selection a mask.
const numShards = 256

// entry is Entry as kept in memory: strings, so books share no buffers with
// callers and ListAll can hand them out after the lock is released.
type entry struct {
	phone   string
	stamp   uint32
	deleted bool
}

func (e entry) export() Entry {
	return Entry{Stamp: e.stamp, Deleted: e.deleted, Phone: bytesOf(e.phone)}
}

// winsOver is Wins against a stored entry, without converting its phone.
func winsOver(in Entry, cur entry) bool {
	if in.Stamp != cur.stamp {
		return in.Stamp > cur.stamp
	}
	if in.Deleted != cur.deleted {
		return in.Deleted
	}
	return !in.Deleted && strings.Compare(string(in.Phone), cur.phone) > 0
}

type book struct {
	entries map[string]entry
	live    int
}

type shard struct {
	mu         sync.RWMutex
	books      map[string]*book
	digest     uint64 // sum of entryHash over the shard's entries
	live       int
	tombstones int
	scratch    []byte // hashing buffer, guarded by mu
}

var shardSeed = maphash.MakeSeed()

func shardOf(user []byte) int { return int(maphash.Bytes(shardSeed, user) & (numShards - 1)) }

// entryHash is the contribution of one entry to the state digest. It must be
// the same on every server, so it uses a fixed hash, not maphash.
func (sh *shard) entryHash(user, contact []byte, e Entry) uint64 {
	sh.scratch = appendValue(appendDigestKey(sh.scratch[:0], user, contact), e)
	return xxhash.Sum64(sh.scratch)
}

// put stores e for (user, contact), replacing cur when has; the caller holds
// sh.mu and has already decided that e wins.
func (sh *shard) put(user, contact []byte, bk *book, cur entry, has bool, e Entry) {
	if bk == nil {
		bk = &book{entries: make(map[string]entry)}
		sh.books[string(user)] = bk
	}
	if has {
		sh.digest -= sh.entryHash(user, contact, cur.export())
		if cur.deleted {
			sh.tombstones--
		} else {
			sh.live--
			bk.live--
		}
	}
	sh.digest += sh.entryHash(user, contact, e)
	ne := entry{stamp: e.Stamp, deleted: e.Deleted}
	if e.Deleted {
		sh.tombstones++
	} else {
		if has && !cur.deleted && cur.phone == string(e.Phone) {
			ne.phone = cur.phone // the same number again: no allocation
		} else {
			ne.phone = string(e.Phone)
		}
		sh.live++
		bk.live++
	}
	bk.entries[string(contact)] = ne
}

// remove drops (user, contact); the caller holds sh.mu.
func (sh *shard) remove(user string, bk *book, contact string, cur entry) {
	sh.digest -= sh.entryHash(bytesOf(user), bytesOf(contact), cur.export())
	if cur.deleted {
		sh.tombstones--
	} else {
		sh.live--
		bk.live--
	}
	delete(bk.entries, contact)
	if len(bk.entries) == 0 {
		delete(sh.books, user)
	}
}
