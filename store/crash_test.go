package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// checkLog verifies every shard's change log: records contiguous from the
// floor to the head.
func checkLog(t testing.TB, s *Store) {
	t.Helper()
	for _, sh := range s.shards { // hold the background trim off
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	head, floor := s.Head(), s.LogFloor()
	for sh := range NumShards {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: appendLogKey(nil, sh, 0), UpperBound: appendLogKey(nil, sh+1, 0)})
		require.NoError(t, err)
		next := floor[sh] + 1
		for it.First(); it.Valid(); it.Next() {
			_, first, ok := logKeySeq(it.Key())
			require.True(t, ok)
			require.Equal(t, next, first, "shard %d: log records contiguous from the floor", sh)
			next = first + uint64(binary.BigEndian.Uint32(it.Value()))
		}
		require.NoError(t, it.Close())
		require.Equal(t, head[sh]+1, next, "shard %d: the log ends at the head", sh)
	}
}

// A crash at any point (here: after random work, keeping a random part of
// what was not fsynced) leaves a store that opens, whose persisted digest,
// counts, tombstone index and change log agree with its entries.
func TestCrashAtAnyPointLeavesAConsistentStore(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			fs := vfs.NewCrashableMem()
			now := newFakeNow(Epoch.Add(200 * 24 * time.Hour))
			mod := func(c *Config) {
				c.FS = fs
				c.Now = now.Now
				c.TombstoneGrace = time.Hour
				c.LogRetain = NumShards * 50
				c.TailBytes = 64 << 10
				c.MaxContactsPerBook = 30
			}
			s := openTest(t, "/data", mod)
			var clones []*vfs.MemFS
			for step := range 60 {
				b := s.NewBatch()
				for range rng.IntN(50) + 1 {
					user := []byte{byte('a' + rng.IntN(5))}
					contact := []byte{byte(rng.IntN(40))}
					switch rng.IntN(4) {
					case 0:
						_ = b.Update(user, contact, []byte(fmt.Sprint(rng.IntN(9))))
					case 1:
						_ = b.Delete(user, contact)
					default:
						e := Entry{Stamp: StampOf(now.Now()) - uint32(rng.IntN(7200)), Deleted: rng.IntN(2) == 0}
						if !e.Deleted {
							e.Phone = []byte(fmt.Sprint(rng.IntN(9)))
						}
						_ = b.Apply(Change{User: user, Contact: contact, Entry: e})
					}
				}
				if _, err := b.Commit(); err != nil {
					require.ErrorIs(t, err, ErrBookFull)
				}
				switch rng.IntN(6) {
				case 0:
					now.Add(time.Duration(rng.IntN(1800)) * time.Second)
					_, err := s.Sweep()
					require.NoError(t, err)
				case 1:
					require.NoError(t, s.SaveCursor("p", Cursor{Pos: s.Head()}))
					require.NoError(t, s.TrimLog())
				case 2:
					require.NoError(t, s.SyncAll())
				}
				if step%10 == 9 {
					clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng}))
				}
			}
			require.NoError(t, s.Close())
			for i, c := range clones {
				cs := openTest(t, "/data", func(cfg *Config) { mod(cfg); cfg.FS = c })
				recompute(t, cs)
				checkLog(t, cs)
				require.NoError(t, cs.Close(), "clone %d", i)
			}
		})
	}
}

// Concurrent writers to the same keys, locally and from "peers": the
// derived state still matches the entries exactly, and every local change
// is in the log once.
func TestConcurrentBatchesKeepTheDigestExact(t *testing.T) {
	s := openTest(t, t.TempDir(), func(c *Config) { c.MaxContactsPerBook = 0 })
	require.NoError(t, s.SaveCursor("peer", Cursor{StoreID: 1})) // a peer that has nothing: the log is kept whole
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	locals := 0
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			b := s.NewBatch()
			n := 0
			for range 4000 {
				user := []byte{byte('a' + rng.IntN(3))}
				contact := []byte{byte(rng.IntN(30))}
				switch rng.IntN(3) {
				case 0:
					_ = b.Update(user, contact, []byte{byte('0' + rng.IntN(10))})
					n++
				case 1:
					_ = b.Delete(user, contact)
					n++
				default:
					_ = b.Apply(Change{User: user, Contact: contact, Entry: Entry{Stamp: s.Clock() + uint32(rng.IntN(3)), Phone: []byte("r")}})
				}
				if b.Len() >= rng.IntN(64)+1 {
					_, err := b.Commit()
					require.NoError(t, err)
				}
			}
			_, err := b.Commit()
			require.NoError(t, err)
			mu.Lock()
			locals += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	recompute(t, s)
	checkLog(t, s)
	total := uint64(0)
	for _, h := range s.Head() {
		total += h
	}
	require.LessOrEqual(t, total, uint64(locals), "a key changed twice in one commit is logged once")
	// A peer fed from the log ends where this member is: every entry that a
	// local change left (the peers' phone is "r" and they never delete) is
	// the newest change the log holds for its key.
	logged := map[string]Entry{}
	for sh := range NumShards {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: appendLogKey(nil, sh, 0), UpperBound: appendLogKey(nil, sh+1, 0)})
		require.NoError(t, err)
		for it.First(); it.Valid(); it.Next() {
			require.NoError(t, forEachLogChange(it.Value(), func(ch Change) error {
				k := string(appendEntryKey(nil, ch.User, ch.Contact))
				if prev, ok := logged[k]; !ok || ch.Stamp > prev.Stamp {
					logged[k] = Entry{Stamp: ch.Stamp, Deleted: ch.Deleted, Phone: bytes.Clone(ch.Phone)}
				}
				return nil
			}))
		}
		require.NoError(t, it.Close())
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagEntry}, UpperBound: []byte{tagEntry + 1}})
	require.NoError(t, err)
	locallyLeft := 0
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeValue(it.Value())
		require.NoError(t, err)
		if !e.Deleted && string(e.Phone) == "r" {
			continue
		}
		locallyLeft++
		require.Equal(t, e, logged[string(it.Key())], "key %q", it.Key())
	}
	require.NoError(t, it.Close())
	require.Positive(t, locallyLeft)
}
