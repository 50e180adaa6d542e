package store

import (
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Tombstone expiry. A tombstone stamped below the cutoff is dropped, and
// a Delete arriving stamped below it is not stored. The cutoff is the wall
// clock minus the grace, rounded down to a quantum, so every member with
// a sane clock moves it at the same instants; the digest is published
// with the cutoff it was computed at, and two digests are compared only at
// equal cutoffs. Expiry therefore never makes two members look different,
// and never by itself causes a transfer.
//
// Each shard keeps an index of its tombstones by stamp ('t' u8(shard)
// u32(stamp) key), so a sweep reads only what expires, never the whole
// store.

// cutoffQuantum is the step the expiry cutoff moves by: a 64th of the
// grace, between 1 s and 1 min.
func (s *Store) cutoffQuantum() uint32 {
	q := s.cfg.TombstoneGrace / 64
	q = min(max(q, time.Second), time.Minute)
	return uint32(q / time.Second)
}

// Cutoff is the expiry point at the current wall time.
func (s *Store) Cutoff() uint32 { return s.cutoffAt(s.cfg.Now()) }

func (s *Store) cutoffAt(now time.Time) uint32 {
	c := StampOf(now.Add(-s.cfg.TombstoneGrace))
	q := s.cutoffQuantum()
	return c / q * q
}

// sweepBatch bounds the tombstones dropped per shard commit, so writers
// to the shard are not held for long.
const sweepBatch = 4096

// Sweep drops every tombstone stamped below the current cutoff and returns
// how many it dropped.
func (s *Store) Sweep() (int, error) {
	target := s.Cutoff()
	total := 0
	for _, sh := range s.shards {
		n, err := sh.sweep(target)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (sh *shard) sweep(target uint32) (int, error) {
	total := 0
	for {
		n, done, err := sh.sweepSome(target)
		total += n
		if err != nil || done {
			return total, err
		}
	}
}

// sweepSome drops up to sweepBatch expired tombstones in one commit and
// reports whether the shard has reached target.
func (sh *shard) sweepSome(target uint32) (int, bool, error) {
	s := sh.s
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, true, err
	}
	st := sh.st
	if target <= st.swept {
		return 0, true, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: tombBound(sh.id, 0), UpperBound: tombBound(sh.id, target)})
	if err != nil {
		return 0, true, err
	}
	n, seen := 0, 0
	var ek []byte
	var gone []string
	for it.First(); it.Valid() && seen < sweepBatch; it.Next() {
		seen++
		var stamp uint32
		ek, stamp, err = tombEntryKey(ek[:0], it.Key())
		if err != nil {
			break
		}
		_ = sh.pb.Delete(it.Key(), nil)
		v, ok, gerr := getRaw(s.db, ek)
		if gerr != nil {
			err = gerr
			break
		}
		if !ok {
			continue // an index entry whose tombstone is gone: drop it too
		}
		e, derr := decodeValue(v)
		if derr != nil {
			err = derr
			break
		}
		if !e.Deleted || e.Stamp != stamp {
			continue
		}
		user, _, serr := splitEntryKey(ek)
		if serr != nil {
			err = serr
			break
		}
		if shardOf(user) != sh.id {
			err = errors.Join(ErrCorrupt, errors.New("tombstone indexed under the wrong shard"))
			break
		}
		st.digest -= sh.entryHash(ek, e)
		st.tombs--
		_ = sh.pb.Delete(ek, nil)
		gone = append(gone, string(ek))
		n++
	}
	done := !it.Valid()
	err = errors.Join(err, it.Error(), it.Close())
	if err != nil {
		sh.pb.Reset()
		return 0, true, s.fail(err)
	}
	s.setSweeping(sh.id, !done)
	if done {
		st.swept = target
	}
	if sh.pb.Empty() && !done {
		return 0, true, nil
	}
	if err := sh.commit(st); err != nil {
		sh.hot.reset()
		return 0, true, err
	}
	for _, k := range gone {
		sh.hot.forget(hotHash([]byte(k)), []byte(k))
	}
	if done {
		s.setSweeping(sh.id, false)
	}
	return n, done, nil
}

func (s *Store) setSweeping(shard int, on bool) {
	s.pubMu.Lock()
	s.sweeping[shard] = on
	s.pubMu.Unlock()
}
