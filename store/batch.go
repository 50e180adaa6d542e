package store

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrBookFull refuses a local Update that would take a book past
// MaxContactsPerBook. Commit returns it after committing every change
// staged before the refused one; the changes staged after it are dropped.
var ErrBookFull = errors.New("store: contact book is full")

// ErrTooLong refuses a name longer than MaxName or a phone number longer
// than MaxPhone; the wire never decodes such values.
var ErrTooLong = errors.New("store: value too long")

// MaxPhone is the longest phone number the store holds (a phone20 field
// carries at most 19 value bytes).
const MaxPhone = 19

type opKind uint8

const (
	opUpdate opKind = iota + 1 // local client Update: stamped at commit
	opDelete                   // local client Delete: stamped at commit
	opRemote                   // a stamped change from a peer: merged
	opDrop                     // refill: remove the key if it still holds exactly this entry
)

// op is one staged change; its key and phone live in Batch.buf.
type op struct {
	kind    opKind
	deleted bool   // opRemote, opDrop: the entry is a tombstone
	stamp   uint32 // opRemote, opDrop: the entry's stamp
	off     uint32 // entry key at buf[off:off+keyLen], then the phone
	keyLen  uint16
	userLen uint8
	phone   uint8
}

// Batch stages one caller's changes (a connection's read buffer) and
// applies them in Commit: every change is merged against the stored state
// under its shard's lock, stamped when local, and committed to pebble with
// the shard's digest, counts and change-log record in one atomic write. A
// Batch is not safe for concurrent use.
type Batch struct {
	s   *Store
	buf []byte
	ops []op
	// RecordSeen makes remote changes also mark their keys as held by the
	// peer they came from (stale.go). While a refill is pending every
	// remote change is recorded, whatever RecordSeen says.
	RecordSeen bool
	// KeepChanges makes Commit keep the applied local changes, stamped, for
	// Changes (tests).
	KeepChanges bool

	byShard [NumShards][]int32
	kept    []Change
}

// CommitResult says what a Commit did.
type CommitResult struct {
	// Seq is the commit sequence to pass to Store.Sync for durability.
	Seq uint64
	// Applied and Ignored count remote changes that won and lost the merge.
	Applied, Ignored int
	// Pos is, per shard, the last change-log sequence this commit wrote (0
	// where it wrote none): peers hold the commit's local changes once
	// their feeds have confirmed these positions.
	Pos Pos
	// Ahead is the largest number of seconds a remote stamp was beyond the
	// clock bound (0 if none): the sender's clock is wrong.
	Ahead uint32
}

// NewBatch returns an empty Batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Len is the number of changes staged since the last Commit.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) stage(kind opKind, user, contact, phone []byte, e Entry) error {
	if len(user) > MaxName || len(contact) > MaxName || len(phone) > MaxPhone {
		return fmt.Errorf("%w: user %d, contact %d, phone %d bytes", ErrTooLong, len(user), len(contact), len(phone))
	}
	o := op{kind: kind, deleted: e.Deleted, stamp: e.Stamp, off: uint32(len(b.buf)), userLen: uint8(len(user)),
		keyLen: uint16(2 + len(user) + len(contact)), phone: uint8(len(phone))}
	b.buf = appendEntryKey(b.buf, user, contact)
	b.buf = append(b.buf, phone...)
	b.ops = append(b.ops, o)
	return nil
}

// Update stages a local client Update. It fails only on a value longer
// than the wire can carry.
func (b *Batch) Update(user, contact, phone []byte) error {
	return b.stage(opUpdate, user, contact, phone, Entry{})
}

// Delete stages a local client Delete. Deleting an absent contact still
// writes a tombstone: the contact may exist on a peer already.
func (b *Batch) Delete(user, contact []byte) error {
	return b.stage(opDelete, user, contact, nil, Entry{Deleted: true})
}

// Apply stages a change received from a peer, to be merged.
func (b *Batch) Apply(c Change) error {
	if c.Deleted {
		c.Phone = nil
	}
	return b.stage(opRemote, c.User, c.Contact, c.Phone, c.Entry)
}

func (b *Batch) drop(user, contact []byte, e Entry) {
	_ = b.stage(opDrop, user, contact, nil, Entry{Stamp: e.Stamp, Deleted: e.Deleted})
}

func (o *op) key(buf []byte) []byte { return buf[o.off : o.off+uint32(o.keyLen)] }
func (o *op) user(buf []byte) []byte {
	return buf[o.off+2 : o.off+2+uint32(o.userLen)]
}
func (o *op) contact(buf []byte) []byte {
	return buf[o.off+2+uint32(o.userLen) : o.off+uint32(o.keyLen)]
}
func (o *op) phoneBytes(buf []byte) []byte {
	p := o.off + uint32(o.keyLen)
	return buf[p : p+uint32(o.phone)]
}

// Commit applies and commits every staged change, shard by shard, and
// empties the batch. On ErrBookFull the changes before the refused one are
// committed (and reported) and the rest are dropped. Any other error means
// the store could not write: it is closed for writing and the caller
// should stop.
func (b *Batch) Commit() (CommitResult, error) {
	s := b.s
	res := CommitResult{Seq: s.commitSeq.Load()}
	b.kept = b.kept[:0]
	if len(b.ops) == 0 {
		return res, nil
	}
	for i := range b.byShard {
		b.byShard[i] = b.byShard[i][:0]
	}
	for i := range b.ops {
		o := &b.ops[i]
		sh := shardOf(o.user(b.buf))
		b.byShard[sh] = append(b.byShard[sh], int32(i))
	}
	var firstErr error
	workers := 1
	if len(b.ops) >= parallelMin && !b.KeepChanges { // a client's batch never gets here
		workers = min(runtime.GOMAXPROCS(0), b.nonEmptyShards())
	}
	if workers > 1 {
		firstErr = b.applyParallel(workers, &res)
	} else {
		for i, idx := range b.byShard {
			if len(idx) == 0 {
				continue
			}
			if err := s.shards[i].apply(b, idx, &res); err != nil && firstErr == nil {
				firstErr = err
				if !errors.Is(err, ErrBookFull) {
					break
				}
			}
		}
	}
	b.buf, b.ops = b.buf[:0], b.ops[:0]
	if cap(b.buf) > 8<<20 { // do not pin a huge buffer on an idle connection
		b.buf = nil
	}
	return res, firstErr
}

// parallelMin is the batch size from which Commit applies its shards on
// several goroutines (at most GOMAXPROCS). A peer applies everything one
// connection brings on one goroutine: with its shards applied one after
// another it could use one core while the clients of the member it follows
// use all of them, and fall behind for good. Smaller batches (a client's
// read buffer: about 236 Updates) stay on the caller's goroutine, where a
// hand-off would cost more than it saves. (A variable only so that a test
// can lower it: its property test costs a tenth with batches of ~150.)
var parallelMin = 1024

func (b *Batch) nonEmptyShards() int {
	n := 0
	for _, idx := range b.byShard {
		if len(idx) > 0 {
			n++
		}
	}
	return n
}

// applyParallel applies the shards of b on workers goroutines (the caller's
// among them), each taking the next shard not yet taken, and merges their
// results into res. Each shard is applied by one goroutine, in the order
// its changes were staged, exactly as one after another; the shards share
// nothing but the store's clock and counters, which are safe for
// concurrent commits (clients' connections commit concurrently too). It
// returns the error of the lowest shard that failed, as the sequential
// path would report first.
func (b *Batch) applyParallel(workers int, res *CommitResult) error {
	s := b.s
	var results [NumShards]CommitResult
	var errs [NumShards]error
	var next atomic.Int32
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= NumShards {
				return
			}
			if idx := b.byShard[i]; len(idx) > 0 {
				errs[i] = s.shards[i].apply(b, idx, &results[i])
			}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	var firstErr error
	for i := range NumShards {
		r := &results[i]
		res.Applied += r.Applied
		res.Ignored += r.Ignored
		res.Ahead = max(res.Ahead, r.Ahead)
		res.Seq = max(res.Seq, r.Seq)
		if r.Pos[i] != 0 {
			res.Pos[i] = r.Pos[i]
		}
		if errs[i] != nil && firstErr == nil {
			firstErr = errs[i]
		}
	}
	return firstErr
}

// Changes returns the local changes the last Commit applied, stamped, when
// KeepChanges is set. The slices are valid until the next Commit.
func (b *Batch) Changes() []Change { return b.kept }

// Close releases the batch; staged, uncommitted changes are dropped.
func (b *Batch) Close() { b.buf, b.ops = nil, nil }
