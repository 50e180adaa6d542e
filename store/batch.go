package store

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Batch groups changes from one caller (a connection) into one pebble
// commit. The in-memory index is updated at once, so reads see a change as
// soon as its method returns; Commit makes it durable. A Batch is not safe
// for concurrent use.
type Batch struct {
	s   *Store
	pb  *pebble.Batch
	key []byte
	val []byte
	n   int

	// now is the wall clock read at the first local change after a commit
	// and every nowEvery changes after it (nowN counts them): stamps count
	// seconds, and a connection commits whenever its input runs dry, so
	// reading the clock per change buys nothing.
	now  uint32
	nowN int
}

const nowEvery = 256

// NewBatch returns an empty Batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s, pb: s.db.NewBatch()} }

// Len is the number of changes since the last Commit.
func (b *Batch) Len() int { return b.n }

func (b *Batch) stage(user, contact []byte, e Entry) {
	b.key = appendKey(b.key[:0], user, contact)
	b.val = appendValue(b.val[:0], e)
	_ = b.pb.Merge(b.key, b.val, nil) // only fails on a closed batch
	b.n++
}

// ErrBookFull refuses a local Update that would take a book past
// MaxContactsPerBook.
var ErrBookFull = errors.New("store: contact book is full")

// Update applies a local client Update: it stamps the change with
// max(now, C, stored+1), stores it, raises C, and returns the stamped
// Change (its slices alias the arguments). A new contact in a full book is
// refused with ErrBookFull and nothing changes.
func (b *Batch) Update(user, contact, phone []byte) (Change, error) {
	return b.local(user, contact, Entry{Phone: phone})
}

// Delete applies a local client Delete the same way. Deleting an absent
// contact still writes a tombstone: it may exist on a peer already.
func (b *Batch) Delete(user, contact []byte) Change {
	ch, _ := b.local(user, contact, Entry{Deleted: true}) // deletes never fill a book
	return ch
}

func (b *Batch) local(user, contact []byte, e Entry) (Change, error) {
	s := b.s
	if b.nowN == 0 || b.nowN >= nowEvery {
		b.now, b.nowN = s.Now(), 0
	}
	b.nowN++
	now := b.now
	sh := &s.shards[shardOf(user)]
	sh.mu.Lock()
	bk := sh.books[string(user)]
	var cur entry
	var has bool
	if bk != nil {
		cur, has = bk.entries[string(contact)]
	}
	if max := s.cfg.MaxContactsPerBook; max > 0 && !e.Deleted && bk != nil && bk.live >= max && (!has || cur.deleted) {
		sh.mu.Unlock()
		return Change{}, ErrBookFull
	}
	e.Stamp = localStamp(now, s.clock.Get(), cur.stamp, has)
	s.clock.Observe(e.Stamp)
	if !has || winsOver(e, cur) { // false only when stored is at the u32 ceiling
		sh.put(user, contact, bk, cur, has, e)
	}
	sh.mu.Unlock()
	b.stage(user, contact, e)
	return Change{User: user, Contact: contact, Entry: e}, nil
}

// Apply merges a change received from a peer. It reports whether the change
// replaced the stored entry. A tombstone already past the grace period for
// a key the store does not hold is ignored: it would only be swept again.
func (b *Batch) Apply(c Change) bool {
	s := b.s
	s.clock.Observe(c.Stamp)
	sh := &s.shards[shardOf(c.User)]
	sh.mu.Lock()
	bk := sh.books[string(c.User)]
	var cur entry
	var has bool
	if bk != nil {
		cur, has = bk.entries[string(c.Contact)]
	}
	if has && !winsOver(c.Entry, cur) || !has && c.Deleted && s.expired(c.Stamp) {
		sh.mu.Unlock()
		return false
	}
	if c.Deleted {
		c.Phone = nil
	}
	sh.put(c.User, c.Contact, bk, cur, has, c.Entry)
	sh.mu.Unlock()
	b.stage(c.User, c.Contact, c.Entry)
	return true
}

// Commit writes the staged changes to pebble and returns the commit's
// sequence number for Sync. In FsyncAlways mode it returns once they are on
// stable storage. An empty batch commits nothing and returns the latest
// sequence, so Sync after it still covers earlier commits by this caller.
func (b *Batch) Commit() (uint64, error) {
	s := b.s
	if b.n == 0 {
		return s.commitSeq.Load(), nil
	}
	opts := pebble.NoSync
	if s.cfg.Fsync == FsyncAlways {
		opts = pebble.Sync
	}
	err := b.pb.Commit(opts)
	b.pb.Reset()
	b.n, b.nowN = 0, 0
	if err != nil {
		return 0, err
	}
	seq := s.commitSeq.Add(1)
	if s.cfg.Fsync == FsyncAlways {
		casMax(&s.syncedSeq, seq)
	}
	return seq, nil
}

// Close releases the batch; staged, uncommitted changes are dropped from
// disk (they stay in memory: call Commit first).
func (b *Batch) Close() { _ = b.pb.Close() }
