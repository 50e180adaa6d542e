package store

import (
	"errors"
	"fmt"
	"time"
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
	// Dir is the data directory; it is created if missing and locked while
	// the store is open.
	Dir string
	// Fsync selects group commit (batch) or fsync per commit (always).
	Fsync FsyncMode
	// SyncInterval bounds how long a committed change may wait for fsync in
	// batch mode when nobody asks for a barrier.
	SyncInterval time.Duration
	// TombstoneGrace is how long tombstones are kept before they are dropped,
	// and how old data may be before DiscardStale applies.
	TombstoneGrace time.Duration
	// SweepInterval is how often expired tombstones are dropped.
	SweepInterval time.Duration
	// DiscardStale makes Open discard all data when the store was last
	// active longer than TombstoneGrace ago (PROTOCOL.md: a server away
	// that long must refill from its peers). Only set it when peers exist.
	DiscardStale bool
	// MaxContactsPerBook caps the live contacts of one user: a local Update
	// that would add one more is refused (ErrBookFull). 0 means no cap.
	// Changes from peers are never refused: replicas must converge.
	MaxContactsPerBook int
	// MemTableSize is pebble's memtable size in bytes.
	MemTableSize uint64
	// CacheSize is pebble's block cache size in bytes.
	CacheSize int64
	// Now returns the wall clock; tests replace it.
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
		SweepInterval:      time.Minute,
		MaxContactsPerBook: 100_000,
		MemTableSize:       16 << 20,
		CacheSize:          16 << 20,
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
	case c.TombstoneGrace < time.Second:
		return errors.New("store: tombstone grace must be at least 1s")
	case c.SweepInterval <= 0:
		return errors.New("store: sweep interval must be positive")
	case c.MemTableSize < 1<<20:
		return errors.New("store: memtable size must be at least 1 MiB")
	case c.MaxContactsPerBook < 0:
		return errors.New("store: max contacts per book must not be negative")
	case c.Now == nil:
		return errors.New("store: Now is nil")
	}
	return nil
}
