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
	Publish(p membership.Published, timeout time.Duration) error
	Events() <-chan membership.Event
	ClockOffsets() map[string]membership.ClockOffset
}

// peer is what the manager knows of one member; guarded by Manager.mu.
type peer struct {
	name       string
	bootID     uint64
	cancel     context.CancelFunc // stops the dial loop
	out        *peerConn          // we dialed: its feed to us
	in         *peerConn          // it dialed: our feed to it
	feedGoneAt time.Time          // when it last had no feed (a barrier waits FeedGrace for it)

	// anti-entropy
	diffRounds  int
	lastDigest  uint64
	aeBackoff   int
	aeWaitUntil time.Time
	diffSince   time.Time // when the current difference was first seen
	catchUpDone time.Time // when a catch-up barrier from it last completed
	catchUpBusy bool

	// clock reports
	aheadBy       uint32
	aheadAt       time.Time
	aheadLoggedAt time.Time
}

// Manager replicates the store to and from every live member.
type Manager struct {
	cfg   Config
	log   hclog.Logger
	st    *store.Store
	cl    Cluster
	stats Stats

	transfers chan struct{} // semaphore of snapshots being streamed

	mu    gosync.Mutex
	peers map[string]*peer
	// nPeers is len(peers) as the reconcile loop last left it: what the
	// heartbeat interval is scaled by (read on every peer read).
	nPeers atomic.Int32
	// When many members leave at once the interval shrinks, but a peer's
	// next HeartBeat may still come one old interval after its last: the
	// silence keeps the old interval (nanoseconds) until the Unix
	// nanosecond in prevHBUntil.
	prevHB, prevHBUntil atomic.Int64
	peersCh             chan struct{} // closed and replaced whenever a connection attaches or detaches
	// gone records when a peer was dropped (memberlist said it died or
	// left): a client acknowledgement still waits FeedGrace for a member
	// that was killed and is coming straight back.
	gone map[string]time.Time

	changesMu gosync.Mutex
	changes   map[string]*atomic.Uint64 // changes received from each peer, ever

	metaMu gosync.Mutex // serializes node meta publishes

	leaving       atomic.Bool
	serving       atomic.Bool // the initial sync (or a refill) is done
	readyMu       gosync.Mutex
	readyCh       chan struct{} // closed and replaced whenever serving changes
	alone         atomic.Bool   // the last sync found no peer to sync with
	syncNote      atomic.Pointer[string]
	clockTrouble  atomic.Pointer[string]
	clockLoggedAt atomic.Int64
	// staleCleared: this member was stale and no serving peer fresher than
	// it could be found within SyncTimeout, so it keeps its data as
	// current (a whole cluster restarted): its mark may advance again.
	staleCleared atomic.Bool
	markMu       gosync.Mutex
	healthCh     chan struct{}

	// flow control (pace.go): confirmCh is closed and replaced when a
	// feed's confirmation moves while a client commit may be waiting.
	paceWaiting  atomic.Bool
	confirmMu    gosync.Mutex
	confirmCh    chan struct{}
	paceMu       gosync.Mutex  // serializes admissions (check and count)
	paceAdmitted atomic.Int64  // changes admitted and not yet committed
	paceQueued   atomic.Int32  // commits waiting for admission
	paceTurn     chan struct{} // one slot: waiting commits take turns in order

	cursorSeen map[string]time.Time // reconcile loop only: when a saved cursor's peer was last alive

	started      time.Time
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
	m := &Manager{cfg: cfg, log: log, st: st, cl: cl, peers: map[string]*peer{}, peersCh: make(chan struct{}),
		gone:    map[string]time.Time{},
		changes: map[string]*atomic.Uint64{}, transfers: make(chan struct{}, cfg.MaxTransfers),
		readyCh: make(chan struct{}), healthCh: make(chan struct{}, 1), confirmCh: make(chan struct{}), paceTurn: make(chan struct{}, 1), cursorSeen: map[string]time.Time{},
		ctx: ctx, cancel: cancel}
	return m, nil
}

// Stats returns the replication counters.
func (m *Manager) Stats() *Stats { return &m.stats }

// Start runs the reconcile, sync and anti-entropy loops.
func (m *Manager) Start() {
	m.started = time.Now()
	now := time.Now()
	for name := range m.st.Cursors() {
		m.cursorSeen[name] = now
	}
	m.wg.Add(3)
	go m.reconcileLoop()
	go m.syncLoop()
	go m.antiEntropyLoop()
}

// Health is the HealthStatus this server sends in its heartbeats.
func (m *Manager) Health() wire.Health {
	switch {
	case m.leaving.Load():
		return wire.HealthLeaving
	case !m.serving.Load():
		return wire.HealthSyncing
	}
	return wire.HealthServing
}

// Synced reports whether the server holds its peers' state (its initial
// sync, or a refill, is done), whether or not it is leaving.
func (m *Manager) Synced() bool { return m.serving.Load() }

// Ready reports whether the server serves with a complete sync, is not
// leaving, and its wall clock agrees with its peers'.
func (m *Manager) Ready() bool {
	return m.serving.Load() && !m.leaving.Load() && m.clockTrouble.Load() == nil
}

// NotReadyReason says why Ready is false ("" when it is true).
func (m *Manager) NotReadyReason() string {
	switch {
	case m.leaving.Load():
		return "leaving"
	case !m.serving.Load():
		return "syncing"
	}
	if p := m.clockTrouble.Load(); p != nil {
		return "clock: " + *p
	}
	return ""
}

// WaitSynced waits until the server holds its peers' state, or ctx ends
// (false). Client frames wait on it: a server must not stamp changes
// against a state it has not pulled yet.
func (m *Manager) WaitSynced(ctx context.Context) bool {
	for {
		m.readyMu.Lock()
		ch := m.readyCh
		m.readyMu.Unlock()
		if m.serving.Load() {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-m.ctx.Done():
			return false
		}
	}
}

func (m *Manager) setServing(on bool) {
	if m.serving.Swap(on) == on {
		return
	}
	m.readyMu.Lock()
	close(m.readyCh)
	m.readyCh = make(chan struct{})
	m.readyMu.Unlock()
	m.noteHealthChanged()
}

func (m *Manager) noteHealthChanged() {
	select {
	case m.healthCh <- struct{}{}:
	default:
	}
}

func (m *Manager) reconcileLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case ev := <-m.cl.Events():
			// Digest and health republishes come every few seconds from
			// every member: debug, not info.
			lvl := hclog.Info
			if ev.Kind == membership.EventUpdate {
				lvl = hclog.Debug
			}
			m.log.Log(lvl, "membership change", "event", ev.Kind.String(), "member", ev.Member.Name,
				"state", ev.Member.State, "gossip", ev.Member.GossipAddr, "contact", ev.Member.ContactAddr())
			m.reconcile()
		case <-t.C:
			m.reconcile()
		}
	}
}

// reconcile makes the peer set match the live members, and forgets the
// log positions of members gone for longer than CursorTTL.
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
			// Connections to the old process; one made by the new process
			// before its new boot id was seen is redialed at once.
			toClose = append(toClose, p.out, p.in)
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
			m.gone[name] = time.Now()
			m.log.Info("member gone: dropping its peer connections", "member", name)
		}
	}
	m.setPeerCount(len(m.peers))
	for name, at := range m.gone {
		if _, ok := m.peers[name]; ok || time.Since(at) > m.cfg.FeedGrace {
			delete(m.gone, name)
		}
	}
	m.mu.Unlock()
	for _, c := range toClose {
		if c != nil {
			c.close()
		}
	}
	now := time.Now()
	for name := range m.st.Cursors() {
		if _, ok := alive[name]; ok {
			m.cursorSeen[name] = now
			continue
		}
		seen, ok := m.cursorSeen[name]
		if !ok {
			m.cursorSeen[name] = now
			continue
		}
		if now.Sub(seen) > m.cfg.CursorTTL {
			if err := m.st.DropCursor(name); err == nil {
				delete(m.cursorSeen, name)
				m.log.Info("member gone for long: no longer keeping the change log for it", "member", name,
					"gone_for", now.Sub(seen).Round(time.Second))
			}
		}
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
		d := net.Dialer{KeepAlive: 30 * time.Second}
		if m.cfg.LocalIP != nil {
			d.LocalAddr = &net.TCPAddr{IP: m.cfg.LocalIP}
		}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil && d.LocalAddr != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
			conn, err = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", addr)
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
	sr := &silenceReader{r: conn, conn: conn} // no silence limit during the hello: the dial deadline holds
	br := bufio.NewReaderSize(sr, peerReadBuffer)
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
	sr.silence = m.silence
	return newPeerConn(m, mem.Name, mem.Meta.StoreID, outbound, conn, br), nil
}

// ServePeer takes over a connection whose hello said role Server. It is
// accepted only from a live member whose address matches the connection's.
func (m *Manager) ServePeer(ctx context.Context, conn net.Conn, br *bufio.Reader, name string) {
	remote := conn.RemoteAddr()
	refuse := func(why string) {
		m.stats.PeersRefused.Add(1)
		m.stats.Violations.Add("peer_not_member")
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
	// The feed is attached, and its starting position taken, before the
	// peer learns it is accepted: every change committed after the peer
	// has the reply is after that position, and is fed.
	c := newPeerConn(m, name, mem.Meta.StoreID, inbound, conn,
		bufio.NewReaderSize(&silenceReader{r: br, conn: conn, silence: m.silence}, peerReadBuffer))
	if !m.attach(c) {
		return
	}
	reply, _ := wire.AppendHelloReply(nil, []byte(m.cfg.Name))
	_ = conn.SetWriteDeadline(time.Now().Add(m.cfg.DialTimeout))
	if _, err := conn.Write(reply); err != nil {
		c.close()
		m.detach(c)
		return
	}
	c.pubMu.Lock()
	start, snap := c.start, c.snapNeeded
	c.pubMu.Unlock()
	m.log.Info("peer connection made", "peer", name, "dir", "inbound", "remote", remote.String(),
		"feed_from", start, "snapshot_first", snap)
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
// direction is closed. A feed (inbound) gets its starting position. It
// returns false when the manager is stopping.
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
		m.startFeedLocked(c)
		m.stats.FeedsAttached.Add(1)
	} else {
		old, p.out = p.out, c
	}
	close(m.peersCh)
	m.peersCh = make(chan struct{})
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	return true
}

// startFeedLocked sets where the feed c begins. A peer whose data dir
// confirmed a position before resumes there (a network blip, a restart of
// either side); one behind the trimmed part of the log gets a snapshot
// first. A data dir never seen before begins at the lowest position every
// other live peer has confirmed: every change below it is on those peers,
// and a new or restarted member takes a full transfer from one of them
// before it serves. The position is saved at once, so the log is kept
// from there. The caller holds m.mu.
func (m *Manager) startFeedLocked(c *peerConn) {
	st := m.st
	var start store.Pos
	snap := false
	if cur, ok := st.Cursors()[c.peer]; ok && cur.StoreID == c.storeID {
		start = cur.Pos
		if !geq(start, st.LogFloor()) {
			start, snap = maxPos(start, st.LogFloor()), true
		}
	} else {
		start = st.Head()
		for name, q := range m.peers {
			if name == c.peer || q.in == nil {
				continue
			}
			q.in.pubMu.Lock()
			start = minPos(start, q.in.confirmed)
			q.in.pubMu.Unlock()
		}
		if err := st.SaveCursor(c.peer, store.Cursor{StoreID: c.storeID, Pos: start}); err != nil {
			m.log.Warn("saving a new peer's log position failed", "peer", c.peer, "error", err)
		}
	}
	c.pubMu.Lock()
	c.start, c.cursor, c.confirmed, c.snapNeeded = start, start, start, snap
	c.pubMu.Unlock()
}

func (c *peerConn) needSnapshot() bool {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return c.snapNeeded
}

func (m *Manager) detach(c *peerConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[c.peer]
	if p == nil {
		return
	}
	changed := false
	if p.in == c {
		p.in = nil
		p.feedGoneAt = time.Now()
		changed = true
	}
	if p.out == c {
		p.out = nil
		changed = true
	}
	if changed {
		close(m.peersCh)
		m.peersCh = make(chan struct{})
	}
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

// conns returns every live connection.
func (m *Manager) conns() []*peerConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*peerConn
	for _, p := range m.peers {
		if p.out != nil {
			out = append(out, p.out)
		}
		if p.in != nil {
			out = append(out, p.in)
		}
	}
	return out
}

// SetLeaving makes every heartbeat from now on say "leaving" and sends one
// at once on every peer connection.
func (m *Manager) SetLeaving() {
	if m.leaving.Swap(true) {
		return
	}
	m.noteHealthChanged()
	for _, c := range m.conns() {
		c.inMu.Lock()
		c.hbNow = true
		c.inMu.Unlock()
		c.signal()
	}
}

// Drain waits until every live peer has confirmed this server's whole log,
// or ctx ends, so that the last local changes reach the peers before a
// graceful stop.
func (m *Manager) Drain(ctx context.Context) {
	head := m.st.Head()
	if !m.Barrier(ctx, head) {
		m.log.Warn("stopping before every peer confirmed this server's last changes; they get them when it is back",
			"head", head)
	}
}

// Shutdown says "leaving", drains (bounded by ctx), closes every peer
// connection and waits for the manager's goroutines. Idempotent.
func (m *Manager) Shutdown(ctx context.Context) {
	m.SetLeaving()
	m.Drain(ctx)
	m.Abort()
}

// Abort closes every peer connection at once, without saying "leaving" or
// draining (a crash, as peers see it), and waits for the manager's
// goroutines. Idempotent.
func (m *Manager) Abort() {
	m.shutdownOnce.Do(func() {
		m.mu.Lock()
		m.cancel()
		var conns []*peerConn
		for _, p := range m.peers {
			p.cancel()
			conns = append(conns, p.out, p.in)
		}
		m.mu.Unlock()
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
		m.wg.Wait()
	})
}

// isFeedOf reports whether c is its peer's current feed, or its last one:
// no newer connection of the peer owns the cursor. A feed whose member was
// just dropped (the whole cluster stopping) still saves its position, or
// the next start would resend changes the peer already had, perhaps after
// their deletes expired.
func (m *Manager) isFeedOf(c *peerConn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[c.peer]
	return p == nil || p.in == nil || p.in == c
}
