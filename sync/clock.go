package sync

import (
	"fmt"
	"time"

	"github.com/contactstore/contactstore/wire"
)

// clockAhead reports a peer whose clock (or a stamp it sent) is beyond
// this server's bound: counted every time, logged at error once per peer
// per minute with the offset, and shown in the peer's status. The
// connection stays up and its changes are applied: they are data, and
// refusing them would make members diverge; the bound already keeps them
// from dragging this server's clock.
func (m *Manager) clockAhead(peer string, seconds uint32, what string) {
	m.stats.ClockAhead.Add(1)
	now := time.Now()
	m.mu.Lock()
	p := m.peers[peer]
	logIt := false
	if p != nil {
		p.aheadBy, p.aheadAt = seconds, now
		if now.Sub(p.aheadLoggedAt) >= time.Minute {
			p.aheadLoggedAt, logIt = now, true
		}
	}
	m.mu.Unlock()
	if logIt {
		m.log.Error("peer's clock is ahead of this server's by more than the clock bound: fix that member's clock",
			"peer", peer, "what", what, "beyond_bound", time.Duration(seconds)*time.Second,
			"max_clock_ahead", m.cfg.MaxClockAhead)
	}
}

// clockTolerance absorbs stamps' one-second granularity and the
// measurement's error.
const clockTolerance = 2 * time.Second

// checkClock compares this server's wall clock with its serving peers'
// (measured by membership's pings): when it is further than the bound
// from most of them, and at least two were measured (with one peer there
// is no telling which clock is wrong), this server says so, at error once
// a minute, and reports not-ready with that reason. It keeps serving: the
// bound keeps its clock from hurting anyone.
func (m *Manager) checkClock() {
	offsets := m.cl.ClockOffsets()
	limit := m.cfg.MaxClockAhead + clockTolerance
	measured, off := 0, 0
	var sum time.Duration
	now := m.cfg.Now()
	for _, mem := range m.cl.Members() {
		if mem.Name == m.cfg.Name || !mem.Alive() || wire.Health(mem.Meta.Health) != wire.HealthServing {
			continue
		}
		o, ok := offsets[mem.Name]
		if !ok || now.Sub(o.At) > time.Minute {
			continue // not measured lately
		}
		measured++
		if o.Offset > limit || o.Offset < -limit {
			off++
			sum += o.Offset
		}
	}
	if measured < 2 || 2*off <= measured {
		if m.clockTrouble.Swap(nil) != nil {
			m.log.Info("this server's wall clock agrees with its peers' again")
		}
		return
	}
	avg := sum / time.Duration(off)
	var msg string
	if avg > 0 { // their clocks are ahead of ours
		msg = fmt.Sprintf("wall clock %v behind most serving peers (bound %v)", avg.Round(time.Second), m.cfg.MaxClockAhead)
	} else {
		msg = fmt.Sprintf("wall clock %v ahead of most serving peers (bound %v)", (-avg).Round(time.Second), m.cfg.MaxClockAhead)
	}
	prev := m.clockTrouble.Swap(&msg)
	if prev == nil || m.clockLoggedAt.Load() < now.Add(-time.Minute).UnixNano() {
		m.clockLoggedAt.Store(now.UnixNano())
		m.log.Error("this server's "+msg+": reporting not-ready until its clock is fixed", "measured_peers", measured,
			"off_peers", off)
	}
}
