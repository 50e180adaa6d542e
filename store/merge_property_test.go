package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// Small domains force collisions: equal stamps, equal phones, tombstones.
func genEntry() *rapid.Generator[Entry] {
	return rapid.Custom(func(t *rapid.T) Entry {
		e := Entry{Stamp: rapid.Uint32Range(1, 6).Draw(t, "stamp"), Deleted: rapid.Bool().Draw(t, "deleted")}
		if !e.Deleted {
			e.Phone = []byte(rapid.SampledFrom([]string{"", "1", "10", "2", "9"}).Draw(t, "phone"))
		}
		return e
	})
}

func genChange() *rapid.Generator[Change] {
	return rapid.Custom(func(t *rapid.T) Change {
		return Change{
			User:    []byte(rapid.SampledFrom([]string{"u1", "u2"}).Draw(t, "user")),
			Contact: []byte(rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "contact")),
			Entry:   genEntry().Draw(t, "entry"),
		}
	})
}

// fold merges entries left to right with Wins, from "absent".
func fold(es []Entry) (Entry, bool) {
	var cur Entry
	has := false
	for _, e := range es {
		if !has || Wins(e, cur) {
			cur, has = e, true
		}
	}
	return cur, has
}

func sameEntry(a, b Entry) bool {
	return a.Stamp == b.Stamp && a.Deleted == b.Deleted && string(a.Phone) == string(b.Phone)
}

// Wins is a strict total order on distinct entries, which is exactly what
// makes the merge commutative, associative and idempotent.
func TestPropertyMergeRule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genEntry().Draw(t, "a"), genEntry().Draw(t, "b"), genEntry().Draw(t, "c")
		if sameEntry(a, b) {
			if Wins(a, b) || Wins(b, a) {
				t.Fatal("equal content must be a no-op")
			}
		} else if Wins(a, b) == Wins(b, a) {
			t.Fatalf("not antisymmetric/total: %v %v", a, b)
		}
		ab, _ := fold([]Entry{a, b})
		ba, _ := fold([]Entry{b, a})
		if !sameEntry(ab, ba) {
			t.Fatalf("not commutative: %v vs %v", ab, ba)
		}
		l, _ := fold([]Entry{ab, c})
		bc, _ := fold([]Entry{b, c})
		r, _ := fold([]Entry{a, bc})
		if !sameEntry(l, r) {
			t.Fatalf("not associative: %v vs %v", l, r)
		}
		aa, _ := fold([]Entry{a, a})
		if !sameEntry(aa, a) {
			t.Fatal("not idempotent")
		}
	})
}

// Two stores that receive the same changes in different orders, some of
// them more than once, hold the same state, the same digest, and the same
// state again after a restart (pebble's merge operator resolves the same).
func TestPropertyStoresConverge(t *testing.T) {
	now := func() time.Time { return Epoch.Add(time.Hour) }
	dirA, dirB := t.TempDir(), t.TempDir()
	iter := 0
	rapid.Check(t, func(rt *rapid.T) {
		iter++
		prefix := fmt.Sprintf("%d/", iter) // fresh users per case; stores are shared
		changes := rapid.SliceOfN(genChange(), 1, 30).Draw(rt, "changes")
		for i := range changes {
			changes[i].User = append([]byte(prefix), changes[i].User...)
		}
		order := rapid.Permutation(changes).Draw(rt, "order")
		dups := rapid.SliceOfN(rapid.IntRange(0, len(changes)-1), 0, 10).Draw(rt, "dups")
		for _, i := range dups {
			order = append(order, changes[i])
		}
		a := openTest(t, dirA, func(c *Config) { c.Now = now })
		b := openTest(t, dirB, func(c *Config) { c.Now = now })
		ba, bb := a.NewBatch(), b.NewBatch()
		// Store B commits each change in its own batch, in reverse commit
		// order to the in-memory order, so pebble sees operands out of order.
		var pending []*Batch
		for _, c := range changes {
			ba.Apply(c)
		}
		for _, c := range order {
			one := b.NewBatch()
			one.Apply(c)
			pending = append(pending, one)
		}
		for i := len(pending) - 1; i >= 0; i-- {
			commit(t, pending[i])
			pending[i].Close()
		}
		commit(t, ba)
		ba.Close()
		bb.Close()

		check := func(when string) {
			for _, c := range changes {
				ea, oka := a.Get(c.User, c.Contact)
				eb, okb := b.Get(c.User, c.Contact)
				var want []Entry
				for _, d := range changes {
					if string(d.User) == string(c.User) && string(d.Contact) == string(c.Contact) {
						want = append(want, d.Entry)
					}
				}
				w, _ := fold(want)
				if !oka || !okb || !sameEntry(ea, eb) || !sameEntry(ea, w) {
					rt.Fatalf("%s: %s/%s: a=%v b=%v want %v", when, c.User, c.Contact, ea, eb, w)
				}
			}
			if a.Digest() != b.Digest() {
				rt.Fatalf("%s: digests differ", when)
			}
		}
		check("live")
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		a = openTest(t, dirA, func(c *Config) { c.Now = now })
		b = openTest(t, dirB, func(c *Config) { c.Now = now })
		check("after reopen")
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
}
