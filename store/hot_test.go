package store

import (
	"bytes"
	"fmt"
	"slices"
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

// keySorter orders ops exactly as their keys compare bytewise, whatever
// the keys share or how short they are, with few users or many (past the
// number it ranks), and whatever an earlier
// sort left in its scratch.
func TestKeySorterIsBytewiseOrder(t *testing.T) {
	var ks keySorter // reused: scratch from one sort must not leak into the next
	rapid.Check(t, func(t *rapid.T) {
		alphabet := rapid.SampledFrom([]byte{0, 1, 'a', 'b', 0xff})
		name := rapid.SliceOfN(alphabet, 0, 20)
		ks.maxRanked = rapid.SampledFrom([]int{0, 1, 3}).Draw(t, "maxRanked")
		for range rapid.IntRange(1, 3).Draw(t, "sorts") {
			b := &Batch{}
			n := rapid.IntRange(1, 80).Draw(t, "n")
			var idx []int32
			for i := range n {
				if i > 0 && rapid.Bool().Draw(t, "sameUser") { // runs of one user, as rounds have
					prev := b.ops[i-1]
					require.NoError(t, b.stage(opRemote, bytes.Clone(prev.user(b.buf)), name.Draw(t, "contact"), nil, Entry{}))
				} else {
					require.NoError(t, b.stage(opRemote, name.Draw(t, "user"), name.Draw(t, "contact"), nil, Entry{}))
				}
				if rapid.IntRange(0, 3).Draw(t, "skip") > 0 { // a shard's share of the batch
					idx = append(idx, int32(i))
				}
			}
			if runs := rapid.IntRange(0, 20).Draw(t, "runs"); runs > 0 { // as a peer's records come: ascending runs
				byRun := make([][]int32, runs)
				for _, oi := range idx {
					r := rapid.IntRange(0, runs-1).Draw(t, "run")
					byRun[r] = append(byRun[r], oi)
				}
				idx = idx[:0]
				for _, r := range byRun {
					slices.SortStableFunc(r, func(x, y int32) int { return bytes.Compare(b.ops[x].key(b.buf), b.ops[y].key(b.buf)) })
					idx = append(idx, r...)
				}
			}
			order := ks.sort(b, idx)
			require.Len(t, order, len(idx))
			seen := map[int32]bool{}
			for i, oi := range order {
				seen[oi] = true
				if i > 0 && bytes.Compare(b.ops[order[i-1]].key(b.buf), b.ops[oi].key(b.buf)) > 0 {
					t.Fatalf("keys %q and %q out of order", b.ops[order[i-1]].key(b.buf), b.ops[oi].key(b.buf))
				}
			}
			require.Len(t, seen, len(idx))
			for _, oi := range idx {
				require.True(t, seen[oi], "op %d missing", oi)
			}
		}
	})
}
