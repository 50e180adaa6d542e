package sync

import (
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

// PeerStatus is what this server knows of one peer, for status pages.
type PeerStatus struct {
	Name       string
	OutboundUp bool
	InboundUp  bool
	LastHealth wire.Health
	LastHeard  time.Time // zero if no HeartBeat yet
	// LastClock is the peer's clock from its last UpdateClock answer, and
	// ClockOffset that clock minus our wall clock when it arrived (a clock
	// reading runs at or up to the bound ahead of its wall clock).
	LastClock   uint32
	ClockOffset time.Duration
	// WallOffset is the peer's wall clock minus ours, measured by
	// membership's pings (HasWallOffset false: not measured yet).
	WallOffset    time.Duration
	HasWallOffset bool
	// AheadBy is how far beyond the clock bound the peer's clock was last
	// seen (0: never), at AheadAt.
	AheadBy time.Duration
	AheadAt time.Time
	// LagChanges is how many of our logged changes its feed has not
	// confirmed; LagSeconds how long since it last confirmed our whole log
	// (0 when in sync).
	LagChanges uint64
	LagSeconds float64
	// Bytes sent on its feed, by kind.
	LiveBytes, CatchUpBytes, SnapshotBytes uint64
	// State is what its connections are doing (a pull, a queued transfer).
	State     string
	ChangesIn uint64 // changes received from it since this server started
}

// Peers returns the status of every peer.
func (m *Manager) Peers() []PeerStatus {
	offsets := m.cl.ClockOffsets()
	head := m.st.Head()
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PeerStatus, 0, len(m.peers))
	for _, p := range m.peers {
		ps := PeerStatus{Name: p.name, OutboundUp: p.out != nil, InboundUp: p.in != nil}
		if o, ok := offsets[p.name]; ok {
			ps.WallOffset, ps.HasWallOffset = o.Offset, true
		}
		if p.aheadBy > 0 {
			ps.AheadBy, ps.AheadAt = time.Duration(p.aheadBy)*time.Second, p.aheadAt
		}
		for _, c := range []*peerConn{p.out, p.in} {
			if c == nil {
				continue
			}
			if at := c.lastHBAt.Load(); at > 0 && time.Unix(0, at).After(ps.LastHeard) {
				ps.LastHeard = time.Unix(0, at)
				ps.LastHealth = wire.Health(c.lastHealth.Load())
			}
			if v := c.lastClock.Load(); v > ps.LastClock {
				ps.LastClock = v
				ps.ClockOffset = store.TimeOf(v).Sub(time.Unix(0, c.clockAtNs.Load()))
			}
			c.pubMu.Lock()
			if ps.State == "" {
				ps.State = c.pullState
			}
			if c == p.in {
				for i := range head {
					ps.LagChanges += head[i] - min(head[i], c.confirmed[i])
				}
				if ps.LagChanges > 0 {
					since := c.syncedAt
					if since.IsZero() {
						since = c.since
					}
					ps.LagSeconds = now.Sub(since).Seconds()
				}
			}
			c.pubMu.Unlock()
		}
		if p.in != nil {
			ps.LiveBytes, ps.CatchUpBytes, ps.SnapshotBytes = p.in.sentLive.Load(), p.in.sentCatchUp.Load(), p.in.sentSnapshot.Load()
		}
		ps.ChangesIn = m.changesFrom(p.name).Load()
		out = append(out, ps)
	}
	return out
}
