package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/loadgen"
	"github.com/hashicorp/go-hclog"
)

func benchServer(b *testing.B) *Server {
	return startServer(b, func(c *Config) { c.Logger = hclog.NewNullLogger() })
}

// BenchmarkListAll10k measures one ListAll round trip of a 10,000-contact
// book over loopback, reply decoded by the client.
func BenchmarkListAll10k(b *testing.B) {
	s := benchServer(b)
	c, err := client.Dial(context.Background(), []string{s.Addr().String()}, "big", client.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for i := range 10_000 {
		_ = c.Update(fmt.Sprintf("contact-%05d", i), "+55 85 99999-0000")
	}
	if _, err := c.List(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := c.ListFunc(func(_, _ []byte) { n++ }); err != nil || n != 10_000 {
			b.Fatalf("listed %d: %v", n, err)
		}
	}
}

// BenchmarkIngestPipelined measures Updates/s from 50 pipelining
// connections into one server in the default fsync mode, each run ending
// with a ListAll per connection (so every Update is applied and durable).
func BenchmarkIngestPipelined(b *testing.B) {
	s := benchServer(b)
	cfg := loadgen.DefaultIngestConfig()
	cfg.Servers = []string{s.Addr().String()}
	cfg.PerConn = 20_000
	b.ReportAllocs()
	var mu sync.Mutex
	var total uint64
	b.ResetTimer()
	for b.Loop() {
		res, err := loadgen.Ingest(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		total += res.Updates
		mu.Unlock()
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "updates/s")
}
