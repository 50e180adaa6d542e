package sync

import (
	"time"
)

// antiEntropyLoop publishes this server's digest and health through
// membership and pulls from a peer whose digest has differed for
// AntiEntropyRounds comparisons while neither digest moved (no changes in
// flight). Digests are compared only at equal cutoffs (the same expiry
// point), so tombstones expiring never look like a difference. A pull
// that does not end the difference backs off, doubling, up to 64
// intervals.
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
		var pull *peerConn
		if p.diffRounds >= m.cfg.AntiEntropyRounds && now.After(p.aeWaitUntil) && p.out != nil {
			pull = p.out
			p.diffRounds = 0
			p.aeBackoff = min(max(1, 2*p.aeBackoff), 64)
			p.aeWaitUntil = now.Add(time.Duration(p.aeBackoff) * m.cfg.AntiEntropyInterval)
		}
		m.mu.Unlock()
		if pull != nil {
			m.stats.AntiEntropyPulls.Add(1)
			m.log.Info("state digest differs from peer's and is not changing: pulling", "peer", mem.Name,
				"mine", mine.Digest, "theirs", theirs, "cutoff", mine.Cutoff)
			pull.requestPull(pullFull, "anti-entropy") // its outcome is logged by the owner
		}
	}
	return mine.Digest
}
