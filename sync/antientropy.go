package sync

import (
	"time"

	"github.com/contactstore/contactstore/wire"
)

// antiEntropyLoop publishes this server's digest and health through
// membership and repairs a difference that replication does not explain.
// A peer's digest must have differed from ours for AntiEntropyRounds
// comparisons while neither moved, at equal cutoffs (the same expiry
// point, so tombstones expiring never look like a difference), with the
// peer's feed of our log confirmed up to our head (it is not still
// receiving our changes) and no HeartBeat of ours to it overdue (we are
// not still receiving its changes). Then we first take a catch-up barrier from it
// (everything it had logged reaches us); only if the difference survives
// that do we pull its whole state. A pull that does not end the
// difference backs off, doubling, up to 64 intervals.
func (m *Manager) antiEntropyLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.AntiEntropyInterval)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			last = m.antiEntropyRound(last)
		case <-m.healthCh:
			m.publishMeta(m.cfg.AntiEntropyInterval)
		}
	}
}

func (m *Manager) antiEntropyRound(last uint64) uint64 {
	mine := m.publishMeta(m.cfg.AntiEntropyInterval)
	mineStable := mine.Digest == last
	if !m.serving.Load() || mine.Cutoff == 0 {
		return mine.Digest // syncing, or our digest is not comparable now
	}
	now := time.Now()
	for _, mem := range m.cl.Members() {
		if mem.Name == m.cfg.Name || !mem.Alive() {
			continue
		}
		if wire.Health(mem.Meta.Health) != wire.HealthServing {
			continue // still syncing (or refilling): its digest is not its state yet
		}
		m.mu.Lock()
		p := m.peers[mem.Name]
		if p == nil {
			m.mu.Unlock()
			continue
		}
		theirs := mem.Meta.Digest
		theirsStable := theirs == p.lastDigest
		p.lastDigest = theirs
		switch {
		case mem.Meta.Cutoff != mine.Cutoff:
			p.diffRounds = 0 // not comparable: another cutoff (or none published)
		case theirs == mine.Digest:
			p.diffRounds, p.aeBackoff = 0, 0
		case !mineStable || !theirsStable:
			p.diffRounds = 0
		default:
			p.diffRounds++
		}
		if p.diffRounds == 0 {
			p.diffSince = time.Time{}
		} else if p.diffSince.IsZero() {
			p.diffSince = now
		}
		if p.diffRounds > 0 && p.in != nil && !p.in.confirmedAll(m.st.Head()) {
			p.diffRounds = 0 // it is still receiving our changes: the difference is expected
		}
		if p.diffRounds > 0 && p.out != nil && p.out.answerOverdue(m.cfg.AntiEntropyInterval) {
			// We are still receiving its changes (it answers our HeartBeats
			// only once its feed to us has caught up), however stalled our
			// applying looks: the difference is expected.
			p.diffRounds = 0
		}
		var pull, catchUp *peerConn
		if p.diffRounds >= m.cfg.AntiEntropyRounds && now.After(p.aeWaitUntil) && p.out != nil && !p.catchUpBusy {
			if p.catchUpDone.Before(p.diffSince) {
				catchUp, p.catchUpBusy = p.out, true
			} else {
				pull = p.out
				p.diffRounds = 0
				p.aeBackoff = min(max(1, 2*p.aeBackoff), 64)
				p.aeWaitUntil = now.Add(time.Duration(p.aeBackoff) * m.cfg.AntiEntropyInterval)
			}
		}
		m.mu.Unlock()
		if catchUp != nil {
			name := mem.Name
			r := catchUp.requestPull(pullCatchUp, "anti-entropy: digests differ")
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				err := r.wait(m.ctx)
				m.mu.Lock()
				if q := m.peers[name]; q != nil {
					q.catchUpBusy = false
					if err == nil {
						q.catchUpDone = time.Now()
					}
				}
				m.mu.Unlock()
			}()
		}
		if pull != nil {
			m.stats.AntiEntropyPulls.Add(1)
			m.log.Info("state digest differs from peer's and is not changing: pulling", "peer", mem.Name,
				"mine", mine.Digest, "theirs", theirs, "cutoff", mine.Cutoff)
			pull.requestPull(pullFull, "anti-entropy") // its outcome is logged by the owner
		}
	}
	return mine.Digest
}
