package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The hot-key cache may forget a key, never answer wrongly for one: every
// hit is the entry last put for exactly that key, across collisions,
// growth, forgets and resets.
func TestHotCacheNeverAnswersWrongly(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c hotCache
		model := map[string]hotEntry{}
		keys := rapid.SliceOfN(rapid.StringN(0, 12, 12), 1, 5000).Draw(t, "keys")
		for i := range rapid.IntRange(1, 20000).Draw(t, "steps") {
			k := keys[(i*7919)%len(keys)]
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0:
				c.forget(hotHash([]byte(k)), []byte(k))
				delete(model, k)
			case 1, 2, 3, 4:
				e := hotEntry{stamp: uint32(i), pLen: uint8(i % 20)}
				if e.pLen == 19 {
					e.pLen = 0xff
				}
				c.put(hotHash([]byte(k)), []byte(k), e)
				model[k] = e
			default:
				got, ok := c.get(hotHash([]byte(k)), []byte(k))
				if ok {
					want, in := model[k]
					if !in || got != want {
						t.Fatalf("key %q: cache has %+v, last put %+v (present %v)", k, got, want, in)
					}
				}
			}
		}
		require.LessOrEqual(t, len(c.slots), maxHotSlots)
	})
}

// Keys that pick the same slot replace each other; the cache grows to its
// bound while it is filled and holds most of what fits.
func TestHotCacheGrowsToItsBound(t *testing.T) {
	var c hotCache
	for i := range 4 * maxHotSlots {
		k := []byte(fmt.Sprintf("k-%d", i))
		c.put(hotHash(k), k, hotEntry{stamp: uint32(i)})
	}
	require.Equal(t, maxHotSlots, len(c.slots))
	hits := 0
	for i := 3 * maxHotSlots; i < 4*maxHotSlots; i++ {
		k := []byte(fmt.Sprintf("k-%d", i))
		if e, ok := c.get(hotHash(k), k); ok {
			require.Equal(t, uint32(i), e.stamp)
			hits++
		}
	}
	require.Greater(t, hits, maxHotSlots/2, "the most recent keys are mostly cached")
	c.reset()
	k := []byte("k-0")
	_, ok := c.get(hotHash(k), k)
	require.False(t, ok)
}

// sortByKey orders ops exactly as their keys compare bytewise, whatever
// the keys share or how short they are.
func TestSortByKeyIsBytewiseOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		alphabet := rapid.SampledFrom([]byte{0, 1, 'a', 'b', 0xff})
		name := rapid.SliceOfN(alphabet, 0, 20)
		b := &Batch{}
		n := rapid.IntRange(1, 60).Draw(t, "n")
		var idx []int32
		for i := range n {
			require.NoError(t, b.stage(opRemote, name.Draw(t, "user"), name.Draw(t, "contact"), nil, Entry{}))
			idx = append(idx, int32(i))
		}
		order, _ := sortByKey(nil, nil, b, idx)
		require.Len(t, order, n)
		seen := map[int32]bool{}
		for i, oi := range order {
			seen[oi] = true
			if i > 0 && bytes.Compare(b.ops[order[i-1]].key(b.buf), b.ops[oi].key(b.buf)) > 0 {
				t.Fatalf("keys %q and %q out of order", b.ops[order[i-1]].key(b.buf), b.ops[oi].key(b.buf))
			}
		}
		require.Len(t, seen, n)
	})
}
