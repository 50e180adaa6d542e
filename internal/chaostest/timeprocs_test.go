//go:build slow

package chaostest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/opsapi"
)

// Helpers of the real-binary time tests (time_test.go, partition_test.go):
// clusters on 127.0.1.x (the address range of this work) with the ops HTTP
// API on, and waits on conditions read over it.

const opsPort = "18080"

// newTimeCluster is a cluster of n servers on 127.0.1.first... with their
// ops HTTP API on port 18080 and a short --sync-timeout (a whole cluster
// restarting waits that long for a fresher peer before keeping its data).
func newTimeCluster(t *testing.T, n, first int) *cluster {
	c := newClusterOn(t, n, "127.0.1.", first)
	for _, s := range c.servers {
		s.httpPort = opsPort
		s.flags = []string{"--sync-timeout", "3s"}
	}
	return c
}

// setFlags replaces s's own flags (for its next start).
func (s *server) setFlags(flags ...string) { s.flags = flags }

var httpClient = &http.Client{Timeout: 5 * time.Second}

func (s *server) get(path string) ([]byte, error) {
	hc := httpClient
	if s.httpc != nil {
		hc = s.httpc
	}
	resp, err := hc.Get("http://" + net.JoinHostPort(s.ip, s.httpPort) + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, tail(b, 300))
	}
	return b, nil
}

// status is s's /v1/status.
func (s *server) status() (opsapi.Status, error) {
	var st opsapi.Status
	b, err := s.get("/v1/status")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// metric is the value of the unlabelled metric name in s's /metrics.
func (s *server) metric(name string) (float64, error) {
	b, err := s.get("/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s not in /metrics", name)
}

// waitFor polls cond (a real process changes its state on its own time)
// until it holds or d passes; what names the condition in the failure.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last seen: %s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus waits until s's /v1/status satisfies cond.
func waitStatus(t *testing.T, s *server, d time.Duration, what string, cond func(opsapi.Status) bool) opsapi.Status {
	t.Helper()
	var got opsapi.Status
	waitFor(t, d, s.name+": "+what, func() (bool, string) {
		st, err := s.status()
		if err != nil {
			return false, err.Error()
		}
		got = st
		return cond(st), brief(st)
	})
	return got
}

// brief is st without the per-member detail, for failure messages.
func brief(st opsapi.Status) string {
	var ms []string
	for _, m := range st.Members {
		ms = append(ms, fmt.Sprintf("%s(%s out=%v in=%v mark=%s)", m.Name, m.State, m.OutboundUp, m.InboundUp, m.Mark))
	}
	st.Members = nil
	b, _ := json.Marshal(st)
	return string(b) + " members: " + strings.Join(ms, " ")
}

// change makes changes on s for user through fn and waits for the
// ListAll that acknowledges them (retrying the whole batch while s is
// starting or syncing: it holds client frames until it is in sync).
func (c *cluster) change(s *server, user string, fn func(cl *client.Client) error) {
	c.t.Helper()
	opts := client.DefaultOptions()
	opts.DialTimeout, opts.IOTimeout = time.Second, 2*time.Minute
	opts.Dialer = c.dialer
	waitFor(c.t, 60*time.Second, fmt.Sprintf("a change to %s's book on %s acknowledged", user, s.name), func() (bool, string) {
		cl, err := client.Dial(context.Background(), []string{s.addr()}, user, opts)
		if err != nil {
			return false, err.Error()
		}
		defer cl.Close()
		if err := fn(cl); err != nil {
			return false, err.Error()
		}
		if _, err := cl.List(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

func (c *cluster) put(s *server, user, contact, phone string) {
	c.t.Helper()
	c.change(s, user, func(cl *client.Client) error { return cl.Update(contact, phone) })
}

func (c *cluster) del(s *server, user, contact string) {
	c.t.Helper()
	c.change(s, user, func(cl *client.Client) error { return cl.Delete(contact) })
}

// waitBooks waits until every one of servers lists exactly want for user.
func (c *cluster) waitBooks(servers []*server, user string, want map[string]string, d time.Duration) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("%s's book to be %v on %d servers", user, want, len(servers)), func() (bool, string) {
		for _, s := range servers {
			got, ok := BookVia(c.dialer, s.addr(), user)
			if !ok {
				return false, s.name + " does not answer"
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return false, fmt.Sprintf("%s lists %v", s.name, got)
			}
		}
		return true, ""
	})
}

// logSize and logSince bracket what a server logged after a point.
func (s *server) logSize() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *server) logSince(off int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// waitMarks waits until each of servers has a mark: its changes were
// confirmed on a serving peer, so "out of contact" (PROTOCOL.md) counts
// from then. (A member with no mark yet, one whose log no serving peer
// has confirmed, is never stale in store/stale.go, whatever it holds:
// a case these tests do not make.)
func (c *cluster) waitMarks(servers ...*server) {
	c.t.Helper()
	for _, s := range servers {
		waitStatus(c.t, s, 60*time.Second, "a mark", func(st opsapi.Status) bool { return st.Mark != "" })
	}
}

func (c *cluster) startAll(servers ...*server) {
	for _, s := range servers {
		c.start(s)
	}
}

// waitServingOn is waitServing for some of the servers.
func (c *cluster) waitServingOn(d time.Duration, servers ...*server) {
	c.t.Helper()
	for _, s := range servers {
		waitFor(c.t, d, s.name+" serving clients", func() (bool, string) {
			_, ok := BookVia(c.dialer, s.addr(), "probe")
			return ok, "no answer"
		})
	}
}
