//go:build slow

package chaostest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

// Rules about time (issue 10, PROTOCOL.md "Stamps and the merge rule",
// docs/protocol.md) on real contact-server processes: their wall clocks
// are shifted with --clock-offset, so "30 days later" or "a year ahead"
// is a restart, not a wait. The in-process versions of these scenarios
// (internal/clustertest/time_test.go) move an injected clock; these check
// that the binaries wire the same clock through every component.

// The bound every member's clock must keep: its wall clock plus
// --max-clock-ahead (60 s by default), plus one for the stamps' seconds.
func clockBound(offset time.Duration) uint32 {
	return store.StampOf(time.Now().Add(offset)) + 60 + 1
}

// A whole cluster stopped, then started again 30 days later (longer than
// the 7-day tombstone grace), keeps every acknowledged contact, and what
// was deleted stays deleted.
func TestTimeWholeClusterRestarted30DaysLater(t *testing.T) {
	c := newTimeCluster(t, 3, 11)
	c.startAll(c.servers...)
	c.waitServing(60 * time.Second)

	want := map[string]map[string]string{}
	for u, user := range []string{"ann", "ben", "cat"} {
		want[user] = map[string]string{}
		for j := range 12 {
			name, phone := fmt.Sprintf("c%02d", j), fmt.Sprintf("%d%02d", u, j)
			c.put(c.servers[(u+j)%3], user, name, phone)
			want[user][name] = phone
		}
		for j := 0; j < 12; j += 3 { // deleted on another member than the one that wrote it
			name := fmt.Sprintf("c%02d", j)
			c.del(c.servers[(u+j+1)%3], user, name)
			delete(want[user], name)
		}
	}
	for user, book := range want {
		c.waitBooks(c.servers, user, book, 60*time.Second)
	}
	c.waitMarks(c.servers...)

	for _, s := range c.servers {
		c.stop(s)
	}
	logAt := map[string]int64{}
	for _, s := range c.servers {
		s.setFlags("--sync-timeout", "3s", "--clock-offset", "720h")
		logAt[s.name] = s.logSize()
	}
	c.startAll(c.servers...)
	c.waitServing(90 * time.Second)
	for user, book := range want {
		c.waitBooks(c.servers, user, book, 60*time.Second)
	}
	// Each member did find its data older than the grace (the scenario
	// ran), and kept it or refilled it from a member that kept it.
	for _, s := range c.servers {
		require.Regexp(t, `stale|older than the tombstone grace`, s.logSince(logAt[s.name]),
			"%s: its data, 30 days old, was not seen as stale", s.name)
	}
	// The cluster works as before: changes replicate, and every member's
	// data is current again (its mark moves on).
	c.put(c.servers[2], "ann", "after", "1")
	want["ann"]["after"] = "1"
	c.waitBooks(c.servers, "ann", want["ann"], 60*time.Second)
	for _, s := range c.servers {
		waitStatus(t, s, 60*time.Second, "data current again", func(st opsapi.Status) bool { return !st.StaleData && st.Ready })
	}
	for user, book := range want {
		c.waitBooks(c.servers, user, book, 10*time.Second)
	}
}

// A member away longer than the grace, with one brief lone start on the
// way (its peers down), while its peers delete contacts and expire their
// tombstones: when it returns, nothing deleted comes back on any member,
// and what it acknowledged during its lone start is kept. The lone start
// must not count as contact: with it counted, the member would be only 5
// days out of date at its return (less than the grace) and would offer
// the deleted contacts again.
func TestTimeMemberAwayLongerThanGraceWithALoneStart(t *testing.T) {
	c := newTimeCluster(t, 3, 21)
	s1, s2, s3 := c.servers[0], c.servers[1], c.servers[2]
	c.startAll(c.servers...)
	c.waitServing(60 * time.Second)
	c.put(s1, "bo", "keep", "1")
	c.put(s1, "bo", "gone-1", "2")
	c.put(s2, "bo", "gone-2", "3")
	c.waitBooks(c.servers, "bo", map[string]string{"keep": "1", "gone-1": "2", "gone-2": "3"}, 60*time.Second)
	c.waitMarks(c.servers...)

	c.stop(s3)
	c.del(s1, "bo", "gone-1")
	c.del(s2, "bo", "gone-2")
	c.waitBooks([]*server{s1, s2}, "bo", map[string]string{"keep": "1"}, 60*time.Second)
	for _, s := range []*server{s1, s2} {
		waitStatus(t, s, 30*time.Second, "both tombstones held", func(st opsapi.Status) bool { return st.Tombstones == 2 })
	}
	c.stop(s1)
	c.stop(s2)

	// Five days later s3 starts while no peer answers, serves alone,
	// acknowledges a change, and stops.
	s3.setFlags("--sync-timeout", "3s", "--clock-offset", "120h")
	c.start(s3)
	waitStatus(t, s3, 60*time.Second, "serving alone", func(st opsapi.Status) bool { return st.Ready && st.Alone })
	c.put(s3, "bo", "alone", "9")
	c.waitBooks([]*server{s3}, "bo", map[string]string{"keep": "1", "gone-1": "2", "gone-2": "3", "alone": "9"}, 10*time.Second)
	c.stop(s3)

	// Ten days after the deletes its peers come back (a whole-cluster
	// restart for them: they keep their data) and expire the tombstones.
	for _, s := range []*server{s1, s2} {
		s.setFlags("--sync-timeout", "3s", "--clock-offset", "240h")
	}
	c.startAll(s1, s2)
	c.waitServingOn(90*time.Second, s1, s2)
	c.put(s1, "bo", "fresh", "5")
	peersWant := map[string]string{"keep": "1", "fresh": "5"}
	c.waitBooks([]*server{s1, s2}, "bo", peersWant, 60*time.Second)
	for _, s := range []*server{s1, s2} {
		waitStatus(t, s, 60*time.Second, "tombstones expired and data current", func(st opsapi.Status) bool {
			return st.Tombstones == 0 && !st.StaleData && st.Ready
		})
	}

	// s3 returns, ten days after it last was in contact (with the default
	// sync timeout: a loaded machine may take seconds to show it its
	// peers' marks).
	s3.setFlags("--clock-offset", "240h")
	c.start(s3)
	want := map[string]string{"keep": "1", "fresh": "5", "alone": "9"}
	c.waitBooks(c.servers, "bo", want, 90*time.Second)
	waitFor(t, 30*time.Second, s3.name+" counted the entries its refill dropped", func() (bool, string) {
		v, err := s3.metric("contact_refill_dropped_total")
		return err == nil && v >= 2, fmt.Sprint(v, err)
	})
	// Still so once everything settled (anti-entropy would spread a
	// resurrected contact to every member).
	for _, s := range c.servers {
		waitStatus(t, s, 60*time.Second, "ready, data current", func(st opsapi.Status) bool { return st.Ready && !st.StaleData })
	}
	c.waitBooks(c.servers, "bo", want, 10*time.Second)
}

// A member whose wall clock reads a year ahead: the others' clocks stay
// within the bound of their own wall clocks, they report it (error log,
// contact_clock_ahead_total, its offset in /v1/status), it reports its
// own clock wrong (not ready, with the reason), and a later write on a
// member with a sane clock to a key it wrote still wins everywhere.
func TestTimeMemberAYearAhead(t *testing.T) {
	const year = 8760 * time.Hour
	c := newTimeCluster(t, 3, 31)
	ahead := c.servers[1]
	ahead.setFlags("--sync-timeout", "3s", "--clock-offset", year.String())
	sane := []*server{c.servers[0], c.servers[2]}
	c.startAll(c.servers...)
	c.waitServing(60 * time.Second)

	c.put(ahead, "di", "k", "from-the-future")
	c.waitBooks(c.servers, "di", map[string]string{"k": "from-the-future"}, 60*time.Second)
	c.put(sane[0], "di", "k", "later")
	c.waitBooks(c.servers, "di", map[string]string{"k": "later"}, 60*time.Second)
	// A delete after a create from the future wins too.
	c.put(ahead, "di", "k2", "from-the-future")
	c.waitBooks(c.servers, "di", map[string]string{"k": "later", "k2": "from-the-future"}, 60*time.Second)
	c.del(sane[1], "di", "k2")
	c.waitBooks(c.servers, "di", map[string]string{"k": "later"}, 60*time.Second)

	for _, s := range sane {
		waitFor(t, 30*time.Second, s.name+" counts the clock beyond the bound", func() (bool, string) {
			v, err := s.metric("contact_clock_ahead_total")
			return err == nil && v > 0, fmt.Sprint(v, err)
		})
		st := waitStatus(t, s, 30*time.Second, "shows "+ahead.name+"'s offset", func(st opsapi.Status) bool {
			for _, m := range st.Members {
				if m.Name == ahead.name {
					return m.ClockMeasured && m.ClockOffsetSeconds > 300*86400 && m.ClockAheadSeconds > 300*86400
				}
			}
			return false
		})
		require.LessOrEqual(t, st.Clock, clockBound(0), "%s's clock past its wall clock + the bound", s.name)
		require.True(t, st.Ready, "%s (a sane clock) must stay ready: %s", s.name, st.NotReadyReason)
		log := s.logSince(0)
		require.Contains(t, log, "peer's clock is ahead", "%s logs the peer's clock", s.name)
		require.Contains(t, log, ahead.name)
	}
	st := waitStatus(t, ahead, 60*time.Second, "not ready because of its own clock", func(st opsapi.Status) bool {
		return !st.Ready && strings.Contains(st.NotReadyReason, "ahead of most serving peers")
	})
	require.LessOrEqual(t, st.Clock, clockBound(year), "the member a year ahead keeps its own bound")
	// And the sane members' clocks, read again after all that.
	for _, s := range sane {
		st, err := s.status()
		require.NoError(t, err)
		require.LessOrEqual(t, st.Clock, clockBound(0), "%s's clock past its wall clock + the bound", s.name)
	}
}

// One key rewritten 200,000 times (pipelined, on one connection): the
// key's stamp runs ahead of real time (each rewrite is its previous stamp
// + 1), but no member's clock follows it past the bound; every member
// lists the last write, and a later write on another member still wins.
func TestTimeHotKeyRewritten200000Times(t *testing.T) {
	const rewrites = 200_000
	c := newTimeCluster(t, 3, 41)
	c.startAll(c.servers...)
	c.waitServing(60 * time.Second)
	hot := c.servers[0]

	start := store.StampOf(time.Now())
	c.change(hot, "hot", func(cl *client.Client) error {
		for i := 1; i <= rewrites; i++ {
			if err := cl.Update("k", strconv.Itoa(i)); err != nil {
				return err
			}
		}
		return nil
	})
	c.waitBooks(c.servers, "hot", map[string]string{"k": strconv.Itoa(rewrites)}, 120*time.Second)
	for _, s := range c.servers {
		st, err := s.status()
		require.NoError(t, err)
		require.LessOrEqual(t, st.Clock, clockBound(0), "%s's clock followed the hot key", s.name)
	}

	c.put(c.servers[1], "hot", "k", "later")
	c.waitBooks(c.servers, "hot", map[string]string{"k": "later"}, 60*time.Second)
	for _, s := range c.servers {
		st, err := s.status()
		require.NoError(t, err)
		require.LessOrEqual(t, st.Clock, clockBound(0), "%s's clock followed the hot key", s.name)
	}

	// The scenario did what it is for: the key's stamp ran far ahead.
	for _, s := range c.servers {
		c.stop(s)
	}
	st, err := store.Open(store.DefaultConfig(hot.dataDir), nil)
	require.NoError(t, err)
	defer st.Close()
	e, ok, err := st.Get([]byte("hot"), []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Greater(t, e.Stamp, start+rewrites/2, "the key's stamp should run ahead of real time (stored stamp + 1 per rewrite)")
	require.Equal(t, "later", string(e.Phone))
}
