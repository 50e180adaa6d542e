package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalChangesAndList(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	defer b.Close()
	b.Update([]byte("alice"), []byte("Juan"), []byte("85999999999"))
	b.Update([]byte("alice"), []byte("Ana"), []byte("1"))
	b.Update([]byte("alice"), []byte("Zé"), []byte("2"))
	b.Update([]byte("bob"), []byte("Carl"), []byte("3"))
	b.Update([]byte("alice"), []byte("Ana"), []byte("+55 85 3333-0000")) // replace
	b.Delete([]byte("alice"), []byte("Zé"))
	b.Delete([]byte("alice"), []byte("nobody")) // absent: not an error
	commit(t, b)

	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Juan=85999999999"}, names(s.List([]byte("alice"), nil)))
	require.Equal(t, []string{"Carl=3"}, names(s.List([]byte("bob"), nil)))
	require.Empty(t, s.List([]byte("carol"), nil))
	st := s.Stats()
	require.Equal(t, 3, st.Live)
	require.Equal(t, 2, st.Tombstones)
	require.Equal(t, 2, st.Users)
}

func TestListSortsBytewise(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	defer b.Close()
	for _, n := range []string{"b", "B", "a", "\xff", "é", "aa"} {
		b.Update([]byte("u"), []byte(n), nil)
	}
	var got []string
	for _, c := range s.List([]byte("u"), nil) {
		got = append(got, c.Name)
	}
	require.Equal(t, []string{"B", "a", "aa", "b", "é", "\xff"}, got)
}

func TestLocalStampRule(t *testing.T) {
	now := &fakeNow{t: Epoch.Add(1000 * time.Second)}
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now })
	b := s.NewBatch()
	defer b.Close()
	u, c := []byte("u"), []byte("c")

	require.Equal(t, uint32(1000), mustUpdate(t, b, u, c, []byte("1")).Stamp, "stamp is now")
	require.Equal(t, uint32(1001), mustUpdate(t, b, u, c, []byte("2")).Stamp, "same second, same key: stored+1")
	require.Equal(t, uint32(1001), mustUpdate(t, b, u, []byte("other"), nil).Stamp, "other key: max(now, C)")
	s.ObserveClock(5000)
	require.Equal(t, uint32(5000), b.Delete(u, c).Stamp, "clock ahead of wall time: C")
	require.Equal(t, uint32(5000), s.Clock())
	commit(t, b) // a batch reads the wall clock once per burst; connections commit between bursts
	now.t = Epoch.Add(9000 * time.Second)
	require.Equal(t, uint32(9000), mustUpdate(t, b, u, c, nil).Stamp, "wall time ahead: now")
	require.Equal(t, uint32(9000), s.Clock(), "C rises to the stamp")
}

func TestApplyMergeRule(t *testing.T) {
	upd := func(stamp uint32, phone string) Entry { return Entry{Stamp: stamp, Phone: []byte(phone)} }
	del := func(stamp uint32) Entry { return Entry{Stamp: stamp, Deleted: true} }
	tests := []struct {
		name    string
		stored  Entry
		in      Entry
		applied bool
		want    Entry
	}{
		{"larger stamp wins", upd(10, "1"), upd(11, "0"), true, upd(11, "0")},
		{"smaller stamp loses", upd(10, "1"), upd(9, "9"), false, upd(10, "1")},
		{"equal stamp: delete beats update", upd(10, "1"), del(10), true, del(10)},
		{"equal stamp: update loses to delete", del(10), upd(10, "9"), false, del(10)},
		{"equal stamp: larger phone wins", upd(10, "1"), upd(10, "2"), true, upd(10, "2")},
		{"equal stamp: smaller phone loses", upd(10, "2"), upd(10, "10"), false, upd(10, "2")},
		{"equal content is a no-op", upd(10, "1"), upd(10, "1"), false, upd(10, "1")},
		{"equal delete is a no-op", del(10), del(10), false, del(10)},
		{"newer update resurrects", del(10), upd(11, "1"), true, upd(11, "1")},
	}
	now := Epoch.Add(100 * time.Second)
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = func() time.Time { return now } })
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := []byte{byte('a' + i)}
			b := s.NewBatch()
			defer b.Close()
			require.True(t, b.Apply(Change{User: u, Contact: []byte("c"), Entry: tc.stored}))
			require.Equal(t, tc.applied, b.Apply(Change{User: u, Contact: []byte("c"), Entry: tc.in}))
			got, ok := s.Get(u, []byte("c"))
			require.True(t, ok)
			require.Equal(t, tc.want.Stamp, got.Stamp)
			require.Equal(t, tc.want.Deleted, got.Deleted)
			require.Equal(t, string(tc.want.Phone), string(got.Phone))
		})
	}
}

func TestReopenKeepsStateAndClock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	b := s.NewBatch()
	b.Update([]byte("u"), []byte("a"), []byte("1"))
	b.Update([]byte("u"), []byte("b"), []byte("2"))
	b.Delete([]byte("u"), []byte("a"))
	b.Apply(Change{User: []byte("v"), Contact: []byte("x"), Entry: Entry{Stamp: 77, Phone: []byte("7")}})
	commit(t, b)
	b.Close()
	s.ObserveClock(4_000_000_000) // heard in a HeartBeat only
	before := s.Stats()
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	s2 := openTest(t, dir, nil)
	after := s2.Stats()
	require.Equal(t, before, after)
	require.Equal(t, []string{"b=2"}, names(s2.List([]byte("u"), nil)))
	require.Equal(t, uint32(4_000_000_000), s2.Clock(), "clock never goes down across restarts")
}

func TestSecondOpenOfLockedDirFails(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil)
	_, err := Open(DefaultConfig(dir), testLogger(t))
	require.ErrorContains(t, err, "locked by another server")
}

func TestSweepDropsExpiredTombstones(t *testing.T) {
	now := &fakeNow{t: Epoch.Add(30 * 24 * time.Hour)}
	dir := t.TempDir()
	s := openTest(t, dir, func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 24 * time.Hour })
	b := s.NewBatch()
	defer b.Close()
	old := StampOf(now.t.Add(-48 * time.Hour))
	fresh := StampOf(now.t.Add(-time.Hour))
	require.True(t, b.Apply(Change{User: []byte("u"), Contact: []byte("live"), Entry: Entry{Stamp: old, Phone: []byte("1")}}))
	b.Update([]byte("u"), []byte("gone"), []byte("1"))
	b.Delete([]byte("u"), []byte("gone"))
	require.True(t, b.Apply(Change{User: []byte("u"), Contact: []byte("recent"), Entry: Entry{Stamp: fresh, Deleted: true}}))
	// An already-expired tombstone for an absent key is not stored at all.
	require.False(t, b.Apply(Change{User: []byte("u"), Contact: []byte("ancient"), Entry: Entry{Stamp: old, Deleted: true}}))
	// But it still deletes an older live entry.
	require.True(t, b.Apply(Change{User: []byte("u"), Contact: []byte("live"), Entry: Entry{Stamp: old + 1, Deleted: true}}))
	commit(t, b)
	require.Equal(t, 3, s.Stats().Tombstones)

	n, err := s.Sweep()
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the tombstone older than the grace goes")
	require.Equal(t, 2, s.Stats().Tombstones)
	digest := s.Digest()
	require.NoError(t, s.Close())

	s2 := openTest(t, dir, func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 24 * time.Hour })
	require.Equal(t, digest, s2.Digest(), "the sweep is durable")
}

func TestDiscardStaleData(t *testing.T) {
	now := &fakeNow{t: Epoch.Add(100 * 24 * time.Hour)}
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = now.Now; c.DiscardStale = true }
	s := openTest(t, dir, mod)
	b := s.NewBatch()
	b.Update([]byte("u"), []byte("c"), []byte("1"))
	commit(t, b)
	b.Close()
	require.NoError(t, s.Close())

	now.t = now.t.Add(6 * 24 * time.Hour) // within the 7-day grace: kept
	s = openTest(t, dir, mod)
	require.False(t, s.Discarded())
	require.Equal(t, 1, s.Stats().Live)
	require.NoError(t, s.Close())

	now.t = now.t.Add(8 * 24 * time.Hour) // away longer than the grace
	s = openTest(t, dir, mod)
	require.True(t, s.Discarded())
	require.Equal(t, 0, s.Stats().Live)
}

func TestIterateVisitsEveryEntry(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	defer b.Close()
	want := map[string]bool{}
	for u := range 50 {
		for c := range 20 {
			user, contact := []byte{byte('A' + u%26), byte('a' + u/26)}, []byte{byte(c + 1)}
			if c%5 == 0 {
				b.Delete(user, contact)
			} else {
				b.Update(user, contact, []byte("1"))
			}
			want[string(user)+"/"+string(contact)] = c%5 == 0
		}
	}
	got := map[string]bool{}
	require.NoError(t, s.Iterate(context.Background(), func(c Change) error {
		got[string(c.User)+"/"+string(c.Contact)] = c.Deleted
		return nil
	}))
	require.Equal(t, want, got)
}

func TestSyncBarrier(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	b := s.NewBatch()
	defer b.Close()
	b.Update([]byte("u"), []byte("c"), []byte("1"))
	seq := commit(t, b)
	require.NoError(t, s.Sync(seq))
	require.GreaterOrEqual(t, s.syncedSeq.Load(), seq)
	require.NoError(t, s.Sync(seq), "a covered barrier returns at once")
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
		{"tiny memtable", func(c *Config) { c.MemTableSize = 1 }},
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

func TestMaxContactsPerBook(t *testing.T) {
	s := openTest(t, t.TempDir(), func(c *Config) { c.MaxContactsPerBook = 3 })
	b := s.NewBatch()
	defer b.Close()
	u := []byte("u")
	for _, c := range []string{"a", "b", "c"} {
		mustUpdate(t, b, u, []byte(c), []byte("1"))
	}
	_, err := b.Update(u, []byte("d"), []byte("1"))
	require.ErrorIs(t, err, ErrBookFull)
	mustUpdate(t, b, u, []byte("a"), []byte("2")) // replacing an existing contact is fine
	b.Delete(u, []byte("b"))
	mustUpdate(t, b, u, []byte("d"), []byte("1")) // room again
	_, err = b.Update(u, []byte("b"), []byte("1"))
	require.ErrorIs(t, err, ErrBookFull, "a tombstoned contact coming back counts as new")
	require.True(t, b.Apply(Change{User: u, Contact: []byte("e"), Entry: Entry{Stamp: s.Clock() + 1, Phone: []byte("9")}}),
		"changes from peers are never refused")
	require.Equal(t, []string{"a=2", "c=1", "d=1", "e=9"}, names(s.List(u, nil)))
}
