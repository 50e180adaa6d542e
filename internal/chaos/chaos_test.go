package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/stretchr/testify/require"
)

// op is one change a writer made, and whether a ListAll acknowledged it.
type op struct {
	contact string
	phone   string // "" for a delete
	acked   bool
}

// writer owns one user's book: it creates contacts with fresh names and
// deletes some of them, acknowledging with ListAll every few ops, and fails
// over to the next server when one dies. Every key is written at most
// twice (create, then maybe delete), so the expected final state is exact.
type writer struct {
	user    string
	servers []string
	rng     *rand.Rand
	ops     []op
	reconn  int
}

func (w *writer) run(ctx context.Context) {
	opts := client.DefaultOptions()
	opts.DialTimeout, opts.IOTimeout = 300*time.Millisecond, 3*time.Second
	var cl *client.Client
	pending := 0 // ops since the last ack
	seq := 0
	live := []int{} // indexes of created, not yet deleted contacts
	for ctx.Err() == nil {
		if cl == nil {
			start := w.rng.IntN(len(w.servers))
			order := append(append([]string{}, w.servers[start:]...), w.servers[:start]...)
			c, err := client.Dial(ctx, order, w.user, opts)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			cl, pending = c, 0
			w.reconn++
		}
		var err error
		if len(live) > 0 && w.rng.IntN(4) == 0 {
			// Half the deletes hit one of the newest contacts: a rewrite in
			// the same second pushes the server's clock ahead of wall time,
			// which is what makes a failover delete risky.
			k := w.rng.IntN(len(live))
			if w.rng.IntN(2) == 0 {
				k = len(live) - 1 - w.rng.IntN(min(5, len(live)))
			}
			idx := live[k]
			live = append(live[:k], live[k+1:]...)
			err = cl.Delete(w.ops[idx].contact)
			w.ops = append(w.ops, op{contact: w.ops[idx].contact})
		} else {
			seq++
			name := fmt.Sprintf("c%06d", seq)
			err = cl.Update(name, fmt.Sprint(seq))
			w.ops = append(w.ops, op{contact: name, phone: fmt.Sprint(seq)})
			live = append(live, len(w.ops)-1)
		}
		pending++
		if err == nil && pending >= 5 {
			if _, err = cl.List(); err == nil {
				for i := len(w.ops) - pending; i < len(w.ops); i++ {
					w.ops[i].acked = true
				}
				pending = 0
				time.Sleep(time.Duration(w.rng.IntN(20)) * time.Millisecond)
			}
		}
		if err != nil {
			_ = cl.Close()
			cl = nil
		}
	}
	if cl != nil {
		if _, err := cl.List(); err == nil {
			for i := len(w.ops) - pending; i < len(w.ops); i++ {
				w.ops[i].acked = true
			}
		}
		_ = cl.Close()
	}
}

// check compares a converged book with the writer's history: every
// acknowledged create that was not deleted is present with its value,
// every acknowledged delete is absent (no resurrection), and keys whose
// last op was not acknowledged may be either way.
func (w *writer) check(book map[string]string) (lost, resurrected int, msgs []string) {
	last := map[string]op{}
	for _, o := range w.ops {
		last[o.contact] = o
	}
	for name, o := range last {
		got, present := book[name]
		switch {
		case o.phone != "" && o.acked && (!present || got != o.phone):
			lost++
			msgs = append(msgs, fmt.Sprintf("%s/%s: acknowledged %q, found %q (present %v)", w.user, name, o.phone, got, present))
		case o.phone == "" && o.acked && present:
			resurrected++
			msgs = append(msgs, fmt.Sprintf("%s/%s: acknowledged delete, found %q", w.user, name, got))
		}
	}
	for name := range book {
		if _, ok := last[name]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s/%s: never written, found", w.user, name))
			lost++
		}
	}
	return lost, resurrected, msgs
}

// badKeys lists "user/contact" of every key check would complain about.
func (w *writer) badKeys(book map[string]string) []string {
	last := map[string]op{}
	for _, o := range w.ops {
		last[o.contact] = o
	}
	var out []string
	for name, o := range last {
		_, present := book[name]
		if o.acked && (o.phone == "") == present {
			out = append(out, w.user+"/"+name)
		}
	}
	return out
}

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
	var writers []*writer
	var wg gosync.WaitGroup
	for i := range 5 {
		w := &writer{user: fmt.Sprintf("user-%d", i), servers: addrs, rng: rand.New(rand.NewPCG(uint64(i), 42))}
		writers = append(writers, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
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
	var books map[string]map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		books = map[string]map[string]string{}
		same := true
		for _, w := range writers {
			var first map[string]string
			for i, s := range c.servers {
				b, ok := list(s, w.user)
				if !ok || (i > 0 && fmt.Sprint(b) != fmt.Sprint(first)) {
					same = false
					break
				}
				first = b
			}
			if !same {
				break
			}
			books[w.user] = first
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers did not converge within 60s of the last fault")
		}
		time.Sleep(100 * time.Millisecond)
	}
	converge := time.Since(lastFault)

	var writes, acked, lost, resurrected, reconnects int
	var bad []string
	for _, w := range writers {
		l, r, msgs := w.check(books[w.user])
		lost += l
		resurrected += r
		for _, m := range msgs {
			t.Error(m)
		}
		bad = append(bad, w.badKeys(books[w.user])...)
		writes += len(w.ops)
		reconnects += w.reconn
		for _, o := range w.ops {
			if o.acked {
				acked++
			}
		}
	}
	fmt.Printf("chaos kill-restart: servers=5 faults=%d writes=%d acknowledged=%d client_reconnects=%d lost=%d resurrected=%d converge=%.2fs\n",
		faults, writes, acked, reconnects, lost, resurrected, converge.Seconds())
	if len(bad) > 0 {
		c.dumpEntries(bad[:min(len(bad), 8)])
	}
	require.Positive(t, faults, "the test injected no fault")
	require.Positive(t, acked, "no write was acknowledged")
	require.Zero(t, lost)
	require.Zero(t, resurrected)
}
