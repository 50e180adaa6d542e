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
)

// FillConfig configures a fill: Users books of Contacts contacts each,
// written by Workers connections at a time (one connection per book).
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
}

// FillResult is what a fill measured.
type FillResult struct {
	Contacts uint64
	Elapsed  time.Duration
	Rate     float64
}

// Fill writes the books and confirms each with ListAll (so every contact
// is durable when it returns).
func Fill(ctx context.Context, cfg FillConfig) (FillResult, error) {
	if cfg.Users <= 0 || cfg.Contacts <= 0 || cfg.Workers <= 0 {
		return FillResult{}, fmt.Errorf("users, contacts and workers must be positive")
	}
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = "fill-user-"
	}
	phone := strings.Repeat("7", max(1, min(cfg.ValueSize, 19)))
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				u := int(next.Add(1) - 1)
				if u >= cfg.Users {
					return
				}
				if err := fillOne(ctx, cfg, u, phone); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(int64(cfg.Contacts))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	n := uint64(done.Load())
	return FillResult{Contacts: n, Elapsed: el, Rate: float64(n) / el.Seconds()}, firstErr
}

func fillOne(ctx context.Context, cfg FillConfig, u int, phone string) error {
	c, err := client.Dial(ctx, cfg.Servers, fmt.Sprintf("%s%d", cfg.UserPrefix, u), opts(cfg.Dialer))
	if err != nil {
		return err
	}
	defer c.Close()
	for j := range cfg.Contacts {
		if err := c.Update(fmt.Sprintf("contact-%07d", j), phone); err != nil {
			return err
		}
	}
	n := 0
	if err := c.ListFunc(func(_, _ []byte) { n++ }); err != nil {
		return err
	}
	if n < cfg.Contacts {
		return fmt.Errorf("user %d: ListAll shows %d contacts, want at least %d", u, n, cfg.Contacts)
	}
	return nil
}
