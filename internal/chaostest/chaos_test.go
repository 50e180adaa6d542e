//go:build slow

package chaostest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/security"
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
	runChaos(t, newCluster(t, 5), "chaos kill-restart", chaosDuration(t))
}

// The same chaos with TLS on the contact port (clients verified by name)
// and encrypted gossip.
func TestChaosKillAndRestartSecure(t *testing.T) {
	c := newCluster(t, 5)
	dir := t.TempDir()
	var names, users []string
	for _, s := range c.servers {
		names = append(names, s.name)
	}
	for i := range 5 {
		users = append(users, fmt.Sprintf("user-%d", i))
	}
	users = append(users, "probe")
	require.NoError(t, security.WriteTestPKI(dir, names, users, []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15"}, time.Hour))
	c.extra = []string{"--tls-cert", dir + "/{name}.pem", "--tls-key", dir + "/{name}-key.pem", "--tls-ca", dir + "/ca.pem",
		"--tls-client-auth", "verify", "--gossip-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
	pool, err := security.LoadCA(dir + "/ca.pem")
	require.NoError(t, err)
	// Each user presents its own certificate: the dialer picks it by the
	// hello's user, which the writer's connection is made for.
	c.userDialer = func(user string) Dialer {
		cert, err := tls.LoadX509KeyPair(dir+"/"+user+".pem", dir+"/"+user+"-key.pem")
		require.NoError(t, err)
		return client.TLSDialer(security.DialConfig(&cert, pool), "")
	}
	c.dialer = c.userDialer("probe")
	d := chaosDuration(t) * 2 / 3
	runChaos(t, c, "chaos kill-restart (TLS, encrypted gossip)", d)
}

func runChaos(t *testing.T, c *cluster, label string, duration time.Duration) {
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
		if c.userDialer != nil {
			w.UseDialer(c.userDialer(w.User))
		}
		writers = append(writers, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}

	rng := rand.New(rand.NewPCG(7, 7))
	faults := 0
	end := time.Now().Add(duration)
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
	var books map[string]map[string]string
	var err error
	if c.userDialer == nil {
		books, _, err = Converge(addrs, users, 60*time.Second)
	} else { // each user reads its own book with its own certificate
		books = map[string]map[string]string{}
		for _, u := range users {
			var b map[string]map[string]string
			b, _, err = ConvergeVia(c.userDialer(u), addrs, []string{u}, 60*time.Second)
			if err != nil {
				break
			}
			books[u] = b[u]
		}
	}
	require.NoError(t, err, "after the last fault")
	converge := time.Since(lastFault)

	var writes, acked, lost, resurrected, late, reconnects int
	var bad []string
	for _, w := range writers {
		v := w.Check(books[w.User])
		lost, resurrected, late = lost+v.Lost, resurrected+v.Resurrected, late+v.LateCreates
		for _, m := range v.Errors {
			t.Error(m)
		}
		for _, m := range v.Notes {
			t.Log(m)
		}
		bad = append(bad, v.Keys...)
		wr, ac, rc := w.Stats()
		writes, acked, reconnects = writes+wr, acked+ac, reconnects+rc
	}
	Summary(fmt.Sprintf("%s: servers=5 faults=%d writes=%d acknowledged=%d client_reconnects=%d lost=%d resurrected=%d late_unacknowledged_creates=%d converge=%.2fs",
		label, faults, writes, acked, reconnects, lost, resurrected, late, converge.Seconds()))
	if len(bad) > 0 {
		c.dumpEntries(bad[:min(len(bad), 8)])
	}
	for _, s := range c.servers { // the clocks did disagree
		if b, err := os.ReadFile(s.logPath); err == nil && slices.Contains(s.flags, "--clock-offset") && !slices.Contains(s.flags, "0s") {
			require.Contains(t, string(b), "wall clock shifted for testing", "%s ran with %v", s.name, s.flags)
		}
	}
	require.Positive(t, faults, "the test injected no fault")
	require.Positive(t, acked, "no write was acknowledged")
	require.Zero(t, lost)
	require.Zero(t, resurrected)
}
