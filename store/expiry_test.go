package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSweepDropsExpiredTombstones(t *testing.T) {
	now := newFakeNow(Epoch.Add(30 * 24 * time.Hour))
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 24 * time.Hour }
	s := openTest(t, dir, mod)
	old := StampOf(now.Now().Add(-48 * time.Hour))
	fresh := StampOf(now.Now().Add(-time.Hour))
	_, err := s.Sweep() // the cutoff moves to now - grace
	require.NoError(t, err)
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("live"), Entry: Entry{Stamp: old, Phone: []byte("1")}}))
	update(t, s, "u", "gone", "1")
	del(t, s, "u", "gone")
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("recent"), Entry: Entry{Stamp: fresh, Deleted: true}}))
	require.False(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("ancient"), Entry: Entry{Stamp: old, Deleted: true}}),
		"an already-expired tombstone for an absent key is not stored")
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("live"), Entry: Entry{Stamp: old + 1, Deleted: true}}),
		"but it still removes an older live entry")
	_, ok := get(t, s, "u", "live")
	require.False(t, ok, "removed outright: its tombstone would already be expired")
	require.Equal(t, 2, s.Stats().Tombstones)
	recompute(t, s)

	// (The background sweep may run between the steps below: assertions
	// are on the state, not on who swept.)
	now.Add(23 * time.Hour) // "recent" is now 24 h old: not yet past the grace (cutoff quantum)
	_, err = s.Sweep()
	require.NoError(t, err)
	require.Equal(t, 2, s.Stats().Tombstones)
	now.Add(time.Hour) // "recent" is 25 h old, "gone" exactly 24 h
	_, err = s.Sweep()
	require.NoError(t, err)
	require.Equal(t, 1, s.Stats().Tombstones, "only the tombstone older than the grace goes")
	_, ok = get(t, s, "u", "recent")
	require.False(t, ok)
	r := recompute(t, s)
	require.NoError(t, s.Close())

	s2 := openTest(t, dir, mod)
	require.Equal(t, r.digest, s2.Digest(), "the sweep is durable")
	require.Equal(t, s.Stats().Cutoff, s2.Stats().Cutoff)
	recompute(t, s2)
}

// Expiry never makes two members differ: members that saw the same
// changes compute the same digest at the same cutoff, whenever each of
// them swept.
func TestExpiryKeepsDigestsComparable(t *testing.T) {
	now := newFakeNow(Epoch.Add(400 * 24 * time.Hour))
	mod := func(c *Config) { c.Now = now.Now; c.TombstoneGrace = 7 * 24 * time.Hour }
	a := openTest(t, t.TempDir(), mod)
	b := openTest(t, t.TempDir(), mod)
	for i := range 50 {
		c := Change{User: []byte("u"), Contact: []byte{byte(i)}, Entry: Entry{Stamp: StampOf(now.Now()) - uint32(i)*3600*5, Deleted: i%2 == 0}}
		if !c.Deleted {
			c.Phone = []byte("1")
		}
		apply(t, a, c)
		apply(t, b, c)
	}
	for range 10 {
		now.Add(13 * time.Hour)
		_, err := a.Sweep() // a sweeps every step, b only now and then
		require.NoError(t, err)
		sa := a.Stats()
		sb := b.Stats()
		if sa.Cutoff == sb.Cutoff {
			require.Equal(t, sa.Digest, sb.Digest, "equal cutoffs, equal digests")
		} else {
			require.NotEqual(t, sa.Cutoff, sb.Cutoff, "unequal cutoffs are never compared")
			_, err := b.Sweep()
			require.NoError(t, err)
			require.Equal(t, a.Stats().Digest, b.Stats().Digest)
			require.Equal(t, a.Stats().Cutoff, b.Stats().Cutoff)
		}
	}
	recompute(t, a)
	recompute(t, b)
}

func TestSweepOfManyTombstonesIsBatched(t *testing.T) {
	now := newFakeNow(Epoch.Add(400 * 24 * time.Hour))
	s := openTest(t, t.TempDir(), func(c *Config) { c.Now = now.Now; c.TombstoneGrace = time.Hour })
	b := s.NewBatch()
	for i := range 3*sweepBatch + 17 {
		require.NoError(t, b.Delete([]byte{byte(i % 7)}, []byte{byte(i >> 8), byte(i)}))
		if b.Len() == 4096 {
			commit(t, b)
		}
	}
	commit(t, b)
	update(t, s, "keep", "me", "1")
	now.Add(2 * time.Hour)
	require.Equal(t, 3*sweepBatch+17, s.Stats().Tombstones)
	_, err := s.Sweep()
	require.NoError(t, err)
	st := s.Stats()
	require.True(t, st.Consistent)
	require.Equal(t, 0, st.Tombstones)
	require.Equal(t, 1, st.Live)
	recompute(t, s)
}

// A sweep resumes each batch after the keys the last one dropped, and
// still drops a tombstone indexed below that point between two batches
// (the shard is unlocked between them): it ends only with a walk from the
// bottom that finds nothing.
func TestSweepResumesAndStillDropsWhatArrivedBelow(t *testing.T) {
	now := newFakeNow(Epoch.Add(400 * 24 * time.Hour))
	s := openTest(t, t.TempDir(), func(c *Config) {
		c.Now = now.Now
		c.TombstoneGrace = time.Hour
		c.SweepInterval = 24 * time.Hour // the test sweeps by hand
	})
	b := s.NewBatch()
	for i := range 2*sweepBatch + 5 {
		require.NoError(t, b.Delete([]byte("u"), []byte{byte(i >> 8), byte(i)}))
		if b.Len() == 4096 {
			commit(t, b)
		}
	}
	commit(t, b)
	early := s.Clock() - 100
	now.Add(2 * time.Hour)
	sh := s.shards[shardOf([]byte("u"))]
	target := s.Cutoff()
	n, next, done, err := sh.sweepSome(target, nil)
	require.NoError(t, err)
	require.Equal(t, sweepBatch, n)
	require.False(t, done)
	require.NotNil(t, next)
	// Indexed below where the next batch resumes, while the shard is free.
	require.True(t, apply(t, s, Change{User: []byte("u"), Contact: []byte("late"), Entry: Entry{Stamp: early, Deleted: true}}))
	require.Negative(t, bytes.Compare(tombBound(sh.id, early), next))
	total := n
	for !done {
		n, next, done, err = sh.sweepSome(target, next)
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 2*sweepBatch+5+1, total)
	require.Equal(t, 0, s.Stats().Tombstones)
	_, ok := get(t, s, "u", "late")
	require.False(t, ok)
	recompute(t, s)
}
