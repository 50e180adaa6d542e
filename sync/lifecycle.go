package sync

import (
	"context"
	"time"

	"github.com/contactstore/contactstore/wire"
)

// SetLeaving makes every heartbeat from now on say "leaving" and sends one
// at once on every peer connection.
func (m *Manager) SetLeaving() {
	if m.leaving.Swap(true) {
		return
	}
	m.noteHealthChanged()
	for _, c := range m.conns() {
		c.queueHeartBeat(nil)
	}
}

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

// Drain waits until every outbound queue is empty or ctx ends, so that the
// last local changes reach the peers before a graceful stop.
func (m *Manager) Drain(ctx context.Context) {
	for {
		pending := 0
		for _, c := range m.conns() {
			pending += c.q.depth()
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			m.log.Warn("stopping with changes still queued for peers; they resync by AskForUpdate", "bytes", pending)
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Shutdown says "leaving", drains the queues (bounded by ctx), closes every
// peer connection and waits for the manager's goroutines. Idempotent.
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

// PeerStatus is what this server knows of one peer, for status pages.
type PeerStatus struct {
	Name        string
	OutboundUp  bool
	InboundUp   bool
	LastHealth  wire.Health
	LastClock   uint32
	LastHeard   time.Time // zero if no HeartBeat yet
	QueueBytes  int       // queued on its feed
	InitialPull bool      // a full pull from it has completed
	LastPull    time.Time
	ChangesIn   uint64 // changes received from it since this server started
}

// Peers returns the status of every peer.
func (m *Manager) Peers() []PeerStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PeerStatus, 0, len(m.peers))
	for _, p := range m.peers {
		ps := PeerStatus{Name: p.name, OutboundUp: p.out != nil, InboundUp: p.in != nil,
			InitialPull: p.pulledOnce, LastPull: p.lastPullDone}
		for _, c := range []*peerConn{p.out, p.in} {
			if c == nil {
				continue
			}
			if at := c.lastHBAt.Load(); at > 0 && time.Unix(0, at).After(ps.LastHeard) {
				ps.LastHeard = time.Unix(0, at)
				ps.LastHealth = wire.Health(c.lastHealth.Load())
			}
			ps.LastClock = max(ps.LastClock, c.lastClock.Load())
		}
		if p.in != nil {
			ps.QueueBytes = p.in.q.depth()
		}
		ps.ChangesIn = m.changesFrom(p.name).Load()
		out = append(out, ps)
	}
	return out
}
