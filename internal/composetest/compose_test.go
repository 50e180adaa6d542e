//go:build slow

package composetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/chaostest"
	"github.com/stretchr/testify/require"
)

// writers starts n failing-over writers over addrs; stop ends them.
func writers(n int, prefix string, addrs []string) (ws []*chaostest.Writer, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg gosync.WaitGroup
	for i := range n {
		w := chaostest.NewWriter(fmt.Sprintf("%s-%d", prefix, i), addrs, uint64(i+1))
		ws = append(ws, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	return ws, func() { cancel(); wg.Wait() }
}

func users(ws []*chaostest.Writer) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.User)
	}
	return out
}

// verify checks every writer against the converged books and prints the
// scenario's one-line summary.
func verify(t *testing.T, scenario string, faults int, ws []*chaostest.Writer, books map[string]map[string]string, took time.Duration, extra string) {
	t.Helper()
	var writes, acked, lost, resurrected, late int
	for _, w := range ws {
		v := w.Check(books[w.User])
		for _, m := range v.Errors {
			t.Error(m)
		}
		for _, m := range v.Notes {
			t.Log(m)
		}
		wr, ac, _ := w.Stats()
		writes, acked = writes+wr, acked+ac
		lost, resurrected, late = lost+v.Lost, resurrected+v.Resurrected, late+v.LateCreates
	}
	chaostest.Summary(fmt.Sprintf("compose %s: faults=%d writes=%d acknowledged=%d lost=%d resurrected=%d late_unacknowledged_creates=%d converge=%.2fs%s",
		scenario, faults, writes, acked, lost, resurrected, late, took.Seconds(), extra))
	require.Positive(t, acked, "no write was acknowledged")
	require.Zero(t, lost)
	require.Zero(t, resurrected)
}

func partitionFor() time.Duration {
	if v := os.Getenv("COMPOSE_PARTITION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return 30 * time.Second
}

func TestCompose(t *testing.T) {
	e := setup(t)
	rng := rand.New(rand.NewPCG(3, 3))

	t.Run("kill-restart", func(t *testing.T) {
		ws, stop := writers(3, "kill", contactAddrs)
		faults := 0
		var lastFault time.Time
		for range 4 {
			time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
			svc := services[rng.IntN(len(services))]
			id := e.id(svc)
			e.docker("kill", id)
			faults++
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			e.docker("start", id)
			lastFault = time.Now()
		}
		time.Sleep(time.Second)
		stop()
		books, _, err := chaostest.Converge(contactAddrs, users(ws), 15*time.Second)
		require.NoError(t, err)
		verify(t, "kill-restart", faults, ws, books, time.Since(lastFault), "")
	})

	t.Run("partition", func(t *testing.T) {
		e.waitReady(e.httpAddrs(), 30*time.Second)
		cut := e.id("contact-server-3")
		ws, stop := writers(2, "part", contactAddrs[:2])
		e.docker("network", "disconnect", e.net, cut)
		// The cut-off member takes writes too, through docker exec (the host
		// cannot reach it): each put returns only once it is durable there.
		minority := chaostest.NewExecWriter("minority", func(args ...string) error {
			_, err := run("docker", append([]string{"exec", cut, "/contactctl", "--server", "127.0.0.1:9000", "--timeout", "3s"}, args...)...)
			return err
		})
		end := time.Now().Add(partitionFor())
		for time.Now().Before(end) {
			minority.Step()
			time.Sleep(200 * time.Millisecond)
		}
		e.docker("network", "connect", e.net, cut)
		healed := time.Now()
		time.Sleep(500 * time.Millisecond)
		stop()
		all := append(append([]*chaostest.Writer{}, ws...), minority.Writer())
		books, _, err := chaostest.Converge(contactAddrs, users(all), 15*time.Second)
		require.NoError(t, err)
		verify(t, "partition", 1, all, books, time.Since(healed), fmt.Sprintf(" cut_off=%v", partitionFor()))
	})

	t.Run("scale", func(t *testing.T) {
		e.waitReady(e.httpAddrs(), 30*time.Second)
		ws, stop := writers(3, "scale", contactAddrs)
		time.Sleep(time.Second)
		e.dc("up", "-d", "--scale", "contact-server=3")
		scaled := time.Now()
		extra := e.ids("contact-server")
		require.Len(t, extra, 3)
		var addrs, https []string
		for _, id := range extra {
			ip := e.ip(id)
			addrs, https = append(addrs, hostPort(ip, "9000")), append(https, hostPort(ip, "8080"))
		}
		e.waitReady(https, 60*time.Second)
		time.Sleep(2 * time.Second)
		stop()
		books, _, err := chaostest.Converge(append(append([]string{}, contactAddrs...), addrs...), users(ws), 15*time.Second)
		require.NoError(t, err)
		verify(t, "scale-out 3->6", 3, ws, books, time.Since(scaled), "")

		ws2, stop2 := writers(3, "scalein", contactAddrs)
		time.Sleep(time.Second)
		e.dc("up", "-d", "--scale", "contact-server=0")
		shrunk := time.Now()
		time.Sleep(time.Second)
		stop2()
		books, _, err = chaostest.Converge(contactAddrs, users(append(ws, ws2...)), 15*time.Second)
		require.NoError(t, err)
		verify(t, "scale-in 6->3", 3, append(ws, ws2...), books, time.Since(shrunk), "")
	})
}
