package store

import (
	"encoding/binary"
	gosync "sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Info})
}

// fakeNow is a settable wall clock, safe for the store's background loop.
type fakeNow struct {
	mu gosync.Mutex
	t  time.Time
}

func newFakeNow(t time.Time) *fakeNow { return &fakeNow{t: t} }

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) Set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func openTest(t testing.TB, dir string, mod func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig(dir)
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func names(t testing.TB, s *Store, user string) []string {
	t.Helper()
	cs, err := s.List([]byte(user), nil)
	require.NoError(t, err)
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name + "=" + c.Phone
	}
	return out
}

func commit(t testing.TB, b *Batch) CommitResult {
	t.Helper()
	res, err := b.Commit()
	require.NoError(t, err)
	return res
}

// update commits one local Update and returns its stamped change.
func update(t testing.TB, s *Store, user, contact, phone string) Change {
	t.Helper()
	b := s.NewBatch()
	b.KeepChanges = true
	require.NoError(t, b.Update([]byte(user), []byte(contact), []byte(phone)))
	commit(t, b)
	require.Len(t, b.Changes(), 1)
	return b.Changes()[0]
}

// del commits one local Delete and returns its stamped change.
func del(t testing.TB, s *Store, user, contact string) Change {
	t.Helper()
	b := s.NewBatch()
	b.KeepChanges = true
	require.NoError(t, b.Delete([]byte(user), []byte(contact)))
	commit(t, b)
	require.Len(t, b.Changes(), 1)
	return b.Changes()[0]
}

// apply commits one remote change and reports whether it won.
func apply(t testing.TB, s *Store, c Change) bool {
	t.Helper()
	b := s.NewBatch()
	require.NoError(t, b.Apply(c))
	res := commit(t, b)
	return res.Applied == 1
}

func get(t testing.TB, s *Store, user, contact string) (Entry, bool) {
	t.Helper()
	e, ok, err := s.Get([]byte(user), []byte(contact))
	require.NoError(t, err)
	return e, ok
}

// recomputed is the store's derived state computed from scratch from its
// entries, independently of the shard code.
type recomputed struct {
	digest       uint64
	live, tombs  int
	books        map[string]uint32
	tombIndex    map[string]bool // entry keys of tombstones
	digestShards [NumShards]uint64
}

// recompute scans every entry and checks every derived key against it:
// the persisted shard states, the book counts and the tombstone index.
func recompute(t testing.TB, s *Store) recomputed {
	t.Helper()
	// Hold every shard still: the background sweep and trim must not
	// commit between the reads below.
	for _, sh := range s.shards {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	r := recomputed{books: map[string]uint32{}, tombIndex: map[string]bool{}}
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	defer it.Close()
	var shardLive, shardTombs, shardBooks [NumShards]uint64
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if k[0] != tagEntry {
			continue
		}
		user := k[2 : 2+int(k[1])]
		v := it.Value()
		// user 0x00 contact, then the value: independent of the key layout
		h := xxhash.Sum64(append(append(append(append([]byte(nil), user...), 0), k[2+len(user):]...), v...))
		sh := int(xxhash.Sum64(user) & (NumShards - 1))
		r.digest += h
		r.digestShards[sh] += h
		if v[0] == 'D' {
			r.tombs++
			shardTombs[sh]++
			r.tombIndex[string(k)] = true
		} else {
			r.live++
			shardLive[sh]++
			if r.books[string(user)] == 0 {
				shardBooks[sh]++
			}
			r.books[string(user)]++
		}
	}
	require.NoError(t, it.Error())
	// book counts
	counts := map[string]uint32{}
	idx := map[string]bool{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		switch k[0] {
		case tagCount:
			counts[string(k[1:])] = binary.BigEndian.Uint32(it.Value())
		case tagTomb:
			ek := append([]byte{tagEntry}, k[6:]...)
			idx[string(ek)] = true
			v, ok, err := getRaw(s.db, ek)
			require.NoError(t, err)
			require.True(t, ok, "tombstone index points at a missing entry %q", ek)
			require.Equal(t, byte('D'), v[0], "tombstone index points at a live entry %q", ek)
			require.Equal(t, binary.BigEndian.Uint32(k[2:6]), binary.BigEndian.Uint32(v[1:5]), "tombstone index stamp")
		}
	}
	require.Equal(t, r.books, counts, "book counts")
	require.Equal(t, r.tombIndex, idx, "tombstone index")
	for i := range NumShards {
		v, ok, err := getRaw(s.db, metaShardKey(i))
		require.NoError(t, err)
		require.True(t, ok)
		st, err := decodeShardState(v)
		require.NoError(t, err)
		require.Equal(t, r.digestShards[i], st.digest, "shard %d digest", i)
		require.Equal(t, shardLive[i], st.live, "shard %d live", i)
		require.Equal(t, shardTombs[i], st.tombs, "shard %d tombstones", i)
		require.Equal(t, shardBooks[i], st.books, "shard %d books", i)
	}
	st := s.Stats()
	require.Equal(t, r.digest, st.Digest)
	require.Equal(t, r.live, st.Live)
	require.Equal(t, r.tombs, st.Tombstones)
	require.Equal(t, len(r.books), st.Books)
	return r
}

// rawSet writes a key directly (tests that build old layouts).
func rawSet(t testing.TB, db *pebble.DB, k, v []byte) {
	t.Helper()
	require.NoError(t, db.Set(k, v, pebble.NoSync))
}

// rawOpen opens a data dir with pebble directly (the store closed).
func rawOpen(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Merger: lwwMerger, FormatMajorVersion: pebble.FormatNewest})
	require.NoError(t, err)
	return db
}
