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

	require.NoError(t, s.AdvanceMark(StampOf(now.Now()), Pos{}))
	require.NoError(t, s.AdvanceMark(StampOf(now.Now())-10, Pos{}), "the mark never goes back")
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

// The refill keeps what the peer holds and what this store changed after
// its mark, and drops everything else: what the cluster deleted while this
// store was away, whoever it had come from.
func TestRefillDropsWhatThePeerNoLongerHolds(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour }
	s := openTest(t, dir, mod)
	require.NoError(t, s.SaveCursor("peer", Cursor{})) // a peer that never confirmed: the log is kept
	update(t, s, "u", "kept-by-peer", "1")
	update(t, s, "u", "deleted-meanwhile", "1")
	del(t, s, "u", "old-tombstone")
	require.NoError(t, s.AdvanceMark(StampOf(now.Now()), s.Head()))
	now.Add(time.Second)
	// Received from a peer just before contact was lost (stamped after the
	// mark, but not this store's own change), and deleted meanwhile.
	apply(t, s, Change{User: []byte("u"), Contact: []byte("from-a-peer"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("7")}})
	now.Add(10 * 24 * time.Hour) // cut off for 10 days
	_, err := s.Sweep()          // old-tombstone expires (whether or not the background sweep was first)
	require.NoError(t, err)
	update(t, s, "u", "written-while-cut-off", "1")
	require.True(t, s.Stale())

	mark, err := s.BeginRefill()
	require.NoError(t, err)
	require.Equal(t, s.Mark(), mark)
	transfer := func() {
		// The peer's full transfer: it holds kept-by-peer (an older version,
		// even: ours wins the merge, and is kept), and something we lacked.
		peer := s.NewBatch()
		peer.RecordSeen = true
		require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("kept-by-peer"), Entry: Entry{Stamp: 5, Phone: []byte("0")}}))
		require.NoError(t, peer.Apply(Change{User: []byte("u"), Contact: []byte("new-on-peer"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("2")}}))
		commit(t, peer)
	}
	transfer()
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
	transfer()
	dropped, err := s.FinishRefill(t.Context(), Pos{})
	require.NoError(t, err)
	require.Equal(t, 2, dropped, "deleted-meanwhile and from-a-peer")
	want := []string{"kept-by-peer=1", "new-on-peer=2", "written-while-cut-off=1"}
	require.Equal(t, want, names(t, s, "u"))
	_, pending = s.RefillPending()
	require.False(t, pending)
	recompute(t, s)
	require.NoError(t, s.Close())
	s = openTest(t, dir, mod)
	_, pending = s.RefillPending()
	require.False(t, pending, "the end of the refill is durable")
	require.Equal(t, want, names(t, s, "u"))
}

// When the change log no longer reaches back to the mark (more changes
// than it keeps), an entry stamped after the mark is kept instead.
func TestRefillWithoutTheLogKeepsWhatIsStampedAfterTheMark(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now })
	update(t, s, "u", "before", "1")
	require.NoError(t, s.AdvanceMark(StampOf(now.Now()), s.Head()))
	now.Add(10 * 24 * time.Hour)
	update(t, s, "u", "after", "1")
	apply(t, s, Change{User: []byte("u"), Contact: []byte("received-after"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("3")}})
	require.NoError(t, s.TrimLog()) // no cursor: the whole log goes
	_, err := s.BeginRefill()
	require.NoError(t, err)
	dropped, err := s.FinishRefill(t.Context(), Pos{})
	require.NoError(t, err)
	require.Equal(t, 1, dropped)
	require.Equal(t, []string{"after=1", "received-after=3"}, names(t, s, "u"))
}

// A log trimmed below every peer's cursor past the mark's position still
// lets the refill drop: every peer had those changes, so whether they
// stand is the peer's transfer's to say. (Falling back to the stamp rule
// here kept everything received after the mark, and brought back what the
// cluster deleted meanwhile.)
func TestRefillDropsOwnChangesEveryPeerHad(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour })
	require.NoError(t, s.SaveCursor("peer", Cursor{}))
	require.NoError(t, s.AdvanceMark(StampOf(now.Now()), s.Head()))
	now.Add(time.Second)
	update(t, s, "u", "mine-deleted-meanwhile", "1")
	apply(t, s, Change{User: []byte("u"), Contact: []byte("received-deleted-meanwhile"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("2")}})
	require.NoError(t, s.SaveCursor("peer", Cursor{Pos: s.Head()})) // the peer confirmed all
	require.NoError(t, s.TrimLog())
	require.Zero(t, s.LogForced(), "trimmed below the cursor: not forced")
	now.Add(10 * 24 * time.Hour)
	update(t, s, "u", "written-while-cut-off", "3")
	require.True(t, s.Stale())
	_, err := s.BeginRefill()
	require.NoError(t, err)
	dropped, err := s.FinishRefill(t.Context(), Pos{}) // the peer's transfer holds neither
	require.NoError(t, err)
	require.Equal(t, 2, dropped)
	require.Equal(t, []string{"written-while-cut-off=3"}, names(t, s, "u"))

	// The LogRetain cap trims past a cursor: that trim is forced.
	s2 := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.LogRetain = NumShards })
	require.NoError(t, s2.SaveCursor("peer", Cursor{}))
	for i := range 10 * NumShards {
		update(t, s2, "u", string(rune('a'+i%26))+string(rune('a'+i/26)), "1")
	}
	require.NoError(t, s2.TrimLog())
	require.NotZero(t, s2.LogForced())
}

// The mark's position lags what peers confirmed (it moves only when a
// whole log is confirmed). A change of ours that the refill's source had
// confirmed, and no longer holds, was replaced there: it is dropped, not
// kept as made while cut off. Without the source's position it is kept.
func TestRefillDropsWhatTheSourceConfirmedAndNoLongerHolds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		confirmed bool
		want      []string
	}{
		{"source confirmed it", true, []string{"written-while-cut-off=3"}},
		{"source position unknown", false, []string{"confirmed-then-deleted=1", "written-while-cut-off=3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
			s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour })
			require.NoError(t, s.SaveCursor("source", Cursor{}))
			require.NoError(t, s.AdvanceMark(StampOf(now.Now()), s.Head()))
			now.Add(time.Second)
			update(t, s, "u", "confirmed-then-deleted", "1")
			confirmed := s.Head() // the source confirmed it; the mark did not move yet
			now.Add(10 * 24 * time.Hour)
			update(t, s, "u", "written-while-cut-off", "3")
			_, err := s.BeginRefill()
			require.NoError(t, err)
			var pos Pos
			if tc.confirmed {
				pos = confirmed
			}
			_, err = s.FinishRefill(t.Context(), pos)
			require.NoError(t, err)
			require.Equal(t, tc.want, names(t, s, "u"))
		})
	}
}

// While a refill is pending, a live feed's change (not the transfer's) is
// on the peer that sent it: it is kept, not dropped as stale.
func TestRefillKeepsChangesFedDuringIt(t *testing.T) {
	now := newFakeNow(Epoch.Add(100 * 24 * time.Hour))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour })
	require.NoError(t, s.AdvanceMark(StampOf(now.Now()), s.Head()))
	apply(t, s, Change{User: []byte("u"), Contact: []byte("old"), Entry: Entry{Stamp: StampOf(now.Now()) - 5, Phone: []byte("0")}})
	now.Add(10 * 24 * time.Hour)
	_, err := s.BeginRefill()
	require.NoError(t, err)
	apply(t, s, Change{User: []byte("u"), Contact: []byte("fed-live"), Entry: Entry{Stamp: StampOf(now.Now()), Phone: []byte("1")}})
	dropped, err := s.FinishRefill(t.Context(), Pos{})
	require.NoError(t, err)
	require.Equal(t, 1, dropped, "old: held by no peer")
	require.Equal(t, []string{"fed-live=1"}, names(t, s, "u"))
}
