package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Metadata keys ('m' name). Every value is fixed-size big-endian.
var (
	metaFormat  = []byte("mformat")  // u32: the on-disk layout version
	metaClock   = []byte("mclock")   // u32: C, persisted so it never goes down across restarts
	metaStoreID = []byte("mstoreid") // u64: random, set when the data dir is created
	metaMark    = []byte("mmark")    // u32: last stamp known to be on a serving peer (stale.go)
	metaMarkPos = []byte("mmarkpos") // Pos: the log position confirmed at the mark (stale.go)
	metaRefill  = []byte("mrefill")  // u32: the mark a refill in progress compares against
	metaShards  = []byte("mshards")  // u32: NumShards when the data dir was laid out
	// legacy (format 2): the wall time the store was last open
	metaLastActive = []byte("mlast-active")
)

// The layouts this code reads. Format 2 (entries and metadata under tags)
// is upgraded at open by deriving the shard state (migrate.go).
const (
	formatTagged  = 2
	formatCurrent = 3
)

func metaShardKey(i int) []byte { return []byte{tagMeta, 's', 'h', 'a', 'r', 'd', byte(i)} }

func metaCursorKey(peer string) []byte { return append([]byte("mcursor/"), peer...) }

// shardState is the durable state of one shard, written in every commit of
// that shard, so that it always describes exactly the committed entries:
// a crash at any point leaves a digest that equals a recomputation.
//
//	+------------+----------+-----------+-----------+-----------+------------+-------------+-------------+
//	| digest u64 | live u64 | tombs u64 | books u64 | head u64  | floor u64  | swept u32   | forced u64  |
//	+------------+----------+-----------+-----------+-----------+------------+-------------+-------------+
//
// forced was added after the first v2 release: a 52-byte state reads as
// forced 0.
type shardState struct {
	digest uint64 // sum of entryHash over the shard's entries
	live   uint64 // live contacts
	tombs  uint64 // tombstones
	books  uint64 // books with at least one live contact
	head   uint64 // last change-log sequence written
	floor  uint64 // change-log sequences up to this one are trimmed
	swept  uint32 // tombstones stamped below this are gone
	// forced is the last sequence trimmed before every peer had confirmed
	// it (the LogRetain cap, or no peer known): below it, the log does not
	// say which changes are on a peer.
	forced uint64
}

const (
	shardStateSizeV1 = 6*8 + 4
	shardStateSize   = shardStateSizeV1 + 8
)

func (s shardState) encode(dst []byte) []byte {
	for _, v := range []uint64{s.digest, s.live, s.tombs, s.books, s.head, s.floor} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	dst = binary.BigEndian.AppendUint32(dst, s.swept)
	return binary.BigEndian.AppendUint64(dst, s.forced)
}

func decodeShardState(v []byte) (shardState, error) {
	if len(v) != shardStateSize && len(v) != shardStateSizeV1 {
		return shardState{}, fmt.Errorf("%w: shard state of %d bytes", ErrCorrupt, len(v))
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[8*i:]) }
	st := shardState{digest: u(0), live: u(1), tombs: u(2), books: u(3), head: u(4), floor: u(5),
		swept: binary.BigEndian.Uint32(v[48:])}
	if len(v) == shardStateSize {
		st.forced = binary.BigEndian.Uint64(v[52:])
	}
	return st, nil
}

// getter is what pebble.DB, pebble.Snapshot and pebble.Batch share.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func getRaw(g getter, key []byte) ([]byte, bool, error) {
	v, closer, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

func getU32(g getter, key []byte) (uint32, bool, error) {
	v, ok, err := getRaw(g, key)
	if err != nil || !ok {
		return 0, ok, err
	}
	if len(v) != 4 {
		return 0, false, fmt.Errorf("%w: metadata %q", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint32(v), true, nil
}

func getU64(g getter, key []byte) (uint64, bool, error) {
	v, ok, err := getRaw(g, key)
	if err != nil || !ok {
		return 0, ok, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: metadata %q", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
