package server

import (
	"sync"
	"sync/atomic"
)

// Counters are the server's connection counters. Exported for /metrics and
// tests; all fields are safe for concurrent use.
type Counters struct {
	Accepted      atomic.Uint64    // connections accepted
	RefusedLimit  atomic.Uint64    // connections closed because of MaxConns
	RefusedRate   atomic.Uint64    // connections closed because of MaxConnRate
	Active        atomic.Int64     // connections open now
	ClientFrames  [4]atomic.Uint64 // client frames handled, by opcode (1 Update, 2 Delete, 3 ListAll)
	IdleClosed    atomic.Uint64    // connections closed by a deadline: handshake, idle (if set) or reply write timeout
	violationsMu  sync.Mutex
	violationsMap map[string]uint64
}

// AddViolation counts one protocol violation by reason.
func (c *Counters) AddViolation(reason string) {
	c.violationsMu.Lock()
	if c.violationsMap == nil {
		c.violationsMap = map[string]uint64{}
	}
	c.violationsMap[reason]++
	c.violationsMu.Unlock()
}

// Violations returns a copy of the violation counts by reason.
func (c *Counters) Violations() map[string]uint64 {
	c.violationsMu.Lock()
	defer c.violationsMu.Unlock()
	out := make(map[string]uint64, len(c.violationsMap))
	for k, v := range c.violationsMap {
		out[k] = v
	}
	return out
}

// TotalViolations is the sum over all reasons.
func (c *Counters) TotalViolations() uint64 {
	var n uint64
	for _, v := range c.Violations() {
		n += v
	}
	return n
}
