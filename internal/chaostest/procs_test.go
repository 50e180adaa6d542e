//go:build slow

package chaostest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

// The chaos servers' ports are fixed: a killed server must come
// back on the address its peers and the writers know, and memberlist must
// find it at the gossip address the others were started with (--join). The
// ports are not picked by listening and closing (another process could
// take them in between): they are fixed, on the five addresses
// 127.0.0.11-15 (the time tests: 127.0.1.x) that nothing else in this
// repository binds with these ports (the in-process harness uses 127.0.0.20 and up, on ports the kernel
// picks; the README's demo cluster uses 9000 and 7946). A port held by
// anything else shows as "address already in use" in that server's log,
// which the test prints when it fails.
const (
	contactPort = "19000"
	gossipPort  = "17946"
)

type server struct {
	name    string
	ip      string
	dataDir string
	logPath string
	// flags are this server's own extra flags (a clock offset), after the
	// cluster's; httpPort, if set, serves the ops HTTP API on its ip.
	flags    []string
	httpPort string
	httpc    *http.Client // for its ops API, if not the default one
	// cred, if set, runs the process as another user (so that packet
	// filter rules can tell its traffic apart; see partition_test.go).
	cred   *syscall.Credential
	mu     gosync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once the running process has been reaped
}

func (s *server) addr() string       { return net.JoinHostPort(s.ip, contactPort) }
func (s *server) gossipAddr() string { return net.JoinHostPort(s.ip, gossipPort) }

type cluster struct {
	t          *testing.T
	bin        string
	servers    []*server
	extra      []string // flags every server gets (TLS, gossip key); {name} is the server's name
	dialer     Dialer   // for probes
	userDialer func(user string) Dialer
	seeds      []*server // nil: every server joins all the others; else only these
}

// serverBin is the contact-server binary, built once for every chaos test
// of this run.
var serverBin struct {
	once gosync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func buildServer(t *testing.T) string {
	serverBin.once.Do(func() {
		serverBin.dir, serverBin.err = os.MkdirTemp("", "chaostest-")
		if serverBin.err != nil {
			return
		}
		serverBin.path = filepath.Join(serverBin.dir, "contact-server")
		serverBin.out, serverBin.err = exec.Command("go", "build", "-o", serverBin.path, "../../cmd/contact-server").CombinedOutput()
	})
	require.NoError(t, serverBin.err, "go build: %s", serverBin.out)
	return serverBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if serverBin.dir != "" {
		_ = os.RemoveAll(serverBin.dir)
	}
	os.Exit(code)
}

// chaosClockOffsets shift the chaos servers' wall clocks apart by up to a
// few seconds (PROTOCOL.md: concurrent changes order by wall time; a
// change made on a member that held the previous one wins whatever the
// clocks): the chaos runs must pass with clocks that disagree.
var chaosClockOffsets = []string{"-3s", "2s", "0s", "3s", "-2s"}

func newCluster(t *testing.T, n int) *cluster {
	c := newClusterOn(t, n, "127.0.0.", 11)
	for i, s := range c.servers {
		s.flags = []string{"--clock-offset", chaosClockOffsets[i%len(chaosClockOffsets)]}
	}
	return c
}

// newClusterOn is a cluster of n servers on prefix+first, prefix+first+1...
func newClusterOn(t *testing.T, n int, prefix string, first int) *cluster {
	c := &cluster{t: t, bin: buildServer(t)}
	dir := t.TempDir()
	for i := range n {
		s := &server{name: fmt.Sprintf("contact-server-%d", i+1), ip: fmt.Sprintf("%s%d", prefix, first+i)}
		s.dataDir = filepath.Join(dir, s.name)
		s.logPath = filepath.Join(dir, s.name+".log")
		c.servers = append(c.servers, s)
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			c.kill(s)
		}
		if dir := os.Getenv("CHAOS_LOG_DIR"); dir != "" && t.Failed() { // whole logs, kept
			for _, s := range c.servers {
				if b, err := os.ReadFile(s.logPath); err == nil {
					_ = os.WriteFile(filepath.Join(dir, t.Name()+"-"+s.name+".log"), b, 0o644)
				}
			}
		}
		if t.Failed() || os.Getenv("CHAOS_LOGS") != "" {
			for _, s := range c.servers {
				if b, err := os.ReadFile(s.logPath); err == nil {
					t.Logf("---- %s log (tail) ----\n%s", s.name, tail(b, 4000))
				}
			}
		}
	})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

func (c *cluster) start(s *server) {
	var join []string
	seeds := c.seeds
	if seeds == nil {
		seeds = c.servers
	}
	for _, o := range seeds {
		if o != s {
			join = append(join, "--join", o.gossipAddr())
		}
	}
	httpAddr := ""
	if s.httpPort != "" {
		httpAddr = net.JoinHostPort(s.ip, s.httpPort)
	}
	args := append([]string{"--name", s.name, "--listen", s.addr(), "--gossip", s.gossipAddr(),
		"--data-dir", s.dataDir, "--gossip-profile", "local", "--rejoin-interval", "2s", "--log-level", "info", "--http", httpAddr}, join...)
	args = append(args, c.extra...)
	args = append(args, s.flags...)
	for i, a := range args { // per-server certificate files
		args[i] = strings.ReplaceAll(a, "{name}", s.name)
	}
	cmd := exec.Command(c.bin, args...)
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(c.t, err)
	cmd.Stderr, cmd.Stdout = f, f
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	require.NoError(c.t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
}

func (c *cluster) kill(s *server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select { // reaped: its ports are free again
	case <-s.exited:
	case <-time.After(5 * time.Second):
		c.t.Errorf("%s did not exit after SIGKILL", s.name)
	}
	s.cmd = nil
	return true
}

// stop ends s with SIGTERM (a clean shutdown) and waits for it.
func (c *cluster) stop(s *server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		c.t.Errorf("%s did not exit within 30s of SIGTERM; killing it", s.name)
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (c *cluster) waitServing(d time.Duration) {
	deadline := time.Now().Add(d)
	for _, s := range c.servers {
		for {
			if _, ok := BookVia(c.dialer, s.addr(), "probe"); ok {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s did not start serving within %v", s.name, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// dumpEntries stops every server and prints what each one stored for the
// given "user/contact" keys, stamps included, to explain a failure.
func (c *cluster) dumpEntries(keys []string) {
	for _, s := range c.servers {
		c.kill(s)
	}
	for _, s := range c.servers {
		st, err := store.Open(store.DefaultConfig(s.dataDir), nil)
		if err != nil {
			c.t.Logf("%s: open: %v", s.name, err)
			continue
		}
		for _, k := range keys {
			user, contact, _ := strings.Cut(k, "/")
			e, ok, _ := st.Get([]byte(user), []byte(contact))
			c.t.Logf("%s %s: present=%v stamp=%d (%s) deleted=%v phone=%q clock=%d", s.name, k, ok, e.Stamp,
				store.TimeOf(e.Stamp).Format("15:04:05"), e.Deleted, e.Phone, st.Clock())
		}
		_ = st.Close()
	}
}
