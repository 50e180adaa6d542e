package sync

import (
	"fmt"
	"testing"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// BenchmarkPeerApply is a peer's whole apply path: b.N Updates to fresh
// contacts of 50 books arrive on the connection this member dialed (its
// peer's feed), 4,096 frames per write, and are decoded, staged and
// committed by the connection's reader. The clock stops when the answer
// to a HeartBeat sent after the last frame arrives: a HeartBeat is answered
// only once everything before it is committed.
func BenchmarkPeerApply(b *testing.B) {
	cl := newFakeCluster("me", "p1")
	dial, peers := dialedBy(b, "p1")
	m, st := testManager(b, cl, func(c *Config) { c.Dialer = dial; c.Logger = hclog.NewNullLogger() })
	m.Start()
	p := dialed(b, peers)
	// The initial sync: our first HeartBeat, AskForUpdate and its barrier.
	require.Equal(b, wire.ServerHeartBeat, p.next(false).Op)
	require.Equal(b, wire.ServerAskForUpdate, p.next(false).Op)
	require.Equal(b, wire.ServerHeartBeat, p.next(false).Op)
	p.send(wire.AppendUpdateClock(nil, 1), wire.AppendUpdateClock(nil, 1))

	stamp := store.StampOf(time.Now()) - 10
	var chunks [][]byte
	var chunk []byte
	for i := range b.N {
		var err error
		chunk, err = wire.AppendServerUpdate(chunk, stamp, []byte(fmt.Sprintf("book-%02d", i%50)),
			[]byte(fmt.Sprintf("contact-%08d", i)), []byte("85999999999"))
		require.NoError(b, err)
		if (i+1)%4096 == 0 || i == b.N-1 {
			chunks = append(chunks, chunk)
			chunk = nil
		}
	}
	b.ResetTimer()
	sent := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if _, err := p.conn.Write(c); err != nil {
				sent <- err
				return
			}
		}
		_, err := p.conn.Write(wire.AppendHeartBeat(nil, wire.HealthServing, 0))
		sent <- err
	}()
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(time.Minute))
		var f wire.ServerFrame
		require.NoError(b, p.dec.ServerFrame(&f))
		if f.Op == wire.ServerUpdateClock {
			break
		}
	}
	b.StopTimer()
	require.NoError(b, <-sent)
	require.Equal(b, b.N, st.Stats().Live)
}
