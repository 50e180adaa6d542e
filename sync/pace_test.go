package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

// fakeNow is a clock the test moves.
type fakeNow struct {
	mu  gosync.Mutex
	now time.Time
}

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// pacePeer is a scripted serving peer fed by the manager: it reads what
// the feed sends and answers our HeartBeats only when told.
type pacePeer struct {
	*scriptedPeer
	m          *Manager
	name       string
	unanswered int // our HeartBeats read and not answered yet
	updates    int
}

// readUpdates reads the feed until n more Updates have arrived and the
// HeartBeat sent after them (a feed asks for a confirmation every
// PaceLag/4 changes, whatever the heartbeat interval).
func (p *pacePeer) readUpdates(n int) {
	p.t.Helper()
	want := p.updates + n
	for {
		f := p.next(false)
		switch f.Op {
		case wire.ServerUpdate:
			p.updates++
			if p.updates >= want && p.m.cfg.PaceLag == 0 {
				return // no HeartBeat follows without flow control
			}
		case wire.ServerHeartBeat:
			p.unanswered++
			if p.updates >= want {
				return
			}
		}
	}
}

// answer confirms everything read so far.
func (p *pacePeer) answer() {
	for ; p.unanswered > 0; p.unanswered-- {
		p.send(wire.AppendUpdateClock(nil, 1))
	}
}

// confirm answers, and waits until the manager has taken the answers: the
// peer is then at the head.
func (p *pacePeer) confirm(t *testing.T) {
	t.Helper()
	p.answer()
	require.Eventually(t, func() bool {
		c := p.c()
		c.pubMu.Lock()
		defer c.pubMu.Unlock()
		return posLag(p.m.st.Head(), c.confirmed) == 0
	}, 5*time.Second, time.Millisecond)
}

// fallBehind logs n changes, which every peer reads and leaves
// unconfirmed.
func fallBehind(t *testing.T, m *Manager, ps []*pacePeer, n int, tag string) {
	t.Helper()
	writeChanges(t, m.st, n, tag)
	for _, p := range ps {
		p.readUpdates(n)
	}
}

func writeChanges(t *testing.T, st *store.Store, n int, tag string) {
	t.Helper()
	b := st.NewBatch()
	defer b.Close()
	for i := range n {
		require.NoError(t, b.Update([]byte("u"), fmt.Appendf(nil, "%s-%d", tag, i), []byte("1")))
	}
	_, err := b.Commit()
	require.NoError(t, err)
}

// paceSetup starts a manager with PaceLag 100 and serving peers p1..pN
// that have confirmed nothing but their start, then logs 200 changes
// that each of them reads (with the feed's HeartBeats) and holds
// unconfirmed: every peer is 200 changes behind.
func paceSetup(t *testing.T, peers int, mod func(*Config)) (*Manager, *fakeNow, []*pacePeer) {
	t.Helper()
	names := make([]string, peers)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i+1)
	}
	clock := &fakeNow{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	m, _ := testManager(t, newFakeCluster("me", names...), func(c *Config) {
		c.PaceLag = 100
		c.PaceStall = time.Minute
		c.Now = clock.Now
		if mod != nil {
			mod(c)
		}
	})
	var ps []*pacePeer
	for _, n := range names {
		p := &pacePeer{scriptedPeer: servedFeed(t, m, n), m: m, name: n}
		// It says it serves; the answer to its HeartBeat (after our first
		// HeartBeat) shows its health is recorded.
		p.send(wire.AppendHeartBeat(nil, wire.HealthServing, 0))
		for got := false; !got; {
			switch p.next(false).Op {
			case wire.ServerHeartBeat:
				p.unanswered++
			case wire.ServerUpdateClock:
				got = true
			}
		}
		p.answer()
		ps = append(ps, p)
	}
	fallBehind(t, m, ps, 200, "bulk")
	return m, clock, ps
}

// paced starts Pace(n) and returns a channel closed when it admits.
func paced(m *Manager, n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Pace(context.Background(), n)()
	}()
	return done
}

// requireHeld checks that a Pace call is waiting in the admission queue
// and has not returned.
func requireHeld(t *testing.T, m *Manager, done <-chan struct{}) {
	t.Helper()
	require.Eventually(t, func() bool { return m.paceQueued.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the commit was not held")
	select {
	case <-done:
		t.Fatal("the commit was admitted while the peers were behind")
	default:
	}
}

func requireAdmitted(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the commit was not admitted")
	}
}

// Flow control holds a bulk commit while more than half of the serving
// peers (and at least two) are behind, and admits it once enough of them
// confirm; with PaceAll it waits for every serving peer.
func TestPaceHoldsBulkCommitsWhileMostPeersAreBehind(t *testing.T) {
	tests := []struct {
		name        string
		peers       int
		all         bool
		answerFirst int // peers that confirm before the commit is admitted
	}{
		{name: "two peers, majority: one confirming is enough", peers: 2, answerFirst: 1},
		{name: "two peers, all: both must confirm", peers: 2, all: true, answerFirst: 2},
		{name: "three peers, majority: two behind hold, one behind does not", peers: 3, answerFirst: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, ps := paceSetup(t, tc.peers, func(c *Config) { c.PaceAll = tc.all })
			done := paced(m, 50)
			requireHeld(t, m, done)
			for i := range tc.answerFirst {
				if i == tc.answerFirst-1 {
					break
				}
				ps[i].confirm(t)
				// Still held: not enough peers confirmed yet.
				requireHeld(t, m, done)
			}
			ps[tc.answerFirst-1].answer()
			requireAdmitted(t, done)
			require.Equal(t, uint64(1), m.stats.PacedCommits.Load())
			require.Zero(t, m.paceAdmitted.Load(), "a released commit still counts as pending")
		})
	}
}

// c returns the manager's feed connection of this peer.
func (p *pacePeer) c() *peerConn {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.peers[p.name].in
}

// One slow peer never slows clients (majority), a commit of a few changes
// is never held, a peer whose confirmations stood still longer than
// PaceStall is not waited for, and a starting (syncing) peer is not
// waited for.
func TestPaceDoesNotHold(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		// setup runs after every peer is 200 changes behind.
		setup func(t *testing.T, m *Manager, clock *fakeNow, ps []*pacePeer)
		n     int
	}{
		{name: "one of two peers behind", n: 50, setup: func(t *testing.T, m *Manager, _ *fakeNow, ps []*pacePeer) {
			ps[0].confirm(t)
		}},
		{name: "a small commit", n: PaceSmall, setup: func(*testing.T, *Manager, *fakeNow, []*pacePeer) {}},
		{name: "peers stalled longer than PaceStall", n: 50, setup: func(_ *testing.T, _ *Manager, clock *fakeNow, _ []*pacePeer) {
			clock.Add(time.Minute + time.Second)
		}},
		{name: "peers behind and syncing", n: 50, setup: func(t *testing.T, m *Manager, _ *fakeNow, ps []*pacePeer) {
			for _, p := range ps {
				p.send(wire.AppendHeartBeat(nil, wire.HealthSyncing, 0))
			}
			require.Eventually(t, func() bool {
				for _, p := range ps {
					if wire.Health(p.c().lastHealth.Load()) != wire.HealthSyncing {
						return false
					}
				}
				return true
			}, 5*time.Second, time.Millisecond)
		}},
		{name: "pacing off", n: 50, mod: func(c *Config) { c.PaceLag = 0 }, setup: func(*testing.T, *Manager, *fakeNow, []*pacePeer) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, clock, ps := paceSetup(t, 2, tc.mod)
			tc.setup(t, m, clock, ps)
			requireAdmitted(t, paced(m, tc.n))
			require.Zero(t, m.stats.PacedCommits.Load())
		})
	}
}

// A peer that stops confirming while a commit waits for it stops being
// waited for after PaceStall, with no confirmation to wake the wait.
func TestPaceStopsWaitingForAStalledPeer(t *testing.T) {
	m, clock, _ := paceSetup(t, 2, func(c *Config) { c.PaceStall = 50 * time.Millisecond })
	done := paced(m, 50)
	requireHeld(t, m, done)
	clock.Add(time.Second) // the re-check every PaceStall finds them stalled
	requireAdmitted(t, done)
}

// A peer far behind (more than paceEntry*PaceLag changes: back from a
// partition, reconnected) is caught up by its feed before flow control
// waits for it, so a healed partition does not hold clients for its whole
// backlog; once within reach it is waited for as before.
func TestPaceWaitsForAFarBehindPeerOnlyOnceWithinReach(t *testing.T) {
	m, _, ps := paceSetup(t, 2, nil)
	writeChanges(t, m.st, 300, "more") // 500 behind: beyond 4*100
	requireAdmitted(t, paced(m, 50))
	require.Zero(t, m.stats.PacedCommits.Load(), "held for peers far behind")
	for _, p := range ps {
		p.readUpdates(300)
		p.confirm(t)
	}
	fallBehind(t, m, ps, 200, "again") // 200 behind: within reach
	done := paced(m, 50)
	requireHeld(t, m, done)
	ps[0].answer()
	requireAdmitted(t, done)
}

// A peer that had nothing to confirm for longer than PaceStall (a quiet
// hour) is not taken for stalled when a burst begins: its stall clock
// starts when the feed writes to it again.
func TestPaceQuietPeersAreNotStalledWhenABurstBegins(t *testing.T) {
	m, clock, ps := paceSetup(t, 2, nil)
	for _, p := range ps {
		p.confirm(t)
	}
	clock.Add(time.Hour)
	fallBehind(t, m, ps, 200, "burst")
	done := paced(m, 50)
	requireHeld(t, m, done)
	ps[1].answer()
	requireAdmitted(t, done)
}
