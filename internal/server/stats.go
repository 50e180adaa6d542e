package server

import (
	"sync/atomic"

	"github.com/contactstore/contactstore/wire/connend"
)

// Counters are the server's connection counters. Exported for /metrics and
// tests; all fields are safe for concurrent use.
type Counters struct {
	Accepted          atomic.Uint64    // connections accepted
	RefusedLimit      atomic.Uint64    // connections closed because the client share (MaxConns) was full
	RefusedRate       atomic.Uint64    // connections closed because of MaxConnRate
	RefusedPerAddr    atomic.Uint64    // connections closed because of MaxConnsPerAddr
	RefusedHandshakes atomic.Uint64    // connections closed because of MaxHandshakes
	Reserved          atomic.Uint64    // connections admitted from the peer reserve
	Active            atomic.Int64     // connections open now
	ClientFrames      [4]atomic.Uint64 // client frames handled, by opcode (1 Update, 2 Delete, 3 ListAll)
	IdleClosed        atomic.Uint64    // connections closed by a deadline: handshake, idle (if set) or reply write timeout
	violations        connend.Violations
}

// Refused returns the refused connections by reason, as
// contact_connections_refused_total labels them.
func (c *Counters) Refused() map[string]uint64 {
	return map[string]uint64{
		refuseMaxConns: c.RefusedLimit.Load(), refuseRate: c.RefusedRate.Load(),
		refusePerAddr: c.RefusedPerAddr.Load(), refuseHandshakes: c.RefusedHandshakes.Load(),
	}
}

// AddViolation counts one protocol violation by reason.
func (c *Counters) AddViolation(reason string) { c.violations.Add(reason) }

// Violations returns a copy of the violation counts by reason.
func (c *Counters) Violations() map[string]uint64 { return c.violations.Snapshot() }

// TotalViolations is the sum over all reasons.
func (c *Counters) TotalViolations() uint64 { return c.violations.Total() }
