// Package servercli is the command line of contact-server: flags, the
// CONTACT_* environment, signals, and the exit status. It configures
// internal/node, which assembles the server, and must hold no server logic
// of its own.
package servercli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/logging"
	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/internal/ops"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/contactstore/contactstore/store"
	"github.com/spf13/cobra"
)

// shutdownBudget is how long SIGTERM may take in total; it stays under the
// 5 s that process supervisors (and our contract) allow.
const shutdownBudget = 4500 * time.Millisecond

type options struct {
	name        string
	listen      string
	dataDir     string
	fsync       string
	idleTimeout time.Duration
	keepAlive   time.Duration
	maxConns    int
	perAddr     int
	handshakes  int
	peerReserve int
	logLevel    string
	logFormat   string
	grace       time.Duration
	gossip      string
	advertise   string
	join        []string
	profile     string
	rejoin      time.Duration
	httpAddr    string
	gossipKey   string
	keyring     string
	label       string
	tls         security.TLSFiles
	clientAuth  string
	httpAuth    string
	maxContacts int
	connRate    float64
	maxAhead    time.Duration
	syncTimeout time.Duration
	serveLag    time.Duration
	paceLag     int
	pacePeers   string
	clockOffset time.Duration
	cacheSize   int64
	memtable    int64
	logRetain   int
}

// Command returns the contact-server command.
func Command() *cobra.Command {
	host, _ := os.Hostname()
	if host == "" {
		host = "contact-server"
	}
	o := options{}
	cmd := &cobra.Command{
		Use:   "contact-server",
		Short: "A replicated contact store server speaking the contact protocol",
		Long: "contact-server serves contact books over the contact protocol (docs/protocol.md).\n" +
			"Every flag can also be set as CONTACT_<FLAG>, e.g. CONTACT_LISTEN=:9001.\n" +
			"Secrets stay off the command line (any local user can read it): give the gossip key as\n" +
			"CONTACT_GOSSIP_KEY or in a --gossip-keyring file. Without a gossip key, TLS and\n" +
			"--tls-client-auth verify the server is open to anyone on the network, and says so at start.",
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliutil.BindEnv(cmd.Flags(), "CONTACT_")
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return run(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", host, "server name (peers and memberlist know it by this)")
	f.StringVar(&o.listen, "listen", ":9000", "contact-protocol TCP address")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory (default ./data/<name>)")
	f.StringVar(&o.fsync, "fsync", "batch", "batch (group commit, durable at every ListAll) or always (fsync every change)")
	f.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close client connections silent this long after their hello (0: never; dead clients are found by TCP keepalive)")
	f.DurationVar(&o.keepAlive, "tcp-keepalive", 30*time.Second, "TCP keepalive period of accepted connections: a connection whose other end answers none of 4 probes is closed")
	f.IntVar(&o.maxConns, "max-conns", 10_000, "most connections served at once (clients, and peers while there is room)")
	f.IntVar(&o.perAddr, "max-conns-per-addr", 512, "most open connections from one source address, in any stage (0: no cap); members' connections past it use the peer reserve")
	f.IntVar(&o.handshakes, "max-handshakes", 1024, "most connections still in their TLS handshake or hello at once (0: no cap)")
	f.IntVar(&o.peerReserve, "peer-reserve", 128, "connections kept beyond --max-conns for members (a member's address, or with TLS a member's certificate), so a client flood never stops replication")
	f.IntVar(&o.maxContacts, "max-contacts", 100_000, "most live contacts in one book; an Update past it closes the connection (0: no cap)")
	f.Float64Var(&o.connRate, "max-conn-rate", 2000, "most new connections per second from one address (0: no cap)")
	f.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text or json")
	f.DurationVar(&o.grace, "tombstone-grace", 7*24*time.Hour, "how long delete markers are kept; a member out of contact with every serving peer longer than this refills before it serves again")
	f.DurationVar(&o.maxAhead, "max-clock-ahead", time.Minute, "no clock or stamp heard moves this server's clock further than this past its wall clock; peers beyond it are reported")
	f.DurationVar(&o.syncTimeout, "sync-timeout", 30*time.Second, "longest wait for peers at start: a member whose seeds never answer then serves its own data, alone")
	f.DurationVar(&o.serveLag, "serve-lag", time.Second, "a starting member serves once a catch-up round with every peer takes at most this long (under load it repeats rounds while they shrink)")
	f.IntVar(&o.paceLag, "pace-lag", 32768, "flow control: client writes wait while more than half of the serving peers, and at least two, are more than this many changes behind (0: never wait; peers then fall behind for as long as a load above their apply rate lasts)")
	f.StringVar(&o.pacePeers, "pace-peers", "majority", "whom flow control waits for: majority (more than half of the serving peers, and at least two: one slow peer never slows clients) or all (every serving peer stays within --pace-lag; one slow peer slows clients to its rate)")
	f.DurationVar(&o.clockOffset, "clock-offset", 0, "testing: shift this server's wall clock by this much (e.g. 720h to run it 30 days later, -1h behind)")
	f.Int64Var(&o.cacheSize, "cache-size", 128<<20, "bytes of pebble's block cache")
	f.Int64Var(&o.memtable, "memtable-size", 32<<20, "bytes of pebble's memtable (two may be in memory at once)")
	f.IntVar(&o.logRetain, "log-retain", 8<<20, "most changes kept in the change log for peers that fall behind (beyond it they get a full transfer)")
	f.StringVar(&o.gossip, "gossip", ":7946", "memberlist bind address (empty: run alone, no cluster)")
	f.StringVar(&o.advertise, "advertise", "", "address other members reach this one at (host[:port]; default: picked by memberlist)")
	f.StringSliceVar(&o.join, "join", nil, "members to join, HOST[:PORT] (repeatable or comma-separated; names are resolved)")
	f.StringVar(&o.profile, "gossip-profile", "lan", "memberlist timing preset: lan, local or wan")
	f.DurationVar(&o.rejoin, "rejoin-interval", 30*time.Second, "how often the --join members are joined again (heals partitions)")
	f.StringVar(&o.gossipKey, "gossip-key", "", "base64 of a 16, 24 or 32-byte key that encrypts gossip (all members need it). "+
		"Give it as CONTACT_GOSSIP_KEY in the environment or in --gossip-keyring: on the command line any local user can read it (ps, /proc)")
	f.StringVar(&o.keyring, "gossip-keyring", "", "file (mode 0600) with a JSON array of base64 gossip keys, the first primary (key rotation); the way to give keys")
	f.StringVar(&o.label, "gossip-label", "", "label that keeps clusters sharing a network apart")
	f.StringVar(&o.tls.Cert, "tls-cert", "", "PEM member certificate of this server (OU contact-server, its name as DNS SAN; contactctl certs makes them); enables TLS on the contact port and on --http")
	f.StringVar(&o.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.tls.CA, "tls-ca", "", "PEM CA that issued every member's (and, with verify, every user's) certificate")
	f.StringVar(&o.clientAuth, "tls-client-auth", "none", "none, or verify: a client must present a user's certificate from the CA naming its user")
	f.StringVar(&o.httpAuth, "http-client-auth", "none", "none, or verify: an HTTP client must present a certificate from the CA (needs TLS)")
	f.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "HTTP address for /metrics, /healthz, /readyz, /v1/status, /v1/members and the status page (empty disables)")
	return cmd
}

// defaultGCPercent trades a little GC CPU for a lower memory peak: at 50,
// 1M contacts peak near 215 MB instead of 265 MB, with no ingest cost we
// could measure (docs/benchmarks.md). GOGC in the environment overrides it.
const defaultGCPercent = 50

func run(o options) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	log, err := logging.New("contact-server", o.logLevel, o.logFormat, os.Stderr)
	if err != nil {
		return err
	}
	cfg := node.DefaultConfig(o.name)
	cfg.Logger = log
	cfg.Server.ListenAddr = o.listen
	cfg.Server.IdleTimeout = o.idleTimeout
	cfg.Server.KeepAlive = o.keepAlive
	cfg.Server.MaxConns = o.maxConns
	cfg.Server.MaxConnsPerAddr = o.perAddr
	cfg.Server.MaxHandshakes = o.handshakes
	cfg.Server.PeerReserve = o.peerReserve
	dir := o.dataDir
	if dir == "" {
		dir = filepath.Join("data", o.name)
	}
	cfg.Store = store.DefaultConfig(dir)
	cfg.Store.Fsync = store.FsyncMode(o.fsync)
	cfg.Store.TombstoneGrace = o.grace
	cfg.Store.MaxContactsPerBook = o.maxContacts
	cfg.Store.MaxClockAhead = o.maxAhead
	cfg.Store.CacheSize = o.cacheSize
	cfg.Store.MemTableSize = uint64(max(o.memtable, 0))
	cfg.Store.LogRetain = o.logRetain
	if o.clockOffset != 0 {
		off := o.clockOffset
		cfg.Store.Now = func() time.Time { return time.Now().Add(off) }
		log.Warn("wall clock shifted for testing (--clock-offset)", "offset", off)
	}
	cfg.Sync.SyncTimeout = o.syncTimeout
	cfg.Sync.ServeLag = o.serveLag
	cfg.Sync.PaceLag = o.paceLag
	switch o.pacePeers {
	case "majority":
	case "all":
		cfg.Sync.PaceAll = true
	default:
		return fmt.Errorf("--pace-peers must be majority or all, not %q", o.pacePeers)
	}
	cfg.Server.MaxConnRate = o.connRate
	cfg.Gossip.BindAddr = o.gossip
	cfg.Gossip.AdvertiseAddr = o.advertise
	cfg.Gossip.Profile = o.profile
	cfg.Gossip.RejoinInterval = o.rejoin
	for _, j := range o.join {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Gossip.Seeds = append(cfg.Gossip.Seeds, j)
		}
	}
	keys, err := security.GossipKeys(o.gossipKey, o.keyring)
	if err != nil {
		return err
	}
	cfg.Gossip.Keys, cfg.Gossip.Label = keys, o.label
	for _, a := range []struct{ flag, v string }{{"--tls-client-auth", o.clientAuth}, {"--http-client-auth", o.httpAuth}} {
		if a.v != "none" && a.v != "verify" {
			return fmt.Errorf("%s %q is neither none nor verify", a.flag, a.v)
		}
	}
	web := ops.DefaultConfig(o.httpAddr)
	web.Logger = log.Named("http")
	if o.tls.Enabled() {
		cert, pool, err := o.tls.Load()
		if err != nil {
			return err
		}
		cfg.Server.TLS = security.ServerConfig(cert, pool, false)
		cfg.Server.ClientCertNames = o.clientAuth == "verify"
		// DialConfig checks that every peer dialed presents a member's
		// certificate (security.VerifyMemberServer); sync clones it.
		cfg.Sync.TLS = security.DialConfig(&cert, pool)
		web.TLS = security.ServerConfig(cert, pool, o.httpAuth == "verify")
	} else if o.clientAuth == "verify" || o.httpAuth == "verify" {
		return fmt.Errorf("--tls-client-auth verify and --http-client-auth verify need --tls-cert, --tls-key and --tls-ca")
	}
	if !cfg.Clustered() && len(cfg.Gossip.Seeds) > 0 {
		return fmt.Errorf("--join needs --gossip")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if o.httpAddr != "" {
		if err := web.Validate(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	metrics := ops.NewMetrics()
	cfg.Store.OnSync = metrics.ObserveFsync
	if warning := ops.Posture(cfg).Warning(); warning != "" {
		log.Warn(warning)
	}
	n, err := node.Start(cfg)
	if err != nil {
		return err
	}
	var httpSrv *ops.Server
	if o.httpAddr != "" {
		if err := metrics.Attach(n); err == nil {
			httpSrv, err = ops.Start(web, n, metrics)
		}
		if err != nil {
			_ = n.Shutdown(context.Background())
			return err
		}
	}
	<-ctx.Done()
	log.Info("signal received, shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	err = n.Shutdown(sctx) // /readyz keeps answering 503 "leaving" meanwhile
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if errors.Is(sctx.Err(), context.DeadlineExceeded) {
		log.Warn("shutdown budget exceeded; remaining connections were closed")
	}
	return nil
}
