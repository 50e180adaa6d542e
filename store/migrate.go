package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// upgradeTagged derives what layout 3 adds to layout 2 (entries and
// metadata already under their tags): the shard states (digest, counts),
// the book counts and the tombstone index. It reads every entry once, in
// batches; the format marker moves to 3 only in the last, synced batch,
// so a crash part-way leaves layout 2, and the next open starts over
// (clearing what the interrupted attempt derived).
func (s *Store) upgradeTagged() error {
	start := time.Now()
	clearBatch := s.db.NewBatch()
	for _, tag := range []byte{tagCount, tagTomb, tagLog, tagSeen} {
		_ = clearBatch.DeleteRange([]byte{tag}, []byte{tag + 1}, nil)
	}
	if err := clearBatch.Commit(pebble.NoSync); err != nil {
		return err
	}
	_ = clearBatch.Close()

	var states [NumShards]shardState
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagEntry}, UpperBound: []byte{tagEntry + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	var (
		curUser  []byte
		haveUser bool
		curCount uint32
		key, buf []byte
		entries  int
	)
	flushUser := func() {
		if !haveUser || curCount == 0 {
			return
		}
		states[shardOf(curUser)].books++
		_ = b.Set(appendCountKey(key[:0], curUser), u32(curCount), nil)
	}
	for it.First(); it.Valid(); it.Next() {
		user, _, err := splitEntryKey(it.Key())
		if err != nil {
			return err
		}
		e, err := decodeValue(it.Value())
		if err != nil {
			return err
		}
		if !haveUser || !bytes.Equal(user, curUser) {
			flushUser()
			curUser, curCount, haveUser = append(curUser[:0:0], user...), 0, true
		}
		sh := shardOf(user)
		st := &states[sh]
		buf = appendDigestInput(buf[:0], it.Key(), e)
		st.digest += xxhash.Sum64(buf)
		if e.Deleted {
			st.tombs++
			_ = b.Set(appendTombKey(key[:0], sh, e.Stamp, it.Key()), nil, nil)
		} else {
			st.live++
			curCount++
		}
		if entries++; b.Len() > 16<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	flushUser()
	for i, st := range states {
		_ = b.Set(metaShardKey(i), st.encode(nil), nil)
	}
	if _, ok, err := getU64(s.db, metaStoreID); err != nil {
		return err
	} else if !ok {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		_ = b.Set(metaStoreID, id[:], nil)
	}
	_ = b.Set(metaShards, u32(NumShards), nil)
	_ = b.Set(metaFormat, u32(formatCurrent), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return errors.Join(errors.New("store: upgrading the data layout"), err)
	}
	s.log.Info("data layout upgraded: shard digests, book counts and tombstone index derived",
		"entries", entries, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
