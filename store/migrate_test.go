package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A data dir in layout 2 (entries and metadata under their tags, nothing
// derived) opens: the shard states, book counts and tombstone index are
// derived once, the data is unchanged, and the old last-active time
// becomes the mark.
func TestUpgradeFromTaggedLayout(t *testing.T) {
	dir := t.TempDir()
	db := rawOpen(t, dir)
	put := func(user, contact string, e Entry) {
		rawSet(t, db, appendEntryKey(nil, []byte(user), []byte(contact)), appendValue(nil, e))
	}
	put("alice", "Juan", Entry{Stamp: 100, Phone: []byte("85999999999")})
	put("alice", "", Entry{Stamp: 101, Phone: []byte("1")})
	put("alice", "gone", Entry{Stamp: 102, Deleted: true})
	put("", "x", Entry{Stamp: 103, Phone: []byte("2")})
	put("bob", "old", Entry{Stamp: 90, Deleted: true})
	rawSet(t, db, metaClock, u32(500))
	rawSet(t, db, metaLastActive, u32(400))
	rawSet(t, db, metaFormat, u32(formatTagged))
	require.NoError(t, db.Close())

	now := newFakeNow(TimeOf(600))
	s := openTest(t, dir, func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 365 * 24 * time.Hour })
	require.Equal(t, []string{"=1", "Juan=85999999999"}, names(t, s, "alice"))
	require.Equal(t, []string{"x=2"}, names(t, s, ""))
	st := s.Stats()
	require.Equal(t, 3, st.Live)
	require.Equal(t, 2, st.Tombstones)
	require.Equal(t, 2, st.Books)
	require.Equal(t, uint32(500), s.clock.Raw())
	require.Equal(t, uint32(400), s.Mark(), "the last time the old store ran is the best mark there is")
	require.NotZero(t, s.StoreID())
	r := recompute(t, s)
	require.NoError(t, s.Close())

	s = openTest(t, dir, func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 365 * 24 * time.Hour })
	require.Equal(t, r.digest, s.Digest(), "the upgrade happens once")
	update(t, s, "alice", "new", "3")
	recompute(t, s)
}

func TestUnknownLayoutIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := rawOpen(t, dir)
	rawSet(t, db, []byte("no-separator"), []byte("U\x00\x00\x00\x01"))
	require.NoError(t, db.Close())
	_, err := Open(DefaultConfig(dir), testLogger(t))
	require.ErrorIs(t, err, ErrCorrupt)
}
