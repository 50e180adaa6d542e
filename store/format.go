package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Layout 1, written before "mformat" existed, keyed entries as user 0x00
// contact and metadata as 0x00 name ("\x00clock", "\x00last-active"). It
// could not hold an empty name: an empty user's keys fell among the
// metadata, an empty contact's key did not split. Open rewrites it into
// layout 2 (keys.go's entry and metadata keys) in one batch, so that a
// crash leaves either the old layout or the new one, never a mix; layout 2
// is then upgraded like any other (migrate.go).
var (
	format1Clock      = []byte("\x00clock")
	format1LastActive = []byte("\x00last-active")
)

// migrateFormat1 rewrites an unmarked, non-empty database from layout 1
// to layout 2 and returns how many entries it moved.
func (s *Store) migrateFormat1() (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	entries, err := stageFormat1Migration(s.db, b, s.cfg.Dir)
	if err != nil {
		return 0, err
	}
	_ = b.Set(metaFormat, binary.BigEndian.AppendUint32(nil, formatTagged), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("store: writing layout %d in %s: %w", formatTagged, s.cfg.Dir, err)
	}
	s.log.Info("store migrated from layout 1 to layout 2", "dir", s.cfg.Dir, "entries", entries)
	return entries, nil
}

// stageFormat1Migration adds to b the rewrite of every layout-1 key of db
// and returns how many entries it moves. Layout-1 keys always contain a
// NUL and both names were non-empty, so every key is recognised or the
// database is refused.
func stageFormat1Migration(db *pebble.DB, b *pebble.Batch, dir string) (int, error) {
	it, err := db.NewIter(nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	entries := 0
	var key []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr() // merge operands resolved by the merger
		if err != nil {
			return 0, err
		}
		switch {
		case bytes.Equal(k, format1Clock):
			_ = b.Set(metaClock, v, nil)
		case bytes.Equal(k, format1LastActive):
			_ = b.Set(metaLastActive, v, nil)
		default:
			user, contact, ok := splitFormat1Key(k)
			if !ok {
				return 0, fmt.Errorf("%w: unexpected key %q in %s (no %q marker, not layout 1)", ErrCorrupt, k, dir, metaFormat)
			}
			if _, err := decodeValue(v); err != nil {
				return 0, fmt.Errorf("%w: value for key %q in %s", ErrCorrupt, k, dir)
			}
			key = appendEntryKey(key[:0], user, contact)
			_ = b.Set(key, v, nil)
			entries++
		}
		_ = b.Delete(k, nil)
	}
	return entries, it.Error()
}

// splitFormat1Key splits user 0x00 contact, both non-empty.
func splitFormat1Key(k []byte) (user, contact []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i <= 0 || i == len(k)-1 || len(k[:i]) > MaxName {
		return nil, nil, false
	}
	return k[:i], k[i+1:], true
}
