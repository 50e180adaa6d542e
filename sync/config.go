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
	// HeartbeatBudget bounds the HeartBeats a member sends a second over
	// all its peer connections (two per peer): with more peers than it
	// allows at HeartbeatInterval, every connection's interval (and the
	// silence that closes it) stretches to keep the total at the budget,
	// so a member's heartbeat work stays constant however large the
	// cluster grows. 0 means no bound.
	HeartbeatBudget int
	// DialTimeout bounds a dial plus the hello exchange.
	DialTimeout time.Duration
	// WriteTimeout closes a connection whose peer stops reading for this
	// long.
	WriteTimeout time.Duration
	// RedialBackoffMax caps the wait between dials to an unreachable peer.
	RedialBackoffMax time.Duration
	// MaxTransfers is how many snapshots are streamed at once; more wait
	// (their connections keep their heartbeats and their feeds meanwhile).
	MaxTransfers int
	// MaxBatch is how many incoming changes are staged per commit.
	MaxBatch int
	// FeedChunk is how many log changes a feed reads per step.
	FeedChunk int
	// ReconcileInterval is how often the member list is re-read.
	ReconcileInterval time.Duration
	// AntiEntropyInterval is how often digests are published and compared.
	AntiEntropyInterval time.Duration
	// AntiEntropyRounds is how many consecutive comparisons a digest must
	// differ, with neither side changing, before this server pulls.
	AntiEntropyRounds int
	// SyncTimeout bounds the initial sync: a server that cannot reach any
	// peer (or no fresher one, when its data is stale) within it serves
	// its own data and says so.
	SyncTimeout time.Duration
	// ServeLag bounds how far behind its peers a starting member may be
	// when it begins to serve: after its transfer it repeats catch-up
	// rounds with every peer until one completes within ServeLag (what
	// the peers wrote meanwhile is all it can lack), or until a round is
	// not clearly shorter than the one before (the peers write faster than
	// it applies: it serves then, and says so).
	ServeLag time.Duration
	// PaceLag is flow control's bound (pace.go): a client commit waits
	// while more than half of the serving peers, and at least two, have
	// not confirmed this member's log up to PaceLag changes behind its
	// head. 0 turns flow control off: clients then write as fast as this
	// member takes them, and peers that cannot keep up fall behind for as
	// long as the load lasts.
	PaceLag int
	// PaceAll makes flow control wait for every serving peer that is
	// behind, not only for more than half of them: every member then stays
	// within PaceLag of this one under any load, and one slow peer slows
	// the clients down to its own rate (stopped peers are still not waited
	// for, see PaceStall).
	PaceAll bool
	// PaceStall is how long a peer that is behind may confirm nothing
	// (counted from when it last had something to confirm) before flow
	// control stops waiting for it (a stopped or
	// partitioned peer is caught up by its feed later, never waited for).
	PaceStall time.Duration
	// FeedGrace is how long after a live member's feed dropped a client
	// acknowledgement still waits for the member to reconnect and confirm,
	// within the acknowledgement's own timeout.
	FeedGrace time.Duration
	// CursorSaveInterval is how often a feed saves its confirmed position
	// in the store (a confirmation waited for by a client is saved at
	// once).
	CursorSaveInterval time.Duration
	// CursorTTL is how long the log is kept for a member that is gone (dead
	// or left): after it, the member's position is forgotten and it gets a
	// snapshot if it ever comes back.
	CursorTTL time.Duration
	// MaxClockAhead is the clock bound (the store's): a peer whose clock is
	// beyond it is reported, and a server whose own wall clock
	// is further than it from most serving peers reports not-ready.
	MaxClockAhead time.Duration
	// Now is the wall clock (the store's and membership's): marks, clock
	// offsets and the clock checks read it.
	Now func() time.Time
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
		HeartbeatBudget:     64,
		DialTimeout:         3 * time.Second,
		WriteTimeout:        10 * time.Second,
		RedialBackoffMax:    2 * time.Second,
		MaxTransfers:        2,
		MaxBatch:            4096,
		FeedChunk:           4096,
		ReconcileInterval:   250 * time.Millisecond,
		AntiEntropyInterval: 2 * time.Second,
		AntiEntropyRounds:   2,
		SyncTimeout:         30 * time.Second,
		ServeLag:            time.Second,
		PaceLag:             32768,
		PaceStall:           time.Second,
		FeedGrace:           3 * time.Second,
		CursorSaveInterval:  100 * time.Millisecond,
		CursorTTL:           time.Hour,
		MaxClockAhead:       time.Minute,
		Now:                 time.Now,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Name == "" || len(c.Name) > 255:
		return errors.New("sync: server name must be 1..255 bytes")
	case c.HeartbeatInterval <= 0 || c.DialTimeout <= 0 || c.WriteTimeout <= 0 || c.RedialBackoffMax <= 0:
		return errors.New("sync: intervals and timeouts must be positive")
	case c.HeartbeatBudget < 0:
		return errors.New("sync: heartbeat budget must not be negative")
	case c.FeedGrace < 0:
		return errors.New("sync: feed grace must not be negative")
	case c.PaceLag < 0 || (c.PaceLag > 0 && c.PaceStall <= 0):
		return errors.New("sync: pace lag must not be negative, and pace stall must be positive with it")
	case c.MaxTransfers <= 0 || c.MaxBatch <= 0 || c.FeedChunk <= 0 || c.AntiEntropyRounds <= 0:
		return errors.New("sync: max transfers, max batch, feed chunk and anti-entropy rounds must be positive")
	case c.ReconcileInterval <= 0 || c.AntiEntropyInterval <= 0 || c.SyncTimeout <= 0 || c.ServeLag <= 0:
		return errors.New("sync: reconcile, anti-entropy, sync timeout and serve lag must be positive")
	case c.CursorSaveInterval <= 0 || c.CursorTTL <= 0:
		return errors.New("sync: cursor save interval and TTL must be positive")
	case c.MaxClockAhead < time.Second:
		return errors.New("sync: max clock ahead must be at least 1s")
	case c.Now == nil:
		return errors.New("sync: Now is nil")
	}
	return nil
}
