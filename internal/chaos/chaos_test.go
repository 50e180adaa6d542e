package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "CHAOS_DURATION")
		return d
	}
	return 15 * time.Second
}

func TestChaosKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test runs real servers for ~40 s; skipped in -short")
	}
	c := newCluster(t, 5)
	for _, s := range c.servers {
		c.start(s)
	}
	c.waitServing(30 * time.Second)

	var addrs []string
	for _, s := range c.servers {
		addrs = append(addrs, s.addr())
	}
	ctx, stop := context.WithCancel(context.Background())
	var writers []*Writer
	var wg gosync.WaitGroup
	for i := range 5 {
		w := NewWriter(fmt.Sprintf("user-%d", i), addrs, uint64(i))
		writers = append(writers, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}

	rng := rand.New(rand.NewPCG(7, 7))
	faults := 0
	end := time.Now().Add(chaosDuration(t))
	for time.Now().Before(end) {
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		victim := c.servers[rng.IntN(len(c.servers))]
		if c.kill(victim) {
			faults++
			t.Logf("kill -9 %s", victim.name)
		}
		// Restart whatever is down with some probability, keeping at most two down.
		down := 0
		for _, s := range c.servers {
			if !s.running() {
				down++
			}
		}
		for _, s := range c.servers {
			if !s.running() && (down > 2 || rng.IntN(2) == 0) {
				time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
				c.start(s)
				down--
				t.Logf("restart %s", s.name)
			}
		}
	}
	stop()
	wg.Wait()
	lastFault := time.Now()
	for _, s := range c.servers {
		if !s.running() {
			c.start(s)
		}
	}

	// Converged: every server lists the same book for every user.
	var users []string
	for _, w := range writers {
		users = append(users, w.User)
	}
	books, _, err := Converge(addrs, users, 60*time.Second)
	require.NoError(t, err, "after the last fault")
	converge := time.Since(lastFault)

	var writes, acked, lost, resurrected, reconnects int
	var bad []string
	for _, w := range writers {
		l, r, msgs := w.Check(books[w.User])
		lost += l
		resurrected += r
		for _, m := range msgs {
			t.Error(m)
		}
		bad = append(bad, w.BadKeys(books[w.User])...)
		wr, ac, rc := w.Stats()
		writes, acked, reconnects = writes+wr, acked+ac, reconnects+rc
	}
	Summary(fmt.Sprintf("chaos kill-restart: servers=5 faults=%d writes=%d acknowledged=%d client_reconnects=%d lost=%d resurrected=%d converge=%.2fs",
		faults, writes, acked, reconnects, lost, resurrected, converge.Seconds()))
	if len(bad) > 0 {
		c.dumpEntries(bad[:min(len(bad), 8)])
	}
	require.Positive(t, faults, "the test injected no fault")
	require.Positive(t, acked, "no write was acknowledged")
	require.Zero(t, lost)
	require.Zero(t, resurrected)
}
