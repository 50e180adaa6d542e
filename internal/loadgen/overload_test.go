package loadgen

import (
	"context"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/internal/server"
	"github.com/contactstore/contactstore/internal/server/servertest"
	"github.com/stretchr/testify/require"
)

func TestParseMetrics(t *testing.T) {
	got := ParseMetrics(`# HELP contact_transfers_total Full transfers.
# TYPE contact_transfers_total counter
contact_transfers_total{outcome="started"} 3
contact_askforupdate_bytes_sent_total 5.47741074e+08

contact_peer_bytes_sent_total{kind="snapshot",peer="a b"} 12
not a sample
`)
	require.Equal(t, map[string]float64{
		`contact_transfers_total{outcome="started"}`:                3,
		`contact_askforupdate_bytes_sent_total`:                     547741074,
		`contact_peer_bytes_sent_total{kind="snapshot",peer="a b"}`: 12,
	}, got)
}

// fakeOps stands for the servers' HTTP endpoints: every server serving with
// the digest given, and a counter that grows by one per /metrics read.
type fakeOps struct {
	mu      gosync.Mutex
	digests map[string]string
	reads   map[string]int
}

func (f *fakeOps) status(_ context.Context, addr string) (opsapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return opsapi.Status{Name: addr, Health: "serving", Digest: f.digests[addr]}, nil
}

func (f *fakeOps) metrics(_ context.Context, addr string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[addr]++
	return fmt.Sprintf("contact_transfers_total{outcome=\"started\"} %d\n", 10*f.reads[addr]), nil
}

func TestOverloadTimesMarkersOnEveryServer(t *testing.T) {
	a := servertest.Start(t, func(c *server.Config) { c.Name = "a" }).Addr().String()
	b := servertest.Start(t, func(c *server.Config) { c.Name = "b" }).Addr().String()
	cfg := OverloadConfig{Ingest: DefaultIngestConfig(), Duration: time.Second, MarkerEvery: 300 * time.Millisecond,
		MarkerWait: 300 * time.Millisecond, ConvergeTimeout: 200 * time.Millisecond}
	cfg.Ingest.Conns, cfg.Ingest.Rate = 2, 2000

	t.Run("a server that is the writer lists every marker", func(t *testing.T) {
		ops := &fakeOps{digests: map[string]string{"ha": "d", "hb": "d"}, reads: map[string]int{}}
		c := cfg
		c.Servers, c.HTTP, c.Status, c.Metrics = []string{a, a}, []string{"ha", "hb"}, ops.status, ops.metrics
		res, err := Overload(context.Background(), c)
		require.NoError(t, err)
		require.Len(t, res.Markers, 3) // at 0.3, 0.6 and 0.9 s
		for _, m := range res.Markers {
			require.GreaterOrEqual(t, m.Seen[0], time.Duration(0), "confirmed on the writer")
			require.GreaterOrEqual(t, m.Seen[1], time.Duration(0), "listed on the other")
			require.Equal(t, m.Seen[1], m.AllServing)
		}
		require.GreaterOrEqual(t, res.Converged, time.Duration(0))
		require.Positive(t, res.Ingest.Updates)
		require.Equal(t, 10.0, res.Counters[1][`contact_transfers_total{outcome="started"}`], "grew between the first and last read")
	})
	t.Run("a server that never receives the markers and never converges", func(t *testing.T) {
		ops := &fakeOps{digests: map[string]string{"ha": "d", "hb": "other"}, reads: map[string]int{}}
		c := cfg
		c.Servers, c.HTTP, c.Status, c.Metrics = []string{a, b}, []string{"ha", "hb"}, ops.status, ops.metrics
		res, err := Overload(context.Background(), c)
		require.NoError(t, err)
		require.Len(t, res.Markers, 3)
		for _, m := range res.Markers {
			require.GreaterOrEqual(t, m.Seen[0], time.Duration(0))
			require.Equal(t, time.Duration(-1), m.Seen[1])
			require.Equal(t, time.Duration(-1), m.AllServing)
		}
		require.Equal(t, time.Duration(-1), res.Converged)
	})
}
