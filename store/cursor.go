package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"

	"github.com/cockroachdb/pebble/v2"
)

// Cursor is how far a peer has confirmed this store's change log: every
// change logged up to Pos is applied (committed) on the peer whose data
// dir has StoreID. The replication layer saves cursors as peers confirm,
// so that a feed broken by a network blip or a restart of either side
// resumes from where it was instead of starting over; the log is trimmed
// only below every saved cursor (and never kept beyond LogRetain).
type Cursor struct {
	StoreID uint64
	Pos     Pos
}

// cursor value: storeID u64, then NumShards × u64.
func (c Cursor) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, c.StoreID)
	for _, p := range c.Pos {
		b = binary.BigEndian.AppendUint64(b, p)
	}
	return b
}

func decodeCursor(v []byte) (Cursor, error) {
	if len(v) != 8*(1+NumShards) {
		return Cursor{}, fmt.Errorf("%w: cursor of %d bytes", ErrCorrupt, len(v))
	}
	c := Cursor{StoreID: binary.BigEndian.Uint64(v)}
	for i := range c.Pos {
		c.Pos[i] = binary.BigEndian.Uint64(v[8*(i+1):])
	}
	return c, nil
}

func (s *Store) loadCursors() error {
	prefix := metaCursorKey("")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		c, err := decodeCursor(it.Value())
		if err != nil {
			return err
		}
		s.cursors[string(bytes.TrimPrefix(it.Key(), prefix))] = c
	}
	return it.Error()
}

// SaveCursor records how far peer has confirmed the log (not synced: a
// cursor lost in a crash is an older one, which only resends changes).
// A feed starting at some position saves it at once: the log is trimmed
// below the saved cursors only, and with none at all it is not kept.
func (s *Store) SaveCursor(peer string, c Cursor) error {
	if err := s.writable(); err != nil {
		return err
	}
	s.cursorsMu.Lock()
	defer s.cursorsMu.Unlock()
	if old, ok := s.cursors[peer]; ok && old == c {
		return nil
	}
	if err := s.db.Set(metaCursorKey(peer), c.encode(), pebble.NoSync); err != nil {
		return s.fail(err)
	}
	s.cursors[peer] = c
	return nil
}

// DropCursor forgets a peer (it left the cluster for good): the log is no
// longer kept for it.
func (s *Store) DropCursor(peer string) error {
	if err := s.writable(); err != nil {
		return err
	}
	s.cursorsMu.Lock()
	defer s.cursorsMu.Unlock()
	if _, ok := s.cursors[peer]; !ok {
		return nil
	}
	if err := s.db.Delete(metaCursorKey(peer), pebble.NoSync); err != nil {
		return s.fail(err)
	}
	delete(s.cursors, peer)
	return nil
}

// Cursors returns every saved cursor by peer name.
func (s *Store) Cursors() map[string]Cursor {
	s.cursorsMu.Lock()
	defer s.cursorsMu.Unlock()
	return maps.Clone(s.cursors)
}

// TrimLog drops the change log below every saved cursor, and beyond
// LogRetain changes whatever the cursors say; a trim that was not below
// every cursor is recorded as forced.
func (s *Store) TrimLog() error {
	cursors := s.Cursors()
	head := s.Head()
	retain := uint64(s.cfg.LogRetain / NumShards)
	for i, sh := range s.shards {
		upTo := head[i]
		for _, c := range cursors {
			upTo = min(upTo, c.Pos[i])
		}
		// Trimmed with no peer known, or past a peer's position by the
		// cap: the refill of a stale store can no longer tell from the log
		// which of its changes a peer had (stale.go).
		forced := len(cursors) == 0
		if head[i] > retain && head[i]-retain > upTo {
			upTo, forced = head[i]-retain, true
		}
		if err := sh.trimLog(upTo, forced); err != nil {
			return err
		}
	}
	return nil
}
