package sync

import (
	"bufio"
	"context"
	"errors"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

type pullKind int

const (
	pullFull    pullKind = iota + 1 // AskForUpdate, then a barrier: the peer's whole state
	pullRefill                      // the same, recording the keys the peer holds (stale.go's refill)
	pullCatchUp                     // a barrier only: everything the peer had logged when it arrived
)

func (k pullKind) String() string {
	switch k {
	case pullFull:
		return "full"
	case pullRefill:
		return "refill"
	case pullCatchUp:
		return "catch-up"
	}
	return "unknown"
}

// pullReq asks a connection's owner for a pull; done receives its outcome.
type pullReq struct {
	kind   pullKind
	reason string
	done   chan error
	at     uint64 // the HeartBeat whose answer ends it (owner only)
	start  time.Time
}

// requestPull queues a pull on c and returns the request to wait on.
func (c *peerConn) requestPull(kind pullKind, reason string) *pullReq {
	r := &pullReq{kind: kind, reason: reason, done: make(chan error, 1)}
	c.inMu.Lock()
	c.pulls = append(c.pulls, r)
	c.inMu.Unlock()
	c.signal()
	return r
}

// wait waits for the pull's outcome or ctx.
func (r *pullReq) wait(ctx context.Context) error {
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failPulls fails every pull still waiting on c (it closed). The owner
// has ended, so the inbox is the only place left to look.
func (c *peerConn) failPulls(err error) {
	c.inMu.Lock()
	pulls := c.pulls
	c.pulls = nil
	c.inMu.Unlock()
	for _, p := range pulls {
		p.done <- err
	}
}

// sentHB is one of our HeartBeats awaiting its answer.
type sentHB struct {
	n       uint64
	cursor  store.Pos // what the feed had written before it
	caught  bool      // the cursor was our whole log then: its answer makes markAt a mark
	markAt  uint32
	markPos store.Pos // the head markAt covers
	at      time.Time
}

// owner is the state of a connection's writer goroutine.
type owner struct {
	c           *peerConn
	bw          *bufio.Writer
	hbSent      uint64
	answersSeen uint64
	sent        []sentHB
	cursor      store.Pos
	active      *pullReq
	queued      []*pullReq
	events      []inEvent
	hbDue       bool
	// snapshot owed on a feed whose cursor fell behind the trimmed log
	snapOwed   bool
	askServed  bool // a transfer asked for ended in this step: askPending clears once it is flushed
	haveSlot   bool
	waitLogged bool
	lastSave   time.Time
	savedPos   store.Pos
	rr         int
	frame      []byte
}

// ownerLoop is the connection's only writer.
func (c *peerConn) ownerLoop() {
	defer c.wg.Done()
	defer c.close()
	m := c.m
	o := &owner{c: c, bw: bufio.NewWriterSize(deadlineWriter{conn: c.conn, timeout: m.cfg.WriteTimeout}, 256<<10)}
	c.pubMu.Lock()
	o.cursor, o.savedPos = c.cursor, c.confirmed
	c.pubMu.Unlock()
	o.snapOwed = c.isFeed() && c.needSnapshot()
	o.lastSave = time.Now()
	defer func() {
		if o.haveSlot {
			<-m.transfers
		}
		if o.active != nil {
			o.active.done <- errors.New("connection closed")
		}
		for _, p := range o.queued {
			p.done <- errors.New("connection closed")
		}
		if c.isFeed() {
			o.saveCursor(true)
		}
	}()
	every := m.hbInterval()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	// The first HeartBeat tells the peer our health at once, before any
	// pull the manager queued meanwhile (buffered: the first step flushes).
	if err := o.writeHB(); err != nil {
		c.endedErr = err
		return
	}
	for {
		var headCh <-chan struct{}
		if c.isFeed() {
			headCh = m.st.HeadChanged() // before step reads the head: no commit slips between
		}
		more, err := o.step()
		if err != nil {
			c.endedErr = err
			return
		}
		if more {
			select {
			case <-c.closed:
				return
			default:
				continue
			}
		}
		var slot chan struct{}
		if o.waitingForSlot() {
			slot = m.transfers
		}
		select {
		case <-c.closed:
			return
		case <-m.ctx.Done():
			return
		case <-c.wake:
		case <-ticker.C:
			o.hbDue = true
			if d := m.hbInterval(); d != every { // the member count moved the budget's interval
				every = d
				ticker.Reset(every)
			}
		case <-headCh:
		case slot <- struct{}{}:
			o.haveSlot = true
		}
	}
}

func (o *owner) waitingForSlot() bool {
	if o.haveSlot {
		return false
	}
	return o.snapOwed || (len(o.events) > 0 && o.events[0].ask)
}

// step does everything the connection can do now without waiting, and
// reports whether more is left (a feed not yet at the head).
func (o *owner) step() (bool, error) {
	c := o.c
	c.inMu.Lock()
	o.events = append(o.events, c.events...)
	c.events = c.events[:0]
	answered := c.answered
	o.queued = append(o.queued, c.pulls...)
	c.pulls = nil
	if c.hbNow {
		o.hbDue, c.hbNow = true, false
	}
	c.inMu.Unlock()

	for o.answersSeen < answered {
		o.answersSeen++
		if len(o.sent) == 0 {
			continue // an answer to nothing we sent: a confused peer; nothing to confirm
		}
		s := o.sent[0]
		o.sent = o.sent[1:]
		o.onAnswer(s)
		o.publishOldestHB()
	}
	if o.active == nil && len(o.queued) > 0 {
		o.active = o.queued[0]
		o.queued = o.queued[1:]
		if err := o.startPull(o.active); err != nil {
			return false, err
		}
	}
	// A snapshot owed to a feed behind the trimmed log comes before
	// anything else on it.
	if o.snapOwed {
		done, err := o.serveSnapshot("its position was trimmed from the log", false)
		if err != nil {
			return false, err
		}
		if done {
			o.snapOwed = false
		}
	}
	if err := o.handleEvents(); err != nil {
		return false, err
	}
	more := false
	if c.isFeed() && !o.snapOwed {
		var err error
		if more, err = o.feed(); err != nil {
			return false, err
		}
		// What the feed just sent may be what a HeartBeat waited for.
		if err := o.handleEvents(); err != nil {
			return false, err
		}
	}
	if o.hbDue || o.barrierWantsHB() || o.paceWantsHB() {
		if err := o.writeHB(); err != nil {
			return false, err
		}
		o.hbDue = false
	}
	if err := o.bw.Flush(); err != nil {
		return false, err
	}
	if o.askServed {
		o.askServed = false
		c.inMu.Lock()
		c.askPending = false
		c.inMu.Unlock()
	}
	if c.isFeed() {
		o.saveCursor(false)
	}
	return more, nil
}

// handleEvents handles control events, in arrival order: an AskForUpdate
// is served before the HeartBeats that came after it are answered, and on
// a feed a HeartBeat is answered once the feed has sent what the log held
// when it arrived.
func (o *owner) handleEvents() error {
	c, m := o.c, o.c.m
	for !o.snapOwed && len(o.events) > 0 {
		ev := o.events[0]
		if ev.ask {
			done, err := o.serveSnapshot("asked (AskForUpdate)", true)
			if err != nil {
				return err
			}
			if !done {
				return nil
			}
			// Asks that arrive until its last bytes are flushed still merge
			// into it (step clears askPending after the flush): the peer
			// cannot have seen its end yet.
			o.askServed = true
			o.events = o.events[1:]
			continue
		}
		if c.isFeed() && !geq(o.cursor, ev.head) {
			return nil
		}
		o.frame = wire.AppendUpdateClock(o.frame[:0], m.st.Clock())
		if _, err := o.bw.Write(o.frame); err != nil {
			return err
		}
		o.events = o.events[1:]
	}
	return nil
}

// writeHB sends a HeartBeat with Clock 0 and records what its answer will
// confirm.
func (o *owner) writeHB() error {
	c, m := o.c, o.c.m
	o.hbSent++
	s := sentHB{n: o.hbSent, cursor: o.cursor, at: time.Now()}
	if c.isFeed() && !o.snapOwed {
		head, t := m.st.HeadAt()
		s.caught, s.markAt, s.markPos = geq(o.cursor, head), t, head
	}
	o.sent = append(o.sent, s)
	o.publishOldestHB()
	o.frame = wire.AppendHeartBeat(o.frame[:0], m.Health(), 0)
	_, err := o.bw.Write(o.frame)
	return err
}

// publishOldestHB publishes when the oldest HeartBeat still awaiting its
// answer was sent (zero: none).
func (o *owner) publishOldestHB() {
	var at time.Time
	if len(o.sent) > 0 {
		at = o.sent[0].at
	}
	o.c.pubMu.Lock()
	o.c.hbWaitSince = at
	o.c.pubMu.Unlock()
}

// answerOverdue reports whether a HeartBeat we sent on c has waited longer
// than d for its answer. A peer answers only once its feed to us has
// caught up with its log, so on our outbound connection this says the
// peer is still sending us its changes.
func (c *peerConn) answerOverdue(d time.Duration) bool {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return !c.hbWaitSince.IsZero() && time.Since(c.hbWaitSince) > d
}

func (o *owner) onAnswer(s sentHB) {
	c, m := o.c, o.c.m
	if a := o.active; a != nil && s.n == a.at {
		o.finishPull(a)
	}
	if !c.isFeed() {
		return
	}
	c.pubMu.Lock()
	if !geq(c.confirmed, s.cursor) {
		c.progressAt = m.cfg.Now()
	}
	c.confirmed = maxPos(c.confirmed, s.cursor)
	if s.caught {
		c.syncedAt = s.at
	}
	close(c.confirmedCh)
	c.confirmedCh = make(chan struct{})
	c.pubMu.Unlock()
	m.confirmMoved()
	if s.caught {
		m.markCandidate(c, s.markAt, s.markPos)
	}
}

// barrierWantsHB reports whether a client barrier waits on a position
// the feed has written but no HeartBeat in flight will confirm.
func (o *owner) barrierWantsHB() bool {
	c := o.c
	if !c.isFeed() {
		return false
	}
	c.pubMu.Lock()
	want, confirmed := c.want, c.confirmed
	c.pubMu.Unlock()
	if geq(confirmed, want) || !geq(o.cursor, want) {
		return false
	}
	for _, s := range o.sent {
		if geq(s.cursor, want) {
			return false
		}
	}
	return true
}

func (o *owner) startPull(r *pullReq) error {
	c := o.c
	r.start = time.Now()
	c.setPullState(r.kind.String() + " pull: " + r.reason)
	if r.kind == pullFull || r.kind == pullRefill {
		c.recordSeen.Store(r.kind == pullRefill)
		c.pullFrames.Store(0)
		c.pullBytes.Store(0)
		c.pulling.Store(true)
		o.frame = wire.AppendAskForUpdate(o.frame[:0])
		if _, err := o.bw.Write(o.frame); err != nil {
			return err
		}
	}
	if err := o.writeHB(); err != nil {
		return err
	}
	r.at = o.hbSent
	return nil
}

func (o *owner) finishPull(r *pullReq) {
	c, m := o.c, o.c.m
	o.active = nil
	c.setPullState("")
	if r.kind == pullFull || r.kind == pullRefill {
		c.pulling.Store(false)
		c.recordSeen.Store(false)
		frames, bytes := c.pullFrames.Load(), c.pullBytes.Load()
		m.stats.PullsDone.Add(1)
		m.stats.PullEntriesRx.Add(uint64(frames))
		m.stats.PullBytesRx.Add(uint64(bytes))
		// The frames counted are every change that arrived on the
		// connection while the pull ran: the transfer and, interleaved
		// with it on the same connection, the peer's feed of its changes.
		m.log.Info("pulled state from peer", "peer", c.peer, "kind", r.kind.String(), "reason", r.reason,
			"frames_received", frames, "bytes_received", bytes, "seconds", time.Since(r.start).Seconds())
	}
	r.done <- nil
}

func (c *peerConn) setPullState(s string) {
	c.pubMu.Lock()
	c.pullState = s
	c.pubMu.Unlock()
}

// feed writes the log after the cursor, a chunk at a time over the
// shards, and reports whether the feed is still behind the head. A change
// stamped both below the expiry cutoff and at or below this member's
// mark is not sent: it was made before this member last confirmed its log
// with a serving peer, long enough ago that a later delete of the same
// key may have expired on the peer, and it would come back to life there
// (a stale member's refill drops such entries from its own store too). A
// change made after the mark, however old, was made while this member was
// cut off, and is sent on (PROTOCOL.md).
func (o *owner) feed() (bool, error) {
	c, m := o.c, o.c.m
	st := m.st
	head := st.Head()
	prev := o.cursor
	cutoff := min(st.Cutoff(), st.Mark()+1)
	budget := m.cfg.FeedChunk
	for i := 0; i < store.NumShards && budget > 0; i++ {
		sh := (o.rr + i) % store.NumShards
		if o.cursor[sh] >= head[sh] {
			continue
		}
		catchUp := head[sh]-o.cursor[sh] > uint64(m.cfg.FeedChunk)
		n, frames := 0, uint64(0)
		var bytes uint64
		last, err := st.ReadLog(sh, o.cursor[sh], budget, func(_ uint64, ch store.Change) error {
			n++
			if ch.Stamp < cutoff {
				m.stats.FeedExpiredSkipped.Add(1)
				return nil
			}
			size, err := o.writeChange(ch)
			if size > 0 {
				frames++
				bytes += uint64(size)
			}
			return err
		})
		if errors.Is(err, store.ErrTrimmed) {
			o.snapOwed = true
			m.log.Warn("peer's feed position is no longer in the log: sending a snapshot", "peer", c.peer,
				"shard", sh, "position", o.cursor[sh])
			return true, nil
		}
		if err != nil {
			return false, err
		}
		o.cursor[sh] = last
		budget -= n
		m.stats.FramesOut.Add(frames)
		if catchUp {
			c.sentCatchUp.Add(bytes)
			m.stats.CatchUpBytesTx.Add(bytes)
		} else {
			c.sentLive.Add(bytes)
			m.stats.LiveBytesTx.Add(bytes)
		}
	}
	o.rr++
	c.pubMu.Lock()
	c.cursor = o.cursor
	// Wrote to a peer that had confirmed everything before (only this
	// goroutine moves confirmed): it has something to confirm from now.
	if o.cursor != prev && geq(c.confirmed, prev) {
		c.progressAt = m.cfg.Now()
	}
	c.pubMu.Unlock()
	return !geq(o.cursor, head), nil
}

// saveCursor persists the feed's confirmed position (now, or when the
// interval passed).
func (o *owner) saveCursor(now bool) {
	c, m := o.c, o.c.m
	c.pubMu.Lock()
	confirmed := c.confirmed
	c.pubMu.Unlock()
	if confirmed == o.savedPos || (!now && time.Since(o.lastSave) < m.cfg.CursorSaveInterval) {
		return
	}
	if !m.isFeedOf(c) {
		return // replaced by a newer connection of the peer, which owns the cursor now
	}
	if err := m.st.SaveCursor(c.peer, store.Cursor{StoreID: c.storeID, Pos: confirmed}); err != nil {
		m.log.Debug("saving a peer's log position failed", "peer", c.peer, "error", err)
		return
	}
	o.savedPos, o.lastSave = confirmed, time.Now()
}

func geq(a, b store.Pos) bool {
	for i := range a {
		if a[i] < b[i] {
			return false
		}
	}
	return true
}

func maxPos(a, b store.Pos) store.Pos {
	for i := range a {
		a[i] = max(a[i], b[i])
	}
	return a
}

func minPos(a, b store.Pos) store.Pos {
	for i := range a {
		a[i] = min(a[i], b[i])
	}
	return a
}

// writeChange encodes ch as a server Update or Delete and writes it to the
// connection's buffer. It returns the frame's size, 0 for a value the wire
// cannot carry (the store never holds one: nothing is written).
func (o *owner) writeChange(ch store.Change) (int, error) {
	var err error
	if ch.Deleted {
		o.frame, err = wire.AppendServerDelete(o.frame[:0], ch.Stamp, ch.User, ch.Contact)
	} else {
		o.frame, err = wire.AppendServerUpdate(o.frame[:0], ch.Stamp, ch.User, ch.Contact, ch.Phone)
	}
	if err != nil {
		return 0, nil
	}
	_, err = o.bw.Write(o.frame)
	return len(o.frame), err
}
