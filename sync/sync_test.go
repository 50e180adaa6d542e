package sync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/membership"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Every test of this package ends with no goroutine of the package left:
// connections, owners, dial loops and the manager's loops all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pebble's background goroutines of stores closed by t.Cleanup
		// after the leak check of the test binary's own exit are not ours
		goleak.IgnoreAnyFunction("github.com/cockroachdb/pebble/v2.(*DB).maybeScheduleFlush"),
	)
}

// fakeCluster is a static member list: us, and the peers the test plays.
type fakeCluster struct {
	mu      gosync.Mutex
	members map[string]membership.Member
	events  chan membership.Event
}

func newFakeCluster(self string, peers ...string) *fakeCluster {
	f := &fakeCluster{members: map[string]membership.Member{}, events: make(chan membership.Event)}
	for _, n := range append([]string{self}, peers...) {
		f.members[n] = membership.Member{Name: n, State: "alive", IP: net.IPv4(127, 0, 0, 1),
			Meta: membership.Meta{ContactPort: 9000, StoreID: uint64(len(n)) * 7919,
				Published: membership.Published{Health: uint8(wire.HealthServing)}}}
	}
	return f
}

func (f *fakeCluster) Members() []membership.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []membership.Member
	for _, m := range f.members {
		out = append(out, m)
	}
	return out
}

func (f *fakeCluster) Lookup(name string) (membership.Member, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[name]
	return m, ok
}

func (f *fakeCluster) Joined() bool                                      { return true }
func (f *fakeCluster) Publish(membership.Published, time.Duration) error { return nil }
func (f *fakeCluster) Events() <-chan membership.Event                   { return f.events }
func (f *fakeCluster) ClockOffsets() map[string]membership.ClockOffset   { return nil }

func (f *fakeCluster) setHealth(name string, h wire.Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[name]
	m.Meta.Health = uint8(h)
	f.members[name] = m
}

// scriptedPeer is the far end of an in-memory connection, played by the
// test: it reads our frames and writes its own.
type scriptedPeer struct {
	t    testing.TB
	conn net.Conn
	dec  *wire.Decoder
}

func (p *scriptedPeer) send(frames ...[]byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for _, f := range frames {
		_, err := p.conn.Write(f)
		require.NoError(p.t, err)
	}
}

// next reads our next frame that is not a HeartBeat when skipHB.
func (p *scriptedPeer) next(skipHB bool) wire.ServerFrame {
	p.t.Helper()
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f wire.ServerFrame
		require.NoError(p.t, p.dec.ServerFrame(&f))
		if skipHB && f.Op == wire.ServerHeartBeat {
			continue
		}
		return f
	}
}

func testManager(t testing.TB, cl Cluster, mod func(*Config)) (*Manager, *store.Store) {
	t.Helper()
	scfg := store.DefaultConfig(t.TempDir())
	st, err := store.Open(scfg, hclog.NewNullLogger())
	require.NoError(t, err)
	cfg := DefaultConfig("me")
	cfg.HeartbeatInterval = time.Hour // only the HeartBeats the tests cause
	cfg.ReconcileInterval = 20 * time.Millisecond
	cfg.AntiEntropyInterval = time.Hour
	cfg.Dialer = func(context.Context, string) (net.Conn, error) { return nil, errNoNetwork }
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg, st, cl)
	require.NoError(t, err)
	t.Cleanup(func() {
		m.Abort()
		require.NoError(t, st.Close())
	})
	return m, st
}

var errNoNetwork = errors.New("test: no network")

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// dialedBy returns a Dialer that hands our side of a pipe to the manager
// and the far side, the peer's, to the test.
func dialedBy(t testing.TB, name string) (func(context.Context, string) (net.Conn, error), <-chan *scriptedPeer) {
	peers := make(chan *scriptedPeer, 4)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		ours, theirs := net.Pipe()
		go func() {
			br := bufio.NewReader(theirs)
			dec := wire.NewDecoder(br)
			if _, err := dec.Hello(); err != nil {
				_ = theirs.Close()
				return
			}
			reply, _ := wire.AppendHelloReply(nil, []byte(name))
			if _, err := theirs.Write(reply); err != nil {
				return
			}
			peers <- &scriptedPeer{t: t, conn: theirs, dec: dec}
		}()
		return ours, nil
	}, peers
}

// dialed returns the scripted peer the manager dialed.
func dialed(t testing.TB, peers <-chan *scriptedPeer) *scriptedPeer {
	t.Helper()
	select {
	case p := <-peers:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("the manager did not dial its peer")
		return nil
	}
}

// A pull ends with the answer to its own barrier, never with the answer to
// a HeartBeat sent before it (issue 10: a member reported "initial sync
// complete" before its peer's transfer arrived).
func TestPullEndsOnlyWithItsOwnBarrier(t *testing.T) {
	cl := newFakeCluster("me", "p1")
	dial, peers := dialedBy(t, "p1")
	m, st := testManager(t, cl, func(c *Config) { c.Dialer = dial })
	m.Start()
	p := dialed(t, peers)
	first := p.next(false)
	require.Equal(t, wire.ServerHeartBeat, first.Op, "a connection starts with a HeartBeat")
	require.Equal(t, wire.ServerAskForUpdate, p.next(true).Op, "the initial sync asks for the peer's state")
	require.Equal(t, wire.ServerHeartBeat, p.next(false).Op, "then its barrier")
	// Answer the first HeartBeat only, late, after the AskForUpdate.
	p.send(wire.AppendUpdateClock(nil, 1))
	// A HeartBeat of ours is answered once the owner has handled every
	// frame before it: the late answer has been processed.
	p.send(wire.AppendHeartBeat(nil, wire.HealthServing, 0))
	require.Equal(t, wire.ServerUpdateClock, p.next(true).Op)
	require.False(t, m.Synced(), "the answer to an earlier HeartBeat ended the pull")
	// The transfer, then the answer to the barrier, in one write: they
	// reach the reader in one buffer, and the answer must not end the pull
	// before the change before it is committed.
	u, _ := wire.AppendServerUpdate(nil, 77, []byte("u"), []byte("c"), []byte("1"))
	p.send(wire.AppendUpdateClock(u, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.True(t, m.WaitSynced(ctx))
	e, ok, err := st.Get([]byte("u"), []byte("c"))
	require.NoError(t, err)
	require.True(t, ok, "the transfer was applied before the sync ended")
	require.Equal(t, uint32(77), e.Stamp)
}

// servedFeed attaches a scripted peer that dialed us (its feed).
func servedFeed(t *testing.T, m *Manager, name string) *scriptedPeer {
	t.Helper()
	ours, theirs := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.ServePeer(ctx, ours, bufio.NewReader(ours), name)
	}()
	t.Cleanup(func() {
		cancel()
		_ = theirs.Close()
		<-done
	})
	dec := wire.NewDecoder(bufio.NewReader(theirs))
	_ = theirs.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := dec.HelloReply()
	require.NoError(t, err)
	require.Equal(t, "me", string(reply))
	return &scriptedPeer{t: t, conn: theirs, dec: dec}
}

// Ten AskForUpdates in a row cause one transfer, and HeartBeats sent after
// them are answered only after it (issue 15: AskForUpdate amplification).
func TestRepeatedAskForUpdateIsOneTransfer(t *testing.T) {
	cl := newFakeCluster("me", "p1")
	m, st := testManager(t, cl, nil)
	b := st.NewBatch()
	for i := range 100 {
		require.NoError(t, b.Update([]byte("u"), []byte(fmt.Sprint(i)), []byte("1")))
	}
	_, err := b.Commit()
	require.NoError(t, err)
	p := servedFeed(t, m, "p1")
	for range 10 {
		p.send(wire.AppendAskForUpdate(nil))
	}
	p.send(wire.AppendHeartBeat(nil, wire.HealthSyncing, 0))
	updates := 0
	for {
		f := p.next(true)
		if f.Op == wire.ServerUpdateClock {
			break
		}
		require.Equal(t, wire.ServerUpdate, f.Op)
		updates++
	}
	require.Equal(t, uint64(1), m.stats.TransfersServed.Load())
	// The feed carries the same 100 changes from the log too (it began at a
	// data dir never seen, so at the head: nothing), and the transfer
	// carries each once.
	require.Equal(t, 100, updates)
}

// A feed answers a HeartBeat only once it has sent every change logged
// before the HeartBeat arrived: the answer is a catch-up barrier.
func TestFeedAnswersAfterCatchingUp(t *testing.T) {
	cl := newFakeCluster("me", "p1")
	m, st := testManager(t, cl, func(c *Config) { c.FeedChunk = 7 })
	p := servedFeed(t, m, "p1")
	b := st.NewBatch()
	for i := range 50 {
		require.NoError(t, b.Update([]byte("u"), []byte(fmt.Sprint(i)), []byte("1")))
	}
	_, err := b.Commit()
	require.NoError(t, err)
	p.send(wire.AppendHeartBeat(nil, wire.HealthServing, 0))
	seen := 0
	for {
		f := p.next(true)
		if f.Op == wire.ServerUpdateClock {
			break
		}
		require.Equal(t, wire.ServerUpdate, f.Op)
		seen++
	}
	require.Equal(t, 50, seen, "every logged change came before the answer")
}

// A member that never had a mark gets its first from its initial transfer,
// even from a peer still syncing (a cluster starting all at once), covering
// none of its own changes: cut off in its first seconds, it can still be
// found stale later.
func TestFirstTransferGivesAFirstMark(t *testing.T) {
	cl := newFakeCluster("me", "p1")
	cl.setHealth("p1", wire.HealthSyncing)
	dial, peers := dialedBy(t, "p1")
	m, st := testManager(t, cl, func(c *Config) { c.Dialer = dial })
	b := st.NewBatch()
	require.NoError(t, b.Update([]byte("u"), []byte("mine"), []byte("1")))
	_, err := b.Commit()
	require.NoError(t, err)
	require.Zero(t, st.Mark())
	m.Start()
	p := dialed(t, peers)
	require.Equal(t, wire.ServerAskForUpdate, p.next(true).Op)
	u, _ := wire.AppendServerUpdate(nil, 77, []byte("u"), []byte("theirs"), []byte("2"))
	p.send(u, wire.AppendUpdateClock(nil, 1), wire.AppendUpdateClock(nil, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.True(t, m.WaitSynced(ctx))
	require.NotZero(t, st.Mark(), "the first contact is a mark")
	// Its own change is not covered: a refill would keep it.
	_, err = st.BeginRefill()
	require.NoError(t, err)
	_, err = st.FinishRefill(ctx, store.Pos{})
	require.NoError(t, err)
	_, ok, err := st.Get([]byte("u"), []byte("mine"))
	require.NoError(t, err)
	require.True(t, ok, "own change kept: the first mark covers none")
}

// The published mark moves a minute at a time: at rest a member's meta, and
// so its gossip, changes no more often than that.
func TestPublishedMarkMovesAMinuteAtATime(t *testing.T) {
	for _, tc := range []struct{ mark, want uint32 }{
		{0, 0}, {1, 1}, {59, 1}, {60, 60}, {119, 60}, {91285140, 91285140}, {91285199, 91285140},
	} {
		require.Equal(t, tc.want, publishedMark(tc.mark, 60), "mark %d", tc.mark)
	}
	// A grace of seconds (tests) publishes the mark exactly: a stale member
	// must still find its fresher peers within such a grace.
	require.Equal(t, uint32(1), markQuantum(10*time.Second))
	require.Equal(t, uint32(36), markQuantum(time.Hour))
	require.Equal(t, uint32(60), markQuantum(7*24*time.Hour))
	require.Equal(t, uint32(91285199), publishedMark(91285199, markQuantum(10*time.Second)))
	cl := newFakeCluster("me")
	m, st := testManager(t, cl, nil)
	base := uint32(91285140)
	require.NoError(t, st.AdvanceMark(base+1, store.Pos{}))
	first := m.publishMeta(0)
	require.NoError(t, st.AdvanceMark(base+59, store.Pos{}))
	require.Equal(t, first, m.publishMeta(0), "same minute: the same meta, no new gossip")
	require.NoError(t, st.AdvanceMark(base+60, store.Pos{}))
	require.Equal(t, base+60, m.publishMeta(0).Mark)
}
