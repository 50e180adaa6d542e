package sync

import (
	"time"
)

// antiEntropyLoop publishes this server's digest and health through
// membership and pulls from a peer whose digest has differed for
// AntiEntropyRounds comparisons while neither digest moved (no changes in
// flight). A pull that does not end the difference backs off, doubling,
// up to 64 intervals.
func (m *Manager) antiEntropyLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.AntiEntropyInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.antiEntropyRound()
		case <-m.healthChanged:
			m.publishMeta(m.cfg.AntiEntropyInterval)
		}
	}
}

// publishMeta publishes the current digest and health in node meta and
// returns the digest, waiting up to wait for the gossip to go out.
// Publishes are serialized and read both values inside the lock, so the
// last one published is never older than an earlier one.
func (m *Manager) publishMeta(wait time.Duration) uint64 {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	digest := m.st.Digest()
	if err := m.cl.SetMeta(digest, uint8(m.Health()), wait); err != nil {
		m.log.Debug("publishing node meta failed", "error", err)
	}
	return digest
}

func (m *Manager) antiEntropyRound() {
	digest := m.publishMeta(m.cfg.AntiEntropyInterval)
	mineStable := digest == m.lastDigest
	m.lastDigest = digest
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
		case theirs == digest:
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
		if pull != nil && pull.startPull("anti-entropy") {
			m.stats.AntiEntropyPulls.Add(1)
			m.log.Info("state digest differs from peer's and is not changing: pulling", "peer", mem.Name,
				"mine", digest, "theirs", theirs)
		}
	}
}
