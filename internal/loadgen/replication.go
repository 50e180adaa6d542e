package loadgen

import (
	"context"
	"fmt"
	"net"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/internal/client"
)

// ReplicationConfig configures a write-to-visible latency run: one writer
// connection on Writer sends Updates at Rate; one reader connection per
// server in Readers polls ListAll and records when each change appears.
//
// To keep every ListAll small, the writer fills a rolling series of books
// (PerBook contacts each, then the next user); each reader follows the
// series. Every key is written once, so stamps stay at wall time.
type ReplicationConfig struct {
	// Dialer, if set, replaces TCP (TLS).
	Dialer   func(ctx context.Context, addr string) (net.Conn, error)
	Writer   string
	Readers  []string
	Rate     int           // changes per second
	Duration time.Duration // how long the writer writes
	PerBook  int           // contacts per book before the writer moves on
	// PollGap is the pause between two ListAll polls of a reader; it is
	// the resolution of the measurement.
	PollGap time.Duration
	// Prefix names the books (a fresh prefix per run keeps runs apart).
	Prefix string
	// Progress, if set, is called about every 500 ms.
	Progress func(sent uint64, elapsed time.Duration)
}

// ReplicationResult is what a replication run measured.
type ReplicationResult struct {
	Sent    uint64
	Seen    uint64 // (change, reader) pairs observed
	Missing uint64 // (change, reader) pairs never observed within the wait
	Latency Histogram
	Elapsed time.Duration
}

// Replication runs the measurement.
func Replication(ctx context.Context, cfg ReplicationConfig) (*ReplicationResult, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || len(cfg.Readers) == 0 {
		return nil, fmt.Errorf("rate, duration and at least one reader are needed")
	}
	if cfg.PerBook <= 0 {
		cfg.PerBook = 50
	}
	if cfg.PollGap <= 0 {
		cfg.PollGap = 200 * time.Microsecond
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("repl-%d-", time.Now().UnixNano())
	}
	total := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	sentAt := make([]atomic.Int64, total) // unix nanos, 0 = not sent yet
	var sent atomic.Uint64
	book := func(i int) string { return cfg.Prefix + strconv.Itoa(i/cfg.PerBook) }

	w, err := client.Dial(ctx, []string{cfg.Writer}, book(0), opts(cfg.Dialer))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res := &ReplicationResult{}
	var mu gosync.Mutex
	var wg gosync.WaitGroup
	writerDone := make(chan struct{})
	readerErr := make(chan error, len(cfg.Readers))
	for _, addr := range cfg.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, seen, missing, err := follow(ctx, addr, cfg, total, sentAt, book, writerDone)
			if err != nil {
				readerErr <- err
			}
			mu.Lock()
			res.Latency.Merge(h)
			res.Seen += seen
			res.Missing += missing
			mu.Unlock()
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
	lastProgress := start
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if next := start.Add(time.Duration(i) * interval); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
		if i > 0 && i%cfg.PerBook == 0 { // move to the next book: a new connection per book
			_ = w.Close()
			if w, err = client.Dial(ctx, []string{cfg.Writer}, book(i), opts(cfg.Dialer)); err != nil {
				close(writerDone)
				return nil, err
			}
		}
		sentAt[i].Store(time.Now().UnixNano())
		if err := w.Update("k"+strconv.Itoa(i), strconv.Itoa(i)); err == nil {
			err = w.Flush()
		}
		if err != nil {
			close(writerDone)
			return nil, err
		}
		sent.Add(1)
		if cfg.Progress != nil && time.Since(lastProgress) > 500*time.Millisecond {
			lastProgress = time.Now()
			cfg.Progress(sent.Load(), time.Since(start))
		}
	}
	res.Elapsed = time.Since(start)
	res.Sent = sent.Load()
	close(writerDone)
	wg.Wait()
	select {
	case err := <-readerErr:
		return res, err
	default:
	}
	return res, nil
}

// follow polls the rolling books on one server and records, for every
// change, the time from send to first sight.
func follow(ctx context.Context, addr string, cfg ReplicationConfig, total int, sentAt []atomic.Int64,
	book func(int) string, writerDone <-chan struct{}) (*Histogram, uint64, uint64, error) {
	h := &Histogram{}
	var seen, missing uint64
	seenKey := make([]bool, total)
	for b := 0; b*cfg.PerBook < total; b++ {
		first, last := b*cfg.PerBook, min((b+1)*cfg.PerBook, total)
		c, err := client.Dial(ctx, []string{addr}, book(first), opts(cfg.Dialer))
		if err != nil {
			return h, seen, missing, err
		}
		need := last - first
		var giveUp time.Time
		for need > 0 && ctx.Err() == nil {
			err := c.ListFunc(func(name, _ []byte) {
				now := time.Now().UnixNano()
				i, err := strconv.Atoi(string(name[1:]))
				if err != nil || i < first || i >= last || seenKey[i] {
					return
				}
				if at := sentAt[i].Load(); at != 0 {
					seenKey[i] = true
					need--
					seen++
					h.Record(time.Duration(now - at))
				}
			})
			if err != nil {
				_ = c.Close()
				return h, seen, missing, err
			}
			select {
			case <-writerDone:
				if giveUp.IsZero() {
					giveUp = time.Now().Add(10 * time.Second)
				}
			default:
			}
			if !giveUp.IsZero() && time.Now().After(giveUp) {
				break
			}
			time.Sleep(cfg.PollGap)
		}
		_ = c.Close()
		for i := first; i < last; i++ {
			if !seenKey[i] && sentAt[i].Load() != 0 {
				missing++
			}
		}
	}
	return h, seen, missing, nil
}
