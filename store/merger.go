package store

import (
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// mergerName is recorded by pebble in the database; it must never change
// for databases written with this rule.
const mergerName = "contactstore.lww.v1"

// lwwMerger resolves pebble Merge operands with Wins, so the order in which
// concurrent batches reach pebble does not matter.
var lwwMerger = &pebble.Merger{
	Name: mergerName,
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &lwwValueMerger{}
		return m, m.add(value)
	},
}

type lwwValueMerger struct {
	best  Entry
	value []byte
}

func (m *lwwValueMerger) add(v []byte) error {
	e, err := decodeValue(v)
	if err != nil {
		return err
	}
	if m.value == nil || Wins(e, m.best) {
		m.value = append(m.value[:0], v...)
		m.best, _ = decodeValue(m.value)
	}
	return nil
}

func (m *lwwValueMerger) MergeNewer(v []byte) error { return m.add(v) }
func (m *lwwValueMerger) MergeOlder(v []byte) error { return m.add(v) }
func (m *lwwValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return m.value, nil, nil
}
