package loadgen

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/internal/client"
)

// FillConfig configures a fill: Users books of Contacts contacts each,
// written by Workers connections at a time (one connection per book). With
// Total set, books of varied sizes (MinContacts..Contacts, spread evenly
// over the logarithm) are written until Total contacts are held; book 0 is
// always Contacts long (a known largest book to read back).
type FillConfig struct {
	// Dialer, if set, replaces TCP (TLS).
	Dialer    func(ctx context.Context, addr string) (net.Conn, error)
	Servers   []string
	Users     int
	Contacts  int
	Workers   int
	ValueSize int
	// UserPrefix names the books: prefix + index.
	UserPrefix string
	// Total, if positive, replaces Users: books are written until they hold
	// this many contacts in all (the last book is cut to fit).
	Total int
	// MinContacts, with Total, is the smallest book (default: Contacts).
	MinContacts int
	// FirstUser is the index of the first book (to add to an earlier fill).
	FirstUser int
	// Progress, if set, is called about once a second with contacts written.
	Progress func(written uint64, elapsed time.Duration)
}

// FillResult is what a fill measured.
type FillResult struct {
	Contacts uint64
	Books    int
	Elapsed  time.Duration
	Rate     float64
}

// BookSizes returns the size of every book a fill writes, in order of the
// book index (relative to FirstUser).
func BookSizes(cfg FillConfig) ([]int, error) {
	if cfg.Contacts <= 0 {
		return nil, fmt.Errorf("contacts must be positive")
	}
	if cfg.Total <= 0 {
		if cfg.Users <= 0 {
			return nil, fmt.Errorf("users (or a total) must be positive")
		}
		sizes := make([]int, cfg.Users)
		for i := range sizes {
			sizes[i] = cfg.Contacts
		}
		return sizes, nil
	}
	lo := cfg.MinContacts
	if lo <= 0 || lo > cfg.Contacts {
		lo = cfg.Contacts
	}
	var sizes []int
	for left, i := cfg.Total, 0; left > 0; i++ {
		n := cfg.Contacts
		if i > 0 && lo < cfg.Contacts {
			// a fixed mix of the book index, not a random source: the
			// same command writes the same books
			f := float64(splitmix64(uint64(cfg.FirstUser+i))>>11) / float64(1<<53)
			n = int(math.Round(float64(lo) * math.Pow(float64(cfg.Contacts)/float64(lo), f)))
		}
		n = min(n, left)
		sizes = append(sizes, n)
		left -= n
	}
	return sizes, nil
}

// splitmix64 is a bijective mix whose every output bit depends on every
// input bit (FNV's high bits barely change between short keys).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Fill writes the books and confirms each with ListAll (so every contact
// is durable when it returns).
func Fill(ctx context.Context, cfg FillConfig) (FillResult, error) {
	if cfg.Workers <= 0 {
		return FillResult{}, fmt.Errorf("workers must be positive")
	}
	sizes, err := BookSizes(cfg)
	if err != nil {
		return FillResult{}, err
	}
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = "fill-user-"
	}
	phone := strings.Repeat("7", max(1, min(cfg.ValueSize, 19)))
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					cfg.Progress(uint64(done.Load()), time.Since(start))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				u := int(next.Add(1) - 1)
				if u >= len(sizes) {
					return
				}
				if err := fillOne(ctx, cfg, cfg.FirstUser+u, sizes[u], phone, &done); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	pwg.Wait()
	el := time.Since(start)
	n := uint64(done.Load())
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return FillResult{Contacts: n, Books: len(sizes), Elapsed: el, Rate: float64(n) / el.Seconds()}, firstErr
}

func fillOne(ctx context.Context, cfg FillConfig, u, contacts int, phone string, done *atomic.Int64) error {
	c, err := client.Dial(ctx, cfg.Servers, fmt.Sprintf("%s%d", cfg.UserPrefix, u), opts(cfg.Dialer))
	if err != nil {
		return err
	}
	defer c.Close()
	for j := range contacts {
		if err := c.Update(fmt.Sprintf("contact-%07d", j), phone); err != nil {
			return err
		}
	}
	n := 0
	if err := c.ListFunc(func(_, _ []byte) { n++ }); err != nil {
		return err
	}
	if n < contacts {
		return fmt.Errorf("user %d: ListAll shows %d contacts, want at least %d", u, n, contacts)
	}
	done.Add(int64(contacts))
	return nil
}
