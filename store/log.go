package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The change log. Every local change (a client Update or Delete that won
// the merge) is written, in the same pebble batch as the entry itself,
// into its shard's log under a sequence number: one record per shard
// commit, keyed 'l' u8(shard) u64(first sequence). Peers are fed from the
// log in sequence order, each at its own pace, so a slow peer never slows
// clients and a peer that fell behind catches up from where it is. The
// log is trimmed below the positions every known peer has confirmed, and
// never kept beyond LogRetain changes: a peer behind the trimmed part
// needs a full transfer. Changes received from peers are not logged: each
// member feeds its own changes to every other member.
//
// Record value:
//
//	+---------+------------------------------------------------------------------------------+
//	| n u32   | n × ( stamp u32 | kind u8 | u8 len | user | u8 len | contact | u8 len | phone ) |
//	+---------+------------------------------------------------------------------------------+

// ErrTrimmed says the change log no longer holds the position asked for.
var ErrTrimmed = errors.New("store: change log trimmed past that position")

func appendLogChange(dst, user, contact []byte, e Entry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.Stamp)
	k := byte(kindUpdate)
	if e.Deleted {
		k = kindDelete
	}
	dst = append(dst, k, byte(len(user)))
	dst = append(dst, user...)
	dst = append(dst, byte(len(contact)))
	dst = append(dst, contact...)
	dst = append(dst, byte(len(e.Phone)))
	return append(dst, e.Phone...)
}

// forEachLogChange calls fn for every change of a record, in order; the
// Change aliases rec.
func forEachLogChange(rec []byte, fn func(Change) error) error {
	_, err := walkLogRecord(rec, 0, func(_ int, ch Change) error { return fn(ch) })
	return err
}

// walkLogRecord calls fn(i, change) for the changes of rec from index
// skip on, and returns the record's change count.
func walkLogRecord(rec []byte, skip int, fn func(int, Change) error) (int, error) {
	if len(rec) < 4 {
		return 0, fmt.Errorf("%w: log record of %d bytes", ErrCorrupt, len(rec))
	}
	n := int(binary.BigEndian.Uint32(rec))
	p := rec[4:]
	str := func() ([]byte, bool) {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return nil, false
		}
		v := p[1 : 1+int(p[0])]
		p = p[1+int(p[0]):]
		return v, true
	}
	for i := 0; i < n; i++ {
		if len(p) < 5 || (p[4] != kindUpdate && p[4] != kindDelete) {
			return n, fmt.Errorf("%w: log record change %d", ErrCorrupt, i)
		}
		ch := Change{Entry: Entry{Stamp: binary.BigEndian.Uint32(p), Deleted: p[4] == kindDelete}}
		p = p[5:]
		var ok1, ok2, ok3 bool
		ch.User, ok1 = str()
		ch.Contact, ok2 = str()
		ch.Phone, ok3 = str()
		if !ok1 || !ok2 || !ok3 {
			return n, fmt.Errorf("%w: log record change %d", ErrCorrupt, i)
		}
		if ch.Deleted {
			ch.Phone = nil
		}
		if i >= skip {
			if err := fn(i, ch); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// tail keeps a shard's most recent log records in memory. Readers get
// slices of recs (from) and use them after the lock is released, so an
// element once published is never changed: dropping a record only moves
// head past it, and the records still held are copied to a new array once
// the dropped ones are as many as those held or weigh a whole tail. Each
// add is thus O(1) amortised; it was a copy of every record held, 1.2 ms
// per one-change commit on a full 4 MiB tail (BenchmarkTailAdd).
type tail struct {
	mu      sync.RWMutex
	recs    []tailRec // recs[head:] are held
	head    int
	bytes   int // held
	dropped int // bytes of recs[:head]
}

type tailRec struct {
	first uint64
	n     int
	data  []byte
}

func (t *tail) add(first uint64, n int, rec []byte, maxBytes int) {
	data := append([]byte(nil), rec...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recs = append(t.recs, tailRec{first: first, n: n, data: data})
	t.bytes += len(data)
	for t.bytes > maxBytes && t.head < len(t.recs)-1 {
		size := len(t.recs[t.head].data)
		t.bytes -= size
		t.dropped += size
		t.head++
	}
	if held := len(t.recs) - t.head; t.head > 0 && (t.head >= held || t.dropped >= maxBytes) {
		t.recs = append(make([]tailRec, 0, 2*held), t.recs[t.head:]...)
		t.head, t.dropped = 0, 0
	}
}

// from returns the records holding seq and everything after it, or false
// when seq is older than the tail.
func (t *tail) from(seq uint64) ([]tailRec, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.recs) == t.head || seq < t.recs[t.head].first {
		return nil, false
	}
	lo, hi := t.head, len(t.recs)
	for lo < hi { // the first record whose last sequence is >= seq
		mid := (lo + hi) / 2
		if r := t.recs[mid]; r.first+uint64(r.n)-1 < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return t.recs[lo:len(t.recs):len(t.recs)], true
}

// Head returns the last change-log sequence written, per shard.
func (s *Store) Head() Pos { return s.pubPos(func(st shardState) uint64 { return st.head }) }

// pubPos reads one field of every shard's published state.
func (s *Store) pubPos(field func(shardState) uint64) Pos {
	var p Pos
	s.pubMu.RLock()
	for i := range s.pub {
		p[i] = field(s.pub[i])
	}
	s.pubMu.RUnlock()
	return p
}

// HeadAt returns the head and a wall stamp such that every local change
// stamped at or below it is in that head: a peer that has confirmed the
// head holds every change this server made up to that stamp (local stamps
// are never below the wall clock at the change). Marks are built on it.
func (s *Store) HeadAt() (Pos, uint32) {
	t := s.clock.Wall()
	for _, sh := range s.shards {
		if v := sh.inflight.Load(); v != 0 {
			t = min(t, v)
		}
	}
	if t > 0 {
		t-- // stamps are whole seconds: stay clear of the one being read
	}
	return s.Head(), t
}

// LogForced returns, per shard, the last sequence trimmed before every
// peer had confirmed it: up to it, the log does not tell which of this
// store's changes are on a peer.
func (s *Store) LogForced() Pos { return s.pubPos(func(st shardState) uint64 { return st.forced }) }

// LogFloor returns, per shard, the last sequence trimmed from the log:
// positions below it cannot be read any more.
func (s *Store) LogFloor() Pos { return s.pubPos(func(st shardState) uint64 { return st.floor }) }

// HeadChanged returns a channel closed at the next commit that writes to
// the change log. Take it before reading Head, then wait on it if nothing
// new was there: no commit can slip between.
func (s *Store) HeadChanged() <-chan struct{} {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	return s.headCh
}

func (s *Store) headAdvanced() {
	s.headMu.Lock()
	close(s.headCh)
	s.headCh = make(chan struct{})
	s.headMu.Unlock()
}

// ReadLog calls fn for the changes of shard after sequence `after`, in
// order, at most max of them, and returns the last sequence it passed to
// fn (after itself if there was nothing new). The Change aliases
// internal buffers: it is valid only during the call. It returns
// ErrTrimmed when the log no longer holds after+1.
func (s *Store) ReadLog(shard int, after uint64, max int, fn func(seq uint64, ch Change) error) (uint64, error) {
	if shard < 0 || shard >= NumShards {
		return after, fmt.Errorf("store: no shard %d", shard)
	}
	s.pubMu.RLock()
	st := s.pub[shard]
	s.pubMu.RUnlock()
	if after < st.floor {
		return after, ErrTrimmed
	}
	last := after
	if after >= st.head || max <= 0 {
		return last, nil
	}
	emit := func(first uint64, rec []byte) (bool, error) {
		skip := int(last + 1 - first)
		stop := errors.New("enough")
		_, err := walkLogRecord(rec, skip, func(i int, ch Change) error {
			if max == 0 {
				return stop
			}
			seq := first + uint64(i)
			if err := fn(seq, ch); err != nil {
				return err
			}
			last = seq
			max--
			return nil
		})
		if errors.Is(err, stop) {
			return true, nil
		}
		return max == 0, err
	}
	if recs, ok := s.shards[shard].tail.from(last + 1); ok {
		for _, r := range recs {
			if done, err := emit(r.first, r.data); done || err != nil {
				return last, err
			}
		}
		return last, nil
	}
	// Older than the in-memory tail: read the records back from pebble.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: appendLogKey(nil, shard, 0), UpperBound: appendLogKey(nil, shard+1, 0)})
	if err != nil {
		return last, err
	}
	defer it.Close()
	if !it.SeekLT(appendLogKey(nil, shard, last+2)) {
		if err := it.Error(); err != nil {
			return last, err
		}
		return last, ErrTrimmed
	}
	for ; it.Valid(); it.Next() {
		_, first, ok := logKeySeq(it.Key())
		if !ok {
			return last, fmt.Errorf("%w: log key %q", ErrCorrupt, it.Key())
		}
		if first > last+1 {
			return last, ErrTrimmed // a gap: trimmed while we read
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return last, err
		}
		if len(v) >= 4 && first+uint64(binary.BigEndian.Uint32(v)) <= last+1 {
			if first+uint64(binary.BigEndian.Uint32(v)) <= last {
				return last, ErrTrimmed
			}
			continue
		}
		if done, err := emit(first, v); done || err != nil {
			return last, err
		}
	}
	return last, it.Error()
}

// trimLog drops the log records of shard whose changes are all at or
// below upTo, and records the new floor; forced says some peer may not
// have confirmed them.
func (sh *shard) trimLog(upTo uint64, forced bool) error {
	s := sh.s
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	st := sh.st
	upTo = min(upTo, st.head)
	if upTo <= st.floor {
		return nil
	}
	// From the first record still held: the trimmed ones are deleted but,
	// until a compaction drops them, an iterator from 0 walked them all on
	// every trim (5.6 % of a member's CPU samples under 5,000 one-change
	// commits a second, and growing with the records trimmed since the last
	// flush).
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: appendLogKey(nil, sh.id, st.floor+1), UpperBound: appendLogKey(nil, sh.id, st.head+1)})
	if err != nil {
		return err
	}
	var end []byte
	floor := st.floor
	for it.First(); it.Valid(); it.Next() {
		_, first, ok := logKeySeq(it.Key())
		v, err := it.ValueAndErr()
		if !ok || err != nil || len(v) < 4 {
			_ = it.Close()
			return s.fail(fmt.Errorf("%w: log record %q", ErrCorrupt, it.Key()))
		}
		last := first + uint64(binary.BigEndian.Uint32(v)) - 1
		if last > upTo {
			break
		}
		floor = last
		end = appendLogKey(end[:0], sh.id, last+1)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.fail(err)
	}
	if end == nil {
		return nil
	}
	_ = sh.pb.DeleteRange(appendLogKey(nil, sh.id, 0), end, nil)
	st.floor = floor
	if forced {
		st.forced = floor
	}
	return sh.commit(st)
}
