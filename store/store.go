package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("store: closed")

// Store is the durable, mergeable state of one server. It is safe for
// concurrent use.
type Store struct {
	cfg    Config
	log    hclog.Logger
	db     *pebble.DB
	clock  Clock
	shards [numShards]shard

	commitSeq atomic.Uint64 // commits handed to pebble
	syncedSeq atomic.Uint64 // commits known to be on stable storage

	discarded bool // Open discarded stale data

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Open opens (or creates) the store in cfg.Dir and rebuilds the index.
func Open(cfg Config, log hclog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Store{cfg: cfg, log: log, closing: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].books = make(map[string]*book)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.Dir, err)
	}
	db, err := s.openDB()
	if err != nil {
		return nil, err
	}
	s.db = db
	if cfg.DiscardStale {
		if err := s.discardIfStale(); err != nil {
			_ = s.db.Close()
			return nil, err
		}
	}
	start := time.Now()
	if err := s.load(); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	st := s.Stats()
	log.Info("store opened", "dir", cfg.Dir, "live", st.Live, "tombstones", st.Tombstones,
		"clock", s.clock.Get(), "took", time.Since(start).Round(time.Millisecond))
	if err := s.writeMeta(); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.maintain()
	return s, nil
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
	db, err := pebble.Open(s.cfg.Dir, opts)
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("data dir %s is locked by another server: %w", s.cfg.Dir, err)
		}
		return nil, fmt.Errorf("open data dir %s: %w", s.cfg.Dir, err)
	}
	if err := upgradeFormat(db, s.log, s.cfg.Dir); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// load rebuilds the in-memory index and the clock from pebble.
func (s *Store) load() error {
	if v, ok, err := s.getMeta(metaClock); err != nil {
		return err
	} else if ok {
		s.clock.Observe(v)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		user, contact, ok := splitKey(it.Key())
		if !ok {
			return fmt.Errorf("store: corrupt key %q in %s", it.Key(), s.cfg.Dir)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		e, err := decodeValue(v)
		if err != nil {
			return fmt.Errorf("store: corrupt value for key %q in %s", it.Key(), s.cfg.Dir)
		}
		sh := &s.shards[shardOf(user)]
		bk := sh.books[string(user)]
		sh.put(user, contact, bk, entry{}, false, e)
		s.clock.Observe(e.Stamp)
	}
	return it.Error()
}

// Clock returns the server's clock C.
func (s *Store) Clock() uint32 { return s.clock.Get() }

// ObserveClock raises C to v if larger (HeartBeat and UpdateClock); it
// reports whether C rose.
func (s *Store) ObserveClock(v uint32) bool { return s.clock.Observe(v) }

// Now is the wall clock in stamp units.
func (s *Store) Now() uint32 { return StampOf(s.cfg.Now()) }

// Discarded reports whether Open discarded data older than the grace period.
func (s *Store) Discarded() bool { return s.discarded }

// Contact is one live contact of a book.
type Contact struct {
	Name  string
	Phone string
}

// List appends user's live contacts to dst, sorted by name bytewise, and
// returns it. The strings are immutable and safe to keep.
func (s *Store) List(user []byte, dst []Contact) []Contact {
	sh := &s.shards[shardOf(user)]
	sh.mu.RLock()
	if bk := sh.books[string(user)]; bk != nil {
		dst = slices.Grow(dst, bk.live)
		for name, e := range bk.entries {
			if !e.deleted {
				dst = append(dst, Contact{Name: name, Phone: e.phone})
			}
		}
	}
	sh.mu.RUnlock()
	slices.SortFunc(dst, func(a, b Contact) int { return strings.Compare(a.Name, b.Name) })
	return dst
}

// Get returns the stored entry of (user, contact), live or tombstone.
func (s *Store) Get(user, contact []byte) (Entry, bool) {
	sh := &s.shards[shardOf(user)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if bk := sh.books[string(user)]; bk != nil {
		if e, ok := bk.entries[string(contact)]; ok {
			return e.export(), true
		}
	}
	return Entry{}, false
}

// Iterate calls fn for every stored entry, live contacts and tombstones,
// one shard at a time: only one shard's entries are copied at once, and
// changes made during the walk may or may not be seen. The Change's slices
// are read-only and valid only during the call.
func (s *Store) Iterate(ctx context.Context, fn func(Change) error) error {
	type item struct {
		user, contact string
		e             entry
	}
	var chunk []item
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &s.shards[i]
		chunk = chunk[:0]
		sh.mu.RLock()
		for user, bk := range sh.books {
			for contact, e := range bk.entries {
				chunk = append(chunk, item{user, contact, e})
			}
		}
		sh.mu.RUnlock()
		for _, it := range chunk {
			if err := fn(Change{User: bytesOf(it.user), Contact: bytesOf(it.contact), Entry: it.e.export()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats is a snapshot of the store's size and state.
type Stats struct {
	Users      int
	Live       int
	Tombstones int
	Digest     uint64 // order-independent digest of all entries
	Clock      uint32
}

// Stats returns the current counts and digest.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		st.Users += len(sh.books)
		st.Live += sh.live
		st.Tombstones += sh.tombstones
		st.Digest += sh.digest
		sh.mu.RUnlock()
	}
	st.Clock = s.clock.Get()
	return st
}

// Digest is the order-independent digest of the whole state: two stores
// holding the same entries have the same digest.
func (s *Store) Digest() uint64 { return s.Stats().Digest }

// Close stops background work, makes everything durable, and closes pebble.
// It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.wg.Wait()
		err := s.writeMeta()
		if err == nil {
			err = s.Sync(s.commitSeq.Load())
		}
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}
