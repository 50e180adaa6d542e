package clustertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

// Rules about time (issue 10, PROTOCOL.md "Stamps and the merge rule"),
// each tested by moving the nodes' clocks, not by waiting: the harness
// shifts a node's wall clock (ShiftClock), which every component reads.

const day = 24 * time.Hour

// waitList waits until node i lists want for user.
func waitList(t *testing.T, h *Harness, i int, user string, want []string) {
	t.Helper()
	h.WaitFor(20*time.Second, fmt.Sprintf("%s lists %v for %s", h.Node(i).Name, want, user), func() bool {
		return fmt.Sprint(h.List(i, user)) == fmt.Sprint(want)
	})
}

// sweep runs node i's tombstone sweep now (the background one runs every
// second; tests move clocks by days and want the result at once).
func sweep(t *testing.T, h *Harness, i int) {
	t.Helper()
	_, err := h.Node(i).Node.Store.Sweep()
	require.NoError(t, err)
}

// A whole cluster stopped for longer than the tombstone grace loses
// nothing: every member finds its data old, and no serving peer fresher
// than it, so it keeps its data as current.
func TestWholeClusterStoppedLongerThanGraceKeepsEverything(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 140})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "ana", "a", "1")
	put(t, h, 1, "ana", "b", "2")
	put(t, h, 2, "ana", "c", "3")
	del(t, h, 0, "ana", "b")
	h.WaitConverged(10 * time.Second)
	for i := range 3 {
		h.Stop(i)
	}
	h.ShiftClocks(30 * day)
	for i := range 3 {
		h.Restart(i)
	}
	h.WaitConverged(30 * time.Second)
	for i := range 3 {
		require.Equal(t, []string{"a=1", "c=3"}, h.List(i, "ana"), "node %d", i)
	}
	// And the cluster works as before: marks move on, changes replicate.
	put(t, h, 2, "ana", "d", "4")
	for i := range 3 {
		waitList(t, h, i, "ana", []string{"a=1", "c=3", "d=4"})
	}
	h.WaitFor(10*time.Second, "every member fresh again", func() bool {
		for _, in := range h.Running() {
			if in.Node.Store.Stale() {
				return false
			}
		}
		return true
	})
}

// A member away for longer than the grace, with one brief lone start on
// the way (no peer answering), brings back nothing the others deleted and
// expired meanwhile, and keeps what it changed alone.
func TestMemberAwayLongerThanGraceBringsNothingBack(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 150})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "bo", "keep", "1")
	put(t, h, 0, "bo", "gone-1", "2")
	put(t, h, 0, "bo", "gone-2", "3")
	h.WaitConverged(10 * time.Second)
	h.Kill(2)
	del(t, h, 0, "bo", "gone-1")
	del(t, h, 1, "bo", "gone-2")

	// Five days later node 2 starts alone, takes a change, and stops.
	h.Advance(5 * day)
	h.Partition([]int{0, 1}, []int{2})
	h.Restart(2)
	h.WaitFor(10*time.Second, "node 2 serving alone", func() bool { return h.Node(2).Node.Ready() })
	require.True(t, h.Node(2).Node.Sync.Alone())
	put(t, h, 2, "bo", "alone", "9")
	h.Kill(2)
	h.Heal()

	// Five more days: node 2 has been out of contact for ten; the others
	// drop the tombstones.
	h.Advance(5 * day)
	for i := range 2 {
		sweep(t, h, i)
		require.Zero(t, h.Node(i).Node.Store.Stats().Tombstones, "node %d expired the deletes", i)
	}
	require.Equal(t, []string{"keep=1"}, h.List(0, "bo"))

	h.Restart(2)
	h.WaitConverged(30 * time.Second)
	for i := range 3 {
		require.Equal(t, []string{"alone=9", "keep=1"}, h.List(i, "bo"), "node %d", i)
	}
	require.NotZero(t, h.Node(2).Node.Sync.Stats().RefillDropped.Load(), "node 2 dropped what the cluster deleted")
}

// A member cut off (running) for longer than the grace keeps what it
// acknowledged while cut off, sends it on, and resurrects nothing.
func TestPartitionedMemberLongerThanGrace(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 160})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "cy", "x", "1")
	put(t, h, 0, "cy", "y", "2")
	h.WaitConverged(10 * time.Second)
	h.Partition([]int{0, 1}, []int{2})
	h.WaitFor(10*time.Second, "node 2 to see itself alone", func() bool {
		return len(h.Node(2).Node.Sync.Peers()) == 0
	})
	del(t, h, 0, "cy", "x")
	put(t, h, 2, "cy", "z", "3") // acknowledged while cut off
	h.Advance(8 * day)
	for i := range 2 {
		sweep(t, h, i)
	}
	h.WaitFor(10*time.Second, "node 2 to know its data is stale", func() bool { return h.Node(2).Node.Store.Stale() })
	h.Heal()
	for i := range 3 {
		waitList(t, h, i, "cy", []string{"y=2", "z=3"})
	}
	h.WaitConverged(30 * time.Second)
}

// One member a year ahead: the others' clocks stay within the bound, they
// report it, it reports its own clock wrong (not ready), and a later write
// on a member with a sane clock still wins over the one it made.
func TestMemberAYearAheadCannotBreakTheOthers(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 170, HTTP: true})
	h.WaitConverged(20 * time.Second)
	h.ShiftClock(1, 365*day)
	put(t, h, 1, "di", "k", "from-the-future")
	for i := range 3 {
		waitList(t, h, i, "di", []string{"k=from-the-future"})
	}
	put(t, h, 0, "di", "k", "later")
	for i := range 3 {
		waitList(t, h, i, "di", []string{"k=later"})
	}
	for _, i := range []int{0, 2} {
		n := h.Node(i).Node
		wall := store.StampOf(h.Node(i).Now())
		require.LessOrEqual(t, n.Store.Clock(), wall+60+1, "node %d's clock within the bound", i)
		h.WaitFor(10*time.Second, fmt.Sprintf("node %d to report node 1's clock", i), func() bool {
			return n.Sync.Stats().ClockAhead.Load() > 0
		})
		var found bool
		for _, p := range n.Sync.Peers() {
			if p.Name == h.Node(1).Name {
				found = true
				require.Greater(t, p.AheadBy, 300*day, "status shows how far ahead")
			}
		}
		require.True(t, found)
	}
	h.WaitFor(20*time.Second, "node 1 to say its own clock is wrong", func() bool {
		return !h.Node(1).Node.Ready() && h.Node(1).Node.NotReadyReason() != ""
	})
	require.Contains(t, h.Node(1).Node.NotReadyReason(), "ahead of most serving peers")
	require.True(t, h.Node(0).Node.Ready(), "the members with sane clocks stay ready")
	require.True(t, h.Node(2).Node.Ready())
}

// A key rewritten thousands of times a second runs ahead of real time on
// its own: that is no clock error, and the peers neither report one nor
// let their clocks follow it.
func TestHotKeyStampsAreNoClockAlarm(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 175})
	h.WaitConverged(20 * time.Second)
	c := h.Client(0, "hot")
	const n = 5000
	for i := range n {
		require.NoError(t, c.Update("k", fmt.Sprint(i)))
	}
	_, err := c.List()
	require.NoError(t, err)
	waitList(t, h, 1, "hot", []string{fmt.Sprintf("k=%d", n-1)})
	e, ok, err := h.Node(1).Node.Store.Get([]byte("hot"), []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	wall := store.StampOf(h.Node(1).Now())
	require.Greater(t, e.Stamp, wall+1000, "the key's stamp ran far ahead of real time")
	require.LessOrEqual(t, h.Node(1).Node.Store.Clock(), wall+61, "no clock followed it")
	require.Zero(t, h.Node(1).Node.Sync.Stats().ClockAhead.Load(), "no clock alarm for a hot key")
}

// A HeartBeat or UpdateClock with the largest clock moves nobody's clock
// past the bound.
func TestHeartBeatFromTheEndOfTimeIsBounded(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 180})
	h.WaitConverged(20 * time.Second)
	conn, _ := impersonate(t, h, 0, 1)
	hb := wire.AppendHeartBeat(nil, wire.HealthServing, 0xFFFFFFFF)
	_, err := conn.Write(append(hb, wire.AppendUpdateClock(nil, 0xFFFFFFFF)...))
	require.NoError(t, err)
	n := h.Node(0).Node
	h.WaitFor(10*time.Second, "the clock to be reported", func() bool { return n.Sync.Stats().ClockAhead.Load() > 0 })
	require.LessOrEqual(t, n.Store.Clock(), store.StampOf(h.Node(0).Now())+61)
	before := store.StampOf(h.Node(0).Now())
	put(t, h, 0, "ed", "k", "1")
	e, ok, err := n.Store.Get([]byte("ed"), []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Less(t, e.Stamp, before+62, "local stamps stay near wall time")
}

// Tombstone expiry never by itself makes members look different: a quiet
// cluster whose tombstones expire runs no transfer.
func TestExpiryTriggersNoTransfer(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 190})
	h.WaitConverged(20 * time.Second)
	for i := range 20 {
		put(t, h, i%3, "fy", fmt.Sprint(i), "1")
	}
	for i := range 10 {
		del(t, h, i%3, "fy", fmt.Sprint(i))
	}
	h.WaitConverged(10 * time.Second)
	var before [3]uint64
	for i := range 3 {
		s := h.Node(i).Node.Sync.Stats()
		before[i] = s.AntiEntropyPulls.Load() + s.TransfersStarted.Load()
	}
	// The members expire the tombstones at different moments.
	h.Advance(8 * day)
	sweep(t, h, 0)
	for i := range 15 { // several anti-entropy rounds (200 ms each)
		if i == 5 {
			sweep(t, h, 1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.WaitConverged(10 * time.Second)
	for i := range 3 {
		s := h.Node(i).Node.Sync.Stats()
		require.Equal(t, before[i], s.AntiEntropyPulls.Load()+s.TransfersStarted.Load(), "node %d pulled or sent a transfer", i)
		require.Zero(t, h.Node(i).Node.Store.Stats().Tombstones)
	}
}

// A member whose seeds never answer serves its own data after
// --sync-timeout, ready, and says it is alone.
func TestMemberWhoseSeedsNeverAnswerServesAlone(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 200, Tune: func(i int, c *node.Config) {
		c.Sync.SyncTimeout = time.Second
	}})
	h.WaitConverged(20 * time.Second)
	put(t, h, 1, "gu", "mine", "1")
	h.WaitConverged(10 * time.Second)
	h.Kill(0)
	h.Kill(1)
	h.Restart(1) // its only seed (node 0) is down
	h.WaitFor(10*time.Second, "node 1 ready alone", func() bool { return h.Node(1).Node.Ready() })
	require.True(t, h.Node(1).Node.Sync.Alone())
	require.Contains(t, h.Node(1).Node.Sync.SyncNote(), "alone")
	require.Equal(t, []string{"mine=1"}, h.List(1, "gu"))
}
