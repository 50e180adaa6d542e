package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per kind of protocol violation. A *ViolationError
// wraps exactly one of them, so callers test with errors.Is.
var (
	ErrUnknownOpcode = errors.New("unknown opcode")
	ErrBadRole       = errors.New("role byte is neither 1 (server) nor 2 (client)")
	ErrNoNUL         = errors.New("string field has no NUL terminator")
	// ErrEmptyServerName: a server's name (role-1 hello, hello reply) is
	// empty. Every other empty string is an ordinary value.
	ErrEmptyServerName = errors.New("empty server name")
	ErrListAllTooLong  = errors.New("ListAll count exceeds the limit")
)

// Encoding errors: a value that cannot be sent without breaking the protocol.
var (
	ErrValueTooLong = errors.New("value longer than its field allows")
	ErrValueHasNUL  = errors.New("value contains a NUL byte")
)

// ViolationError reports a frame that breaks the protocol. The connection
// that carried it must be closed.
type ViolationError struct {
	Kind  error  // one of the Err* sentinels above
	Frame string // which frame, e.g. "client Update"
	Field string // which field, if any, e.g. "ContactName"
	Value uint64 // offending number (opcode, role, count), if any
}

func (e *ViolationError) Error() string {
	s := "protocol violation: " + e.Frame
	if e.Field != "" {
		s += " " + e.Field
	}
	s += ": " + e.Kind.Error()
	if e.Kind == ErrUnknownOpcode || e.Kind == ErrBadRole || e.Kind == ErrListAllTooLong {
		s += fmt.Sprintf(" (%d)", e.Value)
	}
	return s
}

// Unwrap lets errors.Is match the sentinel.
func (e *ViolationError) Unwrap() error { return e.Kind }

// Reason is a short stable label for metrics and logs.
func (e *ViolationError) Reason() string {
	switch e.Kind {
	case ErrUnknownOpcode:
		return "unknown_opcode"
	case ErrBadRole:
		return "bad_role"
	case ErrNoNUL:
		return "no_nul"
	case ErrEmptyServerName:
		return "empty_server_name"
	case ErrListAllTooLong:
		return "listall_too_long"
	}
	return "other"
}

// IsViolation reports whether err is a protocol violation (as opposed to an
// I/O error or a clean end of stream).
func IsViolation(err error) bool {
	var v *ViolationError
	return errors.As(err, &v)
}
