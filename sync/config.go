package sync

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Manager.
type Config struct {
	// Name is this server's name, sent in hellos.
	Name string
	// HeartbeatInterval is how often a HeartBeat goes out on every peer
	// connection; a connection silent for three intervals is closed.
	HeartbeatInterval time.Duration
	// DialTimeout bounds a dial plus the hello exchange.
	DialTimeout time.Duration
	// WriteTimeout closes a connection whose peer stops reading for this
	// long.
	WriteTimeout time.Duration
	// RedialBackoffMax caps the wait between dials to an unreachable peer.
	RedialBackoffMax time.Duration
	// QueueBytes bounds each peer's outbound queue; a peer that falls this
	// far behind is disconnected (and resyncs by AskForUpdate).
	QueueBytes int
	// MaxTransfers is how many AskForUpdate transfers are served at once;
	// more wait, so a mass restart does not starve clients.
	MaxTransfers int
	// MaxBatch is how many incoming changes are staged per commit.
	MaxBatch int
	// ReconcileInterval is how often the member list is re-read.
	ReconcileInterval time.Duration
	// AntiEntropyInterval is how often digests are published and compared.
	AntiEntropyInterval time.Duration
	// AntiEntropyRounds is how many consecutive comparisons a digest must
	// differ, with neither side changing, before this server pulls.
	AntiEntropyRounds int
	// InitialSyncTimeout is the longest a server reports "syncing" while
	// waiting for peers it cannot reach.
	InitialSyncTimeout time.Duration
	// FeedGrace is how long after a live member's feed (the connection it
	// dialed to us) dropped a client acknowledgement still waits for the
	// member to reconnect and catch up, within the acknowledgement's own
	// timeout. Longer than a redial, shorter than failure detection: a
	// member that is really gone slows acknowledgements for this long.
	FeedGrace time.Duration
	// LocalIP, if set, is the source address of dialed peer connections, so
	// that peers can match it against this node's member address.
	LocalIP net.IP
	// Dialer replaces TCP dialing (TLS, tests).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, if set, wraps every dialed peer connection; ServerName is set to
	// the member's name, so the peer's certificate must name it.
	TLS *tls.Config
	// AllowPeer, if set, is asked before accepting a role-Server hello
	// (tests use it to cut the network).
	AllowPeer func(name string, remote net.Addr) bool
	// Logger receives sync logs.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults for a server called name.
func DefaultConfig(name string) Config {
	return Config{
		Name:                name,
		HeartbeatInterval:   time.Second,
		DialTimeout:         3 * time.Second,
		WriteTimeout:        10 * time.Second,
		RedialBackoffMax:    2 * time.Second,
		QueueBytes:          64 << 20,
		MaxTransfers:        2,
		MaxBatch:            4096,
		ReconcileInterval:   250 * time.Millisecond,
		AntiEntropyInterval: 2 * time.Second,
		AntiEntropyRounds:   2,
		InitialSyncTimeout:  30 * time.Second,
		FeedGrace:           3 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Name == "" || len(c.Name) > 255:
		return errors.New("sync: server name must be 1..255 bytes")
	case c.HeartbeatInterval <= 0 || c.DialTimeout <= 0 || c.WriteTimeout <= 0 || c.RedialBackoffMax <= 0:
		return errors.New("sync: intervals and timeouts must be positive")
	case c.FeedGrace < 0:
		return errors.New("sync: feed grace must not be negative")
	case c.QueueBytes < 64<<10:
		return errors.New("sync: queue bytes must be at least 64 KiB")
	case c.MaxTransfers <= 0 || c.MaxBatch <= 0 || c.AntiEntropyRounds <= 0:
		return errors.New("sync: max transfers, max batch and anti-entropy rounds must be positive")
	case c.ReconcileInterval <= 0 || c.AntiEntropyInterval <= 0 || c.InitialSyncTimeout <= 0:
		return errors.New("sync: reconcile, anti-entropy and initial sync intervals must be positive")
	}
	return nil
}
