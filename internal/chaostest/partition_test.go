//go:build slow

package chaostest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/stretchr/testify/require"
)

// Real packet loss on loopback, with iptables: one server is cut off from
// its peers while the test still reaches it.
//
// Every loopback packet passes the OUTPUT chain once, so the rules live in
// a chain of this test's own (filterChain), jumped to from OUTPUT, and
// every rule names this test's addresses (127.0.1.5x) or the uid the
// cut-off server runs as (cutUID, used by nothing else): they cannot touch
// other tests' traffic. They are removed in t.Cleanup, and at the start of
// every run too, should a run killed before its cleanup have left them.
//
// The cut-off server runs as its own uid because memberlist dials its TCP
// connections from the default source address (127.0.0.1), like every
// other member: only the owner of the socket tells its packets apart.
// The test's own connections (clients, the ops API) come from clientIP,
// which the rules let through.
const (
	filterChain = "CONTACTSTORE-TIMETEST" // + "-IN", "-OUT"
	cutUID      = 61053
	clientIP    = "127.0.1.59"
)

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "10"}, args...)...).CombinedOutput()
	if err != nil {
		// One line: it may end up in a skip reason.
		msg := strings.Join(strings.Fields(string(out)), " ")
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, msg)
	}
	return nil
}

// removeFilter removes the jumps and the chains, whatever of them exists.
func removeFilter() {
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		chain := filterChain + "-" + hook[:len(hook)-3] // -IN, -OUT
		for i := 0; i < 10 && iptables("-D", hook, "-j", chain) == nil; i++ {
		}
		_ = iptables("-F", chain)
		_ = iptables("-X", chain)
	}
}

// cutOff makes every packet between ip and anything but clientIP on
// loopback disappear as it arrives (INPUT: the sender sees nothing), and
// so every packet a socket of cutUID sends (OUTPUT: the only place the
// owner of a socket is known; the sender's send fails).
func cutOff(ip string) error {
	for _, r := range [][]string{
		{"-IN", "-i", "lo", "-s", clientIP, "-j", "RETURN"},
		{"-IN", "-i", "lo", "-d", clientIP, "-j", "RETURN"},
		{"-IN", "-i", "lo", "-d", ip, "-j", "DROP"},
		{"-IN", "-i", "lo", "-s", ip, "-j", "DROP"},
		{"-OUT", "-o", "lo", "-d", clientIP, "-j", "RETURN"},
		{"-OUT", "-o", "lo", "-m", "owner", "--uid-owner", fmt.Sprint(cutUID), "-j", "DROP"},
	} {
		if err := iptables(append([]string{"-A", filterChain + r[0]}, r[1:]...)...); err != nil {
			return err
		}
	}
	return nil
}

func heal() error {
	if err := iptables("-F", filterChain+"-IN"); err != nil {
		return err
	}
	return iptables("-F", filterChain+"-OUT")
}

// installFilter creates the (empty) chains and their jumps, or skips the
// test saying why.
func installFilter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the partition is made with iptables rules")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (Debian package iptables; .ci/run installs it)")
	}
	removeFilter()
	t.Cleanup(removeFilter)
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		chain := filterChain + "-" + hook[:len(hook)-3]
		if err := iptables("-N", chain); err != nil {
			t.Skipf("cannot add iptables rules here: %v", err)
		}
		if err := iptables("-I", hook, "-j", chain); err != nil {
			t.Skipf("cannot add iptables rules here: %v", err)
		}
	}
	// The rules must be accepted (the owner match is a module), then
	// stay off until the test cuts.
	if err := cutOff("127.0.1.58"); err != nil {
		t.Skipf("cannot add iptables rules here: %v", err)
	}
	require.NoError(t, heal())
}

// newPartitionCluster starts three servers on 127.0.1.first..first+2,
// the third running as cutUID (so that cutOff can cut it), with the
// test's own traffic from clientIP.
func newPartitionCluster(t *testing.T, first int, flags ...string) *cluster {
	installFilter(t)
	c := newTimeCluster(t, 3, first)
	for _, s := range c.servers {
		s.setFlags(flags...)
	}
	local := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 2 * time.Second}
	c.dialer = func(ctx context.Context, addr string) (net.Conn, error) { return local.DialContext(ctx, "tcp", addr) }
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: local.DialContext}}
	for _, s := range c.servers {
		s.httpc = hc
	}

	// The third runs as cutUID: its binary and its data dir must be
	// reachable to it.
	s3 := c.servers[2]
	require.NoError(t, os.Chmod(filepath.Dir(c.bin), 0o755))
	dir, err := os.MkdirTemp("", "chaostest-cut-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chown(dir, cutUID, cutUID))
	s3.dataDir = filepath.Join(dir, s3.name)
	s3.cred = &syscall.Credential{Uid: cutUID, Gid: cutUID, NoSetGroups: true}

	c.startAll(c.servers...)
	c.waitServing(60 * time.Second)
	return c
}

// A member cut off by real packet loss (running, not killed) for longer
// than a short tombstone grace, while the others delete a contact and
// expire its tombstone: when the network heals it keeps what it
// acknowledged while cut off, sends it on, and brings back nothing.
func TestTimePartitionLongerThanGrace(t *testing.T) {
	c := newPartitionCluster(t, 51, "--tombstone-grace", "10s")
	s1, s2, s3 := c.servers[0], c.servers[1], c.servers[2]
	c.put(s1, "cy", "x", "1")
	c.put(s2, "cy", "y", "2")
	c.waitBooks(c.servers, "cy", map[string]string{"x": "1", "y": "2"}, 60*time.Second)

	c.waitMarks(c.servers...)
	require.NoError(t, cutOff(s3.ip))
	t.Log("cut off", s3.name)
	noPeerUp := func(st opsapi.Status, peers ...string) bool {
		for _, m := range st.Members {
			for _, p := range peers {
				if m.Name == p && (m.OutboundUp || m.InboundUp || m.State == "alive") {
					return false
				}
			}
		}
		return true
	}
	waitStatus(t, s3, 90*time.Second, "no link to its peers, who are not alive to it", func(st opsapi.Status) bool {
		return noPeerUp(st, s1.name, s2.name)
	})
	waitStatus(t, s1, 90*time.Second, s3.name+" not alive, no link", func(st opsapi.Status) bool { return noPeerUp(st, s3.name) })

	c.del(s1, "cy", "x")
	c.put(s3, "cy", "z", "3") // acknowledged while cut off
	c.waitBooks([]*server{s1, s2}, "cy", map[string]string{"y": "2"}, 60*time.Second)
	c.waitBooks([]*server{s3}, "cy", map[string]string{"x": "1", "y": "2", "z": "3"}, 10*time.Second)

	// Longer than the grace: the others expire the tombstone of x, and s3
	// knows its data is stale.
	for _, s := range []*server{s1, s2} {
		waitStatus(t, s, 90*time.Second, "the tombstone expired, data current", func(st opsapi.Status) bool {
			return st.Tombstones == 0 && !st.StaleData
		})
	}
	waitStatus(t, s3, 90*time.Second, "its data stale", func(st opsapi.Status) bool { return st.StaleData })
	// Still cut off (the rules held): it has not heard of the delete.
	c.waitBooks([]*server{s3}, "cy", map[string]string{"x": "1", "y": "2", "z": "3"}, 10*time.Second)

	require.NoError(t, heal())
	t.Log("healed")
	want := map[string]string{"y": "2", "z": "3"}
	c.waitBooks(c.servers, "cy", want, 120*time.Second)
	waitFor(t, 30*time.Second, s3.name+" counted the entry its refill dropped", func() (bool, string) {
		v, err := s3.metric("contact_refill_dropped_total")
		return err == nil && v >= 1, fmt.Sprint(v, err)
	})
	for _, s := range c.servers {
		waitStatus(t, s, 60*time.Second, "ready, data current", func(st opsapi.Status) bool { return st.Ready && !st.StaleData })
		// /metrics still serves after memberlist saw failures (its own
		// health gauge once collided with ours and failed every scrape).
		_, err := s.metric("contact_clock")
		require.NoError(t, err, s.name)
	}
	c.waitBooks(c.servers, "cy", want, 10*time.Second)
}
