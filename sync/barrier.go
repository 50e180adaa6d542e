package sync

import (
	"context"
	"time"
)

// A client's ListAll is acknowledged only after its changes are on the
// peers (bounded by a timeout): a client that then fails over and deletes
// a contact elsewhere must find the create there, or its delete could be
// stamped below it.
//
// Every HeartBeat we send carries Clock 0 and is answered by exactly one
// UpdateClock after everything sent before it, so a HeartBeat queued on a
// feed is a barrier for what was queued there earlier. That covers a feed
// that was attached when the changes were flushed. A feed attached later
// (the peer reconnected or restarted) was never pushed them; it has them
// once a transfer that started walking the store after their flush has
// been sent, and a HeartBeat queued after that transfer started is the
// barrier. Flushes are numbered (Manager.pubSeq) so both cases can be told
// apart without locks on the push path.

// Barrier waits until every live peer holds the changes this stream
// flushed since its last Barrier, or until timeout. A peer whose feed
// dropped less than FeedGrace ago is waited for to come back. It reports
// whether every such peer confirmed; a server with no peers confirms at
// once.
func (s *Stream) Barrier(timeout time.Duration) bool {
	if s.firstPub == 0 {
		return true
	}
	first, last := s.firstPub, s.lastPub
	s.firstPub, s.lastPub = 0, 0
	ok := s.m.barrier(first, last, time.Now().Add(timeout))
	if !ok {
		s.m.stats.BarrierTimeouts.Add(1)
	}
	return ok
}

type barrierTarget struct {
	peer string
	c    *peerConn // nil: the peer has no feed right now
	mark uint64    // the HeartBeat whose answer confirms; 0: not queued yet
}

func (m *Manager) barrier(first, last uint64, deadline time.Time) bool {
	now := time.Now()
	var targets []barrierTarget
	m.mu.Lock()
	for name, p := range m.peers {
		if p.in != nil || now.Sub(p.feedGoneAt) < m.cfg.FeedGrace {
			targets = append(targets, barrierTarget{peer: name, c: p.in})
		}
	}
	m.mu.Unlock()
	// Queue on every feed that already had the changes pushed first, so
	// the peers answer in parallel.
	for i := range targets {
		if t := &targets[i]; t.c != nil && t.c.attachPub.Load() < first {
			t.mark = t.c.queueHeartBeat(nil)
		}
	}
	all := true
	for i := range targets {
		if !m.waitTarget(&targets[i], first, last, deadline) {
			all = false
		}
	}
	return all
}

// barrierPoll is how often a barrier looks again for a feed that is not
// (yet) able to confirm: rare, and bounded by the deadline.
const barrierPoll = 2 * time.Millisecond

// waitTarget waits until t's peer confirms the changes flushed from first
// to last.
func (m *Manager) waitTarget(t *barrierTarget, first, last uint64, deadline time.Time) bool {
	ctx, cancel := context.WithDeadline(m.ctx, deadline)
	defer cancel()
	for {
		if ctx.Err() != nil {
			return false
		}
		if t.c == nil || isClosed(t.c) {
			t.c, t.mark = m.feedOf(t.peer), 0
			if t.c != nil && isClosed(t.c) {
				t.c = nil // closed but not yet detached: wait for its successor
			}
			if t.c == nil {
				if !m.peerKnown(t.peer) {
					return true // no longer a member: nothing to wait for
				}
				if !sleepUntil(barrierPoll, ctx.Done()) {
					return false
				}
				continue
			}
		}
		if t.mark == 0 {
			if t.c.attachPub.Load() >= first && t.c.walkPub.Load() < last { // a new feed: wait for its transfer
				if !sleepUntil(barrierPoll, ctx.Done()) {
					return false
				}
				continue
			}
			t.mark = t.c.queueHeartBeat(nil)
		}
		if t.c.waitAnswered(t.mark, ctx.Done()) {
			return true
		}
		if !isClosed(t.c) {
			return false // the deadline passed
		}
		// The feed closed while we waited: look for its successor.
	}
}

func (m *Manager) feedOf(peer string) *peerConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peers[peer]; p != nil {
		return p.in
	}
	return nil
}

func (m *Manager) peerKnown(peer string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.peers[peer]
	return ok
}

func isClosed(c *peerConn) bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// sleepUntil sleeps d, or less if done closes first (then it reports false).
func sleepUntil(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
