package sync

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/contactstore/contactstore/membership"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
)

// peerReadBuffer is the read buffer of a peer connection: few of them,
// carrying bulk, so fewer read syscalls are worth the memory.
const peerReadBuffer = 256 << 10

// Cluster is what the Manager needs of membership; *membership.Membership
// implements it and tests may fake it.
type Cluster interface {
	Members() []membership.Member
	Lookup(name string) (membership.Member, bool)
	Joined() bool
	SetMeta(digest uint64, health uint8, timeout time.Duration) error
	Events() <-chan membership.Event
}

type peer struct {
	name       string
	bootID     uint64
	cancel     context.CancelFunc // stops the dial loop
	out        *peerConn
	in         *peerConn
	pulledOnce bool
	// feedGoneAt is when the peer last had no feed (creation, or its feed
	// closed): a Barrier waits for a feed gone less than FeedGrace ago.
	feedGoneAt time.Time

	// anti-entropy
	diffRounds   int
	lastDigest   uint64
	aeBackoff    int
	aeWaitUntil  time.Time
	lastPullDone time.Time
}

// Manager replicates the store to and from every live member.
type Manager struct {
	cfg   Config
	log   hclog.Logger
	st    *store.Store
	cl    Cluster
	stats Stats

	transfers chan struct{} // semaphore of transfers being served

	mu    gosync.Mutex
	peers map[string]*peer
	feeds atomic.Pointer[[]*peerConn]
	// pubSeq numbers Stream flushes; a feed records it when it attaches
	// and when a transfer on it starts walking the store (barrier.go).
	pubSeq atomic.Uint64

	changesMu gosync.Mutex
	changes   map[string]*atomic.Uint64 // changes received from each peer, ever

	metaMu gosync.Mutex // serializes node meta publishes

	leaving atomic.Bool
	ready   atomic.Bool
	started time.Time
	// initialPulls counts connect-pulls in flight while the server is not
	// yet ready: they run one at a time, so that after the first one a
	// peer already holding the same state (same published digest) can be
	// skipped instead of sending another full copy.
	initialPulls atomic.Int32
	// healthChanged wakes the anti-entropy loop to publish node meta at
	// once when readiness or leaving changes.
	healthChanged chan struct{}

	lastDigest uint64 // anti-entropy loop only

	ctx          context.Context
	cancel       context.CancelFunc
	wg           gosync.WaitGroup
	shutdownOnce gosync.Once
}

// New returns a Manager; Start runs it.
func New(cfg Config, st *store.Store, cl Cluster) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: log, st: st, cl: cl, peers: map[string]*peer{}, changes: map[string]*atomic.Uint64{},
		transfers: make(chan struct{}, cfg.MaxTransfers), ctx: ctx, cancel: cancel,
		healthChanged: make(chan struct{}, 1)}, nil
}

// Stats returns the replication counters.
func (m *Manager) Stats() *Stats { return &m.stats }

// Start runs the reconcile and anti-entropy loops.
func (m *Manager) Start() {
	m.started = time.Now()
	m.wg.Add(2)
	go m.reconcileLoop()
	go m.antiEntropyLoop()
}

// Health is the HealthStatus this server sends in its heartbeats.
func (m *Manager) Health() wire.Health {
	switch {
	case m.leaving.Load():
		return wire.HealthLeaving
	case !m.ready.Load():
		return wire.HealthSyncing
	}
	return wire.HealthServing
}

// Synced reports whether the initial transfers have completed (whether or
// not the server is leaving).
func (m *Manager) Synced() bool { return m.ready.Load() }

// Ready reports whether the initial transfers from the peers known at join
// time have completed (and the server is not leaving).
func (m *Manager) Ready() bool { return m.ready.Load() && !m.leaving.Load() }

func (m *Manager) reconcileLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case ev := <-m.cl.Events():
			m.log.Info("membership change", "event", ev.Kind.String(), "member", ev.Member.Name,
				"state", ev.Member.State, "gossip", ev.Member.GossipAddr, "contact", ev.Member.ContactAddr())
			m.reconcile()
		case <-t.C:
			m.reconcile()
		}
	}
}

// reconcile makes the peer set match the live members.
func (m *Manager) reconcile() {
	alive := map[string]membership.Member{}
	for _, mem := range m.cl.Members() {
		if mem.Name != m.cfg.Name && mem.Alive() && mem.Meta.ContactPort != 0 {
			alive[mem.Name] = mem
		}
	}
	var toClose []*peerConn
	m.mu.Lock()
	for name, mem := range alive {
		p := m.peerLocked(name)
		if p.bootID != 0 && mem.Meta.BootID != 0 && p.bootID != mem.Meta.BootID {
			m.log.Info("member restarted", "member", name)
			toClose = append(toClose, p.out, p.in) // connections to the old process
		}
		if mem.Meta.BootID != 0 {
			p.bootID = mem.Meta.BootID
		}
	}
	for name, p := range m.peers {
		if _, ok := alive[name]; !ok {
			p.cancel()
			toClose = append(toClose, p.out, p.in)
			delete(m.peers, name)
			m.log.Info("member gone: dropping its peer connections", "member", name)
		}
	}
	ready := !m.ready.Load() && m.cl.Joined()
	if ready {
		for _, p := range m.peers {
			ready = ready && p.pulledOnce
		}
	}
	m.mu.Unlock()
	for _, c := range toClose {
		if c != nil {
			c.close()
		}
	}
	switch {
	case ready:
		m.ready.Store(true)
		m.noteHealthChanged()
		m.log.Info("initial sync complete: serving", "peers", len(alive), "took", time.Since(m.started).Round(time.Millisecond))
	case !m.ready.Load() && time.Since(m.started) > m.cfg.InitialSyncTimeout:
		m.ready.Store(true)
		m.noteHealthChanged()
		m.log.Warn("initial sync timed out: serving without every peer's state", "timeout", m.cfg.InitialSyncTimeout)
	}
}

// peerLocked returns the peer called name, creating it and its dial loop.
// The caller holds m.mu.
func (m *Manager) peerLocked(name string) *peer {
	if p := m.peers[name]; p != nil {
		return p
	}
	ctx, cancel := context.WithCancel(m.ctx)
	p := &peer{name: name, cancel: cancel, feedGoneAt: time.Now()}
	m.peers[name] = p
	m.wg.Add(1)
	go m.dialLoop(ctx, name)
	return p
}

func (m *Manager) dialLoop(ctx context.Context, name string) {
	defer m.wg.Done()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		mem, ok := m.cl.Lookup(name)
		if !ok || !mem.Alive() {
			return
		}
		c, err := m.dial(ctx, mem)
		if err == nil {
			if m.attach(c) {
				m.log.Info("peer connection made", "peer", name, "dir", "outbound", "addr", mem.ContactAddr())
				m.connectPull(ctx, c)
				_ = c.run()
				m.detach(c)
				if time.Since(c.since) > 10*time.Second {
					backoff = 50 * time.Millisecond
				}
			} else {
				c.close()
			}
		} else if ctx.Err() == nil {
			m.log.Debug("dial to peer failed", "peer", name, "addr", mem.ContactAddr(), "error", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.cfg.RedialBackoffMax)
	}
}

// dial connects to mem and exchanges hellos; the reply must name mem.
func (m *Manager) dial(ctx context.Context, mem membership.Member) (*peerConn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	addr := mem.ContactAddr()
	var conn net.Conn
	var err error
	if m.cfg.Dialer != nil {
		conn, err = m.cfg.Dialer(ctx, addr)
	} else {
		d := net.Dialer{}
		if m.cfg.LocalIP != nil {
			d.LocalAddr = &net.TCPAddr{IP: m.cfg.LocalIP}
		}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil && d.LocalAddr != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
			conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	}
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if m.cfg.TLS != nil {
		tcfg := m.cfg.TLS.Clone()
		tcfg.ServerName = mem.Name // the peer's certificate must name the member we mean
		tc := tls.Client(conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", mem.Name, err)
		}
		conn = tc
	}
	hello, _ := wire.AppendHello(nil, wire.RoleServer, []byte(m.cfg.Name))
	if _, err := conn.Write(hello); err != nil {
		_ = conn.Close()
		return nil, err
	}
	sr := &silenceReader{r: conn, conn: conn}     // no silence limit during the hello: the dial deadline holds
	br := bufio.NewReaderSize(sr, peerReadBuffer) // the pulled state and the peer's pushes arrive here
	reply, err := wire.NewDecoder(br).HelloReply()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("hello reply: %w", err)
	}
	if string(reply) != mem.Name {
		_ = conn.Close()
		return nil, fmt.Errorf("peer at %s says it is %q, not %q", addr, reply, mem.Name)
	}
	_ = conn.SetDeadline(time.Time{})
	sr.silence = m.silence()
	return newPeerConn(m, mem.Name, outbound, conn, br), nil
}

// ServePeer takes over a connection whose hello said role Server. It is
// accepted only from a live member whose address matches the connection's.
func (m *Manager) ServePeer(ctx context.Context, conn net.Conn, br *bufio.Reader, name string) {
	remote := conn.RemoteAddr()
	refuse := func(why string) {
		m.stats.PeersRefused.Add(1)
		m.stats.addViolation("peer_not_member")
		m.log.Warn("refusing role-Server connection", "peer", name, "remote", remote.String(), "reason", why)
	}
	if m.leaving.Load() || m.ctx.Err() != nil {
		return
	}
	if name == m.cfg.Name {
		refuse("it claims this server's own name")
		return
	}
	mem, ok := m.cl.Lookup(name)
	if !ok || !mem.Alive() {
		refuse("not a live member")
		return
	}
	if !addrMatches(mem, remote) {
		refuse(fmt.Sprintf("address does not match member %s (%s)", name, mem.IP))
		return
	}
	if m.cfg.AllowPeer != nil && !m.cfg.AllowPeer(name, remote) {
		refuse("not allowed")
		return
	}
	reply, _ := wire.AppendHelloReply(nil, []byte(m.cfg.Name))
	_ = conn.SetWriteDeadline(time.Now().Add(m.cfg.DialTimeout))
	if _, err := conn.Write(reply); err != nil {
		return
	}
	c := newPeerConn(m, name, inbound, conn,
		bufio.NewReaderSize(&silenceReader{r: br, conn: conn, silence: m.silence()}, peerReadBuffer))
	if !m.attach(c) {
		return
	}
	m.log.Info("peer connection made", "peer", name, "dir", "inbound", "remote", remote.String())
	stop := context.AfterFunc(ctx, c.close) // server shutdown ends it too
	defer stop()
	_ = c.run()
	m.detach(c)
}

func addrMatches(mem membership.Member, remote net.Addr) bool {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return true // not TCP (tests' in-memory pipes): nothing to compare
	}
	if ta.IP.Equal(mem.IP) {
		return true
	}
	if h := mem.Meta.ContactHost; h != "" {
		if ip := net.ParseIP(h); ip != nil {
			return ip.Equal(ta.IP)
		}
		ips, _ := net.LookupIP(h)
		for _, ip := range ips {
			if ip.Equal(ta.IP) {
				return true
			}
		}
	}
	return false
}

// attach registers c with its peer; an older connection in the same
// direction is closed. It returns false when the manager is stopping.
func (m *Manager) attach(c *peerConn) bool {
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return false
	}
	p := m.peerLocked(c.peer)
	var old *peerConn
	if c.dir == inbound {
		old, p.in = p.in, c
	} else {
		old, p.out = p.out, c
	}
	m.updateFeedsLocked()
	if c.dir == inbound {
		c.attachPub.Store(m.pubSeq.Load()) // after the feeds store: see Stream.Flush
	}
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	return true
}

func (m *Manager) detach(c *peerConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[c.peer]
	if p == nil {
		return
	}
	if p.in == c {
		p.in = nil
		p.feedGoneAt = time.Now()
		m.updateFeedsLocked()
	}
	if p.out == c {
		p.out = nil
	}
}

func (m *Manager) updateFeedsLocked() {
	feeds := make([]*peerConn, 0, len(m.peers))
	for _, p := range m.peers {
		if p.in != nil {
			feeds = append(feeds, p.in)
		}
	}
	m.feeds.Store(&feeds)
}

// Stream collects one client connection's local changes, encoded, and
// pushes them to every peer feed in one block per Flush. The merge is
// order-independent, so pushing by block rather than by change is safe.
// A Stream is not safe for concurrent use.
type Stream struct {
	m   *Manager
	buf []byte
	n   uint64
	// firstPub and lastPub number the first and last flush since the last
	// Barrier (0: none); Barrier waits for exactly those.
	firstPub, lastPub uint64
}

// streamFlushAt bounds how much a Stream holds before it pushes by itself.
const streamFlushAt = 64 << 10

// NewStream returns a Stream for one client connection.
func (m *Manager) NewStream() *Stream { return &Stream{m: m} }

// Publish adds a local change. It never blocks.
func (s *Stream) Publish(ch store.Change) {
	var err error
	b := s.buf
	if ch.Deleted {
		b, err = wire.AppendServerDelete(b, ch.Stamp, ch.User, ch.Contact)
	} else {
		b, err = wire.AppendServerUpdate(b, ch.Stamp, ch.User, ch.Contact, ch.Phone)
	}
	if err != nil {
		return
	}
	s.buf = b
	s.n++
	if len(s.buf) >= streamFlushAt {
		s.Flush()
	}
}

// Flush pushes what was published to every connected peer feed. A peer
// whose queue is full is disconnected instead (it resyncs by AskForUpdate).
func (s *Stream) Flush() {
	if len(s.buf) == 0 {
		return
	}
	// Number the flush before reading the feeds: a feed missing from this
	// load was stored after it, so its attachPub is >= n (see barrier.go).
	n := s.m.pubSeq.Add(1)
	if s.firstPub == 0 {
		s.firstPub = n
	}
	s.lastPub = n
	if feeds := s.m.feeds.Load(); feeds != nil {
		for _, c := range *feeds {
			c.send(s.buf)
		}
	}
	s.m.stats.FramesOut.Add(s.n)
	s.buf, s.n = s.buf[:0], 0
}

// pullDone records a completed AskForUpdate transfer from c's peer.
func (m *Manager) pullDone(c *peerConn) {
	c.pullMu.Lock()
	start, reason := c.pullStart, c.pullReason
	c.pullMu.Unlock()
	frames, bytes := c.pullFrames.Load(), c.pullBytes.Load()
	m.stats.PullsDone.Add(1)
	m.stats.PullEntriesRx.Add(uint64(frames))
	m.stats.PullBytesRx.Add(uint64(bytes))
	m.log.Info("pulled state from peer", "peer", c.peer, "reason", reason, "entries", frames, "bytes", bytes,
		"seconds", time.Since(start).Seconds())
	m.markPulled(c.peer)
	m.releaseInitial(c)
}

// changesFrom returns the counter of changes received from peer.
func (m *Manager) changesFrom(peer string) *atomic.Uint64 {
	m.changesMu.Lock()
	defer m.changesMu.Unlock()
	c := m.changes[peer]
	if c == nil {
		c = &atomic.Uint64{}
		m.changes[peer] = c
	}
	return c
}

func (m *Manager) noteHealthChanged() {
	select {
	case m.healthChanged <- struct{}{}:
	default:
	}
}

// connectPull starts the pull a new outbound connection owes. Until the
// server is ready, such pulls run one at a time, each after publishing the
// digest the previous ones left: a peer that already holds the same state
// then answers with an empty transfer (peerHoldsOurState) instead of
// another full copy. The wait runs in the background so the connection's
// reader starts at once.
func (m *Manager) connectPull(ctx context.Context, c *peerConn) {
	if m.ready.Load() {
		c.startPull("connect")
		return
	}
	go func() {
		for !m.initialPulls.CompareAndSwap(0, 1) {
			select {
			case <-ctx.Done():
				return
			case <-c.closed:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if m.ready.Load() {
				c.startPull("connect")
				return
			}
		}
		m.pullWithTurn(c)
	}()
}

// pullWithTurn starts c's initial pull once c holds the server's one
// initial-pull turn; the turn goes back when the pull is done or the
// connection ends, whichever comes first.
func (m *Manager) pullWithTurn(c *peerConn) {
	// Publish the digest the previous pulls left us with, so that a peer
	// already holding the same state sends nothing (peerHoldsOurState). A
	// peer that has not heard it yet sends everything: slower, never wrong.
	m.publishMeta(preferPublishedWait)
	c.holdsInitial.Store(true)
	select {
	case <-c.closed:
		// The connection ended while we waited for the turn; run() may
		// already have looked for a turn to give back and found none.
		m.releaseInitial(c)
		return
	default:
	}
	c.startPull("connect")
}

// preferPublishedWait is how long an initial pull waits for its digest to
// start spreading before it asks.
const preferPublishedWait = 200 * time.Millisecond

// releaseInitial ends c's turn among the initial pulls, if it had it.
func (m *Manager) releaseInitial(c *peerConn) {
	if c.holdsInitial.Swap(false) {
		m.initialPulls.Store(0)
	}
}

func (m *Manager) markPulled(peer string) {
	m.mu.Lock()
	if p := m.peers[peer]; p != nil {
		p.pulledOnce = true
		p.lastPullDone = time.Now()
	}
	m.mu.Unlock()
}
