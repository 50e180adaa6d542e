// Package loadgen generates contact-protocol load for benchmarks: clients
// pipelining pre-encoded Updates, confirmed by a ListAll per connection.
// It must not assert timings: it measures and reports.
package loadgen

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/wire"
)

// IngestConfig configures an ingest run.
type IngestConfig struct {
	// Servers are tried in order by each connection.
	Servers []string
	// Conns is the number of concurrent client connections.
	Conns int
	// Users spreads connections over this many user books.
	Users int
	// Contacts is how many distinct contacts each connection writes, cycled.
	Contacts int
	// PerConn is how many Updates each connection sends (0 with Duration).
	PerConn int
	// Duration, when set, sends until it elapses instead of PerConn.
	Duration time.Duration
	// ValueSize is the phone number length (1..19).
	ValueSize int
	// Progress, if set, is called about every 500 ms with the running total.
	Progress func(sent uint64, elapsed time.Duration)
}

// DefaultIngestConfig returns a 50-connection run like redis-benchmark -c 50.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{Servers: []string{"127.0.0.1:9000"}, Conns: 50, Users: 50, Contacts: 1000, PerConn: 40_000, ValueSize: 11}
}

// IngestResult is what an ingest run measured.
type IngestResult struct {
	Updates  uint64        // Updates sent and confirmed by ListAll
	Elapsed  time.Duration // first byte sent to last ListAll reply read
	Rate     float64       // Updates per second
	MBPerSec float64       // frame bytes per second
	Errors   int
}

// prepare encodes one block of Updates that a connection writes again and
// again: writing is then a single syscall per block.
func prepare(conn, contacts, valueSize int) []byte {
	phone := []byte(strings.Repeat("5", valueSize))
	buf := make([]byte, 0, contacts*wire.ClientUpdateSize)
	for j := range contacts {
		var err error
		buf, err = wire.AppendClientUpdate(buf, fmt.Appendf(nil, "contact-%d-%07d", conn, j), phone)
		if err != nil {
			panic(err) // sizes are checked by Validate
		}
	}
	return buf
}

// Validate reports the first setting that cannot work.
func (c IngestConfig) Validate() error {
	switch {
	case len(c.Servers) == 0:
		return fmt.Errorf("no servers")
	case c.Conns <= 0 || c.Users <= 0 || c.Contacts <= 0:
		return fmt.Errorf("conns, users and contacts must be positive")
	case c.PerConn <= 0 && c.Duration <= 0:
		return fmt.Errorf("set a count per connection or a duration")
	case c.ValueSize < 1 || c.ValueSize > wire.MaxPhoneLen:
		return fmt.Errorf("value size must be 1..%d", wire.MaxPhoneLen)
	}
	return nil
}

// Ingest runs the load and returns what it measured.
func Ingest(ctx context.Context, cfg IngestConfig) (IngestResult, error) {
	if err := cfg.Validate(); err != nil {
		return IngestResult{}, err
	}
	clients := make([]*client.Client, cfg.Conns)
	for i := range clients {
		c, err := client.Dial(ctx, cfg.Servers, fmt.Sprintf("bench-user-%d", i%cfg.Users), client.DefaultOptions())
		if err != nil {
			return IngestResult{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	blocks := make([][]byte, cfg.Conns)
	for i := range blocks {
		blocks[i] = prepare(i, cfg.Contacts, cfg.ValueSize)
	}
	var sent atomic.Uint64
	var errCount atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	stop := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					cfg.Progress(sent.Load(), time.Since(start))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ingestOne(ctx, c, blocks[i], cfg, start, &sent); err != nil {
				errCount.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	close(stop)
	el := time.Since(start)
	n := sent.Load()
	res := IngestResult{Updates: n, Elapsed: el, Rate: float64(n) / el.Seconds(),
		MBPerSec: float64(n) * wire.ClientUpdateSize / el.Seconds() / 1e6, Errors: int(errCount.Load())}
	return res, firstErr
}

func ingestOne(ctx context.Context, c *client.Client, block []byte, cfg IngestConfig, start time.Time, sent *atomic.Uint64) error {
	w := c.RawWriter()
	perBlock := len(block) / wire.ClientUpdateSize
	left := cfg.PerConn
	for ctx.Err() == nil {
		if cfg.Duration > 0 && time.Since(start) >= cfg.Duration {
			break
		}
		b := block
		if cfg.Duration <= 0 {
			if left <= 0 {
				break
			}
			if left < perBlock {
				b = block[:left*wire.ClientUpdateSize]
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n := len(b) / wire.ClientUpdateSize
		left -= n
		sent.Add(uint64(n))
	}
	// ListAll: every Update above is applied and durable once it answers.
	return c.ListFunc(func(_, _ []byte) {})
}
