package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/loadgen"
	"github.com/stretchr/testify/require"
)

// A transfer that takes many heartbeat intervals keeps its connection: the
// silence limit counts time without bytes, not time since the read buffer
// last ran dry (it never does while a big transfer streams in). Before the
// fix, the joining node dropped its own connections mid-transfer, again and
// again.
func TestLongTransferIsNotSilence(t *testing.T) {
	h := New(t, 1, Options{BaseIP: 128}) // heartbeat 100 ms: silent after 300 ms
	_, err := loadgen.Fill(context.Background(), loadgen.FillConfig{Servers: []string{h.Node(0).ContactAddr()},
		Users: 2_000, Contacts: 100, Workers: 4, ValueSize: 11})
	require.NoError(t, err)
	start := time.Now()
	h.Add()
	h.WaitConverged(60 * time.Second)
	t.Logf("200,000 contacts joined in %v", time.Since(start).Round(time.Millisecond))
	for i := range 2 {
		require.Zero(t, h.Node(i).Node.Sync.Stats().SilentClosed.Load(), "node %d closed a peer connection as silent", i)
	}
}
