// Package node assembles one cluster member: the contact server, its
// memberlist membership and the replication manager, started and stopped
// in the order that loses nothing. It holds no protocol or merge logic.
package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/contactstore/contactstore/internal/server"
	"github.com/contactstore/contactstore/membership"
	csync "github.com/contactstore/contactstore/sync"
	"github.com/hashicorp/go-hclog"
)

// Config configures a Node.
type Config struct {
	// Server configures the contact server (name, listener, store).
	Server server.Config
	// Gossip configures membership; an empty BindAddr runs the server
	// alone, without memberlist or replication.
	Gossip membership.Config
	// Sync configures replication.
	Sync csync.Config
	// LeaveTimeout bounds memberlist's graceful leave.
	LeaveTimeout time.Duration
	// Logger is the root logger.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults for a node called name.
func DefaultConfig(name string) Config {
	return Config{
		Server:       server.DefaultConfig(name),
		Gossip:       membership.DefaultConfig(name),
		Sync:         csync.DefaultConfig(name),
		LeaveTimeout: time.Second,
	}
}

// Clustered reports whether gossip is enabled.
func (c Config) Clustered() bool { return c.Gossip.BindAddr != "" }

// Node is one running member.
type Node struct {
	cfg     Config
	log     hclog.Logger
	Server  *server.Server
	Members *membership.Membership // nil when not clustered
	Sync    *csync.Manager         // nil when not clustered
}

// Start opens the store, binds the listener, joins the cluster and starts
// replication. On error everything started is stopped again.
func Start(cfg Config) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	name := cfg.Server.Name
	cfg.Server.Logger = log
	cfg.Gossip.Name, cfg.Sync.Name = name, name
	if cfg.Clustered() && len(cfg.Gossip.Seeds) > 0 {
		// Peers exist to refill from, so data older than the grace period
		// is discarded rather than offered (PROTOCOL.md).
		cfg.Server.Store.DiscardStale = true
	}
	srv, err := server.New(cfg.Server)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, Server: srv}
	if !cfg.Clustered() {
		srv.Serve()
		return n, nil
	}
	host, _, _ := net.SplitHostPort(cfg.Server.ListenAddr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "" // peers use our gossip address
	}
	cfg.Gossip.Meta = membership.Meta{
		ContactHost: host,
		ContactPort: uint16(srv.Addr().(*net.TCPAddr).Port),
		BootID:      bootID(),
		Digest:      srv.Store().Digest(),
		Health:      2,
	}
	cfg.Gossip.Logger = log.Named("membership")
	mem, err := membership.New(cfg.Gossip)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, err
	}
	if cfg.Sync.LocalIP == nil && isLocalIP(mem.LocalIP()) {
		cfg.Sync.LocalIP = mem.LocalIP()
	}
	cfg.Sync.Logger = log.Named("sync")
	mgr, err := csync.New(cfg.Sync, srv.Store(), mem)
	if err != nil {
		_ = mem.Shutdown()
		_ = srv.Shutdown(context.Background())
		return nil, err
	}
	srv.SetPeerHandler(mgr)
	srv.SetReplicator(replicator{mgr})
	srv.SetSynced(mgr.Synced)
	n.Members, n.Sync = mem, mgr
	srv.Serve()
	mgr.Start()
	mem.Start()
	log.Info("cluster member started", "name", name, "gossip", cfg.Gossip.BindAddr, "seeds", cfg.Gossip.Seeds,
		"profile", cfg.Gossip.Profile, "contact_port", cfg.Gossip.Meta.ContactPort)
	return n, nil
}

// Shutdown leaves gracefully: heartbeats say "leaving", client connections
// finish, the last changes drain to the peers, memberlist announces the
// leave, then everything closes. ctx bounds the whole sequence.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.Sync == nil {
		return n.Server.Shutdown(ctx)
	}
	n.Sync.SetLeaving()
	n.Server.StopClients(ctx)
	n.Sync.Drain(ctx)
	if err := n.Members.Leave(n.cfg.LeaveTimeout); err != nil {
		n.log.Warn("graceful leave failed", "error", err)
	}
	n.Sync.Shutdown(ctx)
	return errors.Join(n.Members.Shutdown(), n.Server.Shutdown(ctx))
}

// Kill stops the node abruptly, as close to kill -9 as one process allows:
// no leave, no drain; peers detect the failure. What was committed stays
// on disk (the store is closed, not corrupted).
func (n *Node) Kill() {
	if n.Members != nil {
		_ = n.Members.Shutdown()
	}
	if n.Sync != nil {
		n.Sync.Abort()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = n.Server.Shutdown(ctx)
}

// Ready reports whether the node serves with a complete initial sync.
func (n *Node) Ready() bool { return n.Sync == nil || n.Sync.Ready() }

func bootID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return binary.BigEndian.Uint64(b[:])
}

func isLocalIP(ip net.IP) bool {
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// replicator adapts *sync.Manager to server.Replicator (sync does not
// import the server, so NewStream returns its own type).
type replicator struct{ *csync.Manager }

func (r replicator) NewStream() server.ChangeStream { return r.Manager.NewStream() }
