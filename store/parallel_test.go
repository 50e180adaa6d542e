package store

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// A large batch is applied on several goroutines, one per shard at a
// time. Changes from peers (all a peer's batches hold) must come out
// exactly as applied one shard after another: same digest, counts, books
// and merge results. With local changes in the batch too, only their
// stamps may differ: a key rewritten within the batch runs its stamp past
// the wall clock and raises the clock, and the other shards' local stamps
// start from it, in whatever order the shards went (as with concurrent
// client connections); what each book holds, and every count, must not.
// (KeepChanges keeps a batch on the caller's goroutine.)
func TestParallelCommitMatchesSequential(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	defer func(n int) { parallelMin = n }(parallelMin)
	parallelMin = 128 // the same code paths, with a tenth of the work per case
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	fixed := func(c *Config) { c.Now = func() time.Time { return at }; c.MaxContactsPerBook = 0 }
	type pair struct{ seq, par *Store }
	remoteOnly := pair{openTest(t, t.TempDir(), fixed), openTest(t, t.TempDir(), fixed)}
	mixed := pair{openTest(t, t.TempDir(), fixed), openTest(t, t.TempDir(), fixed)}
	const users = 40
	rapid.Check(t, func(rt *rapid.T) {
		withLocal := rapid.Bool().Draw(rt, "with local changes")
		p := remoteOnly
		if withLocal {
			p = mixed
		}
		n := rapid.IntRange(parallelMin, parallelMin+parallelMin/2).Draw(rt, "n")
		bs, bp := p.seq.NewBatch(), p.par.NewBatch()
		bs.KeepChanges = true
		for i := range n {
			user := []byte(fmt.Sprintf("u%02d", rapid.IntRange(0, users-1).Draw(rt, "user")))
			contact := []byte(fmt.Sprintf("c%03d", rapid.IntRange(0, 300).Draw(rt, "contact")))
			phone := []byte(fmt.Sprint(i))
			// Below the wall clock: a local change always wins over it.
			stamp := StampOf(at) - uint32(rapid.IntRange(1, 100).Draw(rt, "age"))
			kind := 2
			if withLocal {
				kind = rapid.IntRange(0, 3).Draw(rt, "kind")
			}
			for _, b := range []*Batch{bs, bp} {
				switch kind {
				case 0:
					require.NoError(rt, b.Update(user, contact, phone))
				case 1:
					require.NoError(rt, b.Delete(user, contact))
				default:
					require.NoError(rt, b.Apply(Change{User: user, Contact: contact, Entry: Entry{Stamp: stamp, Phone: phone, Deleted: i%7 == 0}}))
				}
			}
		}
		rs, err := bs.Commit()
		require.NoError(rt, err)
		rp, err := bp.Commit()
		require.NoError(rt, err)
		require.Equal(rt, rs.Applied, rp.Applied)
		require.Equal(rt, rs.Ignored, rp.Ignored)
		require.Equal(rt, p.seq.Head(), p.par.Head())
		ss, sp := p.seq.Stats(), p.par.Stats()
		require.Equal(rt, ss.Live, sp.Live)
		require.Equal(rt, ss.Tombstones, sp.Tombstones)
		require.Equal(rt, ss.Books, sp.Books)
		if !withLocal {
			require.Equal(rt, ss.Digest, sp.Digest)
		}
		for u := range users {
			user := []byte(fmt.Sprintf("u%02d", u))
			ls, err := p.seq.List(user, nil)
			require.NoError(rt, err)
			lp, err := p.par.List(user, nil)
			require.NoError(rt, err)
			require.Equal(rt, ls, lp, "book %s", user)
		}
	})
}
