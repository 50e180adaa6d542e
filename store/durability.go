package store

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
)

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
	if err := s.writable(); err != nil {
		return err
	}
	return s.syncNow()
}

// syncNow fsyncs the WAL; Close calls it after closing has begun.
func (s *Store) syncNow() error {
	target := s.commitSeq.Load()
	start := time.Now()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return s.fail(err)
	}
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(time.Since(start))
	}
	casMax(&s.syncedSeq, target)
	return nil
}

// SyncAll makes every commit so far durable.
func (s *Store) SyncAll() error { return s.Sync(s.commitSeq.Load()) }

// clockEvery is how often the clock is persisted. It only matters when C
// ran ahead of the wall clock (by at most MaxClockAhead); every key's own
// stamp is durable with the key.
const clockEvery = 5 * time.Second

// maintain runs the background fsync tick, clock persistence, tombstone
// expiry and change-log trimming.
func (s *Store) maintain() {
	defer s.wg.Done()
	syncTick := time.NewTicker(s.cfg.SyncInterval)
	defer syncTick.Stop()
	sweepTick := time.NewTicker(s.cfg.SweepInterval)
	defer sweepTick.Stop()
	lastClock := time.Now()
	// Sweep at once: after a long stop the cutoff is far ahead of the
	// one persisted, and the digest is not comparable until it moved.
	if _, err := s.Sweep(); err != nil {
		s.log.Error("tombstone sweep failed", "error", err)
	}
	for {
		select {
		case <-s.closing:
			return
		case <-syncTick.C:
			if time.Since(lastClock) >= clockEvery {
				lastClock = time.Now()
				if err := s.persistClock(); err != nil {
					s.log.Error("persisting clock failed", "error", err)
				}
			}
			if err := s.SyncAll(); err != nil {
				s.log.Error("background fsync failed", "error", err)
			}
			// Trimming often lets pebble drop confirmed log records while
			// they are still in the memtable: they are then never flushed
			// or compacted.
			if err := s.TrimLog(); err != nil {
				s.log.Error("change-log trim failed", "error", err)
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

// privateFS creates every file and directory private to the owner (0600,
// 0700): pebble's default honours the umask, which usually leaves the
// write-ahead log, and every contact in it, readable by any local user.
type privateFS struct{ vfs.FS }

func (p privateFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, cat)
	if err == nil {
		_ = os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, cat)
	if err == nil {
		_ = os.Chmod(newname, 0o600)
	}
	return f, err
}

func (p privateFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, cat, opts...)
	if err == nil {
		_ = os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		// Another process holds it (EAGAIN), or this one does (pebble keeps
		// a registry of its own locks): either way the dir is in use.
		return nil, &lockError{err: err}
	}
	_ = os.Chmod(name, 0o600)
	return c, nil
}

// lockError is a failure to lock the data dir.
type lockError struct{ err error }

func (e *lockError) Error() string { return "lock: " + e.err.Error() }
func (e *lockError) Unwrap() error { return e.err }

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error { return p.FS.MkdirAll(dir, 0o700) }

func (p privateFS) Link(oldname, newname string) error {
	err := p.FS.Link(oldname, newname)
	if err == nil {
		_ = os.Chmod(newname, 0o600)
	}
	return err
}

// pebbleLogger routes pebble's log lines to hclog. Fatalf panics rather
// than exiting: the process's owner decides what a fatal store error does.
type pebbleLogger struct{ l hclog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("pebble: " + msg)
}
