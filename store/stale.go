package store

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Staleness (PROTOCOL.md "Stamps and the merge rule", tombstone rules).
//
// The mark is the last wall-clock stamp at which this store's changes were
// known to be on a serving peer, with the change-log position confirmed
// then: the replication layer advances both each time a serving peer
// confirms everything this server had logged when it asked (and only
// then: not at start, not while alone). Every local change logged up to
// the mark's position is on that peer.
//
// A store whose mark is older than the grace has been out of contact long
// enough for the cluster to have dropped tombstones it never saw. When it
// is back in contact with a serving peer whose own mark is newer than its
// own, it refills: it records every key the peer sends in a full transfer,
// and every key it changed itself after the mark (its change log after the
// mark's position), then drops every entry neither recorded. What it
// changed while cut off is kept, and sent on; what the cluster deleted
// meanwhile is gone from the peer and is dropped here, whoever it came
// from. Where the log was trimmed past the mark's position before every
// peer had confirmed it (more changes than LogRetain, or no peer known),
// an entry stamped above the mark is kept instead; a trim below every
// peer's cursor needs no such fallback, since every peer had those
// changes. A store with no serving peer to compare with keeps everything.
//
// The refill is crash-safe: its mark is persisted before the transfer
// starts and cleared only after the drops are committed, so a store that
// crashes part-way finds the refill pending at the next start and does it
// again; drops are idempotent, and each one removes an entry only if it
// still holds exactly what was judged stale.

type staleState struct {
	mu      sync.Mutex
	mark    uint32
	markPos Pos
	refill  uint32 // the mark a pending refill compares against; 0: none
	// refilling is refill != 0, read without the lock by every commit:
	// while a refill is pending, every remote change is recorded as held
	// by a peer (a live feed's change is on the peer that sent it), not
	// only the transfer's.
	refilling atomic.Bool
}

func (s *Store) loadStale() error {
	mark, ok, err := getU32(s.db, metaMark)
	if err != nil {
		return err
	}
	if !ok {
		// Older layouts recorded the last time the store was open, a later
		// (so more lenient) point than the mark; it is the best there is.
		if mark, _, err = getU32(s.db, metaLastActive); err != nil {
			return err
		}
	}
	refill, _, err := getU32(s.db, metaRefill)
	if err != nil {
		return err
	}
	if v, ok, err := getRaw(s.db, metaMarkPos); err != nil {
		return err
	} else if ok {
		c, err := decodeCursor(append(make([]byte, 8), v...))
		if err != nil {
			return err
		}
		s.stale.markPos = c.Pos
	}
	s.stale.mark, s.stale.refill = mark, refill
	s.stale.refilling.Store(refill != 0)
	return nil
}

// Mark returns the last stamp at which this store's changes were known to
// be on a serving peer (0: never).
func (s *Store) Mark() uint32 {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	return s.stale.mark
}

// AdvanceMark raises the mark to stamp, with pos the change-log position
// a serving peer has confirmed (every local change stamped at or below
// stamp is at or below pos), and persists both.
func (s *Store) AdvanceMark(stamp uint32, pos Pos) error {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	if stamp <= s.stale.mark {
		return nil
	}
	if err := s.writable(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaMark, u32(stamp), nil)
	_ = b.Set(metaMarkPos, Cursor{Pos: pos}.encode()[8:], nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return s.fail(err)
	}
	s.stale.mark, s.stale.markPos = stamp, pos
	return nil
}

// Stale reports whether this store has been out of contact with every
// serving peer for longer than the grace (or a refill is pending): its data
// must not be offered as current before a refill.
func (s *Store) Stale() bool {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	if s.stale.refill != 0 {
		return true
	}
	return s.stale.mark != 0 && s.cfg.Now().Sub(TimeOf(s.stale.mark)) > s.cfg.TombstoneGrace
}

// RefillPending returns the mark of a refill begun and not finished.
func (s *Store) RefillPending() (uint32, bool) {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	return s.stale.refill, s.stale.refill != 0
}

// BeginRefill starts (or restarts) a refill against the current mark: it
// forgets keys seen by an earlier attempt and persists the refill. Remote
// changes committed from a Batch with RecordSeen set are then recorded as
// held by the peer.
func (s *Store) BeginRefill() (uint32, error) {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	mark := s.stale.refill
	if mark == 0 {
		mark = s.stale.mark
	}
	if mark == 0 {
		return 0, errors.New("store: no mark to refill against")
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange([]byte{tagSeen}, []byte{tagSeen + 1}, nil)
	_ = b.Set(metaRefill, u32(mark), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, s.fail(err)
	}
	s.stale.refill = mark
	s.stale.refilling.Store(true)
	s.log.Warn("refill started: entries from before the mark that the serving peer does not hold will be dropped",
		"mark", TimeOf(mark).UTC().Format(time.RFC3339))
	return mark, nil
}

// FinishRefill records the keys this store changed itself after its mark
// as held, drops every entry that neither that nor the transfer recorded,
// then ends the refill. It returns how many entries it dropped.
//
// confirmed is the log position the refill's source peer had confirmed
// (its saved cursor; zero if unknown): a change of ours up to it was on
// that peer, so if the peer no longer holds it, something newer replaced
// it there, and it is not kept as made while cut off. The mark's position
// can lag the cursors (it moves only when a whole log is confirmed), and a
// member killed in that lag would otherwise bring back what the cluster
// deleted while it was away.
func (s *Store) FinishRefill(ctx context.Context, confirmed Pos) (int, error) {
	mark, ok := s.RefillPending()
	if !ok {
		return 0, errors.New("store: no refill in progress")
	}
	s.stale.mu.Lock()
	markPos := s.stale.markPos
	s.stale.mu.Unlock()
	for i := range markPos {
		markPos[i] = max(markPos[i], confirmed[i])
	}
	fallback, err := s.seeLocalChangesAfter(markPos)
	if err != nil {
		return 0, err
	}
	sn := s.db.NewSnapshot()
	defer sn.Close()
	entries, err := sn.NewIter(&pebble.IterOptions{LowerBound: []byte{tagEntry}, UpperBound: []byte{tagEntry + 1}})
	if err != nil {
		return 0, err
	}
	defer entries.Close()
	seen, err := sn.NewIter(&pebble.IterOptions{LowerBound: []byte{tagSeen}, UpperBound: []byte{tagSeen + 1}})
	if err != nil {
		return 0, err
	}
	defer seen.Close()
	b := s.NewBatch()
	dropped := 0
	flush := func() error {
		_, err := b.Commit()
		return err
	}
	seen.First()
	for entries.First(); entries.Valid(); entries.Next() {
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
		rest := entries.Key()[1:]
		for seen.Valid() && bytes.Compare(seen.Key()[1:], rest) < 0 {
			seen.Next()
		}
		if seen.Valid() && bytes.Equal(seen.Key()[1:], rest) {
			continue
		}
		v, err := entries.ValueAndErr()
		if err != nil {
			return dropped, err
		}
		e, err := decodeValue(v)
		if err != nil {
			return dropped, err
		}
		user, contact, err := splitEntryKey(entries.Key())
		if err != nil {
			return dropped, err
		}
		if fallback[shardOf(user)] && e.Stamp > mark {
			continue // the log no longer tells: stamped after contact was lost, kept
		}
		b.drop(user, contact, e)
		dropped++
		if b.Len() >= sweepBatch {
			if err := flush(); err != nil {
				return dropped, err
			}
		}
	}
	if err := errors.Join(entries.Error(), seen.Error()); err != nil {
		return dropped, err
	}
	if err := flush(); err != nil {
		return dropped, err
	}
	if err := s.SyncAll(); err != nil {
		return dropped, err
	}
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	db := s.db.NewBatch()
	defer db.Close()
	_ = db.DeleteRange([]byte{tagSeen}, []byte{tagSeen + 1}, nil)
	_ = db.Delete(metaRefill, nil)
	if err := db.Commit(pebble.Sync); err != nil {
		return dropped, s.fail(err)
	}
	s.stale.refill = 0
	s.stale.refilling.Store(false)
	s.log.Warn("refill finished: dropped entries the cluster no longer holds", "dropped", dropped,
		"mark", TimeOf(mark).UTC().Format(time.RFC3339))
	return dropped, nil
}

// seeLocalChangesAfter records as held (seen) every key this store
// changed itself after log position pos: those changes were made while it
// was cut off, and are kept and sent on. It reports the shards whose log
// no longer reaches back to pos.
func (s *Store) seeLocalChangesAfter(pos Pos) ([NumShards]bool, error) {
	var fallback [NumShards]bool
	floor, forced, head := s.LogFloor(), s.LogForced(), s.Head()
	b := s.db.NewBatch()
	defer b.Close()
	var key []byte
	for sh := range NumShards {
		from := pos[sh]
		if forced[sh] > from {
			fallback[sh] = true // trimmed before a peer had it: unknown
		}
		if floor[sh] > from {
			// Trimmed below every peer's cursor: every peer had those
			// changes, so the peer's transfer says whether they still
			// stand; they need no keeping here.
			from = floor[sh]
		}
		for from < head[sh] {
			last, err := s.ReadLog(sh, from, 4096, func(_ uint64, ch Change) error {
				key = appendSeenKey(key[:0], appendEntryKey(nil, ch.User, ch.Contact))
				return b.Set(key, nil, nil)
			})
			if errors.Is(err, ErrTrimmed) {
				fallback[sh] = true
				break
			}
			if err != nil {
				return fallback, err
			}
			if last == from {
				break
			}
			from = last
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fallback, s.fail(err)
	}
	return fallback, nil
}
