package sync

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

type direction int

const (
	outbound direction = iota + 1 // we dialed; we pull on it
	inbound                       // they dialed; their feed of our changes
)

func (d direction) String() string {
	if d == outbound {
		return "outbound"
	}
	return "inbound"
}

// peerConn is one established peer connection: the goroutine that owns it
// runs readLoop; writeLoop is the only writer.
type peerConn struct {
	m      *Manager
	peer   string
	dir    direction
	conn   net.Conn
	dec    *wire.Decoder
	q      *outQueue
	since  time.Time
	closed chan struct{}
	once   gosync.Once
	wg     gosync.WaitGroup

	// attachPub is the flush number (Manager.pubSeq) when this inbound
	// connection became a feed: flushes after it were pushed here. walkPub
	// is the flush number when the latest transfer on it started walking
	// the store: every change flushed up to it is in that transfer.
	attachPub atomic.Uint64
	walkPub   atomic.Uint64

	// pull state (outbound): a barrier is outstanding until the first
	// UpdateClock after it arrives.
	pulling      atomic.Bool
	holdsInitial atomic.Bool // this pull is the server's one initial pull in flight
	pullFrames   atomic.Int64
	pullBytes    atomic.Int64
	changesIn    *atomic.Uint64 // the peer's cumulative count, across its connections
	pullMu       gosync.Mutex   // guards pullStart and pullReason
	pullStart    time.Time
	pullReason   string

	lastHealth atomic.Uint32
	lastClock  atomic.Uint32 // the peer's clock, from its HeartBeat or its UpdateClock answer
	lastHBAt   atomic.Int64  // unix nanos

	// Every HeartBeat we send carries Clock 0, so the peer answers every
	// one with exactly one UpdateClock, in order, after every frame we sent
	// before it. hbQueued numbers HeartBeats in queue (= wire) order;
	// hbAnswered counts the answers. That makes each HeartBeat a barrier.
	hbMu       gosync.Mutex
	hbQueued   uint64
	pullAt     uint64 // the HeartBeat whose answer ends the current pull
	hbAnswered atomic.Uint64
	answered   chan struct{} // closed and replaced at every answer
}

func newPeerConn(m *Manager, peer string, dir direction, conn net.Conn, br *bufio.Reader) *peerConn {
	c := &peerConn{m: m, peer: peer, dir: dir, conn: conn, dec: wire.NewDecoder(br), changesIn: m.changesFrom(peer),
		q: newOutQueue(m.cfg.QueueBytes), since: time.Now(), closed: make(chan struct{}),
		answered: make(chan struct{})}
	c.attachPub.Store(math.MaxUint64) // not a feed yet: it has been pushed nothing
	return c
}

// queueHeartBeat queues a HeartBeat (Clock 0), after whatever is queued
// already, and returns its number. prefix frames, if any, go just before it.
func (c *peerConn) queueHeartBeat(prefix []byte) uint64 {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	c.hbQueued++
	c.send(wire.AppendHeartBeat(prefix, c.m.Health(), 0))
	return c.hbQueued
}

// waitAnswered waits until HeartBeat n has been answered (true), or the
// connection closed or done was closed (false).
func (c *peerConn) waitAnswered(n uint64, done <-chan struct{}) bool {
	for {
		c.hbMu.Lock()
		ch := c.answered
		c.hbMu.Unlock()
		if c.hbAnswered.Load() >= n {
			return true
		}
		select {
		case <-ch:
		case <-c.closed:
			return false
		case <-done:
			return false
		}
	}
}

func (c *peerConn) noteAnswer() uint64 {
	c.hbMu.Lock()
	n := c.hbAnswered.Add(1)
	close(c.answered)
	c.answered = make(chan struct{})
	c.hbMu.Unlock()
	return n
}

// close shuts the connection; both loops end. Safe from any goroutine.
func (c *peerConn) close() {
	c.once.Do(func() {
		close(c.closed)
		_ = c.conn.Close()
	})
}

// send queues encoded frames; on overflow the connection is dropped.
func (c *peerConn) send(frames []byte) {
	ok, first := c.q.pushFirstOverflow(frames)
	if ok {
		return
	}
	if first { // every later push finds the same overflow: say it once
		c.m.stats.QueueOverflows.Add(1)
		c.m.log.Warn("peer cannot keep up: outbound queue full, disconnecting (it resyncs by AskForUpdate)",
			"peer", c.peer, "dir", c.dir.String(), "queue_bytes", c.m.cfg.QueueBytes)
	}
	c.close()
}

// startPull queues AskForUpdate and the clock-0 HeartBeat barrier.
func (c *peerConn) startPull(reason string) bool {
	if !c.pulling.CompareAndSwap(false, true) {
		return false
	}
	c.pullMu.Lock()
	c.pullStart, c.pullReason = time.Now(), reason
	c.pullMu.Unlock()
	c.pullFrames.Store(0)
	c.pullBytes.Store(0)
	n := c.queueHeartBeat(wire.AppendAskForUpdate(nil)) // AskForUpdate, then the clock-0 barrier
	c.hbMu.Lock()
	c.pullAt = n
	c.hbMu.Unlock()
	return true
}

// run starts the writer and runs the reader until the connection ends.
func (c *peerConn) run() error {
	c.wg.Add(1)
	go c.writeLoop()
	err := c.readLoop()
	c.m.describeEnd(c, err) // logged and counted before the peer sees the close
	c.finish()
	c.wg.Wait()
	return err
}

// finish closes the connection and gives back the initial-pull turn if it
// held one. Closing first matters: pullWithTurn checks closed after taking
// the turn, so whichever of the two runs second gives it back.
func (c *peerConn) finish() {
	c.close()
	c.m.releaseInitial(c)
}

func (c *peerConn) readLoop() error {
	st := c.m.st
	batch := st.NewBatch()
	defer batch.Close()
	commit := func() error {
		_, err := batch.Commit()
		return err
	}
	defer commit()
	var f wire.ServerFrame
	for {
		if c.dec.Buffered() == 0 || batch.Len() >= c.m.cfg.MaxBatch {
			if err := commit(); err != nil {
				return err
			}
		}
		if err := c.dec.ServerFrame(&f); err != nil { // silenceReader bounds each wait for bytes
			return err
		}
		if int(f.Op) < len(c.m.stats.FramesIn) {
			c.m.stats.FramesIn[f.Op].Add(1)
		}
		switch f.Op {
		case wire.ServerUpdate, wire.ServerDelete:
			ch := store.Change{User: f.User, Contact: f.Contact,
				Entry: store.Entry{Stamp: f.Clock, Deleted: f.Op == wire.ServerDelete, Phone: f.Phone}}
			if batch.Apply(ch) {
				c.m.stats.Applied.Add(1)
			} else {
				c.m.stats.Ignored.Add(1)
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
			if f.Clock != 0 { // 0 is a barrier, not the peer's clock; its answers tell us that
				c.lastClock.Store(f.Clock)
			}
			c.lastHBAt.Store(time.Now().UnixNano())
			if mine := st.Clock(); mine >= f.Clock {
				// Commit first: the answer tells the sender that every
				// change it sent before this HeartBeat is applied here.
				if err := commit(); err != nil {
					return err
				}
				c.send(wire.AppendUpdateClock(nil, mine))
			} else {
				st.ObserveClock(f.Clock)
			}
		case wire.ServerUpdateClock:
			st.ObserveClock(f.Clock)
			c.lastClock.Store(f.Clock)
			n := c.noteAnswer()
			c.hbMu.Lock()
			pullEnds := c.pulling.Load() && n >= c.pullAt
			c.hbMu.Unlock()
			if pullEnds {
				if err := commit(); err != nil {
					return err
				}
				c.m.pullDone(c)
				c.pulling.Store(false)
			}
		case wire.ServerAskForUpdate:
			c.q.pushTransfer()
		}
	}
}

func (c *peerConn) writeLoop() {
	defer c.wg.Done()
	defer c.close()
	bw := bufio.NewWriterSize(c.conn, 64<<10)
	hb := time.NewTicker(c.m.cfg.HeartbeatInterval)
	defer hb.Stop()
	deadline := func() { _ = c.conn.SetWriteDeadline(time.Now().Add(c.m.cfg.WriteTimeout)) }
	for {
		select {
		case <-c.closed:
			return
		case <-c.q.wake:
			segs := c.q.take()
			for _, s := range segs {
				deadline()
				if s.transfer {
					if err := c.serveTransfer(bw); err != nil {
						c.m.log.Info("transfer to peer aborted", "peer", c.peer, "error", err)
						return
					}
					continue
				}
				if _, err := bw.Write(s.data); err != nil {
					return
				}
			}
			c.q.recycle(segs)
			deadline()
			if err := bw.Flush(); err != nil {
				return
			}
		case <-hb.C:
			c.queueHeartBeat(nil)
		}
	}
}

// serveTransfer streams the whole state, every live contact as an Update
// and every tombstone as a Delete, each with its stored stamp. At most
// MaxTransfers run at once across all peers.
func (c *peerConn) serveTransfer(bw *bufio.Writer) error {
	select {
	case c.m.transfers <- struct{}{}:
	case <-c.closed:
		return errors.New("connection closed while waiting for a transfer slot")
	}
	defer func() { <-c.m.transfers }()
	start := time.Now()
	var entries, bytes uint64
	var frame []byte
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Changes reach the in-memory index before their flush is numbered, so
	// the walk below holds every change flushed up to this number.
	c.walkPub.Store(c.m.pubSeq.Load())
	if c.peerHoldsOurState() {
		c.m.stats.TransfersSkipped.Add(1)
		c.m.log.Info("AskForUpdate from a starting peer that already holds this state (same digest): nothing to send",
			"peer", c.peer)
		return nil
	}
	err := c.m.st.Iterate(ctx, func(ch store.Change) error {
		var err error
		if ch.Deleted {
			frame, err = wire.AppendServerDelete(frame[:0], ch.Stamp, ch.User, ch.Contact)
		} else {
			frame, err = wire.AppendServerUpdate(frame[:0], ch.Stamp, ch.User, ch.Contact, ch.Phone)
		}
		if err != nil {
			return nil // the store never holds values the wire cannot carry
		}
		entries++
		bytes += uint64(len(frame))
		if bw.Available() < len(frame) {
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.m.cfg.WriteTimeout))
		}
		_, err = bw.Write(frame)
		return err
	})
	if err != nil {
		return err
	}
	c.m.stats.TransfersServed.Add(1)
	c.m.stats.TransferEntriesTx.Add(entries)
	c.m.stats.TransferBytesTx.Add(bytes)
	c.m.log.Info("served AskForUpdate", "peer", c.peer, "entries", entries, "bytes", bytes,
		"seconds", time.Since(start).Seconds())
	return nil
}

// describeEnd classifies why a connection ended, for logs and counters.
func (m *Manager) describeEnd(c *peerConn, err error) {
	var v *wire.ViolationError
	var ne net.Error
	remote := c.conn.RemoteAddr().String()
	switch {
	case errors.As(err, &v):
		m.stats.addViolation(v.Reason())
		m.log.Warn("closing peer connection: protocol violation", "peer", c.peer, "remote", remote,
			"dir", c.dir.String(), "reason", v.Reason(), "error", v.Error())
	case errors.As(err, &ne) && ne.Timeout():
		m.stats.SilentClosed.Add(1)
		m.log.Info("peer connection lost: silent for 3 heartbeat intervals", "peer", c.peer, "dir", c.dir.String(), "remote", remote)
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		m.log.Info("peer connection closed", "peer", c.peer, "dir", c.dir.String(), "remote", remote)
	default:
		m.log.Info("peer connection lost", "peer", c.peer, "dir", c.dir.String(), "remote", remote, "error", err)
	}
}

// peerHoldsOurState reports whether the asking peer is still in its initial
// sync and published the digest our state has right now. A syncing server
// takes no client changes and the merge only moves forward, so whatever it
// held when it published that digest it still holds: the whole state would
// be sent for nothing. Only our live digest is compared, never our
// published one, which may lag behind changes the peer has not seen. (The
// one miss: meta still from the peer's previous boot, syncing with our
// digest, and that boot's data gone since; anti-entropy repairs it.)
func (c *peerConn) peerHoldsOurState() bool {
	mem, ok := c.m.cl.Lookup(c.peer)
	return ok && wire.Health(mem.Meta.Health) == wire.HealthSyncing && mem.Meta.Digest == c.m.st.Digest()
}

// silenceReader arms the connection's read deadline before every read from
// it, so "silent" means no bytes for that long, however long the reader
// spent applying what it had buffered. (Arming it only when the buffer ran
// dry let a big transfer, which keeps the buffer full, hit a deadline armed
// long before: joins of 1 M contacts dropped their own connections.)
type silenceReader struct {
	r       io.Reader
	conn    net.Conn
	silence time.Duration // 0: leave the deadline alone
}

func (s *silenceReader) Read(p []byte) (int, error) {
	if s.silence > 0 {
		_ = s.conn.SetReadDeadline(time.Now().Add(s.silence))
	}
	return s.r.Read(p)
}

// silence is how long a peer connection may stay without a byte before it
// is closed: three heartbeat intervals.
func (m *Manager) silence() time.Duration { return 3 * m.cfg.HeartbeatInterval }
