package store

import (
	"sync/atomic"
	"time"
)

// Epoch is the zero of every stamp and clock: 2024-01-01T00:00:00Z.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// StampOf converts a wall time to the protocol's unit (seconds since Epoch),
// saturating at the ends of the u32 range.
func StampOf(t time.Time) uint32 {
	s := t.Sub(Epoch) / time.Second
	switch {
	case s < 0:
		return 0
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// TimeOf converts a stamp back to wall time.
func TimeOf(stamp uint32) time.Time { return Epoch.Add(time.Duration(stamp) * time.Second) }

// Clock is the server's hybrid logical clock C. It never goes down.
type Clock struct{ c atomic.Uint32 }

// Get returns C.
func (c *Clock) Get() uint32 { return c.c.Load() }

// Observe raises C to v if v is larger; it reports whether C rose.
func (c *Clock) Observe(v uint32) bool {
	for {
		cur := c.c.Load()
		if v <= cur {
			return false
		}
		if c.c.CompareAndSwap(cur, v) {
			return true
		}
	}
}

// localStamp is the stamp of a local change to a key whose stored stamp is
// stored (has says whether the key exists): max(now, C, stored+1).
func localStamp(now, c, stored uint32, has bool) uint32 {
	s := max(now, c)
	if has && stored != 1<<32-1 && stored+1 > s {
		s = stored + 1
	}
	return s
}
