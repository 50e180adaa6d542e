package sync

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/contactstore/contactstore/membership"
	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

// noCluster is a Cluster with no members: enough for a Manager that is
// never started.
type noCluster struct{}

func (noCluster) Members() []membership.Member               { return nil }
func (noCluster) Lookup(string) (membership.Member, bool)    { return membership.Member{}, false }
func (noCluster) Joined() bool                               { return true }
func (noCluster) SetMeta(uint64, uint8, time.Duration) error { return nil }
func (noCluster) Events() <-chan membership.Event            { return nil }

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	st, err := store.Open(store.DefaultConfig(t.TempDir()), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	m, err := New(DefaultConfig("me"), st, noCluster{})
	require.NoError(t, err)
	return m
}

func newTestPeerConn(t *testing.T, m *Manager) *peerConn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return newPeerConn(m, "peer", outbound, a, bufio.NewReader(a))
}

// The initial-pull turn must come back whichever way a connection that
// held it ends, or every later initial pull waits for the 30 s timeout
// (a chaos run in CI showed exactly that stall after a kill).
func TestInitialPullTurnComesBack(t *testing.T) {
	t.Run("connection ends before the turn is used", func(t *testing.T) {
		m := newTestManager(t)
		c := newTestPeerConn(t, m)
		require.True(t, m.initialPulls.CompareAndSwap(0, 1)) // connectPull took the turn
		c.finish()                                           // run() ends first: nothing to give back yet
		m.pullWithTurn(c)                                    // then the waiter goes on
		require.Zero(t, m.initialPulls.Load(), "turn leaked")
	})
	t.Run("connection ends during the pull", func(t *testing.T) {
		m := newTestManager(t)
		c := newTestPeerConn(t, m)
		require.True(t, m.initialPulls.CompareAndSwap(0, 1))
		m.pullWithTurn(c)
		require.True(t, c.pulling.Load(), "pull not started")
		require.EqualValues(t, 1, m.initialPulls.Load(), "turn given back while the pull runs")
		c.finish()
		require.Zero(t, m.initialPulls.Load(), "turn leaked")
	})
	t.Run("pull completes", func(t *testing.T) {
		m := newTestManager(t)
		c := newTestPeerConn(t, m)
		require.True(t, m.initialPulls.CompareAndSwap(0, 1))
		m.pullWithTurn(c)
		m.pullDone(c)
		require.Zero(t, m.initialPulls.Load(), "turn leaked")
		c.finish()
		require.Zero(t, m.initialPulls.Load())
	})
}
