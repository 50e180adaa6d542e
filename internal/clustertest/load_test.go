package clustertest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/stretchr/testify/require"
)

// Replication under load (issue 11): a peer that falls behind catches up
// from the change log on the same connection, never by a disconnect or a
// full transfer; a full transfer under continuous load finishes.

// A peer that reads its feed slower than clients write falls far behind,
// and catches up from the log (read back from disk: the in-memory tail is
// tiny here) with no disconnect and no full transfer, while clients are
// not slowed.
func TestSlowPeerCatchesUpFromTheLog(t *testing.T) {
	// Heartbeats at 400 ms (silence after 1.2 s) and memberlist's local
	// timings: "no disconnect" is about the feed, not about a loaded test
	// machine starving a process past the harness's tight failure detection.
	h := New(t, 2, Options{BaseIP: 220, Heartbeat: 400 * time.Millisecond, Profile: "local",
		Tune: func(i int, c *node.Config) { c.Store.TailBytes = 64 << 10 }})
	h.WaitConverged(20 * time.Second)
	n0 := h.Node(0).Node
	feeds, transfers := n0.Sync.Stats().FeedsAttached.Load(), n0.Sync.Stats().TransfersStarted.Load()
	h.Throttle(1, 0, 4<<20) // node 1 reads node 0's feed at 4 MiB/s
	c := h.Client(0, "kai")
	const n = 20000 // 10.7 MB of feed
	start := time.Now()
	for i := range n {
		require.NoError(t, c.Update(fmt.Sprintf("c%05d", i), "85999999999"))
	}
	_, err := c.List()
	require.NoError(t, err)
	t.Logf("%d client updates took %v with a slow peer", n, time.Since(start))
	var maxLag uint64
	h.WaitFor(30*time.Second, "node 1 to catch up", func() bool {
		for _, p := range n0.Sync.Peers() {
			maxLag = max(maxLag, p.LagChanges)
		}
		return len(h.List(1, "kai")) == n
	})
	t.Logf("largest lag seen: %d changes", maxLag)
	require.Greater(t, maxLag, uint64(n/4), "node 1 fell behind")
	h.Throttle(1, 0, 0)
	h.WaitConverged(20 * time.Second)
	s := n0.Sync.Stats()
	require.Equal(t, feeds, s.FeedsAttached.Load(), "no disconnect")
	require.Equal(t, transfers, s.TransfersStarted.Load(), "no full transfer")
	// (Whether the feed read back from disk depends on how much the socket
	// buffers absorbed; the store's own tests read the log from disk.)
	t.Logf("fed %d bytes live, %d catching up", s.LiveBytesTx.Load(), s.CatchUpBytesTx.Load())
}

// A member joining while a client writes continuously takes one full
// transfer, which finishes, then catches up from the log and serves.
func TestTransferUnderContinuousLoadCompletes(t *testing.T) {
	// A transfer is given up on after SyncTimeout without progress: the
	// harness's 3 s is short for a loaded machine running -race.
	h := New(t, 2, Options{BaseIP: 230, Heartbeat: 400 * time.Millisecond, Profile: "local",
		Tune: func(_ int, c *node.Config) { c.Sync.SyncTimeout = 20 * time.Second }})
	h.WaitConverged(20 * time.Second)
	fill(t, h, 0, "lou", "pre-", "1", 20000)
	h.WaitConverged(20 * time.Second)

	var stop atomic.Bool
	var progress atomic.Int64
	written := make(chan int)
	loadErr := make(chan error, 1)
	go func() {
		c := h.Client(1, "load")
		i := 0
		var err error
		for !stop.Load() && err == nil {
			if err = c.Update(fmt.Sprintf("l%07d", i), "2"); err == nil {
				if i++; i%1000 == 0 {
					progress.Store(int64(i))
					_, err = c.List()
				}
			}
		}
		if err == nil {
			_, err = c.List()
		}
		loadErr <- err
		written <- i
	}()
	h.WaitFor(10*time.Second, "the load under way", func() bool { return progress.Load() >= 1000 })
	var before [2]uint64
	for i := range 2 {
		before[i] = h.Node(i).Node.Sync.Stats().TransfersStarted.Load()
	}
	j := h.Add()
	h.WaitFor(30*time.Second, "the new member to serve", func() bool { return j.Node != nil && j.Node.Ready() })
	stop.Store(true)
	require.NoError(t, <-loadErr, "the load ran the whole time")
	n := <-written
	h.WaitConverged(30 * time.Second)
	started, aborted := uint64(0), uint64(0)
	for i := range 2 {
		s := h.Node(i).Node.Sync.Stats()
		started += s.TransfersStarted.Load() - before[i]
		aborted += s.TransfersAborted.Load()
	}
	require.Equal(t, uint64(1), started, "one full transfer for the new member")
	require.Zero(t, aborted)
	require.Len(t, h.List(2, "lou"), 20000)
	require.Len(t, h.List(2, "load"), n)
	t.Logf("%d changes written during the join", n)
}

// A member joining while a client writes on reports serving only once a
// catch-up round with every peer is short (ServeLag): its first stage (a
// transfer over a slow link) takes seconds, during which the load goes
// on, so it takes at least one more round before serving, and then lacks
// at most what was written within about one round.
func TestJoinerUnderLoadServesOnlyWhenCaughtUp(t *testing.T) {
	const serveLag = 300 * time.Millisecond
	h := New(t, 2, Options{BaseIP: 240, Heartbeat: 400 * time.Millisecond, Profile: "local",
		Tune: func(i int, c *node.Config) {
			c.Sync.SyncTimeout = 20 * time.Second
			c.Sync.ServeLag = serveLag
		}})
	h.WaitConverged(20 * time.Second)
	fill(t, h, 0, "pre", "pre-", "1", 4000)
	h.WaitConverged(20 * time.Second)

	// The joiner reads each peer at 1 MiB/s: the 2 MB transfer takes about
	// two seconds; the load (about 250 kB/s) is slower than the link, so
	// each round is shorter than the one before.
	joinerIP := fmt.Sprintf("127.0.0.%d", 240+2)
	for i := range 2 {
		h.net.Throttle(joinerIP, h.Node(i).IP, 1<<20)
	}
	var stop atomic.Bool
	written := make(chan int, 1)
	go func() {
		c := h.Client(0, "load")
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		i := 0
		for !stop.Load() {
			<-tick.C
			if c.Update(fmt.Sprintf("l%07d", i), "2") != nil {
				break
			}
			i++
		}
		_, _ = c.List()
		written <- i
	}()
	j := h.Add()
	h.WaitFor(60*time.Second, "the new member to serve", func() bool { return j.Node != nil && j.Node.Ready() })
	stop.Store(true)
	n := <-written
	rounds := j.Node.Sync.Stats().CatchUpRounds.Load()
	t.Logf("joiner served after %d extra catch-up rounds; note %q; %d load changes", rounds, j.Node.Sync.SyncNote(), n)
	require.GreaterOrEqual(t, rounds, uint64(1), "the first stage took longer than the serve lag: another round before serving")
	require.NotContains(t, j.Node.Sync.SyncNote(), "behind", "the rounds shrank: it caught up")
	for i := range 2 {
		h.net.Throttle(joinerIP, h.Node(i).IP, 0)
	}
	h.WaitConverged(30 * time.Second)
	require.Len(t, h.List(2, "load"), n)
}
