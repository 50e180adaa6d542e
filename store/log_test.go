package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// readAll reads shard's log after `after` up to its head.
func readAll(t testing.TB, s *Store, shard int, after uint64) []string {
	t.Helper()
	var out []string
	for {
		pos := after + uint64(len(out))
		last, err := s.ReadLog(shard, pos, 7, func(seq uint64, ch Change) error {
			require.Equal(t, after+uint64(len(out))+1, seq, "sequences are contiguous")
			kind := "U"
			if ch.Deleted {
				kind = "D"
			}
			out = append(out, fmt.Sprintf("%s %s/%s=%s", kind, ch.User, ch.Contact, ch.Phone))
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, after+uint64(len(out)), last)
		if last == s.Head()[shard] {
			return out
		}
	}
}

func TestLocalChangesAreLoggedInOrder(t *testing.T) {
	for _, tail := range []int{64 << 10, 4 << 20} { // log read back from pebble, and from memory
		t.Run(fmt.Sprintf("tail=%d", tail), func(t *testing.T) {
			s := openTest(t, t.TempDir(), func(c *Config) { c.TailBytes = tail })
			require.NoError(t, s.SaveCursor("peer", Cursor{})) // a peer at 0 keeps the log from trims
			sh := shardOf([]byte("alice"))
			var want []string
			for i := range 3000 {
				c := fmt.Sprintf("c%d", i%40)
				if i%3 == 2 {
					del(t, s, "alice", c)
					want = append(want, "D alice/"+c+"=")
				} else {
					update(t, s, "alice", c, fmt.Sprint(i))
					want = append(want, fmt.Sprintf("U alice/%s=%d", c, i))
				}
			}
			// Remote changes are not logged: every member feeds its own.
			apply(t, s, Change{User: []byte("alice"), Contact: []byte("from-peer"), Entry: Entry{Stamp: s.Clock() + 5, Phone: []byte("1")}})
			require.Equal(t, uint64(3000), s.Head()[sh])
			require.Equal(t, want, readAll(t, s, sh, 0))
			require.Equal(t, want[2990:], readAll(t, s, sh, 2990))
			require.Empty(t, readAll(t, s, sh, 3000))
			for i := range NumShards {
				if i != sh {
					require.Zero(t, s.Head()[i])
				}
			}
		})
	}
}

func TestHeadChangedWakesReaders(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	ch := s.HeadChanged()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	update(t, s, "u", "c", "1")
	select {
	case <-ch:
	default:
		t.Fatal("not closed by a logged commit")
	}
	ch = s.HeadChanged()
	apply(t, s, Change{User: []byte("u"), Contact: []byte("d"), Entry: Entry{Stamp: 1, Phone: []byte("1")}})
	select {
	case <-ch:
		t.Fatal("closed by a commit that logged nothing")
	default:
	}
}

func TestLogTrimsBelowCursorsAndRetain(t *testing.T) {
	s := openTest(t, t.TempDir(), func(c *Config) { c.LogRetain = NumShards * 100; c.TailBytes = 64 << 10 })
	sh := shardOf([]byte("u"))
	require.NoError(t, s.SaveCursor("peer-a", Cursor{StoreID: 1}))
	for i := range 50 {
		update(t, s, "u", fmt.Sprint(i), "1")
	}
	var pa, pb Pos
	pa[sh], pb[sh] = 20, 35
	require.NoError(t, s.SaveCursor("peer-a", Cursor{StoreID: 1, Pos: pa}))
	require.NoError(t, s.SaveCursor("peer-b", Cursor{StoreID: 2, Pos: pb}))
	require.NoError(t, s.TrimLog())
	require.Equal(t, uint64(20), s.LogFloor()[sh], "trimmed to the slowest cursor")
	_, err := s.ReadLog(sh, 19, 10, func(uint64, Change) error { return nil })
	require.ErrorIs(t, err, ErrTrimmed)
	require.Len(t, readAll(t, s, sh, 20), 30, "everything after the slowest cursor is still there")

	for i := range 200 {
		update(t, s, "u", fmt.Sprint(i), "2")
	}
	require.NoError(t, s.TrimLog())
	require.Equal(t, uint64(150), s.LogFloor()[sh], "never more than LogRetain/NumShards changes, whatever the cursors")
	require.Len(t, readAll(t, s, sh, 150), 100)

	require.NoError(t, s.DropCursor("peer-a"))
	require.NoError(t, s.DropCursor("peer-b"))
	require.NoError(t, s.TrimLog())
	require.Equal(t, uint64(250), s.LogFloor()[sh], "no peer: nothing kept")
	require.Empty(t, readAll(t, s, sh, 250))
	update(t, s, "u", "after", "1")
	require.Equal(t, []string{"U u/after=1"}, readAll(t, s, sh, 250))
}

func TestCursorsPersist(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	c := Cursor{StoreID: 42, Pos: Pos{1, 2, 3, 4, 5, 6, 7, 8}}
	require.NoError(t, s.SaveCursor("contact-server-2", c))
	require.NoError(t, s.Close())
	s = openTest(t, dir, nil)
	require.Equal(t, map[string]Cursor{"contact-server-2": c}, s.Cursors())
}

func TestSnapshotPositionMatchesItsEntries(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	for i := range 100 {
		update(t, s, fmt.Sprint("u", i%5), fmt.Sprint(i), "1")
	}
	sn, err := s.Snapshot()
	require.NoError(t, err)
	defer sn.Close()
	require.Equal(t, s.Head(), sn.Pos)
	for i := range 10 {
		update(t, s, fmt.Sprint("u", i%5), fmt.Sprint("later", i), "1")
	}
	n := 0
	require.NoError(t, sn.Each(t.Context(), func(Change) error { n++; return nil }))
	require.Equal(t, 100, n, "the snapshot holds exactly what was logged up to its position")
	total := uint64(0)
	for i := range NumShards {
		total += s.Head()[i] - sn.Pos[i]
	}
	require.Equal(t, uint64(10), total, "and the log after it holds the rest")
}

// The in-memory tail holds the newest records up to its byte bound (at
// least the newest one), answers from() with every held record from the
// one holding seq on, never changes what it handed out earlier (readers
// use it unlocked), and holds on to no more than a bounded amount of
// dropped records.
func TestTailKeepsTheNewestRecordsAndWhatItHandedOut(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxBytes := rapid.IntRange(1, 400).Draw(t, "maxBytes")
		var tl tail
		next := uint64(1)
		type handed struct {
			recs []tailRec
			want []string
		}
		var out []handed
		for range rapid.IntRange(1, 200).Draw(t, "adds") {
			n := rapid.IntRange(1, 5).Draw(t, "changes")
			data := make([]byte, rapid.IntRange(1, 120).Draw(t, "size"))
			data[0] = byte(next)
			tl.add(next, n, data, maxBytes)
			next += uint64(n)

			held := tl.recs[tl.head:]
			require.NotEmpty(t, held)
			require.Equal(t, next-1, held[len(held)-1].first+uint64(held[len(held)-1].n)-1, "the newest record is held")
			sum := 0
			for i, r := range held {
				sum += len(r.data)
				if i > 0 {
					require.Equal(t, held[i-1].first+uint64(held[i-1].n), r.first, "held records are contiguous")
				}
			}
			require.Equal(t, tl.bytes, sum)
			if len(held) > 1 {
				require.LessOrEqual(t, sum, maxBytes, "over the bound only when the newest record alone is")
			}
			require.LessOrEqual(t, tl.dropped, maxBytes+120, "dropped records are released")
			require.LessOrEqual(t, tl.head, len(held), "dropped records are released")

			seq := rapid.Uint64Range(held[0].first, next-1).Draw(t, "seq")
			got, ok := tl.from(seq)
			require.True(t, ok)
			require.LessOrEqual(t, got[0].first, seq)
			require.Greater(t, got[0].first+uint64(got[0].n), seq, "starts at the record holding seq")
			require.Equal(t, held[len(held)-1].first, got[len(got)-1].first)
			if held[0].first > 1 {
				_, ok := tl.from(held[0].first - 1)
				require.False(t, ok, "older than the tail")
			}
			var want []string
			for _, r := range got {
				want = append(want, fmt.Sprint(r.first, r.n, r.data))
			}
			out = append(out, handed{got, want})
		}
		for _, h := range out { // what was handed out is as it was
			for i, r := range h.recs {
				require.Equal(t, h.want[i], fmt.Sprint(r.first, r.n, r.data))
			}
		}
	})
}
