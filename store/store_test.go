package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalChangesAndList(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	defer b.Close()
	require.NoError(t, b.Update([]byte("alice"), []byte("Juan"), []byte("85999999999")))
	require.NoError(t, b.Update([]byte("alice"), []byte("Ana"), []byte("1")))
	require.NoError(t, b.Update([]byte("alice"), []byte("Zé"), []byte("2")))
	require.NoError(t, b.Update([]byte("bob"), []byte("Carl"), []byte("3")))
	require.NoError(t, b.Update([]byte("alice"), []byte("Ana"), []byte("+55 85 3333-0000"))) // replace
	require.NoError(t, b.Delete([]byte("alice"), []byte("Zé")))
	require.NoError(t, b.Delete([]byte("alice"), []byte("nobody"))) // absent: not an error
	commit(t, b)

	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Juan=85999999999"}, names(t, s, "alice"))
	require.Equal(t, []string{"Carl=3"}, names(t, s, "bob"))
	require.Empty(t, names(t, s, "carol"))
	st := s.Stats()
	require.Equal(t, 3, st.Live)
	require.Equal(t, 2, st.Tombstones)
	require.Equal(t, 2, st.Books)
	recompute(t, s)
}

func TestEmptyNamesAreOrdinaryValues(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	update(t, s, "", "", "0")   // empty user, empty contact
	update(t, s, "", "a", "1")  // the empty book holds more
	update(t, s, "u", "", "2")  // empty contact in a named book
	update(t, s, "u", "b", "3") //
	update(t, s, "u\x00x", "", "4")
	require.Equal(t, []string{"=0", "a=1"}, names(t, s, ""), "the empty name sorts first")
	require.Equal(t, []string{"=2", "b=3"}, names(t, s, "u"))
	require.Equal(t, []string{"=4"}, names(t, s, "u\x00x"), "bytes are opaque, even NUL inside a value given by a caller")
	del(t, s, "", "")
	require.Equal(t, []string{"a=1"}, names(t, s, ""))
	e, ok := get(t, s, "", "")
	require.True(t, ok)
	require.True(t, e.Deleted)
	recompute(t, s)
}

func TestListSortsBytewise(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	for _, n := range []string{"b", "B", "a", "\xff", "é", "aa", ""} {
		require.NoError(t, b.Update([]byte("u"), []byte(n), nil))
	}
	commit(t, b)
	require.Equal(t, []string{"=", "B=", "a=", "aa=", "b=", "é=", "\xff="}, names(t, s, "u"))
}

func TestBooksAreSeparate(t *testing.T) {
	// Users that are prefixes of one another must not see each other's
	// contacts ('e' len(user) user contact keeps them apart).
	s := openTest(t, t.TempDir(), nil)
	update(t, s, "ab", "c", "1")
	update(t, s, "a", "bc", "2")
	update(t, s, "abc", "", "3")
	require.Equal(t, []string{"c=1"}, names(t, s, "ab"))
	require.Equal(t, []string{"bc=2"}, names(t, s, "a"))
	require.Equal(t, []string{"=3"}, names(t, s, "abc"))
}

func TestLocalStampRule(t *testing.T) {
	now := newFakeNow(Epoch.Add(1000 * time.Second))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now })
	require.Equal(t, uint32(1000), update(t, s, "u", "c", "1").Stamp, "stamp is now")
	require.Equal(t, uint32(1001), update(t, s, "u", "c", "2").Stamp, "same second, same key: stored+1")
	require.Equal(t, uint32(1001), update(t, s, "u", "other", "").Stamp, "other key: C, which rose to the stamp within the bound")
	s.ObserveClock(1030)
	require.Equal(t, uint32(1030), del(t, s, "u", "c").Stamp, "clock ahead of wall time, within the bound: C")
	now.Set(Epoch.Add(9000 * time.Second))
	require.Equal(t, uint32(9000), update(t, s, "u", "c", "").Stamp, "wall time ahead: now")
	require.Equal(t, uint32(9000), s.Clock())
}

func TestHotKeyDoesNotDragTheClock(t *testing.T) {
	now := newFakeNow(Epoch.Add(1000 * time.Second))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.MaxClockAhead = time.Minute })
	b := s.NewBatch()
	b.KeepChanges = true
	const rewrites = 200_000
	for i := range rewrites {
		require.NoError(t, b.Update([]byte("u"), []byte("hot"), []byte{byte('0' + i%10)}))
		if b.Len() == 4096 {
			commit(t, b)
		}
	}
	commit(t, b)
	last := b.Changes()[len(b.Changes())-1]
	require.Equal(t, uint32(1000+rewrites-1), last.Stamp, "every rewrite won over the one before it")
	require.Equal(t, uint32(1060), s.Clock(), "the clock stops at now + MaxClockAhead")
	e, _ := get(t, s, "u", "hot")
	require.Equal(t, last.Stamp, e.Stamp)
	require.Equal(t, uint32(1060), update(t, s, "u", "cold", "1").Stamp, "other keys are stamped from the bounded clock")
	// A later change made elsewhere still wins on the hot key: it is stamped
	// above what this server holds, whatever the clock says.
	require.Greater(t, update(t, s, "u", "hot", "x").Stamp, last.Stamp)
}

func TestClockBound(t *testing.T) {
	now := newFakeNow(Epoch.Add(1000 * time.Second))
	dir := t.TempDir()
	s := openTest(t, dir, func(c *Config) { c.Now = now.Now })
	require.Equal(t, uint32(MaxStamp-1060), s.ObserveClock(MaxStamp), "a clock beyond the bound is reported by how far")
	require.Equal(t, uint32(1060), s.Clock(), "and moves C only to now + 60 s")
	require.Equal(t, uint32(0), s.ObserveClock(1030))
	// A stamp from a peer a year ahead is data: stored as is, clock capped.
	yearAhead := uint32(1000 + 365*24*3600)
	b := s.NewBatch()
	require.NoError(t, b.Apply(Change{User: []byte("u"), Contact: []byte("c"), Entry: Entry{Stamp: yearAhead, Phone: []byte("1")}}))
	res := commit(t, b)
	require.Equal(t, uint32(yearAhead-1060), res.Ahead)
	require.Equal(t, uint32(1060), s.Clock())
	// A later local change still wins over it.
	require.Equal(t, yearAhead+1, update(t, s, "u", "c", "2").Stamp)
	require.Equal(t, []string{"c=2"}, names(t, s, "u"))
	// Time passes: the cap follows the wall clock.
	now.Add(time.Hour)
	require.Equal(t, uint32(1000+3600), s.Clock())
	require.NoError(t, s.Close())

	// A clock persisted far ahead (older versions had no bound) is capped at open.
	db := rawOpen(t, dir)
	rawSet(t, db, metaClock, u32(MaxStamp))
	require.NoError(t, db.Close())
	s3 := openTest(t, dir, func(c *Config) { c.Now = now.Now })
	require.Equal(t, uint32(1000+3600+60), s3.Clock())
}

func TestApplyMergeRule(t *testing.T) {
	upd := func(stamp uint32, phone string) Entry { return Entry{Stamp: stamp, Phone: []byte(phone)} }
	dl := func(stamp uint32) Entry { return Entry{Stamp: stamp, Deleted: true} }
	tests := []struct {
		name    string
		stored  Entry
		in      Entry
		applied bool
		want    Entry
	}{
		{"larger stamp wins", upd(10, "1"), upd(11, "0"), true, upd(11, "0")},
		{"smaller stamp loses", upd(10, "1"), upd(9, "9"), false, upd(10, "1")},
		{"equal stamp: delete beats update", upd(10, "1"), dl(10), true, dl(10)},
		{"equal stamp: update loses to delete", dl(10), upd(10, "9"), false, dl(10)},
		{"equal stamp: larger phone wins", upd(10, "1"), upd(10, "2"), true, upd(10, "2")},
		{"equal stamp: smaller phone loses", upd(10, "2"), upd(10, "10"), false, upd(10, "2")},
		{"equal content is a no-op", upd(10, "1"), upd(10, "1"), false, upd(10, "1")},
		{"equal delete is a no-op", dl(10), dl(10), false, dl(10)},
		{"newer update resurrects", dl(10), upd(11, "1"), true, upd(11, "1")},
		{"empty phone is a value", upd(10, ""), upd(10, "0"), true, upd(10, "0")},
	}
	now := Epoch.Add(100 * time.Second)
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = func() time.Time { return now } })
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := string(rune('a' + i))
			require.True(t, apply(t, s, Change{User: []byte(u), Contact: []byte("c"), Entry: tc.stored}))
			require.Equal(t, tc.applied, apply(t, s, Change{User: []byte(u), Contact: []byte("c"), Entry: tc.in}))
			got, ok := get(t, s, u, "c")
			require.True(t, ok)
			require.Equal(t, tc.want.Stamp, got.Stamp)
			require.Equal(t, tc.want.Deleted, got.Deleted)
			require.Equal(t, string(tc.want.Phone), string(got.Phone))
		})
	}
	recompute(t, s)
}

func TestSameKeyTwiceInOneBatch(t *testing.T) {
	now := Epoch.Add(100 * time.Second)
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = func() time.Time { return now } })
	b := s.NewBatch()
	b.KeepChanges = true
	require.NoError(t, b.Update([]byte("u"), []byte("c"), []byte("1")))
	require.NoError(t, b.Apply(Change{User: []byte("u"), Contact: []byte("c"), Entry: Entry{Stamp: 500, Phone: []byte("p")}}))
	require.NoError(t, b.Delete([]byte("u"), []byte("c")))
	require.NoError(t, b.Update([]byte("u"), []byte("c"), []byte("2")))
	res := commit(t, b)
	require.Equal(t, 1, res.Applied)
	stamps := []uint32{}
	for _, c := range b.Changes() {
		stamps = append(stamps, c.Stamp)
	}
	require.Equal(t, []uint32{100, 501, 502}, stamps, "each change is stamped against the one staged before it")
	require.Equal(t, uint64(1), s.Head()[shardOf([]byte("u"))], "the change log holds where the key ended, once")
	require.Equal(t, []string{"c=2"}, names(t, s, "u"))
	recompute(t, s)
}

func TestReopenKeepsStateAndClock(t *testing.T) {
	dir := t.TempDir()
	now := newFakeNow(Epoch.Add(1000 * time.Second))
	mod := func(c *Config) { c.Now = now.Now }
	s := openTest(t, dir, mod)
	b := s.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("a"), []byte("1")))
	require.NoError(t, b.Update([]byte("u"), []byte("b"), []byte("2")))
	require.NoError(t, b.Delete([]byte("u"), []byte("a")))
	require.NoError(t, b.Apply(Change{User: []byte("v"), Contact: []byte("x"), Entry: Entry{Stamp: 77, Phone: []byte("7")}}))
	commit(t, b)
	s.ObserveClock(1050) // heard in a HeartBeat only
	before := s.Stats()
	id := s.StoreID()
	require.NotZero(t, id)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	s2 := openTest(t, dir, mod)
	require.Equal(t, before, s2.Stats())
	require.Equal(t, []string{"b=2"}, names(t, s2, "u"))
	require.Equal(t, uint32(1050), s2.Clock(), "the clock never goes down across restarts")
	require.Equal(t, id, s2.StoreID())
	recompute(t, s2)
}

func TestSecondOpenOfLockedDirFails(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil)
	_, err := Open(DefaultConfig(dir), testLogger(t))
	require.ErrorIs(t, err, ErrLocked)
}

func TestMaxContactsPerBook(t *testing.T) {
	s := openTest(t, t.TempDir(), func(c *Config) { c.MaxContactsPerBook = 3 })
	for _, c := range []string{"a", "b", "c"} {
		update(t, s, "u", c, "1")
	}
	b := s.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("a"), []byte("2"))) // replacing is fine
	require.NoError(t, b.Update([]byte("u"), []byte("d"), []byte("1"))) // refused: full
	require.NoError(t, b.Update([]byte("u"), []byte("b"), []byte("9"))) // after the refusal: dropped
	_, err := b.Commit()
	require.ErrorIs(t, err, ErrBookFull)
	require.Equal(t, []string{"a=2", "b=1", "c=1"}, names(t, s, "u"), "before the refusal: applied; after: dropped")
	del(t, s, "u", "b")
	update(t, s, "u", "d", "1") // room again
	b = s.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("b"), []byte("1")))
	_, err = b.Commit()
	require.ErrorIs(t, err, ErrBookFull, "a tombstoned contact coming back counts as new")
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("e"), Entry: Entry{Stamp: s.Clock() + 1, Phone: []byte("9")}}),
		"changes from peers are never refused")
	require.Equal(t, []string{"a=2", "c=1", "d=1", "e=9"}, names(t, s, "u"))
	recompute(t, s)
}

func TestSyncBarrier(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("c"), []byte("1")))
	res := commit(t, b)
	require.NotZero(t, res.Seq)
	require.NoError(t, s.Sync(res.Seq))
	require.GreaterOrEqual(t, s.syncedSeq.Load(), res.Seq)
	require.NoError(t, s.Sync(res.Seq), "a covered barrier returns at once")
}

func TestTooLongValuesAreRefused(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	long := make([]byte, MaxName+1)
	require.ErrorIs(t, b.Update(long, []byte("c"), nil), ErrTooLong)
	require.ErrorIs(t, b.Update([]byte("u"), long, nil), ErrTooLong)
	require.ErrorIs(t, b.Update([]byte("u"), []byte("c"), make([]byte, MaxPhone+1)), ErrTooLong)
	require.NoError(t, b.Update(long[:MaxName], long[:MaxName], make([]byte, MaxPhone)))
	commit(t, b)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"empty dir", func(c *Config) { c.Dir = "" }},
		{"bad fsync", func(c *Config) { c.Fsync = "sometimes" }},
		{"zero sync interval", func(c *Config) { c.SyncInterval = 0 }},
		{"tiny grace", func(c *Config) { c.TombstoneGrace = time.Millisecond }},
		{"tiny clock bound", func(c *Config) { c.MaxClockAhead = time.Millisecond }},
		{"tiny memtable", func(c *Config) { c.MemTableSize = 1 }},
		{"tiny cache", func(c *Config) { c.CacheSize = 1 }},
		{"negative book cap", func(c *Config) { c.MaxContactsPerBook = -1 }},
		{"tiny log", func(c *Config) { c.LogRetain = 1 }},
		{"tiny tail", func(c *Config) { c.TailBytes = 1 }},
		{"no clock", func(c *Config) { c.Now = nil }},
	}
	require.NoError(t, DefaultConfig("x").Validate())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig("x")
			tc.mod(&c)
			require.Error(t, c.Validate())
		})
	}
}

func TestDataIsPrivate(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything; the modes still matter for everyone else
		t.Log("running as root: checking file modes only")
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	s := openTest(t, dir, nil)
	update(t, s, "alice", "Juan", "85999999999")
	require.NoError(t, s.SyncAll())
	check := func() {
		t.Helper()
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "data dir")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.NotEmpty(t, entries)
		for _, e := range entries {
			info, err := e.Info()
			require.NoError(t, err)
			require.Zero(t, info.Mode().Perm()&0o077, "%s is %v", e.Name(), info.Mode().Perm())
		}
	}
	check()
	require.NoError(t, s.Close())
	// A data dir made readable by others (an old version, an operator) is
	// fixed at the next start.
	require.NoError(t, os.Chmod(dir, 0o755))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			require.NoError(t, os.Chmod(filepath.Join(dir, e.Name()), 0o644))
		}
	}
	s = openTest(t, dir, nil)
	check()
	require.Equal(t, []string{"Juan=85999999999"}, names(t, s, "alice"))
}

func TestClosedStoreRefusesWork(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	require.NoError(t, s.Close())
	b := s.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("c"), nil))
	_, err := b.Commit()
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.List([]byte("u"), nil)
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, errors.Is(s.SaveCursor("p", Cursor{}), ErrClosed))
}

func TestIterateVisitsEveryEntry(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	want := map[string]bool{}
	for u := range 50 {
		for c := range 20 {
			user, contact := []byte{byte('A' + u%26), byte('a' + u/26)}, []byte{byte(c + 1)}
			if c%5 == 0 {
				require.NoError(t, b.Delete(user, contact))
			} else {
				require.NoError(t, b.Update(user, contact, []byte("1")))
			}
			want[string(user)+"/"+string(contact)] = c%5 == 0
		}
	}
	commit(t, b)
	got := map[string]bool{}
	require.NoError(t, s.Iterate(context.Background(), func(c Change) error {
		got[string(c.User)+"/"+string(c.Contact)] = c.Deleted
		return nil
	}))
	require.Equal(t, want, got)

	// A snapshot's walk starts at a random key and wraps: every entry once.
	sn, err := s.Snapshot()
	require.NoError(t, err)
	defer sn.Close()
	for range 3 {
		seen := map[string]int{}
		require.NoError(t, sn.Each(context.Background(), func(c Change) error {
			seen[string(c.User)+"/"+string(c.Contact)]++
			return nil
		}))
		require.Len(t, seen, len(want))
		for k, n := range seen {
			require.Equal(t, 1, n, k)
		}
	}
}

func TestBookReaderStreamsWithCountFirst(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	for i := range 3000 {
		require.NoError(t, b.Update([]byte("big"), []byte{byte(i >> 8), byte(i)}, []byte("1")))
		if b.Len() == 1000 {
			commit(t, b)
		}
	}
	commit(t, b)
	del(t, s, "big", "\x00\x05")
	r, err := s.OpenBook([]byte("big"))
	require.NoError(t, err)
	require.Equal(t, 2999, r.Count())
	// A change committed while the reader is open is not seen by it.
	update(t, s, "big", "zzz", "1")
	n := 0
	for {
		_, _, ok := r.Next()
		if !ok {
			break
		}
		n++
	}
	require.NoError(t, r.Err())
	require.NoError(t, r.Close())
	require.Equal(t, 2999, n)
	r, err = s.OpenBook([]byte("nobody"))
	require.NoError(t, err)
	require.Equal(t, 0, r.Count())
	_, _, ok := r.Next()
	require.False(t, ok)
	require.NoError(t, r.Err())
	require.NoError(t, r.Close())
}
