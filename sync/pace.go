package sync

import (
	"context"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

// Flow control. A feed never drops a peer that falls behind: it reads
// further back in the log. But when the cluster as a whole cannot apply
// what this member's clients write (members sharing cores with the
// writer, a load above what the slowest majority applies), every peer's
// lag grows for as long as the load lasts, and a change written now
// reaches them only after everything before it: seconds, then minutes.
//
// So a client commit is paced: it waits (Pace) while more than half of the
// counted peers, and at least two, have not confirmed the log up to
// PaceLag changes behind its head, until enough of them catch up. The wait
// is TCP's own back-pressure to the clients, who then write at the rate
// the cluster applies. A peer is counted only while
//   - it says in its HeartBeats that it is serving (a starting member
//     catching up is not waited for: it serves once it is within ServeLag),
//   - its feed is not sending or waiting to send a snapshot, and
//   - it confirmed something within PaceStall of last having something
//     to confirm (progressAt), or it is within PaceLag:
//     a peer that stopped reading (stopped, partitioned, a disk that
//     hangs) is not waited for; its feed catches it up later, and
//   - since it last stalled or connected, it has been within paceEntry
//     times PaceLag: a peer back from a partition, far behind, catches
//     up from the log before it is waited for, so that a healed partition
//     holds clients at most while it applies its last paceEntry*PaceLag
//     changes, not its whole backlog.
// One slow peer therefore never slows clients: pacing needs two, and more
// than half; then the clients write at the rate of the fastest majority of
// the cluster, and a peer outside it may fall behind (its feed catches it
// up). PaceAll waits for every counted peer instead: every member stays
// within PaceLag, at the price of the rule above. Peers' own changes arriving here are never paced, only
// client commits, so two writers cannot wait on each other.
//
// Confirmations are answers to HeartBeats; a feed sends one whenever it
// has written PaceLag/4 changes that no HeartBeat in flight covers, so a
// peer that keeps up is seen within PaceLag.

// paceEntry: a peer that stalled or connected is waited for again once
// it is within paceEntry*PaceLag changes of the head.
const paceEntry = 4

// PaceSmall is the largest client commit flow control never holds: an
// interactive client's change (and its ListAll) is not queued behind bulk
// writers' commits. Many such commits at once are bounded by the
// connection limits.
const PaceSmall = 16

// Pace admits a client commit of n changes: at once while the cluster
// keeps up, otherwise once enough serving peers caught up (see above) or
// ctx ends. Commits that wait are admitted in arrival order, so a client
// writing one change is not overtaken by busier ones for long. The caller
// commits, then calls the release returned: until then the n changes
// count as written, so commits admitted together cannot overshoot the
// bound.
func (m *Manager) Pace(ctx context.Context, n int) (release func()) {
	if m.cfg.PaceLag <= 0 {
		return func() {}
	}
	if n <= PaceSmall {
		// A person's change, or a few: never held. Pacing is for bulk
		// writers, whose commits (one per read of a busy connection) are
		// hundreds or thousands of changes.
		return func() {}
	}
	release = func() { m.paceAdmitted.Add(-int64(n)) }
	if m.paceQueued.Load() == 0 && m.paceAdmit(n) {
		return release
	}
	m.paceQueued.Add(1)
	defer m.paceQueued.Add(-1)
	start := time.Now()
	m.stats.PacedCommits.Add(1)
	defer func() { m.stats.PacedNanos.Add(uint64(time.Since(start))) }()
	// paceTurn is a one-slot channel: blocked senders queue in order.
	select {
	case m.paceTurn <- struct{}{}:
	case <-ctx.Done():
		return func() {}
	}
	defer func() { <-m.paceTurn }()
	timer := time.NewTimer(m.cfg.PaceStall)
	defer timer.Stop()
	for {
		wake := m.confirmWait()
		if m.paceAdmit(n) {
			return release
		}
		select {
		case <-wake:
		case <-timer.C:
			// A peer may have stalled meanwhile: count again.
			timer.Reset(m.cfg.PaceStall)
		case <-ctx.Done():
			return func() {}
		}
	}
}

// paceAdmit admits n changes if the serving peers keep up, counting as
// written what was admitted and not yet committed.
func (m *Manager) paceAdmit(n int) bool {
	m.paceMu.Lock()
	defer m.paceMu.Unlock()
	if m.paceBehind(uint64(max(0, m.paceAdmitted.Load()))) {
		return false
	}
	m.paceAdmitted.Add(int64(n))
	return true
}

// paceBehind (under paceMu) reports whether more than half of the counted
// peers, and at least two (with PaceAll: any counted peer), are more than
// PaceLag changes behind the log's head plus pending changes.
func (m *Manager) paceBehind(pending uint64) bool {
	head := m.st.Head()
	now := m.cfg.Now()
	lagLimit := uint64(m.cfg.PaceLag)
	m.mu.Lock()
	defer m.mu.Unlock()
	counted, lagging := 0, 0
	for _, p := range m.peers {
		c := p.in
		if c == nil || wire.Health(c.lastHealth.Load()) != wire.HealthServing {
			continue
		}
		c.pubMu.Lock()
		lag := posLag(head, c.confirmed) + pending
		busy := c.pullState != "" // a snapshot sent, queued or deferred
		progressAt := c.progressAt
		c.pubMu.Unlock()
		// Stalled: behind, and nothing confirmed for PaceStall since the
		// peer last had something to confirm.
		if busy || (lag > lagLimit && now.Sub(progressAt) > m.cfg.PaceStall) {
			c.paced = false
			continue
		}
		if !c.paced {
			if lag > paceEntry*lagLimit {
				continue // far behind: its feed catches it up first
			}
			c.paced = true
		}
		counted++
		if lag > lagLimit {
			lagging++
		}
	}
	if m.cfg.PaceAll {
		return lagging > 0
	}
	return lagging >= 2 && 2*lagging > counted
}

// confirmWait returns the channel closed when any feed's confirmation
// next moves.
func (m *Manager) confirmWait() <-chan struct{} {
	// Waiting is announced before the caller reads the state: a
	// confirmation that moves after this closes the channel returned.
	m.paceWaiting.Store(true)
	m.confirmMu.Lock()
	defer m.confirmMu.Unlock()
	return m.confirmCh
}

// confirmMoved wakes paced commits after a feed's confirmation moved.
func (m *Manager) confirmMoved() {
	if !m.paceWaiting.Swap(false) {
		return
	}
	m.confirmMu.Lock()
	close(m.confirmCh)
	m.confirmCh = make(chan struct{})
	m.confirmMu.Unlock()
}

// posLag is how many changes of head a position has not reached.
func posLag(head, pos store.Pos) uint64 {
	var n uint64
	for i := range head {
		n += head[i] - min(head[i], pos[i])
	}
	return n
}

// paceWantsHB reports whether the feed has written PaceLag/4 changes that
// no HeartBeat in flight (or confirmation) covers.
func (o *owner) paceWantsHB() bool {
	c, m := o.c, o.c.m
	if !c.isFeed() || m.cfg.PaceLag <= 0 {
		return false
	}
	var covered store.Pos
	if n := len(o.sent); n > 0 {
		covered = o.sent[n-1].cursor
	} else {
		c.pubMu.Lock()
		covered = c.confirmed
		c.pubMu.Unlock()
	}
	return posLag(o.cursor, covered) >= uint64(max(1, m.cfg.PaceLag/4))
}
