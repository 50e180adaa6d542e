// Package connend says why a contact-protocol connection ended, and counts
// the violations among those ends. Both ends of the protocol inside a
// server use it, client connections (internal/server) and peer connections
// (sync), so that the two classify, log and count alike and /metrics
// labels their violations the same way.
//
// It sits beside wire, not in it: wire decodes frames and reports typed
// violations but keeps no state; this package turns the error that ended
// a connection into a verdict and keeps the tally. It imports only wire
// and the standard library, does no I/O, and knows no store, peer or
// metrics exporter.
package connend

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/contactstore/contactstore/wire"
)

// Kind is why a connection ended, as the error its reader returned tells.
type Kind uint8

const (
	// Closed: the remote hung up between frames (io.EOF), or this side
	// closed the connection (net.ErrClosed), or there was no error.
	Closed Kind = iota
	// Timeout: a read or write deadline this side armed passed (a
	// handshake too slow, an idle client, a silent peer, a reader that
	// stopped reading).
	Timeout
	// Lost: the remote stopped answering at the TCP level (keepalive or
	// retransmissions timed out: ETIMEDOUT, or another timeout that is not
	// one of our deadlines).
	Lost
	// Violation: the remote broke the protocol (a *wire.ViolationError).
	// The connection is closed and the violation logged with its reason
	// and counted.
	Violation
	// Broken: any other I/O error, such as a reset or a frame cut short
	// (truncation is not a violation: docs/protocol.md).
	Broken
)

func (k Kind) String() string {
	switch k {
	case Closed:
		return "closed"
	case Timeout:
		return "timeout"
	case Lost:
		return "lost"
	case Violation:
		return "violation"
	case Broken:
		return "broken"
	}
	return "unknown"
}

// Classify says how err ended a connection and, for a Violation, its
// reason (wire.ViolationError.Reason, a metrics label). A violation wins
// over anything else the error may also wrap.
func Classify(err error) (kind Kind, reason string) {
	var v *wire.ViolationError
	var timeout interface{ Timeout() bool } // net.Error's, without its deprecated Temporary
	switch {
	case err == nil:
		return Closed, ""
	case errors.As(err, &v):
		return Violation, v.Reason()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Timeout, ""
	case errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &timeout) && timeout.Timeout():
		return Lost, ""
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return Closed, ""
	}
	return Broken, ""
}

// Violations counts protocol violations by reason: the reasons Classify
// returns, and those a server adds for connections it refuses on its own
// terms ("tls_handshake", "peer_not_member", "book_full", ...). The zero
// value is ready; it is safe for concurrent use.
type Violations struct {
	mu sync.Mutex
	n  map[string]uint64
}

// Add counts one violation for reason.
func (v *Violations) Add(reason string) {
	v.mu.Lock()
	if v.n == nil {
		v.n = map[string]uint64{}
	}
	v.n[reason]++
	v.mu.Unlock()
}

// Snapshot returns a copy of the counts by reason.
func (v *Violations) Snapshot() map[string]uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]uint64, len(v.n))
	for r, c := range v.n {
		out[r] = c
	}
	return out
}

// Total is the sum over all reasons.
func (v *Violations) Total() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var t uint64
	for _, c := range v.n {
		t += c
	}
	return t
}
