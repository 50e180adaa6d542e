package store

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// NumShards splits the store by user. Each shard has its own lock, digest,
// counters and change log, so writers to different shards commit in
// parallel, and everything a shard commit writes (entries, tombstone
// index, book counts, log record, shard state) goes in one pebble batch.
// It is part of the on-disk layout: never change it.
const NumShards = 8

// Pos is a position in the change log: per shard, the last sequence
// delivered (or written).
type Pos [NumShards]uint64

// shardOf maps a user to its shard. It must be stable across restarts, so
// it uses a fixed hash.
func shardOf(user []byte) int { return int(xxhash.Sum64(user) & (NumShards - 1)) }

// curEntry is a key's state during one apply round; its phone lives in
// the shard's arena.
type curEntry struct {
	has     bool
	deleted bool
	stamp   uint32
	pOff    uint32
	pLen    uint8
}

// bookCount caches a book's live-contact count (committed, plus changes of
// the round in progress: dropped if that round fails to commit).
type bookCount struct {
	n     uint32
	round uint64 // last round that changed it
}

type shard struct {
	s  *Store
	id int

	mu     sync.Mutex // one apply, sweep or drop round at a time
	st     shardState // committed state; guarded by mu
	counts map[string]*bookCount
	round  uint64
	// hot mirrors recently committed entries (hot.go), guarded by mu;
	// emptied if a commit fails.
	hot hotCache
	pb  *pebble.Batch
	// scratch, guarded by mu
	keys  keySorter
	slot  []int32
	cur   []curEntry
	canon []int32  // per slot: the op whose key it is
	wrote []bool   // per slot: the round changed the entry
	local []bool   // per slot: its final entry is a local change of the round
	khash []uint64 // per slot: the key's hotHash
	arena []byte
	rec   []byte
	buf   []byte
	dirty []string

	tail tail // recent change-log records, for peers near the head

	// inflight is the wall stamp (or just below) of the apply round in
	// progress, 0 when none: HeadAt must not claim that changes stamped
	// from it on are in the head it reads.
	inflight atomic.Uint32
}

// maxCachedBooks bounds the book-count cache of one shard.
const maxCachedBooks = 1 << 16

func (sh *shard) arenaPhone(c *curEntry) []byte { return sh.arena[c.pOff : c.pOff+uint32(c.pLen)] }

func (sh *shard) entryOf(c *curEntry) Entry {
	e := Entry{Stamp: c.stamp, Deleted: c.deleted}
	if !c.deleted {
		e.Phone = sh.arenaPhone(c)
	}
	return e
}

func (sh *shard) setCur(c *curEntry, e Entry) {
	*c = curEntry{has: true, deleted: e.Deleted, stamp: e.Stamp, pOff: uint32(len(sh.arena)), pLen: uint8(len(e.Phone))}
	sh.arena = append(sh.arena, e.Phone...)
}

// entryHash is one entry's contribution to the state digest. Every server
// must compute the same value, so it is a fixed hash of user 0x00 contact
// (the layout-1 key, so that servers on either side of a layout change
// agree) followed by the value encoding.
func (sh *shard) entryHash(key []byte, e Entry) uint64 {
	sh.buf = appendDigestInput(sh.buf[:0], key, e)
	return xxhash.Sum64(sh.buf)
}

// appendDigestInput appends what entryHash hashes for an entry key.
func appendDigestInput(dst, key []byte, e Entry) []byte {
	n := int(key[1])
	dst = append(dst, key[2:2+n]...)
	dst = append(dst, 0)
	dst = append(dst, key[2+n:]...)
	return appendValue(dst, e)
}

// count returns user's live-contact count, from the cache or pebble.
func (sh *shard) count(user []byte) (*bookCount, error) {
	if bc := sh.counts[string(user)]; bc != nil {
		return bc, nil
	}
	if len(sh.counts) >= maxCachedBooks {
		clear(sh.counts)
	}
	sh.buf = appendCountKey(sh.buf[:0], user)
	n, _, err := getU32(sh.s.db, sh.buf)
	if err != nil {
		return nil, err
	}
	bc := &bookCount{n: n}
	sh.counts[string(user)] = bc
	return bc, nil
}

func (sh *shard) addCount(st *shardState, user []byte, delta int) error {
	bc, err := sh.count(user)
	if err != nil {
		return err
	}
	if bc.round != sh.round {
		bc.round = sh.round
		sh.dirty = append(sh.dirty, string(user))
	}
	switch {
	case delta > 0 && bc.n == 0:
		st.books++
	case delta < 0 && bc.n == 1:
		st.books--
	}
	bc.n = uint32(int(bc.n) + delta)
	return nil
}

// read loads the stored entry of every distinct key among the ops idx, in
// key order through one iterator (seeks that only move forward are cheap),
// and points slot[op] at it.
func (sh *shard) read(b *Batch, idx []int32) error {
	buf := b.buf
	order := sh.keys.sort(b, idx)
	if cap(sh.slot) < len(b.ops) {
		sh.slot = make([]int32, len(b.ops))
	}
	sh.slot = sh.slot[:len(b.ops)]
	sh.cur, sh.arena, sh.canon = sh.cur[:0], sh.arena[:0], sh.canon[:0]
	sh.wrote, sh.local, sh.khash = sh.wrote[:0], sh.local[:0], sh.khash[:0]
	var it *pebble.Iterator
	var err error
	var prev []byte
	for i, oi := range order {
		k := b.ops[oi].key(buf)
		if i > 0 && bytes.Equal(k, prev) {
			sh.slot[oi] = int32(len(sh.cur) - 1)
			continue
		}
		prev = k
		sh.cur = append(sh.cur, curEntry{})
		sh.canon = append(sh.canon, oi)
		sh.wrote = append(sh.wrote, false)
		sh.local = append(sh.local, false)
		h := hotHash(k)
		sh.khash = append(sh.khash, h)
		sh.slot[oi] = int32(len(sh.cur) - 1)
		if he, ok := sh.hot.get(h, k); ok {
			if he.pLen != 0xff {
				e := Entry{Stamp: he.stamp, Deleted: he.deleted}
				if !e.Deleted {
					e.Phone = he.phone[:he.pLen]
				}
				sh.setCur(&sh.cur[len(sh.cur)-1], e)
			}
			continue
		}
		if it == nil {
			if it, err = sh.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagEntry}, UpperBound: []byte{tagEntry + 1}}); err != nil {
				return err
			}
		}
		if it.SeekGE(k) && bytes.Equal(it.Key(), k) {
			v, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return err
			}
			e, err := decodeValue(v)
			if err != nil {
				_ = it.Close()
				return err
			}
			sh.setCur(&sh.cur[len(sh.cur)-1], e)
		}
	}
	if it == nil {
		return nil
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return err
	}
	return it.Close()
}

// rememberRound caches the final state of every key the committed round
// touched.
func (sh *shard) rememberRound(b *Batch) {
	for slot, oi := range sh.canon {
		c := &sh.cur[slot]
		h := hotEntry{pLen: 0xff}
		if c.has {
			h = hotEntry{stamp: c.stamp, deleted: c.deleted, pLen: c.pLen}
			copy(h.phone[:], sh.arenaPhone(c))
		}
		sh.hot.put(sh.khash[slot], b.ops[oi].key(b.buf), h)
	}
}

// apply merges the ops idx of b (all of this shard) and commits them with
// the shard's state in one pebble batch.
func (sh *shard) apply(b *Batch, idx []int32, res *CommitResult) error {
	s := sh.s
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if err := sh.read(b, idx); err != nil {
		return s.fail(err)
	}
	sh.round++
	sh.dirty = sh.dirty[:0]
	st := sh.st
	recordSeen := b.RecordSeen || s.stale.refilling.Load()
	pb := sh.pb
	sh.inflight.Store(max(1, s.clock.Wall())) // before the round's wall is read: never above it
	defer sh.inflight.Store(0)
	wall := s.clock.Wall()
	first := st.head + 1
	kept := len(b.kept)
	var key []byte
	var full bool
	buf := b.buf
	for _, oi := range idx {
		o := &b.ops[oi]
		c := &sh.cur[sh.slot[oi]]
		k := o.key(buf)
		user := o.user(buf)
		var ne Entry
		remove, local := false, false
		switch o.kind {
		case opUpdate, opDelete:
			if o.kind == opUpdate && s.cfg.MaxContactsPerBook > 0 && (!c.has || c.deleted) {
				bc, err := sh.count(user)
				if err != nil {
					return s.fail(err)
				}
				if int(bc.n) >= s.cfg.MaxContactsPerBook {
					full = true
				}
			}
			if full {
				break
			}
			ne = Entry{Stamp: s.clock.localStampAt(wall, c.stamp, c.has), Deleted: o.kind == opDelete}
			if !ne.Deleted {
				ne.Phone = o.phoneBytes(buf)
			}
			if c.has && !Wins(ne, sh.entryOf(c)) {
				continue // the stored stamp is at the u32 ceiling: nothing can win
			}
			local = true
		case opRemote:
			if ahead := s.clock.observeAt(wall, o.stamp); ahead > res.Ahead {
				res.Ahead = ahead
			}
			ne = Entry{Stamp: o.stamp, Deleted: o.deleted}
			if !ne.Deleted {
				ne.Phone = o.phoneBytes(buf)
			}
			if recordSeen {
				key = appendSeenKey(key[:0], k)
				_ = pb.Set(key, nil, nil)
			}
			if c.has && !Wins(ne, sh.entryOf(c)) {
				res.Ignored++
				continue
			}
			if ne.Deleted && ne.Stamp < st.swept {
				// Already past the grace: it would only be swept again. It
				// still removes an older entry it wins over.
				if !c.has {
					res.Ignored++
					continue
				}
				remove = true
			}
			res.Applied++
		case opDrop:
			if !c.has || c.stamp != o.stamp || c.deleted != o.deleted {
				continue
			}
			remove = true
		}
		if full {
			break
		}
		if c.has {
			st.digest -= sh.entryHash(k, sh.entryOf(c))
			if c.deleted {
				st.tombs--
				key = appendTombKey(key[:0], sh.id, c.stamp, k)
				_ = pb.Delete(key, nil)
			} else {
				st.live--
				if err := sh.addCount(&st, user, -1); err != nil {
					return s.fail(err)
				}
			}
		}
		sh.wrote[sh.slot[oi]] = true
		sh.local[sh.slot[oi]] = local
		if remove {
			*c = curEntry{}
		} else {
			st.digest += sh.entryHash(k, ne)
			if ne.Deleted {
				st.tombs++
				key = appendTombKey(key[:0], sh.id, ne.Stamp, k)
				_ = pb.Set(key, nil, nil)
			} else {
				st.live++
				if err := sh.addCount(&st, user, +1); err != nil {
					return s.fail(err)
				}
			}
			sh.setCur(c, ne)
		}
		if local && b.KeepChanges {
			b.kept = append(b.kept, Change{User: bytes.Clone(user), Contact: bytes.Clone(o.contact(buf)),
				Entry: Entry{Stamp: ne.Stamp, Deleted: ne.Deleted, Phone: bytes.Clone(ne.Phone)}})
		}
	}
	sh.writeEntries(b)
	nrec := sh.appendRecord(b)
	if nrec > 0 {
		st.head += uint64(nrec)
		key = appendLogKey(key[:0], sh.id, first)
		_ = pb.Set(key, sh.rec, nil)
	}
	for _, u := range sh.dirty {
		bc := sh.counts[u]
		key = appendCountKey(key[:0], []byte(u))
		if bc.n == 0 {
			_ = pb.Delete(key, nil)
		} else {
			_ = pb.Set(key, u32(bc.n), nil)
		}
	}
	if pb.Empty() {
		if full {
			return ErrBookFull
		}
		return nil
	}
	if err := sh.commit(st); err != nil {
		b.kept = b.kept[:kept]
		clear(sh.counts)
		sh.hot.reset()
		return err
	}
	sh.rememberRound(b)
	res.Seq = max(res.Seq, s.commitSeq.Load())
	if nrec > 0 {
		res.Pos[sh.id] = st.head
		sh.tail.add(first, nrec, sh.rec, s.cfg.TailBytes)
		s.headAdvanced()
	}
	if full {
		return ErrBookFull
	}
	return nil
}

// writeEntries stages the final entry of every key the round changed, in
// key order (the slots are sorted): pebble's memtable insert starts from
// where the previous key went in, so sorted keys go in at a fraction of
// the cost of keys in arrival order, and a key changed several times in
// the round is written once.
func (sh *shard) writeEntries(b *Batch) {
	for slot, changed := range sh.wrote {
		if !changed {
			continue
		}
		c := &sh.cur[slot]
		k := b.ops[sh.canon[slot]].key(b.buf)
		if !c.has {
			_ = sh.pb.Delete(k, nil)
			continue
		}
		sh.buf = appendValue(sh.buf[:0], sh.entryOf(c))
		_ = sh.pb.Set(k, sh.buf, nil)
	}
}

// appendRecord sets sh.rec to the round's change-log record and returns
// its change count: the final entry of every key whose last change in the
// round was local, in key order. A key changed twice in one round is
// logged once (peers need only where it ended: the merge is last writer
// wins), and a record in key order lets a peer, which sorts what it
// receives by key, merge the records it got instead of sorting them
// (keySorter).
func (sh *shard) appendRecord(b *Batch) int {
	sh.rec = append(sh.rec[:0], 0, 0, 0, 0) // the change count, set below
	n := 0
	for slot, local := range sh.local {
		if !local {
			continue
		}
		o := &b.ops[sh.canon[slot]]
		sh.rec = appendLogChange(sh.rec, o.user(b.buf), o.contact(b.buf), sh.entryOf(&sh.cur[slot]))
		n++
	}
	binary.BigEndian.PutUint32(sh.rec, uint32(n))
	return n
}

// commit writes the staged pebble batch with the shard's new state and
// publishes that state. The caller holds sh.mu.
func (sh *shard) commit(st shardState) error {
	s := sh.s
	sh.buf = st.encode(sh.buf[:0])
	_ = sh.pb.Set(metaShardKey(sh.id), sh.buf, nil)
	opts := pebble.NoSync
	if s.cfg.Fsync == FsyncAlways {
		opts = pebble.Sync
	}
	err := sh.pb.Commit(opts)
	sh.pb.Reset()
	if err != nil {
		return s.fail(err)
	}
	seq := s.commitSeq.Add(1)
	if s.cfg.Fsync == FsyncAlways {
		casMax(&s.syncedSeq, seq)
	}
	sh.st = st
	s.pubMu.Lock()
	s.pub[sh.id] = st
	s.pubMu.Unlock()
	return nil
}
