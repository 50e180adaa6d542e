package sync

import (
	"bufio"
	"errors"
	"io"
	"net"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/contactstore/contactstore/wire/connend"
)

type direction int

const (
	outbound direction = iota + 1 // we dialed: the peer's feed of its changes to us
	inbound                       // they dialed: our feed of our changes to them
)

func (d direction) String() string {
	if d == outbound {
		return "outbound"
	}
	return "inbound"
}

// inEvent is a control frame the reader hands to the owner, in arrival
// order: a HeartBeat to answer, or an AskForUpdate to serve.
type inEvent struct {
	ask  bool      // an AskForUpdate
	head store.Pos // a HeartBeat: our log head when it arrived (feeds answer once past it)
}

// maxInbox bounds the control events waiting for the owner: a peer that
// sends more HeartBeats than we can answer is not a peer we can serve.
const maxInbox = 1 << 16

// errControlFlood ends a connection whose peer floods it with HeartBeats
// or AskForUpdates faster than they can be answered; it is counted as a
// violation ("control_flood").
var errControlFlood = errors.New("peer sends control frames faster than they can be answered")

// peerConn is one established peer connection. Its reader goroutine
// applies the peer's frames and fills the inbox; its owner goroutine is
// the only writer and the only one to touch ownerState.
type peerConn struct {
	m        *Manager
	peer     string
	storeID  uint64 // the peer's data dir, from its meta when the connection began
	dir      direction
	conn     net.Conn
	dec      *wire.Decoder
	since    time.Time
	closed   chan struct{}
	once     gosync.Once
	wg       gosync.WaitGroup
	endedErr error

	// inbox: reader and manager → owner. Never held across I/O.
	inMu     gosync.Mutex
	events   []inEvent
	answered uint64 // UpdateClocks received: answers to our HeartBeats
	pulls    []*pullReq
	hbNow    bool // send a HeartBeat at once (leaving)
	// askPending: an AskForUpdate is queued or being served; another one
	// merges into it.
	askPending bool
	wake       chan struct{}

	// published by the owner for barriers and status.
	pubMu       gosync.Mutex
	start       store.Pos // where this feed began: a change below it is not this feed's to confirm
	snapNeeded  bool      // the feed begins with a snapshot (its position was trimmed)
	cursor      store.Pos // written to the socket
	confirmed   store.Pos // applied by the peer
	confirmedCh chan struct{}
	// progressAt (Config.Now) is when the peer last confirmed something, or
	// was last given something to confirm with everything before it
	// confirmed: flow control's stall clock, which a peer quiet for an hour
	// does not trip when a burst begins. At first, when the connection began.
	progressAt  time.Time
	want        store.Pos // the highest position a barrier waits on
	syncedAt    time.Time // last confirmation of a position that was our whole log
	pullState   string
	hbWaitSince time.Time // the oldest of our HeartBeats awaiting its answer was sent (zero: none)

	paced bool // flow control waits for this peer (pace.go; under Manager.paceMu)

	// reader side
	recordSeen atomic.Bool // frames are a refill's transfer: record their keys as held by the peer
	pulling    atomic.Bool
	pullFrames atomic.Int64
	pullBytes  atomic.Int64
	lastHealth atomic.Uint32
	lastHBAt   atomic.Int64  // unix nanos
	lastClock  atomic.Uint32 // the peer's clock, from its UpdateClock answers
	clockAtNs  atomic.Int64  // our wall clock when lastClock arrived
	changesIn  *atomic.Uint64

	// bytes sent, by kind
	sentLive     atomic.Uint64
	sentCatchUp  atomic.Uint64
	sentSnapshot atomic.Uint64
}

func newPeerConn(m *Manager, peer string, storeID uint64, dir direction, conn net.Conn, br *bufio.Reader) *peerConn {
	return &peerConn{m: m, peer: peer, storeID: storeID, dir: dir, conn: conn, dec: wire.NewDecoder(br),
		since: time.Now(), closed: make(chan struct{}), wake: make(chan struct{}, 1),
		confirmedCh: make(chan struct{}), progressAt: m.cfg.Now(), changesIn: m.changesFrom(peer)}
}

func (c *peerConn) isFeed() bool { return c.dir == inbound }

func (c *peerConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close shuts the connection; both goroutines end. Safe from any goroutine.
func (c *peerConn) close() {
	c.once.Do(func() {
		close(c.closed)
		_ = c.conn.Close()
	})
}

func (c *peerConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// run starts the owner and runs the reader until the connection ends,
// then waits for the owner.
func (c *peerConn) run() error {
	c.wg.Add(1)
	go c.ownerLoop()
	err := c.readLoop()
	closedHere := err == nil || errors.Is(err, net.ErrClosed)
	if !closedHere {
		c.m.describeEnd(c, err) // logged and counted before the peer sees the close
	}
	c.close()
	c.wg.Wait()
	if closedHere {
		if c.endedErr != nil {
			err = c.endedErr
		}
		c.m.describeEnd(c, err)
	}
	c.failPulls(errors.New("connection closed"))
	return err
}

func (c *peerConn) post(ev inEvent) error {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if len(c.events) >= maxInbox {
		return errControlFlood
	}
	if ev.ask {
		if c.askPending {
			// Asked again while a transfer is queued or running: one
			// transfer serves both (on a feed, the log after the snapshot
			// carries whatever came since). At most one per connection.
			return nil
		}
		c.askPending = true
	}
	c.events = append(c.events, ev)
	c.signal()
	return nil
}

// readLoop applies the peer's frames. Changes are staged and committed
// when the read buffer runs dry (or the batch is full), and always before
// a HeartBeat is handed on: its answer says everything before it is
// applied.
func (c *peerConn) readLoop() error {
	m := c.m
	st := m.st
	batch := st.NewBatch()
	defer batch.Close()
	commit := func() error {
		if batch.Len() == 0 {
			return nil
		}
		batch.RecordSeen = c.recordSeen.Load()
		res, err := batch.Commit()
		if err != nil {
			return err
		}
		m.stats.Applied.Add(uint64(res.Applied))
		m.stats.Ignored.Add(uint64(res.Ignored))
		// A change stamped beyond the bound is not reported: a key
		// rewritten many times a second runs ahead of real time on its own
		// (PROTOCOL.md), whatever the clocks; the peer's clock itself is
		// checked on its UpdateClock answers. Either way the stamp moves no
		// clock past the bound.
		return nil
	}
	defer commit()
	var f wire.ServerFrame
	for {
		if c.dec.Buffered() == 0 || batch.Len() >= m.cfg.MaxBatch {
			if err := commit(); err != nil {
				return err
			}
		}
		if err := c.dec.ServerFrame(&f); err != nil { // silenceReader bounds each wait for bytes
			return err
		}
		if int(f.Op) < len(m.stats.FramesIn) {
			m.stats.FramesIn[f.Op].Add(1)
		}
		switch f.Op {
		case wire.ServerUpdate, wire.ServerDelete:
			ch := store.Change{User: f.User, Contact: f.Contact,
				Entry: store.Entry{Stamp: f.Clock, Deleted: f.Op == wire.ServerDelete, Phone: f.Phone}}
			if err := batch.Apply(ch); err != nil {
				return err // the decoder never yields values the store cannot hold
			}
			c.changesIn.Add(1)
			if c.pulling.Load() {
				c.pullFrames.Add(1)
				size := wire.ServerUpdateSize
				if f.Op == wire.ServerDelete {
					size = wire.ServerDeleteSize
				}
				c.pullBytes.Add(int64(size))
			}
		case wire.ServerHeartBeat:
			c.lastHealth.Store(uint32(f.Health))
			c.lastHBAt.Store(time.Now().UnixNano())
			if err := commit(); err != nil {
				return err
			}
			if f.Clock != 0 {
				if ahead := st.ClockAhead(f.Clock); ahead > 0 {
					m.clockAhead(c.peer, ahead, "its HeartBeat clock is")
				}
			}
			// PROTOCOL.md: answer when our clock is >= the sender's,
			// otherwise raise ours (within the bound). Ours send Clock 0.
			if st.Clock() >= f.Clock {
				ev := inEvent{}
				if c.isFeed() {
					ev.head = st.Head()
				}
				if err := c.post(ev); err != nil {
					return err
				}
			} else {
				st.ObserveClock(f.Clock)
			}
		case wire.ServerUpdateClock:
			// The answer says the peer sent everything before it: what it
			// sent must be committed before a pull or a catch-up that waits
			// for this answer ends (both often arrive in one read buffer).
			if err := commit(); err != nil {
				return err
			}
			if ahead := st.ObserveClock(f.Clock); ahead > 0 {
				m.clockAhead(c.peer, ahead, "its clock is")
			}
			c.lastClock.Store(f.Clock)
			c.clockAtNs.Store(m.cfg.Now().UnixNano())
			c.inMu.Lock()
			c.answered++
			c.inMu.Unlock()
			c.signal()
		case wire.ServerAskForUpdate:
			if err := commit(); err != nil {
				return err
			}
			if err := c.post(inEvent{ask: true, head: st.Head()}); err != nil {
				return err
			}
		}
	}
}

// describeEnd logs and counts why a connection ended.
func (m *Manager) describeEnd(c *peerConn, err error) {
	remote := c.conn.RemoteAddr().String()
	kind, reason := connend.Classify(err)
	if errors.Is(err, errControlFlood) {
		kind, reason = connend.Violation, "control_flood"
	}
	switch kind {
	case connend.Violation:
		m.stats.Violations.Add(reason)
		m.log.Warn("closing peer connection: protocol violation", "peer", c.peer, "remote", remote,
			"dir", c.dir.String(), "reason", reason, "error", err)
	case connend.Timeout:
		m.stats.SilentClosed.Add(1)
		m.log.Info("peer connection lost: silent for 3 heartbeat intervals, or not reading", "peer", c.peer,
			"dir", c.dir.String(), "remote", remote, "error", err)
	case connend.Closed:
		m.log.Info("peer connection closed", "peer", c.peer, "dir", c.dir.String(), "remote", remote)
	default:
		m.log.Info("peer connection lost", "peer", c.peer, "dir", c.dir.String(), "remote", remote, "error", err)
	}
}

// silenceReader arms the connection's read deadline before every read, so
// "silent" means no bytes for that long, however long the reader spent
// applying what it had buffered.
type silenceReader struct {
	r       io.Reader
	conn    net.Conn
	silence func() time.Duration // nil: leave the deadline alone
}

func (s *silenceReader) Read(p []byte) (int, error) {
	if s.silence != nil {
		_ = s.conn.SetReadDeadline(time.Now().Add(s.silence()))
	}
	return s.r.Read(p)
}

// deadlineWriter arms the write deadline before every write of the
// connection: a peer that stops reading for WriteTimeout is dropped.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.conn.Write(p)
}

// silence is how long a peer connection may stay without a byte before it
// is closed: three heartbeat intervals, and a quarter more when the
// interval is stretched by the budget (a peer that counts a few more
// members than this one does sends a little less often).
func (m *Manager) silence() time.Duration {
	d := m.hbInterval()
	if m.cfg.Now().UnixNano() < m.prevHBUntil.Load() {
		d = max(d, time.Duration(m.prevHB.Load()))
	}
	if d > m.cfg.HeartbeatInterval {
		return 3*d + 3*d/4
	}
	return 3 * d
}

// setPeerCount records how many peers this member has (the reconcile
// loop). When that shrinks the interval, the old one still bounds the
// silence for two of its intervals: a peer's next HeartBeat may come one
// old interval after its last.
func (m *Manager) setPeerCount(n int) {
	before := m.hbInterval()
	if m.nPeers.Swap(int32(n)) == int32(n) {
		return
	}
	if after := m.hbInterval(); after < before {
		m.prevHB.Store(int64(before))
		m.prevHBUntil.Store(m.cfg.Now().Add(2 * before).UnixNano())
	}
}

// hbInterval is the HeartBeat interval on each peer connection now:
// HeartbeatInterval, stretched when two connections per peer would send
// more than HeartbeatBudget HeartBeats a second. At 64 (the default) it
// stretches only beyond 33 members: 2 × 32 peers at one a second.
func (m *Manager) hbInterval() time.Duration {
	return heartbeatInterval(m.cfg.HeartbeatInterval, m.cfg.HeartbeatBudget, int(m.nPeers.Load()))
}

func heartbeatInterval(base time.Duration, budget, peers int) time.Duration {
	if budget <= 0 {
		return base
	}
	return max(base, time.Duration(2*peers)*time.Second/time.Duration(budget))
}

// confirmedAll reports whether this feed has confirmed every change up to
// head.
func (c *peerConn) confirmedAll(head store.Pos) bool {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return geq(c.confirmed, head)
}
