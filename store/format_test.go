package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// logBuffer captures a store's log lines for assertions (and still shows
// them in the test log).
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(string(p))
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openLogged(t testing.TB, dir string) (*Store, *logBuffer) {
	t.Helper()
	lb := &logBuffer{t: t}
	cfg := DefaultConfig(dir)
	// The layout-1 data is stamped in the first seconds of 2024: a wall
	// clock then keeps its tombstone from expiring under the test.
	cfg.Now = func() time.Time { return Epoch.Add(2 * time.Hour) }
	s, err := Open(cfg, hclog.New(&hclog.LoggerOptions{Output: lb, Level: hclog.Info}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, lb
}

func openRaw(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Merger: lwwMerger, FormatMajorVersion: pebble.FormatNewest,
		Logger: pebbleLogger{testLogger(t)}})
	require.NoError(t, err)
	return db
}

func rawKeys(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	db := openRaw(t, dir)
	defer db.Close()
	it, err := db.NewIter(nil)
	require.NoError(t, err)
	defer it.Close()
	out := map[string][]byte{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = append([]byte(nil), it.Value()...)
	}
	require.NoError(t, it.Error())
	return out
}

// writeFormat1 writes a database as the format-1 code did: entries keyed
// user 0x00 contact (some as several merge operands, as connections left
// them), metadata keyed 0x00 name, no "mformat".
func writeFormat1(t testing.TB, dir string) {
	t.Helper()
	db := openRaw(t, dir)
	b := db.NewBatch()
	val := func(e Entry) []byte { return appendValue(nil, e) }
	require.NoError(t, b.Merge([]byte("alice\x00Juan"), val(Entry{Stamp: 10, Phone: []byte("1")}), nil))
	require.NoError(t, b.Merge([]byte("alice\x00Juan"), val(Entry{Stamp: 12, Phone: []byte("85999999999")}), nil))
	require.NoError(t, b.Merge([]byte("alice\x00Juan"), val(Entry{Stamp: 11, Phone: []byte("3")}), nil))
	require.NoError(t, b.Merge([]byte("alice\x00Ana"), val(Entry{Stamp: 13, Phone: []byte("2")}), nil))
	require.NoError(t, b.Merge([]byte("alice\x00Gone"), val(Entry{Stamp: 14, Deleted: true}), nil))
	require.NoError(t, b.Set([]byte("e\x03x\x00m"), val(Entry{Stamp: 15, Phone: []byte("4")}), nil)) // a user that looks like a new key
	require.NoError(t, b.Set([]byte("mclock\x00c"), val(Entry{Stamp: 16, Phone: []byte("5")}), nil)) // and one that looks like metadata
	require.NoError(t, b.Set([]byte("\x00clock"), u32(5000), nil))
	require.NoError(t, b.Set([]byte("\x00last-active"), u32(4000), nil))
	require.NoError(t, b.Commit(pebble.Sync))
	require.NoError(t, db.Close())
}

// The full state of s as strings, for comparing two opens.
func dump(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	require.NoError(t, s.Iterate(context.Background(), func(c Change) error {
		out = append(out, string(c.User)+"|"+string(c.Contact)+"|"+string(appendValue(nil, c.Entry)))
		return nil
	}))
	slices.Sort(out)
	return out
}

func TestFormat1DatabaseIsMigratedOnce(t *testing.T) {
	dir := t.TempDir()
	writeFormat1(t, dir)

	s, logs := openLogged(t, dir)
	require.Contains(t, logs.String(), "store migrated from layout 1 to layout 2")
	require.Contains(t, logs.String(), "entries=5")
	require.Equal(t, []string{"Ana=2", "Juan=85999999999"}, names(t, s, "alice"))
	require.Equal(t, []string{"m=4"}, names(t, s, "e\x03x"))
	require.Equal(t, []string{"c=5"}, names(t, s, "mclock"))
	gone, ok := get(t, s, "alice", "Gone")
	require.True(t, ok)
	require.Equal(t, Entry{Stamp: 14, Deleted: true}, gone, "tombstones move too")
	require.Equal(t, uint32(5000), s.clock.Raw(), "the clock metadata moves")
	st := s.Stats()
	require.Equal(t, 4, st.Live)
	require.Equal(t, 1, st.Tombstones)
	before := dump(t, s)
	require.NoError(t, s.Close())

	keys := rawKeys(t, dir)
	require.Equal(t, u32(formatCurrent), keys["mformat"])
	require.Contains(t, keys, "mclock")
	require.Contains(t, keys, "mlast-active")
	require.Contains(t, keys, "e\x05aliceJuan")
	for k := range keys {
		require.Contains(t, []byte{tagEntry, tagMeta, tagCount, tagTomb}, k[0], "key %q left in the old layout", k)
		if k[0] != tagTomb && !strings.HasPrefix(k, "mshard") {
			require.NotContains(t, k, "\x00", "key %q left in the old layout", k)
		}
	}

	s2, logs2 := openLogged(t, dir)
	require.NotContains(t, logs2.String(), "migrated", "a second open does nothing")
	require.Equal(t, before, dump(t, s2))
	require.Equal(t, uint32(5000), s2.clock.Raw())
}

// A server killed after the migration's commit (the files copied while
// the store is open and never closed) opens in the new layout with nothing
// to migrate; one killed before it still has the untouched old layout,
// which TestFormat1DatabaseIsMigratedOnce opens.
func TestKillAfterMigrationStillOpens(t *testing.T) {
	dir := t.TempDir()
	writeFormat1(t, dir)
	s, _ := openLogged(t, dir)
	want := dump(t, s)
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crashed)

	s2, logs := openLogged(t, crashed)
	require.NotContains(t, logs.String(), "migrated")
	require.Equal(t, want, dump(t, s2))
	require.Equal(t, uint32(5000), s2.clock.Raw())
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	ents, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		dst, err := os.Create(filepath.Join(to, e.Name()))
		require.NoError(t, err)
		_, err = io.Copy(dst, src)
		require.NoError(t, err)
		require.NoError(t, src.Close())
		require.NoError(t, dst.Close())
	}
}

func TestUnknownFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := openRaw(t, dir)
	require.NoError(t, db.Set(metaFormat, u32(9), pebble.Sync))
	require.NoError(t, db.Close())
	_, err := Open(DefaultConfig(dir), testLogger(t))
	require.ErrorContains(t, err, "layout 9")
}

// Empty user and contact names are ordinary values: stored, listed (the
// empty contact first), deleted, iterated, and kept across a restart, kept
// apart from the metadata and from one another.
func TestEmptyNames(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	b := s.NewBatch()
	type key struct{ user, contact string }
	puts := []struct {
		key
		phone string
	}{
		{key{"", ""}, "1"},
		{key{"", "a"}, "2"},
		{key{"", "clock"}, "3"},       // format 1 would have put this on the clock's key
		{key{"", "last-active"}, "4"}, // and this on last-active's
		{key{"a", ""}, "5"},
		{key{"a", "b"}, "6"},
		{key{"ab", ""}, "7"},
		{key{"", "gone"}, "8"},
	}
	for _, p := range puts {
		require.NoError(t, b.Update([]byte(p.user), []byte(p.contact), []byte(p.phone)))
	}
	require.NoError(t, b.Delete([]byte(""), []byte("gone")))
	require.NoError(t, b.Delete([]byte("a"), []byte("")))
	commit(t, b)

	check := func(s *Store) {
		t.Helper()
		require.Equal(t, []string{"=1", "a=2", "clock=3", "last-active=4"}, names(t, s, ""))
		require.Equal(t, []string{"b=6"}, names(t, s, "a"))
		require.Equal(t, []string{"=7"}, names(t, s, "ab"))
		e, ok := get(t, s, "", "gone")
		require.True(t, ok)
		require.True(t, e.Deleted)
		e, ok = get(t, s, "a", "")
		require.True(t, ok)
		require.True(t, e.Deleted)
		seen := map[key]bool{}
		require.NoError(t, s.Iterate(context.Background(), func(c Change) error {
			seen[key{string(c.User), string(c.Contact)}] = c.Deleted
			return nil
		}))
		require.Equal(t, map[key]bool{
			{"", ""}: false, {"", "a"}: false, {"", "clock"}: false, {"", "last-active"}: false,
			{"a", ""}: true, {"a", "b"}: false, {"ab", ""}: false, {"", "gone"}: true,
		}, seen)
	}
	check(s)
	s.ObserveClock(s.Clock() + 30)
	before := s.Stats()
	require.NoError(t, s.Close())

	s2 := openTest(t, dir, nil)
	check(s2)
	after := s2.Stats()
	// Clock reads the wall clock, which moved; the cutoff moves with the
	// background sweep.
	before.Clock, after.Clock = 0, 0
	before.Cutoff, after.Cutoff, before.Consistent, after.Consistent = 0, 0, true, true
	require.Equal(t, before, after, "same state and digest after a restart")
	require.GreaterOrEqual(t, s2.clock.Raw(), s.clock.Raw(), "the clock never goes down across restarts")
}

// One book's keys are contiguous and sorted bytewise, the empty contact
// first, and no entry key can be read as another's.
func TestKeyLayout(t *testing.T) {
	tests := []struct {
		user, contact, key string
	}{
		{"", "", "e\x00"},
		{"", "x", "e\x00x"},
		{"alice", "", "e\x05alice"},
		{"alice", "Juan", "e\x05aliceJuan"},
		{strings.Repeat("u", 255), "c", "e\xff" + strings.Repeat("u", 255) + "c"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			k := appendEntryKey(nil, []byte(tc.user), []byte(tc.contact))
			require.Equal(t, tc.key, string(k))
			u, c, err := splitEntryKey(k)
			require.NoError(t, err)
			require.Equal(t, tc.user, string(u))
			require.Equal(t, tc.contact, string(c))
		})
	}
	a := appendEntryKey(nil, []byte("alice"), nil)
	b := appendEntryKey(nil, []byte("alice"), []byte("A"))
	c := appendEntryKey(nil, []byte("alice"), []byte("B"))
	require.Negative(t, bytes.Compare(a, b))
	require.Negative(t, bytes.Compare(b, c))
	for _, bad := range []string{"", "e", "e\x05ali", "m\x00x", "\x00clock"} {
		_, _, err := splitEntryKey([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
}

// The state digest, which servers compare with one another, hashes the
// format-1 key (user 0x00 contact), so servers on either side of the key
// format change agree on it.
func TestDigestIsIndependentOfTheKeyFormat(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	e := Entry{Stamp: 42, Phone: []byte("7")}
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("c"), Entry: e}))
	require.Equal(t, xxhash.Sum64(appendValue([]byte("u\x00c"), e)), s.Digest())
}
