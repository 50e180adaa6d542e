package clustertest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

func put(t *testing.T, h *Harness, i int, user, contact, phone string) {
	t.Helper()
	c := h.Client(i, user)
	require.NoError(t, c.Update(contact, phone))
	_, err := c.List()
	require.NoError(t, err)
}

// fill writes n contacts (prefix and a five-digit number) with phone into
// user's book on node i, and returns once its ListAll acknowledged them.
func fill(t *testing.T, h *Harness, i int, user, prefix, phone string, n int) {
	t.Helper()
	c := h.Client(i, user)
	for k := range n {
		require.NoError(t, c.Update(fmt.Sprintf("%s%05d", prefix, k), phone))
	}
	_, err := c.List()
	require.NoError(t, err)
}

func del(t *testing.T, h *Harness, i int, user, contact string) {
	t.Helper()
	c := h.Client(i, user)
	require.NoError(t, c.Delete(contact))
	_, err := c.List()
	require.NoError(t, err)
}

func TestChangeOnAnyNodeIsListedByEveryOther(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 20})
	h.WaitConverged(20 * time.Second)
	for i := range 3 {
		put(t, h, i, "alice", fmt.Sprintf("from-%d", i), fmt.Sprint(i))
	}
	del(t, h, 1, "alice", "from-0")
	want := []string{"from-1=1", "from-2=2"}
	for j := range 3 {
		h.WaitFor(5*time.Second, fmt.Sprintf("node %d lists %v", j, want), func() bool {
			return fmt.Sprint(h.List(j, "alice")) == fmt.Sprint(want)
		})
	}
	h.WaitConverged(10 * time.Second)
}

func TestKilledNodeWrittenAroundConvergesAfterRestart(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 30})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "bob", "before", "1")
	put(t, h, 0, "bob", "doomed", "1")
	h.WaitConverged(10 * time.Second)
	h.Kill(2)
	put(t, h, 0, "bob", "during", "2")
	del(t, h, 1, "bob", "doomed")
	put(t, h, 1, "carol", "x", "3")
	h.Restart(2)
	h.WaitConverged(20 * time.Second)
	require.Equal(t, []string{"before=1", "during=2"}, h.List(2, "bob"))
	require.Equal(t, []string{"x=3"}, h.List(2, "carol"))
}

func TestHealedPartitionConverges(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 40})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "dan", "shared", "0")
	h.WaitConverged(10 * time.Second)
	h.Partition([]int{0, 1}, []int{2})
	h.WaitFor(15*time.Second, "node 2 sees the others dead", func() bool {
		alive := 0
		for _, m := range h.Node(2).Node.Members.Members() {
			if m.Alive() {
				alive++
			}
		}
		return alive == 1
	})
	put(t, h, 0, "dan", "majority", "1")
	put(t, h, 2, "dan", "minority", "2")
	put(t, h, 0, "dan", "shared", "from-majority")
	time.Sleep(1100 * time.Millisecond) // the minority's write must be later in wall time (stamps are seconds)
	put(t, h, 2, "dan", "shared", "from-minority")
	h.Heal()
	h.WaitConverged(30 * time.Second)
	want := []string{"majority=1", "minority=2", "shared=from-minority"}
	for j := range 3 {
		require.Equal(t, want, h.List(j, "dan"), "node %d", j)
	}
}

func TestScaleOutNewMembersPullState(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 50})
	h.WaitConverged(20 * time.Second)
	for i := range 200 {
		put(t, h, i%3, "frank", fmt.Sprintf("c%03d", i), fmt.Sprint(i))
	}
	h.Add()
	h.Add()
	h.WaitConverged(20 * time.Second)
	require.Len(t, h.List(4, "frank"), 200)
	require.Equal(t, h.List(0, "frank"), h.List(3, "frank"))
}

func TestGracefulLeaveDeliversLastChanges(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 60})
	h.WaitConverged(20 * time.Second)
	fill(t, h, 2, "gina", "c", "1", 500)
	h.Stop(2)
	h.WaitConverged(10 * time.Second)
	require.Len(t, h.List(0, "gina"), 500)
	require.Len(t, h.List(1, "gina"), 500)
}

// impersonate dials node target as role Server, claiming to be member
// `as`, from as's own IP (so membership and address checks pass).
func impersonate(t *testing.T, h *Harness, target, as int) (net.Conn, *bufio.Reader) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(h.Node(as).IP)}}
	conn, err := d.Dial("tcp", h.Node(target).ContactAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	hello, _ := wire.AppendHello(nil, wire.RoleServer, []byte(h.Node(as).Name))
	_, err = conn.Write(hello)
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	name, err := wire.NewDecoder(br).HelloReply()
	require.NoError(t, err)
	require.Equal(t, h.Node(target).Name, string(name))
	return conn, br
}

func TestRoleServerHelloFromNonMemberIsRefused(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 70})
	h.WaitConverged(20 * time.Second)
	tests := []struct {
		name string
		as   string
		from string
	}{
		{"unknown name", "intruder", "127.0.0.1"},
		{"member name from the wrong address", h.Node(1).Name, "127.0.0.1"},
		{"the server's own name", h.Node(0).Name, h.Node(0).IP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.Node(0).Node.Sync.Stats().PeersRefused.Load()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}}
			conn, err := d.Dial("tcp", h.Node(0).ContactAddr())
			require.NoError(t, err)
			defer conn.Close()
			hello, _ := wire.AppendHello(nil, wire.RoleServer, []byte(tc.as))
			_, _ = conn.Write(hello)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(make([]byte, 1))
			require.Equal(t, 0, n, "no hello reply")
			require.Error(t, err, "connection closed")
			require.Equal(t, before+1, h.Node(0).Node.Sync.Stats().PeersRefused.Load())
		})
	}
	put(t, h, 0, "hal", "still", "works")
	h.WaitConverged(10 * time.Second)
}

func TestPeerSendingForbiddenFrameIsClosed(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 80})
	h.WaitConverged(20 * time.Second)
	// The bad frame goes with the hello, so that it is read before node 1,
	// whose feed the impersonation replaced, redials and replaces it back.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(h.Node(1).IP)}}
	conn, err := d.Dial("tcp", h.Node(0).ContactAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	hello, _ := wire.AppendHello(nil, wire.RoleServer, []byte(h.Node(1).Name))
	_, err = conn.Write(append(hello, 9)) // then an unknown server opcode
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := br.ReadByte(); err != nil {
			break // closed (after whatever heartbeats were in flight)
		}
	}
	require.Equal(t, uint64(1), h.Node(0).Node.Sync.Stats().Violations.Snapshot()["unknown_opcode"])
	put(t, h, 1, "ivy", "after", "1")
	h.WaitConverged(10 * time.Second)
	require.Equal(t, []string{"after=1"}, h.List(0, "ivy"))
}

// A feed that stops reading is dropped (write timeout, or replaced when
// the real peer redials) without slowing clients; the real peer then
// catches up from the change log, with no full transfer.
func TestPeerThatStopsReadingIsDroppedWithoutSlowingClients(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 90, Tune: func(i int, c *node.Config) {
		c.Sync.WriteTimeout = 500 * time.Millisecond
	}})
	h.WaitConverged(20 * time.Second)
	transfers := h.Node(0).Node.Sync.Stats().TransfersStarted.Load()
	stuck, _ := impersonate(t, h, 0, 1) // a feed that never reads
	start := time.Now()
	fill(t, h, 0, "jack", "c", "123", 20000)
	t.Logf("20000 client updates took %v with a stuck peer feed", time.Since(start))
	h.WaitConverged(20 * time.Second)
	require.Len(t, h.List(1, "jack"), 20000, "the real peer caught up")
	require.Equal(t, transfers, h.Node(0).Node.Sync.Stats().TransfersStarted.Load(), "from the log, not by a full transfer")
	// The stuck connection was closed by node 0: reading it (now) ends,
	// rather than waiting for more.
	_ = stuck.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, stuck)
	if err != nil {
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the stuck feed is still open: %v", err)
	}
}

// A ListAll that follows a change returns only once every connected peer
// has applied it: a client that fails over right after finds it anywhere.
func TestAcknowledgedChangeIsOnEveryPeerAtOnce(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 120})
	h.WaitConverged(20 * time.Second)
	c := h.Client(0, "lia")
	for i := range 50 {
		name := fmt.Sprintf("c%02d", i)
		require.NoError(t, c.Update(name, "1"))
		_, err := c.List()
		require.NoError(t, err)
		for _, j := range []int{1, 2} { // no waiting: already there
			e, ok, _ := h.Node(j).Node.Store.Get([]byte("lia"), []byte(name))
			require.True(t, ok && !e.Deleted, "node %d lacks %s right after the acknowledgement", j, name)
		}
	}
	require.Zero(t, h.Node(0).Node.Sync.Stats().BarrierTimeouts.Load())
}

// A peer that crashed and came back right before a change is acknowledged
// still has it at once: its new feed never carried the push, so the
// acknowledgement waits for the transfer the peer asks for on reconnect.
func TestAcknowledgedChangeReachesAPeerThatJustRestarted(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 124, Tune: func(_ int, c *node.Config) {
		c.Server.ReplicaAckTimeout = 10 * time.Second // the test must not pass by timing out
		c.Sync.FeedGrace = 10 * time.Second
	}})
	h.WaitConverged(20 * time.Second)
	c := h.Client(0, "lia")
	for round := range 3 {
		h.Kill(1)
		h.Restart(1)
		name := fmt.Sprintf("r%d", round)
		require.NoError(t, c.Update(name, "1"))
		_, err := c.List()
		require.NoError(t, err)
		e, ok, _ := h.Node(1).Node.Store.Get([]byte("lia"), []byte(name))
		require.True(t, ok && !e.Deleted, "restarted node 1 lacks %s right after the acknowledgement", name)
		h.WaitConverged(20 * time.Second)
	}
	require.Zero(t, h.Node(0).Node.Sync.Stats().BarrierTimeouts.Load())
}

// With a heartbeat budget, a member's HeartBeats at rest stay within it
// however many peers it has (here 3 peers, 6 connections, at a budget of 2
// a second instead of the 60 that 100 ms intervals would send), and the
// stretched silence closes no connection.
func TestHeartbeatBudgetBoundsHeartbeatsAtRest(t *testing.T) {
	h := New(t, 4, Options{BaseIP: 200, Tune: func(_ int, c *node.Config) { c.Sync.HeartbeatBudget = 2 }})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "hb", "a", "1")
	h.WaitFor(10*time.Second, "the change on every member", func() bool {
		for i := range 4 {
			if len(h.List(i, "hb")) != 1 {
				return false
			}
		}
		return true
	})
	hbs := func(i int) uint64 { return h.Node(i).Node.Sync.Stats().FramesIn[wire.ServerHeartBeat].Load() }
	silent := func(i int) uint64 { return h.Node(i).Node.Sync.Stats().SilentClosed.Load() }
	var before [4]uint64
	var silentBefore [4]uint64
	for i := range 4 {
		before[i], silentBefore[i] = hbs(i), silent(i)
	}
	const window = 4 * time.Second
	start := time.Now()
	<-time.After(window) // a rate is counted over a window of rest: nothing to wait for
	elapsed := time.Since(start).Seconds()
	for i := range 4 {
		got := float64(hbs(i)-before[i]) / elapsed
		t.Logf("node %d received %.1f HeartBeats a second", i, got)
		require.Greater(t, got, 0.0, "HeartBeats still flow")
		require.Less(t, got, 4.0, "at most about the budget (2 a second), not 60")
		require.Equal(t, silentBefore[i], silent(i), "no connection closed as silent")
	}
	ok, why := h.Converged()
	require.True(t, ok, why)
}

// A client pipelining rewrites of the same contacts (a commit then holds
// several changes to one key, and logs only where the key ended) while
// another member rewrites some of them too: every member ends with the
// same books, and the contacts only the pipeline wrote end at its last
// value everywhere.
func TestPipelinedRewritesConvergeToTheirLastValue(t *testing.T) {
	h := New(t, 3, Options{BaseIP: 210})
	h.WaitConverged(20 * time.Second)
	const rounds, keys = 200, 20
	done := make(chan error, 1)
	go func() { // member 1 rewrites the shared contacts meanwhile
		c := h.Client(1, "alice")
		for v := range rounds {
			for k := range keys / 2 {
				if err := c.Update(fmt.Sprintf("shared-%02d", k), fmt.Sprintf("1%04d", v)); err != nil {
					done <- err
					return
				}
			}
		}
		_, err := c.List()
		done <- err
	}()
	c := h.Client(0, "alice")
	want := map[string]string{}
	for v := range rounds {
		for k := range keys {
			name, phone := fmt.Sprintf("own-%02d", k), fmt.Sprintf("0%04d", v)
			if k < keys/2 {
				name = fmt.Sprintf("shared-%02d", k)
			}
			if (v+k)%7 == 0 { // deletes among the rewrites
				require.NoError(t, c.Delete(name))
				delete(want, name)
				continue
			}
			require.NoError(t, c.Update(name, phone))
			want[name] = phone
		}
	}
	_, err := c.List()
	require.NoError(t, err)
	require.NoError(t, <-done)
	h.WaitConverged(20 * time.Second)
	for j := range 3 {
		got := map[string]string{}
		for _, e := range h.List(j, "alice") {
			name, phone, _ := strings.Cut(e, "=")
			got[name] = phone
		}
		for k := keys / 2; k < keys; k++ {
			name := fmt.Sprintf("own-%02d", k)
			require.Equal(t, want[name], got[name], "node %d, %s", j, name)
		}
	}
}
