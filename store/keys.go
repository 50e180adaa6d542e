package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Key spaces. Every key starts with one tag byte, so no user or contact
// name (both may be empty, both are opaque bytes up to 255) can collide
// with another space:
//
//	'e' u8(len user) user contact        -> entry value (entry.go)
//	'n' user                              -> live contacts of the book, u32
//	'l' u8(shard) u64(first seq)          -> a change-log record (log.go)
//	't' u8(shard) u32(stamp) entrykey     -> (empty) a tombstone, by expiry
//	'r' entrykey                          -> (empty) seen during a refill
//	'm' name                              -> metadata (meta.go)
//
// where entrykey is an entry key without its tag. A book's contacts are
// contiguous and sorted bytewise under 'e' u8(len) user, the empty contact
// first, which is what ListAll streams.
const (
	tagEntry = 'e'
	tagCount = 'n'
	tagLog   = 'l'
	tagTomb  = 't'
	tagSeen  = 'r'
	tagMeta  = 'm'
)

// MaxName is the longest user or contact name the store holds; the wire
// carries at most 255 value bytes in a name256 field.
const MaxName = 255

// appendEntryKey appends 'e' len(user) user contact.
func appendEntryKey(dst, user, contact []byte) []byte {
	dst = append(dst, tagEntry, byte(len(user)))
	dst = append(dst, user...)
	return append(dst, contact...)
}

// bookPrefix is the prefix of every entry key of user's book.
func appendBookPrefix(dst, user []byte) []byte {
	dst = append(dst, tagEntry, byte(len(user)))
	return append(dst, user...)
}

// splitEntryKey returns the user and contact of an entry key (aliasing k).
func splitEntryKey(k []byte) (user, contact []byte, err error) {
	if len(k) < 2 || k[0] != tagEntry || len(k) < 2+int(k[1]) {
		return nil, nil, fmt.Errorf("%w: entry key %q", ErrCorrupt, k)
	}
	n := int(k[1])
	return k[2 : 2+n], k[2+n:], nil
}

func appendCountKey(dst, user []byte) []byte { return append(append(dst, tagCount), user...) }

func appendTombKey(dst []byte, shard int, stamp uint32, entryKey []byte) []byte {
	dst = append(dst, tagTomb, byte(shard))
	dst = binary.BigEndian.AppendUint32(dst, stamp)
	return append(dst, entryKey[1:]...)
}

// tombPrefix bounds the tombstone index of shard with stamps below stamp.
func tombBound(shard int, stamp uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{tagTomb, byte(shard)}, stamp)
}

// tombEntryKey recovers the entry key from a tombstone index key.
func tombEntryKey(dst, k []byte) ([]byte, uint32, error) {
	if len(k) < 8 || k[0] != tagTomb {
		return nil, 0, fmt.Errorf("%w: tombstone index key %q", ErrCorrupt, k)
	}
	return append(append(dst, tagEntry), k[6:]...), binary.BigEndian.Uint32(k[2:6]), nil
}

func appendSeenKey(dst, entryKey []byte) []byte {
	return append(append(dst, tagSeen), entryKey[1:]...)
}

func appendLogKey(dst []byte, shard int, first uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, tagLog, byte(shard)), first)
}

func logKeySeq(k []byte) (shard int, first uint64, ok bool) {
	if len(k) != 10 || k[0] != tagLog {
		return 0, 0, false
	}
	return int(k[1]), binary.BigEndian.Uint64(k[2:]), true
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (nil when there is none).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
