//go:build slow

// The long and large cluster tests: they run only in the full suite
// (go test -race -tags slow -p 1 ./...). Each needs tens of seconds of
// both cores under -race, and both depend on timely heartbeats, which
// other test packages run beside them on two cores can starve.
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

func TestSixteenServersConverge(t *testing.T) {
	// memberlist's own local timings: the harness's 50 ms probe timeout makes
	// 16 race-instrumented nodes on two cores suspect one another.
	h := New(t, 16, Options{BaseIP: 100, Quiet: true, Heartbeat: 250 * time.Millisecond, Profile: "local"})
	took := h.WaitConverged(60 * time.Second)
	t.Logf("16 nodes converged %v after the last start", took)
	put(t, h, 7, "eve", "c", "1")
	h.WaitConverged(20 * time.Second)
	for j := range 16 {
		require.Equal(t, []string{"c=1"}, h.List(j, "eve"), "node %d", j)
	}
}
