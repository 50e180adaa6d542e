package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// Key format 2 (this one), in pebble:
//
//	entry:    'e' (0x65) | u8 len(user) | user | contact   (appendKey)
//	metadata: 'm' (0x6d) | name   e.g. "mclock", "mlast-active", "mformat"
//
// "mformat" holds the format as u32 BE (2). Values keep the encoding of
// entry.go. Both names may be empty: an empty user name is a book like any
// other and an empty contact name a contact like any other (PROTOCOL.md
// "Errors").
//
// Format 1, written before "mformat" existed, keyed entries as user 0x00
// contact and metadata as 0x00 name ("\x00clock", "\x00last-active"). It
// could not hold an empty name: an empty user's keys fell among the
// metadata, an empty contact's key did not split. Open migrates it.
const (
	prefixEntry   = 'e'
	prefixMeta    = 'm'
	formatVersion = 2
	maxNameLen    = 255 // the wire's limit for a name256 value
)

var (
	metaFormat = []byte("mformat")

	format1Clock      = []byte("\x00clock")
	format1LastActive = []byte("\x00last-active")
)

// upgradeFormat makes db hold key format 2. A database marked with
// "mformat" is checked; an unmarked one (new, or written in format 1) is
// rewritten in one batch with "mformat" in it, so that a crash leaves
// either the old layout or the new one, never a mix.
func upgradeFormat(db *pebble.DB, log hclog.Logger, dir string) error {
	v, ok, err := getMeta(db, metaFormat)
	if err != nil {
		return err
	}
	if ok {
		if v != formatVersion {
			return fmt.Errorf("store: data dir %s has key format %d; this server reads format %d", dir, v, formatVersion)
		}
		return nil
	}
	b := db.NewBatch()
	defer b.Close()
	entries, err := stageFormat1Migration(db, b, dir)
	if err != nil {
		return err
	}
	_ = b.Set(metaFormat, binary.BigEndian.AppendUint32(nil, formatVersion), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: writing key format %d in %s: %w", formatVersion, dir, err)
	}
	if entries > 0 {
		log.Info("store migrated to key format 2", "dir", dir, "entries", entries)
	}
	return nil
}

// stageFormat1Migration adds to b the rewrite of every format-1 key of db
// and returns how many entries it moves. Format-1 keys always contain a
// NUL and format-2 keys written here never do (their users are not empty),
// so the keys set and the keys deleted are disjoint.
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
				return 0, fmt.Errorf("store: unexpected key %q in %s (no %q marker, not format 1)", k, dir, metaFormat)
			}
			if _, err := decodeValue(v); err != nil {
				return 0, fmt.Errorf("store: corrupt value for key %q in %s", k, dir)
			}
			key = appendKey(key[:0], user, contact)
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
	if i <= 0 || i == len(k)-1 || len(k[:i]) > maxNameLen {
		return nil, nil, false
	}
	return k[:i], k[i+1:], true
}
