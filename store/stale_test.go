package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMarkAndStaleness(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = now.Now }
	s := openTest(t, dir, mod)
	require.Zero(t, s.Mark())
	require.False(t, s.Stale(), "never in contact: nothing to compare, nothing stale")
	now.Add(30 * 24 * time.Hour)
	require.False(t, s.Stale(), "a store alone for a month keeps serving its data")

	require.NoError(t, s.AdvanceMark(StampOf(now.Now())))
	require.NoError(t, s.AdvanceMark(StampOf(now.Now())-10), "the mark never goes back")
	require.Equal(t, StampOf(now.Now()), s.Mark())
	now.Add(6 * 24 * time.Hour)
	require.False(t, s.Stale())
	require.NoError(t, s.Close())

	// Restarting does not advance the mark: only contact does.
	now.Add(2 * 24 * time.Hour)
	s = openTest(t, dir, mod)
	require.True(t, s.Stale(), "8 days since the last contact, whatever the restarts")
	require.NoError(t, s.Close())
	s = openTest(t, dir, mod)
	require.True(t, s.Stale())
}

// The refill keeps what the peer holds and what changed after the mark,
// and drops what the cluster deleted while this store was away.
func TestRefillDropsWhatThePeerNoLongerHolds(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour }
	s := openTest(t, dir, mod)
	update(t, s, "u", "kept-by-peer", "1")
	update(t, s, "u", "deleted-meanwhile", "1")
	del(t, s, "u", "old-tombstone")
	require.NoError(t, s.AdvanceMark(StampOf(now.Now())))
	now.Add(10 * 24 * time.Hour) // cut off for 10 days
	update(t, s, "u", "written-while-cut-off", "1")
	require.True(t, s.Stale())

	mark, err := s.BeginRefill()
	require.NoError(t, err)
	require.Equal(t, s.Mark(), mark)
	// The peer's full transfer: it holds kept-by-peer (older version even:
	// ours wins the merge, and is kept), and something we never had.
	peer := s.NewBatch()
	peer.RecordSeen = true
	require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("kept-by-peer"), Entry: Entry{Stamp: 5, Phone: []byte("0")}}))
	require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("new-on-peer"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("2")}}))
	commit(t, peer)
	// A crash here: the refill is pending at the next start.
	require.NoError(t, s.Close())
	s = openTest(t, dir, mod)
	m, pending := s.RefillPending()
	require.True(t, pending)
	require.Equal(t, mark, m)
	require.True(t, s.Stale())
	// The refill is done again from the start: keys seen before the crash
	// are forgotten, and the transfer repeated.
	_, err = s.BeginRefill()
	require.NoError(t, err)
	peer = s.NewBatch()
	peer.RecordSeen = true
	require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("kept-by-peer"), Entry: Entry{Stamp: 5, Phone: []byte("0")}}))
	require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("new-on-peer"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("2")}}))
	commit(t, peer)
	dropped, err := s.FinishRefill(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, dropped, "deleted-meanwhile and old-tombstone")
	require.Equal(t, []string{"kept-by-peer=1", "new-on-peer=2", "written-while-cut-off=1"}, names(t, s, "u"))
	_, pending = s.RefillPending()
	require.False(t, pending)
	recompute(t, s)
	require.NoError(t, s.Close())
	s = openTest(t, dir, mod)
	_, pending = s.RefillPending()
	require.False(t, pending, "the end of the refill is durable")
	require.Equal(t, []string{"kept-by-peer=1", "new-on-peer=2", "written-while-cut-off=1"}, names(t, s, "u"))
}
