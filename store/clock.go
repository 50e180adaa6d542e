package store

import (
	"sync/atomic"
	"time"
)

// Epoch is the zero of every stamp and clock: 2024-01-01T00:00:00Z.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxStamp is the largest stamp (early 2160).
const MaxStamp = 1<<32 - 1

// StampOf converts a wall time to the protocol's unit (seconds since Epoch),
// saturating at the ends of the u32 range.
func StampOf(t time.Time) uint32 {
	s := t.Sub(Epoch) / time.Second
	switch {
	case s < 0:
		return 0
	case s > MaxStamp:
		return MaxStamp
	}
	return uint32(s)
}

// TimeOf converts a stamp back to wall time.
func TimeOf(stamp uint32) time.Time { return Epoch.Add(time.Duration(stamp) * time.Second) }

// Clock is the server's hybrid logical clock C (PROTOCOL.md "Stamps and
// the merge rule"). C never goes down, and no input moves it past
// now + MaxAhead, where now is the injected wall clock: a clock or stamp
// heard beyond that cap moves C only up to the cap, and Observe reports
// by how much the input was beyond it so that callers can tell an
// operator which member's clock is wrong.
type Clock struct {
	c        atomic.Uint32
	now      func() time.Time
	maxAhead uint32 // seconds
}

// NewClock returns a clock at 0 reading wall time from now, bounded
// maxAhead past it.
func NewClock(now func() time.Time, maxAhead time.Duration) *Clock {
	return &Clock{now: now, maxAhead: uint32(maxAhead / time.Second)}
}

// Wall is the wall clock in stamp units.
func (c *Clock) Wall() uint32 { return StampOf(c.now()) }

// Now returns the wall clock as time (the store's single time source).
func (c *Clock) Now() time.Time { return c.now() }

// limit is the highest value C may take right now.
func (c *Clock) limit(wall uint32) uint32 {
	if wall > MaxStamp-c.maxAhead {
		return MaxStamp
	}
	return wall + c.maxAhead
}

// Get returns the clock's reading: max(now, C). This is what a server
// answers in UpdateClock and the floor of every local stamp.
func (c *Clock) Get() uint32 { return max(c.Wall(), c.c.Load()) }

// Raw returns C itself (what is persisted).
func (c *Clock) Raw() uint32 { return c.c.Load() }

// Observe raises C towards v, never past now + MaxAhead. It returns by
// how many seconds v was beyond that cap (0 when within it).
func (c *Clock) Observe(v uint32) (beyond uint32) { return c.observeAt(c.Wall(), v) }

func (c *Clock) observeAt(wall, v uint32) (beyond uint32) {
	lim := c.limit(wall)
	if v > lim {
		beyond, v = v-lim, lim
	}
	for {
		cur := c.c.Load()
		if v <= cur || c.c.CompareAndSwap(cur, v) {
			return beyond
		}
	}
}

// restore sets C from persisted state at open, capped like any input: a
// clock saved far ahead (by a version without the bound, or under a wall
// clock that has since been corrected) is brought back to the cap, and
// reports by how much it was beyond it.
func (c *Clock) restore(v uint32) (beyond uint32) {
	c.c.Store(0)
	return c.Observe(v)
}

// LocalStamp is the stamp of a local change to a key whose stored stamp
// is stored (has says whether the key exists): max(now, C, stored+1). The
// key may run ahead of the wall clock on its own (stored+1 is not capped:
// the change must win over what the server held); C then rises only to
// the cap. At the u32 ceiling stored+1 does not exist, and the change
// cannot win: only a peer with a broken clock can stamp a key there.
func (c *Clock) LocalStamp(stored uint32, has bool) uint32 {
	return c.localStampAt(c.Wall(), stored, has)
}

func (c *Clock) localStampAt(wall, stored uint32, has bool) uint32 {
	s := max(wall, c.c.Load())
	if has && stored != MaxStamp && stored+1 > s {
		s = stored + 1
	}
	c.observeAt(wall, s)
	return s
}

// AheadOf reports how far stamp is past the cap right now (0 if within).
func (c *Clock) AheadOf(stamp uint32) uint32 {
	if lim := c.limit(c.Wall()); stamp > lim {
		return stamp - lim
	}
	return 0
}
