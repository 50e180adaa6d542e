package store

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Entry is the stored state of one key (user, contact): a live contact or
// a tombstone, with the stamp of the change that produced it.
type Entry struct {
	Stamp   uint32
	Deleted bool
	Phone   []byte // empty for a tombstone
}

// Change is one stamped change to a key, as it travels between servers.
type Change struct {
	User    []byte
	Contact []byte
	Entry
}

// Wins reports whether incoming replaces stored under PROTOCOL.md's merge
// rule: the larger stamp wins; at equal stamps a Delete beats an Update and
// between two Updates the larger phone number (bytewise) wins; equal content
// is a no-op. The rule is a strict total order on distinct entries, which is
// what makes the merge commutative, associative and idempotent. It is the
// only definition of the rule in the module: the shard apply path and the
// pebble merger (kept for databases written by earlier versions) call it.
func Wins(incoming, stored Entry) bool {
	if incoming.Stamp != stored.Stamp {
		return incoming.Stamp > stored.Stamp
	}
	if incoming.Deleted != stored.Deleted {
		return incoming.Deleted
	}
	if incoming.Deleted {
		return false
	}
	return bytes.Compare(incoming.Phone, stored.Phone) > 0
}

// Value encoding of an entry in pebble:
//
//	+---------+-----------+-----------------+
//	| kind u8 | stamp u32 | phone (0..19 B) |
//	+---------+-----------+-----------------+
//
// kind is 'U' (live) or 'D' (tombstone).
const (
	kindUpdate = 'U'
	kindDelete = 'D'
	valueHead  = 5
)

// ErrCorrupt reports data in the store that no version of this code wrote.
var ErrCorrupt = errors.New("store: corrupt data")

func appendValue(dst []byte, e Entry) []byte {
	k := byte(kindUpdate)
	if e.Deleted {
		k = kindDelete
	}
	dst = binary.BigEndian.AppendUint32(append(dst, k), e.Stamp)
	if !e.Deleted {
		dst = append(dst, e.Phone...)
	}
	return dst
}

// decodeValue decodes an entry value; Phone aliases v.
func decodeValue(v []byte) (Entry, error) {
	if len(v) < valueHead || (v[0] != kindUpdate && v[0] != kindDelete) {
		return Entry{}, ErrCorrupt
	}
	e := Entry{Stamp: binary.BigEndian.Uint32(v[1:5]), Deleted: v[0] == kindDelete}
	if !e.Deleted {
		e.Phone = v[valueHead:]
	}
	return e, nil
}
