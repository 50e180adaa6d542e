package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Contact is one live contact of a book.
type Contact struct {
	Name  string
	Phone string
}

// Get returns the stored entry of (user, contact), live or tombstone.
func (s *Store) Get(user, contact []byte) (Entry, bool, error) {
	if err := s.readable(); err != nil {
		return Entry{}, false, err
	}
	v, ok, err := getRaw(s.db, appendEntryKey(nil, user, contact))
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err := decodeValue(v)
	return e, err == nil, err
}

func (s *Store) readable() error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
		return nil
	}
}

// BookReader streams one book's live contacts, sorted by name bytewise,
// from a consistent point in time: Count is known before the first
// contact, and memory stays the same whatever the book's size.
type BookReader struct {
	it      *pebble.Iterator
	count   int
	served  int
	advance bool // the iterator still sits on the contact last returned
	err     error
}

// OpenBook starts reading user's book. Close it when done.
func (s *Store) OpenBook(user []byte) (*BookReader, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	prefix := appendBookPrefix(nil, user)
	// One iterator is one consistent view: the count and the entries it
	// reads agree. Its bounds cover the count key ('n' user) and the book.
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	r := &BookReader{it: it}
	ck := appendCountKey(nil, user)
	if it.SeekGE(ck) && string(it.Key()) == string(ck) {
		v, err := it.ValueAndErr()
		if err != nil || len(v) != 4 {
			_ = it.Close()
			return nil, errors.Join(err, fmt.Errorf("%w: book count of %q", ErrCorrupt, user))
		}
		r.count = int(uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]))
	}
	it.SetBounds(prefix, prefixEnd(prefix))
	it.First()
	return r, nil
}

// Count is how many live contacts the book held at OpenBook.
func (r *BookReader) Count() int { return r.count }

// Next returns the next live contact; the slices are valid until the next
// call. It returns false at the end, or on an error (see Err). A book that
// yields more or fewer contacts than Count is corrupt: Next reports it.
func (r *BookReader) Next() (name, phone []byte, ok bool) {
	if r.advance { // the slices returned last time alias the iterator: move only now
		r.advance = false
		r.it.Next()
	}
	for ; r.err == nil && r.it.Valid(); r.it.Next() {
		v, err := r.it.ValueAndErr()
		if err != nil {
			r.err = err
			break
		}
		e, err := decodeValue(v)
		if err != nil {
			r.err = err
			break
		}
		if e.Deleted {
			continue
		}
		_, contact, err := splitEntryKey(r.it.Key())
		if err != nil {
			r.err = err
			break
		}
		if r.served == r.count {
			r.err = fmt.Errorf("%w: book holds more contacts than its count %d", ErrCorrupt, r.count)
			break
		}
		r.served++
		r.advance = true
		return contact, e.Phone, true
	}
	if r.err == nil {
		r.err = r.it.Error()
	}
	if r.err == nil && r.served != r.count {
		r.err = fmt.Errorf("%w: book holds %d contacts, its count says %d", ErrCorrupt, r.served, r.count)
	}
	return nil, nil, false
}

// Err returns the error that ended Next, if any.
func (r *BookReader) Err() error { return r.err }

// Close releases the reader.
func (r *BookReader) Close() error { return r.it.Close() }

// List appends user's live contacts to dst, sorted by name bytewise.
func (s *Store) List(user []byte, dst []Contact) ([]Contact, error) {
	r, err := s.OpenBook(user)
	if err != nil {
		return dst, err
	}
	defer r.Close()
	for {
		name, phone, ok := r.Next()
		if !ok {
			return dst, r.Err()
		}
		dst = append(dst, Contact{Name: string(name), Phone: string(phone)})
	}
}

// Snapshot is a consistent point-in-time view of the whole state, for a
// full transfer: it holds exactly the changes logged up to Pos, so a peer
// sent the snapshot and then the log from Pos misses nothing.
type Snapshot struct {
	snap *pebble.Snapshot
	// Pos is the change-log position the snapshot includes.
	Pos Pos
}

// Snapshot opens a snapshot; Close it when done (an open snapshot keeps
// pebble from dropping what it sees).
func (s *Store) Snapshot() (*Snapshot, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	snap := s.db.NewSnapshot()
	sn := &Snapshot{snap: snap}
	for i := range sn.Pos {
		v, ok, err := getRaw(snap, metaShardKey(i))
		if err != nil {
			_ = snap.Close()
			return nil, err
		}
		if ok {
			st, err := decodeShardState(v)
			if err != nil {
				_ = snap.Close()
				return nil, err
			}
			sn.Pos[i] = st.head
		}
	}
	return sn, nil
}

// Each calls fn for every entry, live contacts and tombstones, starting at
// a random key and wrapping around, so that transfers cut short by a
// failure do not always favour the same books. The Change aliases internal
// buffers and is valid only during the call.
func (sn *Snapshot) Each(ctx context.Context, fn func(Change) error) error {
	var r [8]byte
	_, _ = rand.Read(r[:])
	start := append([]byte{tagEntry}, r[:]...)
	lo, hi := []byte{tagEntry}, []byte{tagEntry + 1}
	if err := sn.each(ctx, start, hi, fn); err != nil {
		return err
	}
	return sn.each(ctx, lo, start, fn)
}

func (sn *Snapshot) each(ctx context.Context, lo, hi []byte, fn func(Change) error) error {
	it, err := sn.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		user, contact, err := splitEntryKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		e, err := decodeValue(v)
		if err != nil {
			return err
		}
		if err := fn(Change{User: user, Contact: contact, Entry: e}); err != nil {
			return err
		}
	}
	return it.Error()
}

// Close releases the snapshot.
func (sn *Snapshot) Close() error { return sn.snap.Close() }

// Iterate calls fn for every stored entry from one snapshot (tests and
// tools; transfers use Snapshot to learn its position too).
func (s *Store) Iterate(ctx context.Context, fn func(Change) error) error {
	sn, err := s.Snapshot()
	if err != nil {
		return err
	}
	defer sn.Close()
	return sn.each(ctx, []byte{tagEntry}, []byte{tagEntry + 1}, fn)
}
