package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("store: closed")

// ErrLocked is returned by Open when another process holds the data dir.
var ErrLocked = errors.New("store: data dir is locked by another server")

// Store is the durable, mergeable state of one server. It is safe for
// concurrent use.
type Store struct {
	cfg   Config
	log   hclog.Logger
	db    *pebble.DB
	clock *Clock

	shards [NumShards]*shard
	pubMu  sync.RWMutex
	pub    [NumShards]shardState // the committed state of every shard
	// sweeping marks shards part-way through a multi-commit sweep: their
	// digest already lacks some tombstones their cutoff still counts.
	sweeping [NumShards]bool

	storeID uint64

	commitSeq atomic.Uint64 // commits handed to pebble
	syncedSeq atomic.Uint64 // commits known to be on stable storage

	headMu sync.Mutex
	headCh chan struct{}

	broken atomic.Pointer[error] // set when a write failed: no more writes

	stale staleState // mark and refill (stale.go)

	cursorsMu sync.Mutex
	cursors   map[string]Cursor

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Open opens (or creates) the store in cfg.Dir. Opening takes the same
// time whatever the store holds: counts and the digest are persisted with
// every commit, never rebuilt (except once, when upgrading an older
// layout).
func Open(cfg Config, log hclog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	start := time.Now()
	s := &Store{cfg: cfg, log: log, closing: make(chan struct{}), headCh: make(chan struct{}),
		clock: NewClock(cfg.Now, cfg.MaxClockAhead), cursors: map[string]Cursor{}}
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	db, err := s.openDB()
	if err != nil {
		return nil, err
	}
	s.db = db
	for i := range s.shards {
		s.shards[i] = &shard{s: s, id: i, counts: map[string]*bookCount{}, pb: db.NewBatch()}
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	st := s.Stats()
	log.Info("store opened", "dir", cfg.Dir, "live", st.Live, "tombstones", st.Tombstones, "books", st.Books,
		"clock", s.clock.Raw(), "took", time.Since(start).Round(time.Millisecond))
	s.wg.Add(1)
	go s.maintain()
	return s, nil
}

// prepareDir creates the data dir private to its owner, and takes away
// group and other access from one found open (a contact book is personal
// data; pebble's write-ahead log holds it in clear).
func (s *Store) prepareDir() error {
	if s.cfg.FS != nil {
		return s.cfg.FS.MkdirAll(s.cfg.Dir, 0o700)
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", s.cfg.Dir, err)
	}
	fi, err := os.Stat(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", s.cfg.Dir, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		s.log.Warn("data dir was readable by other users: restricting it to its owner", "dir", s.cfg.Dir,
			"mode", fi.Mode().Perm().String())
		if err := os.Chmod(s.cfg.Dir, fi.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("data dir %s: %w", s.cfg.Dir, err)
		}
		entries, _ := os.ReadDir(s.cfg.Dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o077 != 0 {
				_ = os.Chmod(s.cfg.Dir+string(os.PathSeparator)+e.Name(), info.Mode().Perm()&0o700)
			}
		}
	}
	return nil
}

func (s *Store) openDB() (*pebble.DB, error) {
	cache := pebble.NewCache(s.cfg.CacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:              cache,
		MemTableSize:       s.cfg.MemTableSize,
		Merger:             lwwMerger,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{s.log.Named("pebble")},
	}
	opts.EnsureDefaults()
	for i := range opts.Levels { // misses (fresh keys) must not read data blocks
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if s.cfg.FS != nil {
		opts.FS = s.cfg.FS
	} else {
		opts.FS = privateFS{vfs.Default}
	}
	db, err := pebble.Open(s.cfg.Dir, opts)
	if err != nil {
		var le *lockError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w: %s (%v)", ErrLocked, s.cfg.Dir, le.err)
		}
		return nil, fmt.Errorf("open data dir %s: %w", s.cfg.Dir, err)
	}
	return db, nil
}

// load reads the persisted state, upgrading an older layout first.
func (s *Store) load() error {
	format, ok, err := getU32(s.db, metaFormat)
	if err != nil {
		return err
	}
	if !ok {
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		if empty {
			if err := s.initFresh(); err != nil {
				return err
			}
			format = formatCurrent
		} else {
			if _, err := s.migrateFormat1(); err != nil {
				return err
			}
			format = formatTagged
		}
	}
	switch format {
	case formatTagged:
		if err := s.upgradeTagged(); err != nil {
			return err
		}
	case formatCurrent:
	default:
		return fmt.Errorf("%w: data in %s has layout %d; this version reads %d", ErrCorrupt, s.cfg.Dir, format, formatCurrent)
	}
	if n, _, err := getU32(s.db, metaShards); err != nil {
		return err
	} else if n != NumShards {
		return fmt.Errorf("%w: data in %s has %d shards, not %d", ErrCorrupt, s.cfg.Dir, n, NumShards)
	}
	for i, sh := range s.shards {
		v, ok, err := getRaw(s.db, metaShardKey(i))
		if err != nil {
			return err
		}
		if ok {
			if sh.st, err = decodeShardState(v); err != nil {
				return err
			}
		}
		s.pub[i] = sh.st
	}
	if c, ok, err := getU32(s.db, metaClock); err != nil {
		return err
	} else if ok {
		if beyond := s.clock.restore(c); beyond > 0 {
			s.log.Warn("persisted clock was ahead of the wall clock by more than the bound: capped",
				"clock", c, "beyond_seconds", beyond, "max_ahead", s.cfg.MaxClockAhead)
		}
	}
	if s.storeID, _, err = getU64(s.db, metaStoreID); err != nil {
		return err
	}
	if err := s.loadCursors(); err != nil {
		return err
	}
	return s.loadStale()
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

func (s *Store) initFresh() error {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaStoreID, id[:], nil)
	_ = b.Set(metaShards, u32(NumShards), nil)
	for i := range s.shards {
		_ = b.Set(metaShardKey(i), shardState{}.encode(nil), nil)
	}
	_ = b.Set(metaFormat, u32(formatCurrent), nil)
	return b.Commit(pebble.Sync)
}

// StoreID identifies this data dir: it is random, set when the dir is
// created, and kept across restarts. Peers key what they know of us by it.
func (s *Store) StoreID() uint64 { return s.storeID }

// Clock returns C's reading, max(now, C).
func (s *Store) Clock() uint32 { return s.clock.Get() }

// ObserveClock raises C to a clock heard from a peer, within the bound. It
// returns by how many seconds v was beyond the bound (the sender's clock
// is ahead).
func (s *Store) ObserveClock(v uint32) uint32 { return s.clock.Observe(v) }

// ClockAhead reports how far a clock or stamp v is beyond the bound now.
func (s *Store) ClockAhead(v uint32) uint32 { return s.clock.AheadOf(v) }

// Now is the store's wall clock (Config.Now).
func (s *Store) Now() time.Time { return s.cfg.Now() }

// Grace is the tombstone grace period.
func (s *Store) Grace() time.Duration { return s.cfg.TombstoneGrace }

// Stats is a snapshot of the store's size and state.
type Stats struct {
	Books      int // books with at least one live contact
	Live       int
	Tombstones int
	// Digest is the order-independent digest of every entry: two stores
	// holding the same entries have the same digest.
	Digest uint64
	// Cutoff is the expiry point the digest is valid for: tombstones
	// stamped below it are gone. Two digests compare only at equal cutoffs.
	Cutoff uint32
	// Consistent is false while a sweep is under way in some shard (shards
	// then disagree on the cutoff): the digest is not comparable.
	Consistent bool
	Clock      uint32
	LogHead    uint64 // changes ever logged, over all shards
}

// Stats returns the counts and digest of the committed state.
func (s *Store) Stats() Stats {
	st := Stats{Consistent: true}
	s.pubMu.RLock()
	for i, p := range s.pub {
		st.Books += int(p.books)
		st.Live += int(p.live)
		st.Tombstones += int(p.tombs)
		st.Digest += p.digest
		st.LogHead += p.head
		if s.sweeping[i] {
			st.Consistent = false
		}
		if i == 0 {
			st.Cutoff = p.swept
		} else if p.swept != st.Cutoff {
			st.Consistent = false
			st.Cutoff = min(st.Cutoff, p.swept)
		}
	}
	s.pubMu.RUnlock()
	st.Clock = s.clock.Get()
	return st
}

// Digest is the order-independent digest of the whole state.
func (s *Store) Digest() uint64 { return s.Stats().Digest }

func (s *Store) writable() error {
	if e := s.broken.Load(); e != nil {
		return *e
	}
	select {
	case <-s.closing:
		return ErrClosed
	default:
		return nil
	}
}

// fail records a write failure: the in-memory state can no longer be
// trusted to match the disk, so the store takes no more writes (a restart
// reopens it from what was committed).
func (s *Store) fail(err error) error {
	err = fmt.Errorf("store: write failed, no more writes until restart: %w", err)
	if s.broken.CompareAndSwap(nil, &err) {
		s.log.Error("store write failed; refusing further writes", "error", err)
	}
	return err
}

// Close stops background work, makes everything durable, and closes pebble.
// It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.wg.Wait()
		for _, sh := range s.shards { // wait for rounds in progress
			sh.mu.Lock()
		}
		err := s.persistClock()
		if err == nil && s.broken.Load() == nil {
			err = s.syncNow()
		}
		for _, sh := range s.shards {
			_ = sh.pb.Close()
		}
		s.closeErr = errors.Join(err, s.db.Close())
		for _, sh := range s.shards {
			sh.mu.Unlock()
		}
	})
	return s.closeErr
}

func (s *Store) persistClock() error {
	if s.broken.Load() != nil {
		return nil
	}
	return s.db.Set(metaClock, binary.BigEndian.AppendUint32(nil, s.clock.Raw()), pebble.NoSync)
}
