package server

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Server.
type Config struct {
	// Name is this server's name, for its logs (internal/node sets it from
	// the member's name).
	Name string
	// ListenAddr is the contact-protocol TCP address, e.g. ":9000".
	ListenAddr string
	// HandshakeTimeout bounds how long a new connection may take, from
	// accept, to finish its TLS handshake (with TLS) and send its hello.
	// It ends with the hello: it never applies to a later read.
	HandshakeTimeout time.Duration
	// IdleTimeout, if positive, closes a client connection that sends no
	// byte for this long once its hello is in (re-armed before every read,
	// and not running while the server holds the connection for its first
	// sync). 0, the default, never closes a client for being quiet:
	// interactive clients sit at a menu for minutes (PROTOCOL.md "Errors"),
	// and KeepAlive finds the ones that are gone. Peer connections have
	// their own silence rule (sync).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write of a ListAll reply (in chunks of
	// 64 KiB): a client that reads nothing of its reply for this long is
	// disconnected, so it cannot pin the connection's goroutine and buffers
	// forever. It applies whatever IdleTimeout is.
	WriteTimeout time.Duration
	// KeepAlive is the TCP keepalive period of accepted connections: after
	// this long without traffic the kernel sends a probe, then one every
	// KeepAlive; a connection whose other end answers none of 4 probes
	// (a host powered off, a cable cut) is closed, about 5 x KeepAlive
	// after its last traffic. A live but quiet client answers the probes
	// from its kernel and is kept.
	KeepAlive time.Duration
	// MaxConns is the client share: the most connections served at once
	// (clients, and peers while there is room); more are closed at once,
	// except a member's, which PeerReserve takes (admission.go).
	MaxConns int
	// MaxConnsPerAddr caps the client share's connections from one source
	// address, whatever stage they are in, so that one address cannot hold
	// the slots everyone shares. 0: no cap.
	MaxConnsPerAddr int
	// MaxHandshakes caps the client share's connections still in their
	// handshake (TLS handshake and hello, each bounded by HandshakeTimeout),
	// so that sockets that never speak cannot crowd out clients that do.
	// 0: no cap.
	MaxHandshakes int
	// PeerReserve is how many more connections, beyond MaxConns, are kept
	// for members: a connection the client share refuses is admitted from
	// the reserve when its source address is a live member's (SetIsMember)
	// or, with TLS, when it presents a member's certificate; it must then
	// say role Server. 0: no reserve.
	PeerReserve int
	// ReplicaAckTimeout bounds how long a ListAll reply waits, after the
	// local fsync, for the connected peers to confirm they have applied
	// the connection's changes.
	ReplicaAckTimeout time.Duration
	// SyncWaitTimeout bounds how long client frames wait for the server to
	// finish its initial sync.
	SyncWaitTimeout time.Duration
	// MaxConnRate caps new connections per second from one source address
	// (a burst of as many is allowed); more are closed at once. 0: no cap.
	MaxConnRate float64
	// MaxBatch is how many changes a connection stages before it commits
	// even if more input is buffered.
	MaxBatch int
	// TLS, if set, wraps the contact port: peers must then present a
	// member's certificate from the CA naming the server their hello names
	// (security.CheckMember), and no client opens a book with a member's
	// certificate.
	TLS *tls.Config
	// ClientCertNames makes a client present a user's certificate from the
	// CA whose CN equals the user in its hello (--tls-client-auth verify).
	ClientCertNames bool
	// Logger receives all logs; nil discards them.
	Logger hclog.Logger
}

// keepAliveProbes is how many unanswered TCP keepalive probes close a
// connection (Config.KeepAlive).
const keepAliveProbes = 4

// DefaultConfig returns the defaults for a server called name.
func DefaultConfig(name string) Config {
	return Config{
		Name:              name,
		ListenAddr:        ":9000",
		HandshakeTimeout:  10 * time.Second,
		IdleTimeout:       0, // off: see IdleTimeout
		WriteTimeout:      30 * time.Second,
		KeepAlive:         30 * time.Second,
		MaxConns:          10_000,
		MaxConnsPerAddr:   512,
		MaxHandshakes:     1024,
		PeerReserve:       128,
		MaxBatch:          4096,
		ReplicaAckTimeout: 500 * time.Millisecond,
		SyncWaitTimeout:   30 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("server name is empty")
	case len(c.Name) > 255:
		return errors.New("server name is longer than 255 bytes")
	case c.HandshakeTimeout <= 0:
		return errors.New("handshake timeout must be positive")
	case c.IdleTimeout < 0:
		return errors.New("idle timeout must not be negative (0 turns it off)")
	case c.WriteTimeout <= 0:
		return errors.New("write timeout must be positive")
	case c.KeepAlive <= 0:
		return errors.New("TCP keepalive period must be positive")
	case c.MaxConns <= 0:
		return errors.New("max conns must be positive")
	case c.MaxConnsPerAddr < 0 || c.MaxHandshakes < 0 || c.PeerReserve < 0:
		return errors.New("max conns per address, max handshakes and the peer reserve must not be negative (0 turns them off)")
	case c.MaxBatch <= 0:
		return errors.New("max batch must be positive")
	case c.MaxConnRate < 0:
		return errors.New("max conn rate must not be negative")
	case c.ReplicaAckTimeout < 0 || c.SyncWaitTimeout < 0:
		return errors.New("replica ack and sync wait timeouts must not be negative")
	}
	return nil
}
