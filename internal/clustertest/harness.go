// Package clustertest is the in-process cluster harness, kept out of the
// binaries like httptest: N contact servers in one process, each on its
// own 127.0.0.x address with fast gossip timings, and Kill, Restart,
// Partition, Heal and WaitConverged helpers that wait on conditions with
// deadlines, never with fixed sleeps. Only tests and benchmarks import it;
// its own _test files are the cluster's integration tests.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/logging/logtest"
	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/internal/ops"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Options configures a Harness.
type Options struct {
	// BaseIP is the first node's last octet; node i gets 127.0.0.(BaseIP+i).
	BaseIP int
	// Heartbeat is the peer heartbeat interval (default 100 ms).
	Heartbeat time.Duration
	// Quiet drops logs instead of routing them to t.Log.
	Quiet bool
	// Tune adjusts each node's config before it starts.
	Tune func(i int, c *node.Config)
	// Profile, if set, runs memberlist with that preset's own timings
	// (lan, local, wan) instead of the harness's fast test timings.
	Profile string
	// HTTP serves each node's ops endpoints on its IP (Instance.HTTPAddr).
	HTTP bool
}

// Instance is one node slot; Node is nil while it is killed.
type Instance struct {
	Index      int
	Name       string
	IP         string
	DataDir    string
	gossipPort int
	contact    string
	Node       *node.Node
	HTTPAddr   string
	web        *ops.Server
	// clock is how far this node's wall clock is shifted from real time
	// (nanoseconds): ShiftClock moves it, running or not, so tests run a
	// node days later or with a wrong clock without waiting.
	clock atomic.Int64
}

// Now is node i's wall clock.
func (in *Instance) Now() time.Time { return time.Now().Add(time.Duration(in.clock.Load())) }

// ContactAddr is the node's contact-protocol address.
func (in *Instance) ContactAddr() string { return in.contact }

// Harness runs the nodes.
type Harness struct {
	t     testing.TB
	opts  Options
	net   *Network
	dir   string
	mu    gosync.Mutex
	nodes []*Instance
}

// New starts n nodes; every node but the first joins the first.
func New(t testing.TB, n int, opts Options) *Harness {
	if opts.BaseIP == 0 {
		opts.BaseIP = 20
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 100 * time.Millisecond
	}
	h := &Harness{t: t, opts: opts, net: newNetwork(), dir: t.TempDir()}
	t.Cleanup(h.Close)
	for range n {
		h.Add()
	}
	return h
}

// Nodes returns every slot, running or not.
func (h *Harness) Nodes() []*Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.nodes)
}

// Node returns slot i.
func (h *Harness) Node(i int) *Instance { return h.Nodes()[i] }

// Add starts one more node, joining the first.
func (h *Harness) Add() *Instance {
	h.mu.Lock()
	i := len(h.nodes)
	in := &Instance{Index: i, Name: fmt.Sprintf("node-%d", i), IP: fmt.Sprintf("127.0.0.%d", h.opts.BaseIP+i)}
	in.DataDir = filepath.Join(h.dir, in.Name)
	h.nodes = append(h.nodes, in)
	h.mu.Unlock()
	h.start(in)
	return in
}

func (h *Harness) logger(name string) hclog.Logger {
	if h.opts.Quiet {
		return hclog.NewNullLogger()
	}
	return logtest.ForTest(h.t, name)
}

func (h *Harness) start(in *Instance) {
	h.t.Helper()
	tr, err := newTransport(h.net, in.IP, in.gossipPort)
	if err != nil {
		h.t.Fatalf("%s: gossip transport: %v", in.Name, err)
	}
	in.gossipPort = tr.GetAutoBindPort()
	cfg := node.DefaultConfig(in.Name)
	cfg.Logger = h.logger(in.Name)
	listen := net.JoinHostPort(in.IP, "0")
	if in.contact != "" {
		listen = in.contact // same address across restarts
	}
	cfg.Server.ListenAddr = listen
	cfg.Store.Dir = in.DataDir
	cfg.Gossip.BindAddr = net.JoinHostPort(in.IP, strconv.Itoa(in.gossipPort))
	cfg.Gossip.Profile = "local"
	cfg.Gossip.RejoinInterval = time.Second
	cfg.Gossip.JoinBackoffMax = 200 * time.Millisecond
	for _, o := range h.Nodes() {
		if o != in && o.gossipPort != 0 {
			cfg.Gossip.Seeds = append(cfg.Gossip.Seeds, net.JoinHostPort(o.IP, strconv.Itoa(o.gossipPort)))
		}
	}
	if h.opts.Profile != "" {
		cfg.Gossip.Profile = h.opts.Profile
	}
	cfg.Gossip.Tune = func(c *memberlist.Config) {
		c.Transport = tr
		c.AdvertiseAddr, c.AdvertisePort = in.IP, in.gossipPort
		if h.opts.Profile != "" {
			return
		}
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 50 * time.Millisecond
		c.GossipInterval = 20 * time.Millisecond
		c.PushPullInterval = time.Second
		c.SuspicionMult = 2
		c.TCPTimeout = 500 * time.Millisecond
		c.GossipToTheDeadTime = 2 * time.Second
		c.DeadNodeReclaimTime = 500 * time.Millisecond
	}
	hb := h.opts.Heartbeat
	cfg.Sync.HeartbeatInterval = hb
	cfg.Sync.FeedGrace = 3 * hb
	cfg.Sync.ReconcileInterval = 50 * time.Millisecond
	cfg.Sync.AntiEntropyInterval = 200 * time.Millisecond
	cfg.Sync.RedialBackoffMax = 200 * time.Millisecond
	cfg.Sync.DialTimeout = time.Second
	cfg.Sync.Dialer = h.net.Dial(in.IP)
	cfg.Sync.LocalIP = net.ParseIP(in.IP)
	cfg.Sync.AllowPeer = func(_ string, remote net.Addr) bool { return !h.net.Blocked(in.IP, hostOf(remote.String())) }
	cfg.Store.SyncInterval = 20 * time.Millisecond
	cfg.Store.Now = in.Now
	cfg.Sync.SyncTimeout = 3 * time.Second
	// Benchmarks open thousands of connections from one address.
	cfg.Server.MaxConnRate, cfg.Server.MaxConnsPerAddr = 0, 0
	if h.opts.Tune != nil {
		h.opts.Tune(in.Index, &cfg)
	}
	metrics := ops.NewMetrics()
	cfg.Store.OnSync = metrics.ObserveFsync
	n, err := node.Start(cfg)
	if err != nil {
		_ = tr.Shutdown()
		h.t.Fatalf("%s: start: %v", in.Name, err)
	}
	in.contact = n.Server.Addr().String()
	if h.opts.HTTP {
		addr := net.JoinHostPort(in.IP, "0")
		if in.HTTPAddr != "" {
			addr = in.HTTPAddr
		}
		if err := metrics.Attach(n); err != nil {
			h.t.Fatalf("%s: metrics: %v", in.Name, err)
		}
		hc := ops.DefaultConfig(addr)
		hc.Logger = h.logger(in.Name + ".http")
		if in.web, err = ops.Start(hc, n, metrics); err != nil {
			h.t.Fatalf("%s: http: %v", in.Name, err)
		}
		in.HTTPAddr = in.web.Addr()
	}
	h.mu.Lock()
	in.Node = n
	h.mu.Unlock()
}

// Kill stops node i abruptly (no leave, no drain).
func (h *Harness) Kill(i int) {
	in := h.Node(i)
	if in.Node == nil {
		return
	}
	in.Node.Kill()
	h.stopWeb(in)
	h.mu.Lock()
	in.Node = nil
	h.mu.Unlock()
}

func (h *Harness) stopWeb(in *Instance) {
	if in.web != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = in.web.Shutdown(ctx)
		in.web = nil
	}
}

// Stop stops node i gracefully.
func (h *Harness) Stop(i int) {
	in := h.Node(i)
	if in.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = in.Node.Shutdown(ctx)
	h.stopWeb(in)
	h.mu.Lock()
	in.Node = nil
	h.mu.Unlock()
}

// Restart starts a stopped or killed node again on its data and addresses.
func (h *Harness) Restart(i int) {
	in := h.Node(i)
	if in.Node != nil {
		h.t.Fatalf("%s is running", in.Name)
	}
	h.start(in)
}

// Partition cuts traffic between every pair of nodes in different groups.
func (h *Harness) Partition(groups ...[]int) {
	group := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g
		}
	}
	nodes := h.Nodes()
	for a := range nodes {
		for b := range nodes {
			ga, oka := group[a]
			gb, okb := group[b]
			if oka && okb && ga != gb {
				h.net.set(nodes[a].IP, nodes[b].IP, true)
			}
		}
	}
}

// ShiftClock moves node i's wall clock by d (and keeps it there across
// restarts).
func (h *Harness) ShiftClock(i int, d time.Duration) { h.Node(i).clock.Add(int64(d)) }

// ShiftClocks moves every node's wall clock by d: the whole cluster, days
// later.
func (h *Harness) ShiftClocks(d time.Duration) {
	for _, in := range h.Nodes() {
		in.clock.Add(int64(d))
	}
}

// Advance moves every node's clock forward by d the way time passes: in
// steps of at most a day, each followed by a wait for every running node
// in contact with a serving peer to refresh its mark (a healthy member's
// mark follows the clock within a heartbeat or two). A node cut off from
// every serving peer cannot refresh it, and goes stale as it should.
func (h *Harness) Advance(d time.Duration) {
	h.t.Helper()
	for d > 0 {
		step := min(d, 24*time.Hour)
		h.ShiftClocks(step)
		d -= step
		h.WaitFor(20*time.Second, "marks to follow the clock", func() bool {
			for _, in := range h.Running() {
				n := in.Node
				if n.Sync == nil || store.StampOf(in.Now())-n.Store.Mark() < 3600 {
					continue
				}
				for _, p := range n.Sync.Peers() {
					if p.OutboundUp && p.InboundUp && p.LastHealth == wire.HealthServing {
						return false // in contact, and its mark has not caught up yet
					}
				}
			}
			return true
		})
	}
}

// Throttle makes node i read what node j feeds it at most bytesPerSec
// (0 lifts the limit).
func (h *Harness) Throttle(i, j int, bytesPerSec int) {
	h.net.Throttle(h.Node(i).IP, h.Node(j).IP, bytesPerSec)
}

// Heal restores all traffic.
func (h *Harness) Heal() { h.net.healAll() }

// Running returns the running nodes.
func (h *Harness) Running() []*Instance {
	var out []*Instance
	for _, in := range h.Nodes() {
		if in.Node != nil {
			out = append(out, in)
		}
	}
	return out
}

// Converged reports whether every running node is ready, sees every other
// running node alive, and holds the same digest; else why not.
func (h *Harness) Converged() (bool, string) {
	run := h.Running()
	if len(run) == 0 {
		return true, ""
	}
	want := run[0].Node.Store.Digest()
	for _, in := range run {
		n := in.Node
		if !n.Ready() {
			return false, in.Name + " not ready"
		}
		if d := n.Store.Digest(); d != want {
			return false, fmt.Sprintf("%s digest %x != %s digest %x", in.Name, d, run[0].Name, want)
		}
		alive := 0
		for _, m := range n.Members.Members() {
			if m.Alive() {
				alive++
			}
		}
		if alive != len(run) {
			return false, fmt.Sprintf("%s sees %d alive members, want %d", in.Name, alive, len(run))
		}
	}
	return true, ""
}

// WaitConverged waits up to d for Converged, failing the test otherwise.
func (h *Harness) WaitConverged(d time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	why := ""
	for time.Since(start) < d {
		var ok bool
		if ok, why = h.Converged(); ok {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("cluster did not converge within %v: %s", d, why)
	return 0
}

// WaitFor waits up to d for cond, failing the test with what otherwise.
func (h *Harness) WaitFor(d time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client connects as user to node i.
func (h *Harness) Client(i int, user string) *client.Client {
	h.t.Helper()
	c, err := client.Dial(context.Background(), []string{h.Node(i).ContactAddr()}, user, client.DefaultOptions())
	if err != nil {
		h.t.Fatalf("client to %s: %v", h.Node(i).Name, err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// List returns user's book on node i as "name=phone" strings.
func (h *Harness) List(i int, user string) []string {
	h.t.Helper()
	var out []string
	cs, err := h.Node(i).Node.Store.List([]byte(user), nil)
	if err != nil {
		h.t.Fatalf("list %q on %s: %v", user, h.Node(i).Name, err)
	}
	for _, c := range cs {
		out = append(out, c.Name+"="+c.Phone)
	}
	return out
}

// Close stops every running node.
func (h *Harness) Close() {
	for _, in := range h.Nodes() {
		if in.Node != nil {
			h.Kill(in.Index)
		}
	}
}
