package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/contactstore/contactstore/membership"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

// The initial sync. A starting server reports "syncing" and holds client
// frames until it has its peers' state:
//
//  1. it joins, and dials every live member (bounded by SyncTimeout);
//  2. if its data is stale (out of contact with every serving peer for
//     longer than the grace), it refills from a serving peer whose mark is
//     newer than its own (store/stale.go); with none within SyncTimeout
//     (a whole cluster restarting) it keeps its data as current;
//  3. otherwise it takes one full transfer (AskForUpdate) from one peer,
//     a serving one if it can (empty when that peer sees it already holds
//     the same state);
//  4. from every other peer it takes a catch-up barrier: the answer comes
//     once that peer's feed has sent everything it had logged;
//  5. while steps 3-4 (or the last round) took longer than ServeLag, it
//     takes another catch-up barrier from every peer: under load the
//     peers wrote on while it caught up, and what it lacks is what they
//     wrote in the last round. It stops when a round completes within
//     ServeLag, or when a round is not clearly shorter than the one
//     before (it cannot close the gap; it serves and says so);
//  6. it serves. A member that reaches no peer within SyncTimeout serves
//     its own data and says it is alone. A transfer or catch-up is never
//     cut short while it makes progress (however long it takes under
//     load); one that makes none for SyncTimeout is given up on, and the
//     member serves, saying so.
//
// While it runs, a member whose data becomes stale (cut off, running, for
// longer than the grace) refills as soon as a fresher serving peer is back
// in contact, holding new clients meanwhile.

// syncLoop runs the initial sync, then watches staleness and the clock.
func (m *Manager) syncLoop() {
	defer m.wg.Done()
	m.initialSync()
	t := time.NewTicker(m.cfg.AntiEntropyInterval)
	defer t.Stop()
	var staleSince time.Time // when this member was first seen stale and in contact, this episode
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		m.checkClock()
		if !m.dataStale() {
			staleSince = time.Time{}
			continue
		}
		if src := m.fresherSource(); src != "" {
			m.log.Warn("this member's data is stale and a fresher serving peer is back: refilling before serving again",
				"peer", src)
			m.setServing(false)
			if err := m.refill(m.ctx, src); err != nil {
				m.log.Error("refill failed; trying again", "peer", src, "error", err)
			}
			m.setServing(true)
			continue
		}
		if m.servingPeers() == 0 {
			staleSince = time.Time{} // alone: nothing to compare with, keep serving, stay stale
			continue
		}
		if staleSince.IsZero() {
			staleSince = time.Now()
		} else if time.Since(staleSince) > m.cfg.SyncTimeout {
			m.clearStale("no serving peer is fresher than this member")
		}
	}
}

func (m *Manager) note(s string) { m.syncNote.Store(&s) }

// SyncNote says how the last sync went (status pages).
func (m *Manager) SyncNote() string {
	if p := m.syncNote.Load(); p != nil {
		return *p
	}
	return ""
}

// Alone reports whether the last sync reached no peer.
func (m *Manager) Alone() bool { return m.alone.Load() }

func (m *Manager) initialSync() {
	start := time.Now()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.SyncTimeout)
	defer cancel()
	defer func() {
		if m.ctx.Err() == nil {
			m.setServing(true)
			m.log.Info("initial sync complete: serving", "took", time.Since(start).Round(time.Millisecond),
				"note", m.SyncNote())
		}
	}()
	m.publishMeta(0)
	peers := m.waitForPeers(ctx)
	if len(peers) == 0 {
		if m.ctx.Err() != nil {
			return
		}
		m.alone.Store(true)
		if m.cl.Joined() {
			m.note("no other member: serving this member's data")
		} else {
			m.note("no seed answered within the sync timeout: serving this member's data, alone")
			m.log.Warn("no seed answered within --sync-timeout: serving this member's own data, alone", "timeout", m.cfg.SyncTimeout)
		}
		return
	}
	m.alone.Store(false)
	source := ""
	stageStart := time.Now()
	if m.st.Stale() {
		source = m.waitFresherSource(ctx)
		if source == "" {
			if m.ctx.Err() != nil {
				return
			}
			m.clearStale("no serving peer fresher than this member answered within the sync timeout")
		} else if err := m.refill(m.ctx, source); err != nil {
			m.log.Error("refill failed; serving and trying again later", "peer", source, "error", err)
			m.note("refill from " + source + " failed: " + err.Error())
			return
		}
	} else {
		source = m.pickSource(peers)
		stageStart = time.Now()
		// Publish our digest first, so that a peer holding exactly our
		// state answers with an empty transfer.
		m.publishMeta(preferPublishedWait)
		head, t := m.st.HeadAt()
		if err := m.pullWhileProgressing(source, pullFull, "initial sync", m.cfg.SyncTimeout); err != nil {
			m.log.Warn("initial full transfer did not complete", "peer", source, "error", err)
			m.note("initial transfer from " + source + " did not complete: " + err.Error())
		} else if head == (store.Pos{}) && m.isServing(source) {
			// A member that never made a change of its own holds, once the
			// transfer is in, everything a serving peer held: its data is
			// current from the moment it asked (its first mark; later ones
			// come from confirmations of its log).
			if err := m.st.AdvanceMark(t, head); err != nil {
				m.log.Debug("setting the first mark failed", "error", err)
			}
		} else if m.st.Mark() == 0 {
			// A member that never had a mark holds what it was sent from
			// now on: without one it could never be found stale, and cut
			// off in its first seconds (before any confirmation of its log)
			// it would keep, and offer again one day, contacts the cluster
			// deleted and forgot. Its first mark is this contact, covering
			// none of its own changes (position zero: each is kept by a
			// refill until a peer confirms it).
			if err := m.st.AdvanceMark(t, store.Pos{}); err != nil {
				m.log.Debug("setting the first mark failed", "error", err)
			}
		}
	}
	// Catch up with every other peer, all at once, each for as long as it
	// makes progress; then with every peer again while that took longer
	// than ServeLag and the rounds shrink.
	failed := m.catchUpRound(peers, source)
	took := time.Since(stageStart)
	rounds := 1
	for failed == 0 && took > m.cfg.ServeLag && m.ctx.Err() == nil {
		roundStart := time.Now()
		failed = m.catchUpRound(peers, "")
		prev := took
		took = time.Since(roundStart)
		rounds++
		m.stats.CatchUpRounds.Add(1)
		if took > m.cfg.ServeLag && took > prev*3/4 {
			m.log.Warn("serving while behind the peers: the last catch-up round did not shrink (they write faster than this member applies)",
				"rounds", rounds, "last_round", took.Round(time.Millisecond), "serve_lag", m.cfg.ServeLag)
			m.note(fmt.Sprintf("serving about %v behind the peers (catch-up rounds stopped shrinking)", took.Round(100*time.Millisecond)))
			return
		}
	}
	if failed > 0 {
		m.note("serving without a catch-up from every peer (timed out)")
	} else if m.SyncNote() == "" {
		m.note("in sync with every peer")
	}
	if rounds > 1 {
		m.log.Info("caught up with every peer", "rounds", rounds, "last_round", took.Round(time.Millisecond))
	}
}

// catchUpRound takes a catch-up barrier from every peer but skip, all at
// once, each for as long as it makes progress, and counts the failures.
func (m *Manager) catchUpRound(peers []string, skip string) int {
	errs := make(chan error, len(peers))
	n := 0
	for _, name := range peers {
		if name == skip {
			continue
		}
		n++
		go func() { errs <- m.pullWhileProgressing(name, pullCatchUp, "initial sync", m.cfg.SyncTimeout) }()
	}
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
		}
	}
	return failed
}

// preferPublishedWait is how long an initial pull waits for its digest to
// start spreading before it asks.
const preferPublishedWait = 200 * time.Millisecond

// waitForPeers waits until the member list is known and a connection to
// every live member is up, or ctx ends; it returns the peers connected.
func (m *Manager) waitForPeers(ctx context.Context) []string {
	settle := time.NewTimer(3 * m.cfg.ReconcileInterval)
	defer settle.Stop()
	settled := false
	for {
		// Every live member counts, not only those the reconcile loop has
		// taken up: a reconcile running late (a loaded machine) must not
		// make a member that has peers look alone.
		members := m.cl.Members()
		m.mu.Lock()
		ch := m.peersCh
		var up []string
		all := true
		for name, p := range m.peers {
			if p.out != nil {
				up = append(up, name)
			} else {
				all = false
			}
		}
		for _, mem := range members {
			if mem.Name != m.cfg.Name && mem.Alive() && m.peers[mem.Name] == nil {
				all = false
			}
		}
		m.mu.Unlock()
		joined := m.cl.Joined()
		if joined && settled && all {
			return up
		}
		select {
		case <-ch:
		case <-settle.C:
			settled = true
		case <-ctx.Done():
			return up
		}
		if settled && joined && all {
			return up
		}
	}
}

func (m *Manager) isServing(peer string) bool {
	mem, ok := m.cl.Lookup(peer)
	return ok && wire.Health(mem.Meta.Health) == wire.HealthServing
}

// pickSource picks the peer to take a full transfer from: a serving one if
// there is one.
func (m *Manager) pickSource(peers []string) string {
	for _, name := range peers {
		if mem, ok := m.cl.Lookup(name); ok && wire.Health(mem.Meta.Health) == wire.HealthServing {
			return name
		}
	}
	return peers[0]
}

// pullWhileProgressing runs a pull on the connection we dialed to peer
// and gives up only when it has made no progress (no transfer frame and no
// change from the peer applied) for idle: a transfer that is moving is
// never cut short by a deadline (the member would then serve part of the
// state), and a stuck one does not hold the member for ever. A pull given
// up on goes on in the background; its outcome is logged by the owner.
func (m *Manager) pullWhileProgressing(peer string, kind pullKind, reason string, idle time.Duration) error {
	c := m.outConn(peer)
	if c == nil {
		return errors.New("not connected")
	}
	r := c.requestPull(kind, reason)
	progress := func() uint64 { return uint64(c.pullFrames.Load()) + c.changesIn.Load() }
	last, lastAt := progress(), time.Now()
	check := time.NewTicker(max(idle/10, time.Millisecond))
	defer check.Stop()
	for {
		select {
		case err := <-r.done:
			return err
		case <-m.ctx.Done():
			return m.ctx.Err()
		case <-check.C:
			if p := progress(); p != last {
				last, lastAt = p, time.Now()
			} else if time.Since(lastAt) > idle {
				return fmt.Errorf("no progress for %v", idle)
			}
		}
	}
}

// outConn returns the connection we dialed to peer, or nil.
func (m *Manager) outConn(peer string) *peerConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peers[peer]; p != nil {
		return p.out
	}
	return nil
}

// pullFrom runs a pull on the connection we dialed to peer.
func (m *Manager) pullFrom(ctx context.Context, peer string, kind pullKind, reason string) error {
	c := m.outConn(peer)
	if c == nil {
		return errors.New("not connected")
	}
	return c.requestPull(kind, reason).wait(ctx)
}

// servingPeers counts the live members that say they are serving.
func (m *Manager) servingPeers() int {
	n := 0
	for _, mem := range m.cl.Members() {
		if mem.Name != m.cfg.Name && mem.Alive() && wire.Health(mem.Meta.Health) == wire.HealthServing {
			n++
		}
	}
	return n
}

// fresherSource returns a connected, serving peer whose data is fresher
// than ours (its mark is newer than ours, and it is not stale itself), or
// "" if there is none: only such a peer can tell what the cluster deleted
// while we were away.
func (m *Manager) fresherSource() string {
	mine := m.st.Mark()
	now := store.StampOf(m.cfg.Now())
	grace := uint32(m.st.Grace() / time.Second)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.peers {
		if p.out == nil {
			continue
		}
		mem, ok := m.cl.Lookup(name)
		if !ok || wire.Health(mem.Meta.Health) != wire.HealthServing {
			continue
		}
		if mem.Meta.Mark > mine && now-min(now, mem.Meta.Mark) <= grace {
			return name
		}
	}
	return ""
}

func (m *Manager) waitFresherSource(ctx context.Context) string {
	t := time.NewTicker(m.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if src := m.fresherSource(); src != "" {
			return src
		}
		select {
		case <-ctx.Done():
			return ""
		case <-t.C:
		}
	}
}

// refill replaces what this stale member holds from before it lost
// contact with what the fresher peer holds (store/stale.go).
func (m *Manager) refill(ctx context.Context, source string) error {
	mark, err := m.st.BeginRefill()
	if err != nil {
		return err
	}
	m.log.Warn("data is stale: refilling from a fresher serving peer", "peer", source,
		"out_of_contact_since", store.TimeOf(mark).UTC().Format(time.RFC3339))
	if err := m.pullFrom(ctx, source, pullRefill, "refill of stale data"); err != nil {
		return err // the refill stays pending: done again, from the start
	}
	// What the source had confirmed of our log (its cursor, if it is still
	// the same data dir) was on it: not kept as made while cut off.
	var confirmed store.Pos
	if mem, ok := m.cl.Lookup(source); ok {
		if cur, ok := m.st.Cursors()[source]; ok && cur.StoreID == mem.Meta.StoreID {
			confirmed = cur.Pos
		}
	}
	dropped, err := m.st.FinishRefill(ctx, confirmed)
	if err != nil {
		return err
	}
	m.stats.RefillDropped.Add(uint64(dropped))
	m.note("refilled stale data from " + source)
	// The data is current again; the mark catches up at the next
	// confirmation of our log by a serving peer.
	m.staleCleared.Store(true)
	return nil
}

// dataStale reports whether this member's data must not be offered as
// current: out of contact longer than the grace, and neither refilled nor
// found to be as fresh as any serving peer since.
func (m *Manager) dataStale() bool { return m.st.Stale() && !m.staleCleared.Load() }

// clearStale accepts this stale member's data as current: no serving peer
// fresher than it is there to compare with (the spec's "a server with no
// serving peer to compare with keeps its data"). Its mark may then advance.
func (m *Manager) clearStale(why string) {
	if m.staleCleared.Swap(true) {
		return
	}
	m.note("kept stale data: " + why)
	m.log.Warn("this member's data is older than the tombstone grace, and "+why+": keeping it as current", "mark",
		store.TimeOf(m.st.Mark()).UTC().Format(time.RFC3339))
}

// markCandidate advances the mark to t: the serving peer fed by c has
// confirmed every change this server had logged at t. Not while this
// member's data is stale (it refills first), and only while the peer's
// feed to us is up too.
func (m *Manager) markCandidate(c *peerConn, t uint32, pos store.Pos) {
	if t == 0 || wire.Health(c.lastHealth.Load()) != wire.HealthServing {
		return
	}
	if m.dataStale() {
		return
	}
	if _, pending := m.st.RefillPending(); pending {
		return
	}
	m.mu.Lock()
	p := m.peers[c.peer]
	up := p != nil && p.out != nil && !p.out.isClosed()
	m.mu.Unlock()
	if !up {
		return
	}
	m.markMu.Lock()
	defer m.markMu.Unlock()
	if t <= m.st.Mark() {
		return
	}
	if err := m.st.AdvanceMark(t, pos); err != nil {
		m.log.Debug("advancing the mark failed", "error", err)
		return
	}
	if !m.st.Stale() {
		m.staleCleared.Store(false) // fresh again: the next staleness is a new episode
	}
}

// markQuantum is the step of the mark as published: a minute, or a
// hundredth of the grace when that is shorter (tests run graces of
// seconds). The mark moves with every confirmation (every HeartBeat
// interval, at rest too); published exactly, every member re-gossiped its
// meta every few seconds and every other member relayed it: gossip per
// member grew with the member count even in a quiet cluster. Peers read
// the mark only to find a member fresher than a stale one, within the
// grace: an error of a hundredth of it changes no verdict that matters.
func markQuantum(grace time.Duration) uint32 {
	return uint32(max(1, min(60, int64(grace/time.Second)/100)))
}

// publishedMark is mark rounded down to quantum (never to 0, "no mark").
func publishedMark(mark, quantum uint32) uint32 {
	if q := mark - mark%quantum; q != 0 || mark == 0 {
		return q
	}
	return 1
}

// publishMeta publishes the digest (at its cutoff), mark and health in
// node meta, waiting up to wait for the gossip to go out. Publishes are
// serialized and read their values inside the lock, so the last one
// published is never older than an earlier one.
func (m *Manager) publishMeta(wait time.Duration) membership.Published {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	st := m.st.Stats()
	p := membership.Published{Digest: st.Digest, Cutoff: st.Cutoff, Mark: publishedMark(m.st.Mark(), markQuantum(m.st.Grace())), Health: uint8(m.Health())}
	if !st.Consistent || st.Cutoff == 0 {
		p.Cutoff = 0 // not comparable now (a sweep under way, or none yet)
	}
	if err := m.cl.Publish(p, wait); err != nil {
		m.log.Debug("publishing node meta failed", "error", err)
	}
	return p
}
