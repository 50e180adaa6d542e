package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// Metadata keys ('m' | name, see format.go).
var (
	metaClock      = []byte("mclock")
	metaLastActive = []byte("mlast-active")
)

// metaEvery is how often the clock and the last-active time are persisted.
const metaEvery = 5 * time.Second

func casMax(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Sync makes every commit up to seq durable. Concurrent callers share
// fsyncs: pebble coalesces waiting syncs into one, and a caller whose
// commits an earlier fsync already covered returns at once.
func (s *Store) Sync(seq uint64) error {
	if s.syncedSeq.Load() >= seq {
		return nil
	}
	target := s.commitSeq.Load()
	start := time.Now()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return err
	}
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(time.Since(start))
	}
	casMax(&s.syncedSeq, target)
	return nil
}

// SyncAll makes every commit so far durable.
func (s *Store) SyncAll() error { return s.Sync(s.commitSeq.Load()) }

func (s *Store) getMeta(key []byte) (uint32, bool, error) { return getMeta(s.db, key) }

func getMeta(db *pebble.DB, key []byte) (uint32, bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 4 {
		return 0, false, fmt.Errorf("store: corrupt metadata %q", key)
	}
	return binary.BigEndian.Uint32(v), true, nil
}

// writeMeta persists the clock (so C never goes down across restarts even
// when it rose from heartbeats alone) and the last time the store was open.
func (s *Store) writeMeta() error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaClock, binary.BigEndian.AppendUint32(nil, s.clock.Get()), nil)
	_ = b.Set(metaLastActive, binary.BigEndian.AppendUint32(nil, s.Now()), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	s.commitSeq.Add(1)
	return nil
}

// discardIfStale wipes the data dir when the store was last open longer
// than the tombstone grace ago: its data may resurrect contacts whose
// tombstones the cluster has already dropped.
func (s *Store) discardIfStale() error {
	last, ok, err := s.getMeta(metaLastActive)
	if err != nil || !ok {
		return err
	}
	away := s.cfg.Now().Sub(TimeOf(last))
	if away <= s.cfg.TombstoneGrace {
		return nil
	}
	s.log.Warn("data is older than the tombstone grace period: discarding it and refilling from peers",
		"dir", s.cfg.Dir, "last_active", TimeOf(last).UTC().Format(time.RFC3339),
		"away", away.Round(time.Second), "grace", s.cfg.TombstoneGrace)
	if err := s.db.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(s.cfg.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return err
	}
	db, err := s.openDB()
	if err != nil {
		return err
	}
	s.db = db
	s.discarded = true
	return nil
}

func (s *Store) expired(stamp uint32) bool {
	return TimeOf(stamp).Add(s.cfg.TombstoneGrace).Before(s.cfg.Now())
}

// maintain runs the background fsync tick, metadata writes, and the sweep.
func (s *Store) maintain() {
	defer s.wg.Done()
	syncTick := time.NewTicker(s.cfg.SyncInterval)
	defer syncTick.Stop()
	sweepTick := time.NewTicker(s.cfg.SweepInterval)
	defer sweepTick.Stop()
	lastMeta := time.Now()
	for {
		select {
		case <-s.closing:
			return
		case <-syncTick.C:
			if time.Since(lastMeta) >= metaEvery {
				lastMeta = time.Now()
				if err := s.writeMeta(); err != nil {
					s.log.Error("persisting clock failed", "error", err)
				}
			}
			if err := s.SyncAll(); err != nil {
				s.log.Error("background fsync failed", "error", err)
			}
		case <-sweepTick.C:
			if n, err := s.Sweep(); err != nil {
				s.log.Error("tombstone sweep failed", "error", err)
			} else if n > 0 {
				s.log.Debug("dropped expired tombstones", "count", n)
			}
		}
	}
}

// Sweep drops tombstones older than the grace period and returns how many.
// Each shard's deletes are committed while its lock is held, so a newer
// change to the same key cannot be overtaken by the delete in pebble.
func (s *Store) Sweep() (int, error) {
	total := 0
	b := s.db.NewBatch()
	defer b.Close()
	var key []byte
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for user, bk := range sh.books {
			for contact, e := range bk.entries {
				if e.deleted && s.expired(e.stamp) {
					key = appendKey(key[:0], bytesOf(user), bytesOf(contact))
					_ = b.Delete(key, nil)
					sh.remove(user, bk, contact, e)
					total++
				}
			}
		}
		var err error
		if !b.Empty() {
			err = b.Commit(pebble.NoSync)
			s.commitSeq.Add(1)
			b.Reset()
		}
		sh.mu.Unlock()
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pebbleLogger routes pebble's log lines to hclog.
type pebbleLogger struct{ l hclog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	os.Exit(1)
}
