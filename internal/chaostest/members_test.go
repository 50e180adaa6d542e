//go:build slow

package chaostest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/stretchr/testify/require"
)

// membersHTTPPort is the HTTP port of the 32-member test's servers (their
// contact and gossip ports are the chaos test's). They run on
// 127.0.3.1-32, the scale worker's addresses (bench/members.sh uses other
// ports there).
const membersHTTPPort = "18080"

// TestThirtyTwoMembers: 32 real members join through one seed; changes
// written on several members are listed by every member; 8 members are
// killed with SIGKILL at once while the others take more changes and a
// delete, and are restarted; then all 32 hold equal digests, are ready, and
// list exactly the expected book. It asserts convergence, never its time
// (bench/members.sh measures that).
func TestThirtyTwoMembers(t *testing.T) {
	const n, book = 32, "members-check"
	c := newClusterOn(t, n, "127.0.3.", 1)
	c.seeds = c.servers[:1]
	for _, s := range c.servers {
		s.httpPort = membersHTTPPort
	}
	for _, s := range c.servers {
		c.start(s)
	}
	c.waitServing(2 * time.Minute)
	waitMembers(t, c, n, 3*time.Minute)

	want := map[string]string{}
	put := func(s *server, contact, phone string) {
		t.Helper()
		cl := dialBook(t, s, book)
		defer cl.Close()
		require.NoError(t, cl.Update(contact, phone))
		_, err := cl.List() // durable on s once it answers
		require.NoError(t, err)
		want[contact] = phone
	}
	for i := 1; i < n; i += 4 { // members 2, 6, ..., 30
		put(c.servers[i], "from-"+c.servers[i].name, fmt.Sprintf("555%04d", i))
	}
	waitBooks(t, c, book, want, 2*time.Minute)

	var victims []*server
	for i := 3; i < n; i += 4 { // members 4, 8, ..., 32: never the seed
		victims = append(victims, c.servers[i])
	}
	var wg gosync.WaitGroup
	for _, s := range victims {
		wg.Go(func() { c.kill(s) })
	}
	wg.Wait()
	for i := 2; i < n; i += 4 { // members 3, 7, ..., 31: all running
		put(c.servers[i], "while-down-"+c.servers[i].name, fmt.Sprintf("556%04d", i))
	}
	cl := dialBook(t, c.servers[2], book)
	require.NoError(t, cl.Delete("from-"+c.servers[1].name))
	_, err := cl.List()
	require.NoError(t, err)
	_ = cl.Close()
	delete(want, "from-"+c.servers[1].name)
	for _, s := range victims {
		c.start(s)
	}
	c.waitServing(2 * time.Minute)
	waitMembers(t, c, n, 3*time.Minute)
	waitDigests(t, c, 3*time.Minute)
	waitBooks(t, c, book, want, 30*time.Second)
}

func dialBook(t *testing.T, s *server, user string) *client.Client {
	t.Helper()
	opts := client.DefaultOptions()
	opts.DialTimeout, opts.IOTimeout = 2*time.Second, 10*time.Second
	cl, err := client.Dial(context.Background(), []string{s.addr()}, user, opts)
	require.NoError(t, err)
	return cl
}

func status(s *server) (opsapi.Status, error) {
	var st opsapi.Status
	hc := &http.Client{Timeout: 3 * time.Second}
	res, err := hc.Get("http://" + net.JoinHostPort(s.ip, s.httpPort) + "/v1/status")
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", s.name, res.Status)
	}
	return st, json.NewDecoder(res.Body).Decode(&st)
}

// waitUntil polls cond until it returns "" (nothing missing) or d passes,
// then fails with the last thing missing.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, d, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMembers: every server sees n members alive, its peer links to each
// up both ways.
func waitMembers(t *testing.T, c *cluster, n int, d time.Duration) {
	t.Helper()
	waitUntil(t, d, fmt.Sprintf("all see %d members linked", n), func() string {
		for _, s := range c.servers {
			st, err := status(s)
			if err != nil {
				return err.Error()
			}
			if why := st.LinksMissing(s.name, n); why != "" {
				return why
			}
		}
		return ""
	})
}

// waitDigests: every server ready, all with one digest.
func waitDigests(t *testing.T, c *cluster, d time.Duration) {
	t.Helper()
	waitUntil(t, d, "all ready with equal digests", func() string {
		var first string
		for i, s := range c.servers {
			st, err := status(s)
			switch {
			case err != nil:
				return err.Error()
			case !st.Ready:
				return s.name + " not ready"
			case i == 0:
				first = st.Digest
			case st.Digest != first:
				return fmt.Sprintf("%s digest %s, %s has %s", s.name, st.Digest, c.servers[0].name, first)
			}
		}
		return ""
	})
}

// waitBooks: every server lists exactly want as user's book.
func waitBooks(t *testing.T, c *cluster, user string, want map[string]string, d time.Duration) {
	t.Helper()
	waitUntil(t, d, "every member lists every change", func() string {
		for _, s := range c.servers {
			got, ok := Book(s.addr(), user)
			if !ok {
				return s.name + " does not answer"
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Sprintf("%s lists %d contacts %v, want %d", s.name, len(got), got, len(want))
			}
		}
		return ""
	})
}
