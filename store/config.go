package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FsyncMode says when committed changes reach stable storage.
type FsyncMode string

const (
	// FsyncBatch commits without fsync; Sync (called before every ListAll
	// reply) and a background tick make them stable, one fsync for many.
	FsyncBatch FsyncMode = "batch"
	// FsyncAlways fsyncs every commit before it returns.
	FsyncAlways FsyncMode = "always"
)

// Config configures a Store.
type Config struct {
	// Dir is the data directory; it is created (mode 0700) if missing and
	// locked while the store is open.
	Dir string
	// FS replaces the operating system's file system (tests use pebble's
	// crashable in-memory one). Nil means the disk.
	FS vfs.FS
	// Fsync selects group commit (batch) or fsync per commit (always).
	Fsync FsyncMode
	// SyncInterval bounds how long a committed change may wait for fsync in
	// batch mode when nobody asks for a barrier.
	SyncInterval time.Duration
	// TombstoneGrace is how long tombstones are kept before they are
	// dropped, and how long a member may be out of contact before its old
	// data is no longer offered as current (stale.go).
	TombstoneGrace time.Duration
	// SweepInterval is how often the expiry point is recomputed and the
	// tombstones past it dropped (the work is done only when it moved).
	SweepInterval time.Duration
	// MaxClockAhead bounds the clock: no input moves it further than this
	// past the wall clock (PROTOCOL.md "Stamps and the merge rule").
	MaxClockAhead time.Duration
	// MaxContactsPerBook caps the live contacts of one user: a local Update
	// that would add one more is refused (ErrBookFull). 0 means no cap.
	// Changes from peers are never refused: replicas must converge.
	MaxContactsPerBook int
	// LogRetain is how many changes the change log keeps at most, over all
	// shards, for peers that fall behind; a peer behind the trimmed part
	// needs a full transfer.
	LogRetain int
	// TailBytes is how many bytes of the most recent change-log records each
	// shard keeps in memory, so that peers close to the head never read the
	// log back from disk.
	TailBytes int
	// MemTableSize is pebble's memtable size in bytes.
	MemTableSize uint64
	// CacheSize is pebble's block cache size in bytes.
	CacheSize int64
	// Now is the wall clock. Every rule about time in the store reads it
	// (stamps, the clock bound, tombstone expiry, staleness), so tests can
	// move it by days.
	Now func() time.Time
	// OnSync, if set, is told how long each fsync barrier took (metrics).
	OnSync func(time.Duration)
}

// DefaultConfig returns the defaults for a store in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:                dir,
		Fsync:              FsyncBatch,
		SyncInterval:       100 * time.Millisecond,
		TombstoneGrace:     7 * 24 * time.Hour,
		SweepInterval:      time.Second,
		MaxClockAhead:      time.Minute,
		MaxContactsPerBook: 100_000,
		LogRetain:          8 << 20,
		TailBytes:          4 << 20,
		MemTableSize:       32 << 20,
		CacheSize:          128 << 20,
		Now:                time.Now,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("store: data dir is empty")
	case c.Fsync != FsyncBatch && c.Fsync != FsyncAlways:
		return fmt.Errorf("store: fsync mode %q is neither batch nor always", c.Fsync)
	case c.SyncInterval <= 0:
		return errors.New("store: sync interval must be positive")
	case c.SweepInterval <= 0:
		return errors.New("store: sweep interval must be positive")
	case c.TombstoneGrace < time.Second:
		return errors.New("store: tombstone grace must be at least 1s")
	case c.MaxClockAhead < time.Second:
		return errors.New("store: max clock ahead must be at least 1s")
	case c.MemTableSize < 1<<20:
		return errors.New("store: memtable size must be at least 1 MiB")
	case c.CacheSize < 1<<20:
		return errors.New("store: cache size must be at least 1 MiB")
	case c.MaxContactsPerBook < 0:
		return errors.New("store: max contacts per book must not be negative")
	case c.LogRetain < NumShards:
		return fmt.Errorf("store: log retain must be at least %d changes", NumShards)
	case c.TailBytes < 64<<10:
		return errors.New("store: tail bytes must be at least 64 KiB")
	case c.Now == nil:
		return errors.New("store: Now is nil")
	}
	return nil
}
