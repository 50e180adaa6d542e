package sync

import (
	"context"
	"time"

	"github.com/contactstore/contactstore/store"
)

// A client's ListAll is acknowledged only after its changes are on the
// peers (bounded by a timeout): a client that then fails over and deletes
// a contact elsewhere must find the create there, or its delete could be
// stamped below it.
//
// A commit reports the change-log position of its changes; a peer holds
// them once its feed has confirmed that position (the answer to a
// HeartBeat sent after them). A feed that began above the position (a
// data dir this server had never fed: a new or restarted member) is not
// waited on for it: every change below its start was confirmed by every
// other live peer, and such a member takes a full transfer from one of
// them before it serves.

// Barrier waits until every live peer holds the changes up to pos, or ctx
// ends. A peer whose feed dropped less than FeedGrace ago is waited for to
// come back. It reports whether every such peer confirmed; a server with
// no peers confirms at once.
func (m *Manager) Barrier(ctx context.Context, pos store.Pos) bool {
	if pos == (store.Pos{}) {
		return true
	}
	var names []string
	now := time.Now()
	m.mu.Lock()
	for name, p := range m.peers {
		if p.in != nil || now.Sub(p.feedGoneAt) < m.cfg.FeedGrace {
			names = append(names, name)
		}
	}
	for name, at := range m.gone {
		if _, ok := m.peers[name]; !ok && now.Sub(at) < m.cfg.FeedGrace {
			names = append(names, name)
		}
	}
	m.mu.Unlock()
	all := true
	for _, name := range names {
		if !m.waitConfirmed(ctx, name, pos) {
			all = false
		}
	}
	if !all {
		m.stats.BarrierTimeouts.Add(1)
	}
	return all
}

// waitConfirmed waits until peer's feed confirms pos (or began above it),
// following the feed across reconnections, until the peer is gone, its
// feed has been gone longer than FeedGrace, or ctx ends.
func (m *Manager) waitConfirmed(ctx context.Context, peer string, pos store.Pos) bool {
	for {
		m.mu.Lock()
		p := m.peers[peer]
		peersCh := m.peersCh
		var c *peerConn
		var goneAt time.Time
		if p != nil {
			c, goneAt = p.in, p.feedGoneAt
		} else if at, ok := m.gone[peer]; ok {
			goneAt = at // declared dead: maybe killed and coming straight back
		} else {
			m.mu.Unlock()
			return true // no longer a member: nothing to wait for
		}
		m.mu.Unlock()
		if c == nil {
			if time.Since(goneAt) >= m.cfg.FeedGrace {
				return false
			}
			t := time.NewTimer(m.cfg.FeedGrace - time.Since(goneAt))
			select {
			case <-peersCh:
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
			t.Stop()
			continue
		}
		c.pubMu.Lock()
		done := geq(c.confirmed, pos) || covers(c.start, pos)
		ch := c.confirmedCh
		if !done {
			c.want = maxPos(c.want, pos)
		}
		c.pubMu.Unlock()
		if done {
			return true
		}
		c.signal()
		select {
		case <-ch:
		case <-c.closed:
		case <-peersCh:
		case <-ctx.Done():
			return false
		}
	}
}

// covers reports whether a feed that began at start began above every
// position of pos that matters (the shards pos names).
func covers(start, pos store.Pos) bool {
	for i := range pos {
		if pos[i] != 0 && start[i] < pos[i] {
			return false
		}
	}
	return true
}
