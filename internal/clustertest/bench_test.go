package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/loadgen"
)

// BenchmarkReplicatedIngest: 50 connections pipeline Updates into node 0
// of a 3-node cluster; the clock stops when all three nodes hold the same
// digest (every change applied everywhere).
func BenchmarkReplicatedIngest(b *testing.B) {
	h := New(b, 3, Options{BaseIP: 140, Quiet: true})
	h.WaitConverged(20 * time.Second)
	cfg := loadgen.DefaultIngestConfig()
	cfg.Servers = []string{h.Node(0).ContactAddr()}
	cfg.PerConn = 20_000
	var total uint64
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := loadgen.Ingest(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		h.WaitConverged(60 * time.Second)
		took += time.Since(start)
		total += res.Updates
	}
	b.ReportMetric(float64(total)/took.Seconds(), "replicated-updates/s")
}

// BenchmarkJoin1M: a 4th node joins a 3-node cluster holding 1,000,000
// contacts (10,000 books of 100); reported is the time from its start
// until its digest equals the others' and it reports serving.
func BenchmarkJoin1M(b *testing.B) {
	for b.Loop() {
		h := New(b, 3, Options{BaseIP: 150, Quiet: true})
		h.WaitConverged(20 * time.Second)
		res, err := loadgen.Fill(context.Background(), loadgen.FillConfig{Servers: []string{h.Node(0).ContactAddr()},
			Users: 10_000, Contacts: 100, Workers: 16, ValueSize: 11})
		if err != nil {
			b.Fatal(err)
		}
		h.WaitConverged(120 * time.Second)
		start := time.Now()
		h.Add()
		h.WaitConverged(120 * time.Second)
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "join-seconds")
		b.ReportMetric(float64(res.Contacts)/took.Seconds(), "contacts/s")
		h.Close()
	}
}

// BenchmarkFailureDetection: a member of a 3-node cluster is killed (no
// leave); reported is the time until both survivors have dropped it, for
// each memberlist profile with its own timings.
func BenchmarkFailureDetection(b *testing.B) {
	for i, profile := range []string{"local", "lan", "wan"} {
		b.Run(profile, func(b *testing.B) {
			for b.Loop() {
				h := New(b, 3, Options{BaseIP: 160 + 10*i, Quiet: true, Profile: profile})
				h.WaitFor(60*time.Second, "3 members", func() bool { ok, _ := h.Converged(); return ok })
				start := time.Now()
				h.Kill(2)
				h.WaitFor(120*time.Second, "survivors drop the killed member", func() bool {
					for _, j := range []int{0, 1} {
						if _, ok := h.Node(j).Node.Members.Lookup(h.Node(2).Name); ok {
							return false
						}
					}
					return true
				})
				b.ReportMetric(time.Since(start).Seconds(), fmt.Sprintf("%s-dead-seconds", profile))
				h.Close()
			}
		})
	}
}
