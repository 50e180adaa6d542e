package store

import (
	"bytes"
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

// sweep drops the shard's tombstones stamped below target, sweepBatch at a
// time. Each batch resumes after the index keys the one before dropped:
// started from the bottom every time, a batch walked every index entry
// the earlier batches deleted (pebble skips deleted keys one by one until
// a compaction drops them), which made a sweep quadratic in the number of
// tombstones it dropped. The shard is unlocked between batches, so a
// tombstone below the resume point may have been indexed meanwhile: the
// sweep ends only with a batch that started from the bottom (that is, from
// the last target reached) and found nothing more.
func (sh *shard) sweep(target uint32) (int, error) {
	total := 0
	var from []byte
	for {
		n, next, done, err := sh.sweepSome(target, from)
		total += n
		if err != nil || done {
			return total, err
		}
		from = next
	}
}

// sweepSome drops up to sweepBatch expired tombstones in one commit,
// starting at from (nil: the bottom of the shard's index below target). It
// returns where the next batch starts (nil: the bottom again) and whether
// the shard has reached target.
func (sh *shard) sweepSome(target uint32, from []byte) (int, []byte, bool, error) {
	s := sh.s
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, nil, true, err
	}
	st := sh.st
	if target <= st.swept {
		return 0, nil, true, nil
	}
	// Below st.swept every index entry is gone (a tombstone stamped there
	// is never stored): its deleted keys need not be walked either.
	lower := tombBound(sh.id, st.swept)
	if from != nil && bytes.Compare(from, lower) > 0 {
		lower = from
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: tombBound(sh.id, target)})
	if err != nil {
		return 0, nil, true, err
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
	var next []byte
	if it.Valid() {
		next = bytes.Clone(it.Key())
	}
	// Reached target only by a walk from the bottom that found the end.
	done := !it.Valid() && from == nil
	err = errors.Join(err, it.Error(), it.Close())
	if err != nil {
		sh.pb.Reset()
		return 0, nil, true, s.fail(err)
	}
	s.setSweeping(sh.id, !done)
	if done {
		st.swept = target
	}
	if sh.pb.Empty() && !done { // nothing after from: walk from the bottom
		return 0, nil, false, nil
	}
	if err := sh.commit(st); err != nil {
		sh.hot.reset()
		return 0, nil, true, err
	}
	for _, k := range gone {
		sh.hot.forget(hotHash([]byte(k)), []byte(k))
	}
	if done {
		s.setSweeping(sh.id, false)
	}
	return n, next, done, nil
}

func (s *Store) setSweeping(shard int, on bool) {
	s.pubMu.Lock()
	s.sweeping[shard] = on
	s.pubMu.Unlock()
}
