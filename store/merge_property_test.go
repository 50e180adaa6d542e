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
			User:    []byte(rapid.SampledFrom([]string{"u1", "u2", ""}).Draw(t, "user")),
			Contact: []byte(rapid.SampledFrom([]string{"a", "b", ""}).Draw(t, "contact")),
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

// Two stores that receive the same changes in different orders, split into
// batches differently, some of them more than once, hold the same state
// (the fold of the changes per key, read back from pebble by the merge),
// the same digest, the same derived state, and the same again after a
// restart.
func TestPropertyStoresConverge(t *testing.T) {
	now := func() time.Time { return Epoch.Add(time.Hour) }
	dirA, dirB := t.TempDir(), t.TempDir()
	mod := func(c *Config) { c.Now = now }
	a := openTest(t, dirA, mod)
	b := openTest(t, dirB, mod)
	var all []Change
	check := func(rt require.TestingT, changes []Change) {
		for _, c := range changes {
			ea, oka, err := a.Get(c.User, c.Contact)
			require.NoError(rt, err)
			eb, okb, err := b.Get(c.User, c.Contact)
			require.NoError(rt, err)
			var want []Entry
			for _, d := range changes {
				if string(d.User) == string(c.User) && string(d.Contact) == string(c.Contact) {
					want = append(want, d.Entry)
				}
			}
			w, _ := fold(want)
			require.True(rt, oka && okb, "%s/%s missing", c.User, c.Contact)
			require.True(rt, sameEntry(ea, eb) && sameEntry(ea, w), "%s/%s: a=%v b=%v want %v", c.User, c.Contact, ea, eb, w)
		}
		require.Equal(rt, a.Digest(), b.Digest(), "digests")
	}
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
		split := rapid.IntRange(1, 8).Draw(rt, "batch size")
		ba := a.NewBatch()
		for _, c := range changes {
			require.NoError(rt, ba.Apply(c))
		}
		_, err := ba.Commit()
		require.NoError(rt, err)
		bb := b.NewBatch()
		for _, c := range order {
			require.NoError(rt, bb.Apply(c))
			if bb.Len() == split {
				_, err := bb.Commit()
				require.NoError(rt, err)
			}
		}
		_, err = bb.Commit()
		require.NoError(rt, err)
		check(rt, changes)
		all = append(all, changes...)
	})
	recompute(t, a)
	recompute(t, b)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	a = openTest(t, dirA, mod)
	b = openTest(t, dirB, mod)
	check(t, all) // users are unique per case: the fold over all is the fold per case
	recompute(t, a)
	recompute(t, b)
}

// Local changes interleaved with remote ones: whatever the interleaving,
// a local change wins over every change to its key that the store held
// when it was made (the "later wins, whatever the clocks" rule), even
// when those came stamped far ahead.
func TestPropertyLocalChangeWinsOverWhatWasHeld(t *testing.T) {
	now := newFakeNow(Epoch.Add(1000 * time.Second))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now })
	iter := 0
	rapid.Check(t, func(rt *rapid.T) {
		iter++
		user := []byte(fmt.Sprint("p", iter))
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for i := range steps {
			contact := []byte(rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "contact"))
			if rapid.Bool().Draw(rt, "remote") {
				e := Entry{Stamp: rapid.Uint32Range(900, 1000+365*24*3600).Draw(rt, "stamp"), Deleted: rapid.Bool().Draw(rt, "del")}
				if !e.Deleted {
					e.Phone = []byte("r")
				}
				apply(t, s, Change{User: user, Contact: contact, Entry: e})
				continue
			}
			before, had := get(t, s, string(user), string(contact))
			var ch Change
			if rapid.Bool().Draw(rt, "local delete") {
				ch = del(t, s, string(user), string(contact))
			} else {
				ch = update(t, s, string(user), string(contact), fmt.Sprint(i))
			}
			after, ok := get(t, s, string(user), string(contact))
			if !ok || !sameEntry(after, ch.Entry) || (had && !Wins(ch.Entry, before)) {
				rt.Fatalf("local change %v did not win over %v (now %v)", ch.Entry, before, after)
			}
			if s.Clock() > StampOf(now.Now())+60 {
				rt.Fatalf("clock %d past the bound", s.Clock())
			}
		}
	})
	recompute(t, s)
}
