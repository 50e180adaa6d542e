// Package loadgen generates contact-protocol load for benchmarks: clients
// pipelining pre-encoded Updates, confirmed by a ListAll per connection.
// It must not assert timings: it measures and reports.
package loadgen

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/wire"
)

// IngestConfig configures an ingest run.
type IngestConfig struct {
	// Dialer, if set, replaces TCP (TLS).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
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
	// Rate caps the total changes per second over all connections (0: as
	// fast as possible).
	Rate int
	// DeleteRatio is the fraction of changes that are Deletes (0..1); they
	// delete contacts the same connection wrote earlier.
	DeleteRatio float64
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
	Started  time.Time     // when the first connection began sending
	SendEnd  time.Time     // when the last connection stopped sending (before its ListAll)
	Rate     float64       // Updates per second
	MBPerSec float64       // frame bytes per second
	Errors   int
}

// prepare encodes one block of changes that a connection writes again and
// again, so that writing is a single syscall per block: Updates of
// `contacts` contacts, with a Delete of an earlier one in place of an
// Update at the given ratio. It returns the block and its frame count.
func prepare(conn, contacts, valueSize int, deleteRatio float64) ([]byte, int) {
	phone := []byte(strings.Repeat("5", valueSize))
	buf := make([]byte, 0, contacts*wire.ClientUpdateSize)
	deletes := 0.0
	for j := range contacts {
		var err error
		deletes += deleteRatio
		if deletes >= 1 && j > 0 {
			deletes--
			buf, err = wire.AppendClientDelete(buf, fmt.Appendf(nil, "contact-%d-%07d", conn, j-1))
		} else {
			buf, err = wire.AppendClientUpdate(buf, fmt.Appendf(nil, "contact-%d-%07d", conn, j), phone)
		}
		if err != nil {
			panic(err) // sizes are checked by Validate
		}
	}
	return buf, contacts
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
	case c.DeleteRatio < 0 || c.DeleteRatio > 1:
		return fmt.Errorf("delete ratio must be between 0 and 1")
	case c.Rate < 0:
		return fmt.Errorf("rate must not be negative")
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
		c, err := client.Dial(ctx, cfg.Servers, fmt.Sprintf("bench-user-%d", i%cfg.Users), opts(cfg.Dialer))
		if err != nil {
			return IngestResult{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	blocks := make([][]byte, cfg.Conns)
	for i := range blocks {
		blocks[i], _ = prepare(i, cfg.Contacts, cfg.ValueSize, cfg.DeleteRatio)
	}
	var sent atomic.Uint64
	var errCount atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var endMu sync.Mutex
	var sendEnd time.Time
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
			end, err := ingestOne(ctx, c, blocks[i], cfg, start, &sent)
			endMu.Lock()
			if end.After(sendEnd) {
				sendEnd = end
			}
			endMu.Unlock()
			if err != nil {
				errCount.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	close(stop)
	el := time.Since(start)
	n := sent.Load()
	res := IngestResult{Updates: n, Elapsed: el, Started: start, SendEnd: sendEnd, Rate: float64(n) / el.Seconds(),
		MBPerSec: float64(n) * wire.ClientUpdateSize / el.Seconds() / 1e6, Errors: int(errCount.Load())} // Deletes are 20 bytes shorter: MB/s is an upper bound with --delete-ratio
	return res, firstErr
}

// frameEnds returns the end offset of every frame of a prepared block.
func frameEnds(block []byte) []int {
	var ends []int
	for off := 0; off < len(block); {
		if block[off] == byte(wire.ClientDelete) {
			off += wire.ClientDeleteSize
		} else {
			off += wire.ClientUpdateSize
		}
		ends = append(ends, off)
	}
	return ends
}

// ingestOne sends one connection's share, then confirms it by ListAll. It
// returns when it stopped sending (before the ListAll).
func ingestOne(ctx context.Context, c *client.Client, block []byte, cfg IngestConfig, start time.Time, sent *atomic.Uint64) (time.Time, error) {
	w := c.RawWriter()
	ends := frameEnds(block)
	perBlock := len(ends)
	// With a rate, each connection sends its share in small slices.
	slice := perBlock
	var perConnRate float64
	if cfg.Rate > 0 {
		perConnRate = float64(cfg.Rate) / float64(cfg.Conns)
		slice = max(1, min(perBlock, int(perConnRate/100))) // about 100 writes a second
	}
	left, done, pos := cfg.PerConn, 0, 0
	for ctx.Err() == nil {
		if cfg.Duration > 0 && time.Since(start) >= cfg.Duration {
			break
		}
		n := min(slice, perBlock-pos)
		if cfg.Duration <= 0 {
			if left <= 0 {
				break
			}
			n = min(n, left)
		}
		from := 0
		if pos > 0 {
			from = ends[pos-1]
		}
		if _, err := w.Write(block[from:ends[pos+n-1]]); err != nil {
			return time.Now(), err
		}
		pos = (pos + n) % perBlock
		left -= n
		done += n
		sent.Add(uint64(n))
		if perConnRate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(done) / perConnRate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	end := time.Now()
	// ListAll: every Update above is applied and durable once it answers.
	return end, c.ListFunc(func(_, _ []byte) {})
}

func opts(dial func(ctx context.Context, addr string) (net.Conn, error)) client.Options {
	o := client.DefaultOptions()
	o.Dialer = dial
	return o
}
