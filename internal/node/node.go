// Package node assembles one cluster member: it opens the store, hands it
// to the contact server and to the replication manager, joins memberlist,
// and starts and stops them in the order that loses nothing. It owns the
// store's lifetime (it closes it last) and the member's name. It holds no
// protocol or merge logic.
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
	"github.com/contactstore/contactstore/store"
	csync "github.com/contactstore/contactstore/sync"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
)

// Config configures a Node.
type Config struct {
	// Name is the member's name: its memberlist node name, the name in its
	// hellos to peers, and the name in its logs. It is the one source of
	// truth: an empty Name in Server, Gossip or Sync is filled from it, and
	// a different one is a configuration error.
	Name string
	// Store configures the durable store, which the node opens first and
	// closes last. Its Now is the member's one clock: the node hands it to
	// membership and sync too, and sync gets the store's MaxClockAhead.
	Store store.Config
	// Server configures the contact server (listener, limits, TLS).
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

// DefaultConfig returns the defaults for a node called name, its data in
// data/<name>.
func DefaultConfig(name string) Config {
	return Config{
		Name:         name,
		Store:        store.DefaultConfig("data/" + name),
		Server:       server.DefaultConfig(""),
		Gossip:       membership.DefaultConfig(""),
		Sync:         csync.DefaultConfig(""),
		LeaveTimeout: time.Second,
	}
}

// Clustered reports whether gossip is enabled.
func (c Config) Clustered() bool { return c.Gossip.BindAddr != "" }

// named returns c with the components' names filled from c.Name, or an
// error if one was set to another name.
func (c Config) named() (Config, error) {
	if c.Name == "" {
		return c, errors.New("server name is empty")
	}
	for _, sub := range []struct {
		what string
		name *string
	}{{"server", &c.Server.Name}, {"gossip", &c.Gossip.Name}, {"sync", &c.Sync.Name}} {
		if *sub.name != "" && *sub.name != c.Name {
			return c, fmt.Errorf("the %s config is named %q but the node %q: set only the node's name", sub.what, *sub.name, c.Name)
		}
		*sub.name = c.Name
	}
	return c, nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	c, err := c.named()
	if err != nil {
		return err
	}
	if err := c.Server.Validate(); err != nil {
		return err
	}
	if err := c.Store.Validate(); err != nil {
		return err
	}
	if !c.Clustered() {
		return nil
	}
	if err := c.Gossip.Validate(); err != nil {
		return err
	}
	return c.Sync.Validate()
}

// Node is one running member.
type Node struct {
	cfg     Config
	log     hclog.Logger
	Store   *store.Store
	Server  *server.Server
	Members *membership.Membership // nil when not clustered
	Sync    *csync.Manager         // nil when not clustered
}

// Start opens the store, binds the listener, joins the cluster and starts
// replication. On error everything started is stopped again.
func Start(cfg Config) (*Node, error) {
	cfg, err := cfg.named()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg.Server.Logger = log
	if cfg.Store.Now == nil {
		cfg.Store.Now = time.Now
	}
	cfg.Gossip.Now, cfg.Sync.Now = cfg.Store.Now, cfg.Store.Now
	cfg.Sync.MaxClockAhead = cfg.Store.MaxClockAhead
	st, err := store.Open(cfg.Store, log.Named("store"))
	if err != nil {
		return nil, err
	}
	srv, err := server.New(cfg.Server, st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, Store: st, Server: srv}
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
		StoreID:     st.StoreID(),
		Published: membership.Published{Digest: st.Digest(), Mark: st.Mark(),
			Health: uint8(wire.HealthSyncing)}, // until sync publishes its own
	}
	cfg.Gossip.Logger = log.Named("membership")
	mem, err := membership.New(cfg.Gossip)
	if err != nil {
		n.stopServerAndStore(context.Background())
		return nil, err
	}
	if cfg.Sync.LocalIP == nil && isLocalIP(mem.LocalIP()) {
		cfg.Sync.LocalIP = mem.LocalIP()
	}
	cfg.Sync.Logger = log.Named("sync")
	mgr, err := csync.New(cfg.Sync, st, mem)
	if err != nil {
		_ = mem.Shutdown()
		n.stopServerAndStore(context.Background())
		return nil, err
	}
	srv.SetIsMember(memberIP(mem, cfg.Name))
	srv.SetPeerHandler(mgr)
	srv.SetReplicator(mgr)
	n.Members, n.Sync = mem, mgr
	srv.Serve()
	mgr.Start()
	mem.Start()
	log.Info("cluster member started", "name", cfg.Name, "gossip", cfg.Gossip.BindAddr, "seeds", cfg.Gossip.Seeds,
		"profile", cfg.Gossip.Profile, "contact_port", cfg.Gossip.Meta.ContactPort)
	return n, nil
}

// stopServerAndStore stops the server (bounded by ctx), then closes the
// store, which nothing uses any more.
func (n *Node) stopServerAndStore(ctx context.Context) error {
	return errors.Join(n.Server.Shutdown(ctx), n.Store.Close())
}

// Shutdown leaves gracefully: heartbeats say "leaving", client connections
// finish, the last changes drain to the peers, memberlist announces the
// leave, then sync, membership and the server stop, and the store closes
// last. ctx bounds the whole sequence.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.Sync == nil {
		return n.stopServerAndStore(ctx)
	}
	n.Sync.SetLeaving()
	n.Server.StopClients(ctx)
	n.Sync.Drain(ctx)
	if err := n.Members.Leave(n.cfg.LeaveTimeout); err != nil {
		n.log.Warn("graceful leave failed", "error", err)
	}
	n.Sync.Shutdown(ctx)
	return errors.Join(n.Members.Shutdown(), n.stopServerAndStore(ctx))
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
	_ = n.stopServerAndStore(ctx)
}

// Config returns the configuration the node runs with (names filled in).
func (n *Node) Config() Config { return n.cfg }

// Ready reports whether the node serves with a complete initial sync (and
// its clock agrees with its peers').
func (n *Node) Ready() bool { return n.Sync == nil || n.Sync.Ready() }

// NotReadyReason says why Ready is false ("" when it is true).
func (n *Node) NotReadyReason() string {
	if n.Sync == nil {
		return ""
	}
	return n.Sync.NotReadyReason()
}

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

// memberIP reports whether an address is a live member's (gossip or
// contact address; this node's own excluded): the server admits such
// connections from its peer reserve when the client share is full.
func memberIP(mem *membership.Membership, self string) func(net.IP) bool {
	return func(ip net.IP) bool {
		for _, m := range mem.Members() {
			if m.Name != self && m.Alive() && (m.IP.Equal(ip) || net.ParseIP(m.Meta.ContactHost).Equal(ip)) {
				return true
			}
		}
		return false
	}
}
