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
// is a no-op. The rule is a total order on entries, which is what makes the
// merge commutative, associative and idempotent.
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

// Value encoding in pebble:
//
//	+---------+-----------+-----------------+
//	| kind u8 | stamp u32 | phone (0..19 B) |
//	+---------+-----------+-----------------+
//
// kind is 'U' (live) or 'D' (tombstone). Keys are described in format.go.
const (
	kindUpdate = 'U'
	kindDelete = 'D'
	valueHead  = 5
)

var errCorruptValue = errors.New("store: corrupt value")

func appendValue(dst []byte, e Entry) []byte {
	k := byte(kindUpdate)
	if e.Deleted {
		k = kindDelete
	}
	dst = binary.BigEndian.AppendUint32(append(dst, k), e.Stamp)
	return append(dst, e.Phone...)
}

func decodeValue(v []byte) (Entry, error) {
	if len(v) < valueHead || (v[0] != kindUpdate && v[0] != kindDelete) {
		return Entry{}, errCorruptValue
	}
	e := Entry{Stamp: binary.BigEndian.Uint32(v[1:5]), Deleted: v[0] == kindDelete}
	if !e.Deleted {
		e.Phone = v[valueHead:]
	}
	return e, nil
}

// appendKey appends the pebble key of (user, contact):
//
//	+------+-------------------+------+---------+
//	| 'e'  | u8 len(user)      | user | contact |
//	+------+-------------------+------+---------+
//
// Either name may be empty. The length prefix makes the split unambiguous
// and keeps one book's contacts contiguous and sorted bytewise, the empty
// contact first. Names come from the wire, which caps them at 255 bytes; a
// longer user is a caller's bug.
func appendKey(dst, user, contact []byte) []byte {
	if len(user) > maxNameLen {
		panic("store: user name longer than 255 bytes")
	}
	dst = append(dst, prefixEntry, byte(len(user)))
	dst = append(dst, user...)
	return append(dst, contact...)
}

// splitKey is the inverse of appendKey.
func splitKey(k []byte) (user, contact []byte, ok bool) {
	if len(k) < 2 || k[0] != prefixEntry || 2+int(k[1]) > len(k) {
		return nil, nil, false
	}
	end := 2 + int(k[1])
	return k[2:end:end], k[end:], true
}

// appendDigestKey is what the state digest hashes for a key: user 0x00
// contact (unambiguous, as names never hold a NUL, even when empty). It is
// the format-1 key, kept so that the digest, which servers compare with one
// another, is the same on both sides of the key-format change.
func appendDigestKey(dst, user, contact []byte) []byte {
	dst = append(dst, user...)
	dst = append(dst, 0)
	return append(dst, contact...)
}
