package clustertest

import (
	"net"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/stretchr/testify/require"
)

// A flood of client connections that fills a member's client share does
// not stop replication: a peer that reconnects meanwhile is admitted from
// the peer reserve because its address is a live member's (the isMember
// hook internal/node gives the server), while more clients are refused.
func TestClientFloodDoesNotStopReplication(t *testing.T) {
	const share = 40
	h := New(t, 2, Options{BaseIP: 170, Tune: func(_ int, c *node.Config) {
		c.Server.MaxConns = share
		c.Server.HandshakeTimeout = time.Minute // the flood's silent sockets outlive the test
	}})
	h.WaitConverged(20 * time.Second)
	srv := h.Node(0).Node.Server

	// 127.0.0.1 is no member's address: it takes every client slot left,
	// and again each one node-1's connections free when it is killed.
	flood := func() {
		refused := srv.Counters.RefusedLimit.Load()
		for range share {
			c, err := net.Dial("tcp", h.Node(0).ContactAddr())
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
		}
		h.WaitFor(5*time.Second, "node-0's client share full", func() bool {
			return srv.Slots().Clients == share && srv.Counters.RefusedLimit.Load() > refused
		})
	}
	flood()
	h.Kill(1)
	h.WaitFor(10*time.Second, "node-1's connection to node-0 gone", func() bool { return srv.Slots().Clients < share })
	flood()
	h.Restart(1)
	h.WaitFor(20*time.Second, "node-1 back, ready, and its connection to node-0 up", func() bool {
		if !h.Node(1).Node.Ready() {
			return false
		}
		for _, p := range h.Node(0).Node.Sync.Peers() {
			if p.Name == "node-1" {
				return p.InboundUp
			}
		}
		return false
	})
	c := h.Client(1, "flood")
	require.NoError(t, c.Update("after", "restart"))
	_, err := c.List()
	require.NoError(t, err)
	h.WaitFor(10*time.Second, "node-1's change on node-0", func() bool {
		return len(h.List(0, "flood")) == 1
	})
	require.Positive(t, srv.Counters.Reserved.Load(), "node-1 came in from the reserve")
	require.Equal(t, share, srv.Slots().Clients, "the flood still holds the client share")
}
