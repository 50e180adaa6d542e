package sync

import (
	"errors"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

var errConnClosed = errors.New("connection closed")

// serveSnapshot streams the whole state from one pebble snapshot: every
// live contact as an Update and every tombstone as a Delete, with its
// stored stamp, starting at a random key (store.Snapshot.Each). On a feed
// the cursor then moves to the snapshot's log position, so the feed goes
// on with exactly the changes the snapshot lacks. It reports false when
// the snapshot must wait: this member's data is stale (it is refilled
// first, and no old data goes out meanwhile), or every transfer slot is
// taken (the connection keeps its HeartBeats and answers meanwhile, so
// the peer is not left in silence). Asked again while one waits, the
// peer gets one transfer (inbox merging).
func (o *owner) serveSnapshot(reason string, asked bool) (bool, error) {
	c, m := o.c, o.c.m
	if m.dataStale() {
		if !o.waitLogged {
			o.waitLogged = true
			m.log.Info("transfer to peer deferred: this member's data is stale until its refill completes",
				"peer", c.peer, "reason", reason)
			c.setPullState("transfer deferred: stale data")
		}
		return false, nil
	}
	if asked && m.peerHoldsOurState(c) {
		m.stats.TransfersSkipped.Add(1)
		m.log.Info("AskForUpdate from a starting peer that already holds this state (same digest): nothing to send",
			"peer", c.peer)
		return true, nil
	}
	if !o.haveSlot {
		select {
		case m.transfers <- struct{}{}:
			o.haveSlot = true
		default:
			if !o.waitLogged {
				o.waitLogged = true
				m.log.Info("transfer to peer queued: every transfer slot is busy", "peer", c.peer,
					"slots", m.cfg.MaxTransfers, "reason", reason)
				c.setPullState("transfer queued for a slot")
			}
			return false, nil
		}
	}
	defer func() {
		<-m.transfers
		o.haveSlot = false
	}()
	o.waitLogged = false
	c.setPullState("sending a transfer")
	defer c.setPullState("")
	sn, err := m.st.Snapshot()
	if err != nil {
		return false, err
	}
	defer sn.Close()
	m.stats.TransfersStarted.Add(1)
	start := time.Now()
	var entries, bytes uint64
	err = sn.Each(m.ctx, func(ch store.Change) error {
		if entries%4096 == 0 && c.isClosed() {
			return errConnClosed
		}
		size, err := o.writeChange(ch)
		if size > 0 {
			entries++
			bytes += uint64(size)
		}
		return err
	})
	c.sentSnapshot.Add(bytes)
	m.stats.TransferBytesTx.Add(bytes)
	m.stats.TransferEntriesTx.Add(entries)
	if err != nil {
		m.stats.TransfersAborted.Add(1)
		m.log.Info("transfer to peer aborted", "peer", c.peer, "entries", entries, "error", err)
		return false, err
	}
	if c.isFeed() {
		o.cursor = maxPos(o.cursor, sn.Pos)
		c.pubMu.Lock()
		c.cursor = o.cursor
		c.pubMu.Unlock()
	}
	m.stats.TransfersServed.Add(1)
	m.log.Info("served a full transfer", "peer", c.peer, "reason", reason, "entries", entries, "bytes", bytes,
		"seconds", time.Since(start).Seconds())
	return true, nil
}

// peerHoldsOurState reports whether the asking peer is starting (syncing)
// and published the digest our state has right now, at our cutoff. A
// syncing server takes no client changes and the merge only moves
// forward, so whatever it held when it published that digest it still
// holds: the whole state would be sent for nothing. Only our live digest
// is compared, never our published one, which may lag behind changes the
// peer has not seen.
func (m *Manager) peerHoldsOurState(c *peerConn) bool {
	mem, ok := m.cl.Lookup(c.peer)
	if !ok || wire.Health(mem.Meta.Health) != wire.HealthSyncing || mem.Meta.StoreID != c.storeID {
		return false
	}
	st := m.st.Stats()
	return st.Consistent && mem.Meta.Cutoff == st.Cutoff && mem.Meta.Digest == st.Digest
}
