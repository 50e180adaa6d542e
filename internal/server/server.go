package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contactstore/contactstore/internal/security"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/contactstore/contactstore/wire/connend"
	"github.com/hashicorp/go-hclog"
)

// PeerHandler takes over a connection whose hello says role Server. It
// owns conn until it returns; br may hold bytes already read past the hello.
type PeerHandler interface {
	ServePeer(ctx context.Context, conn net.Conn, br *bufio.Reader, name string)
}

// Replicator is what the client path needs of replication: the store
// logs every local change and replication feeds the log to the peers on
// its own, so a client connection only waits, before acknowledging, for
// its changes to be on the peers (Barrier), and, when it starts, for the
// server to hold its peers' state (WaitSynced).
type Replicator interface {
	// Barrier waits until every live peer holds the changes up to pos (the
	// change-log position a commit reported), or ctx ends; it reports
	// whether every peer confirmed.
	Barrier(ctx context.Context, pos store.Pos) bool
	// WaitSynced waits until the server holds its peers' state, or ctx
	// ends (false).
	WaitSynced(ctx context.Context) bool
	// Pace admits a client commit of n changes, holding it while the
	// cluster applies this server's changes more slowly than its clients
	// write them (flow control), or until ctx ends. The commit is made
	// before release is called.
	Pace(ctx context.Context, n int) (release func())
}

// Server is one contact server: the listener in front of a store it is
// given. It never opens or closes the store: whoever assembled it
// (internal/node) closes the store after Shutdown.
type Server struct {
	cfg      Config
	log      hclog.Logger
	store    *store.Store
	ln       net.Listener
	Counters Counters

	peers PeerHandler
	repl  Replicator // nil: alone, nothing to wait for

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    map[net.Conn]*connState
	adm      admission
	shutting bool
	stopping atomic.Bool    // shutting, for connReader to read without mu
	wg       sync.WaitGroup // accept loop and connection goroutines
	// untracked gets a token (never blocking) each time a connection
	// ends: StopClients waits on it for the last client to go.
	untracked chan struct{}

	shutdownOnce sync.Once

	rate     *connRate // nil: no per-address limit
	refusals refusalLog
	isMember func(net.IP) bool // nil: no address is a member's
}

// New binds the listener in front of st; Serve starts accepting. st must
// stay open until Shutdown has returned.
func New(cfg Config, st *store.Store) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("server: no store")
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// Keepalive, not a read deadline, finds clients that are gone: a client
	// may stay quiet for as long as it likes (PROTOCOL.md "Errors").
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: cfg.KeepAlive, Interval: cfg.KeepAlive, Count: keepAliveProbes}}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.ListenAddr)
	if err != nil {
		// *net.OpError says what failed where: "listen tcp 127.0.0.1:9000:
		// bind: address already in use". Callers match it with errors.Is
		// (syscall.EADDRINUSE) or errors.As.
		return nil, fmt.Errorf("contact port: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var rate *connRate
	if cfg.MaxConnRate > 0 {
		rate = newConnRate(cfg.MaxConnRate)
	}
	return &Server{rate: rate,
		cfg: cfg, log: log, store: st, ln: ln,
		ctx: ctx, cancel: cancel,
		conns: make(map[net.Conn]*connState), untracked: make(chan struct{}, 1),
		adm: admission{perAddr: map[string]int{}},
	}, nil
}

// SetPeerHandler installs the replication layer's peer handler. Without
// one, role-Server hellos are refused. Call before Serve.
func (s *Server) SetPeerHandler(h PeerHandler) { s.peers = h }

// SetReplicator installs replication. Until it reports the server synced,
// client frames wait unread (a server restarted after a crash must not
// stamp changes against a state it has not pulled yet). Call before
// Serve.
func (s *Server) SetReplicator(r Replicator) { s.repl = r }

// SetIsMember installs the test of whether an IP address is a live
// member's: a connection from one is admitted from the peer reserve when
// the client share is full (admission.go). It must be quick and must not
// call the server. Call before Serve.
func (s *Server) SetIsMember(f func(ip net.IP) bool) { s.isMember = f }

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Name is the server's name.
func (s *Server) Name() string { return s.cfg.Name }

// Serve starts the accept loop and returns at once.
func (s *Server) Serve() {
	s.log.Info("contact server listening", "name", s.cfg.Name, "addr", s.ln.Addr().String())
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) { // shutting down
				return
			}
			// Temporary failures (EMFILE, ...) must not kill the server.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if s.rate != nil {
			ip, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			if ok, logNow := s.rate.allow(ip, time.Now()); !ok {
				s.Counters.RefusedRate.Add(1)
				if logNow {
					s.log.Warn("refusing connections: too many new connections from one address", "remote", ip,
						"max_per_second", s.cfg.MaxConnRate)
				}
				_ = conn.Close()
				continue
			}
		}
		st, reason := s.admit(conn)
		if st == nil {
			if reason != "" { // counted before the close, which the other end may see at once
				s.refuse(conn.RemoteAddr().String(), reason, "accept")
			}
			_ = conn.Close()
			continue
		}
		s.Counters.Accepted.Add(1)
		go s.serveConn(conn, st)
	}
}

func (s *Server) untrack(conn net.Conn) {
	_ = conn.Close()
	s.mu.Lock()
	if st := s.conns[conn]; st != nil {
		s.releaseLocked(st)
	}
	delete(s.conns, conn)
	s.mu.Unlock()
	select {
	case s.untracked <- struct{}{}:
	default: // a token is already waiting: StopClients recounts on it
	}
	s.Counters.Active.Add(-1)
	s.wg.Done()
}

func (s *Server) serveConn(conn net.Conn, st *connState) {
	defer s.untrack(conn)
	// The handshake deadline bounds the TLS handshake and the hello
	// together; connReader re-arms it before every read of the hello and
	// drops it as soon as the hello is decoded.
	handshakeBy := time.Now().Add(s.cfg.HandshakeTimeout)
	_ = conn.SetDeadline(handshakeBy)
	tc, isTLS := conn.(*tls.Conn)
	if isTLS {
		if err := tc.Handshake(); err != nil {
			s.Counters.AddViolation("tls_handshake")
			s.log.Warn("closing connection: TLS handshake failed", "remote", conn.RemoteAddr().String(), "error", err)
			return
		}
		if st.pool == poolProbation && !s.passProbation(st, tc) {
			s.refuse(conn.RemoteAddr().String(), st.refusal, "TLS handshake: no member certificate for the peer reserve")
			return
		}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	cr := &connReader{conn: conn, stopping: &s.stopping, stage: stageHandshake, handshakeBy: handshakeBy, records: isTLS}
	br := bufio.NewReaderSize(cr, 64<<10)
	dec := wire.NewDecoder(br)
	hello, err := dec.Hello()
	if err != nil {
		s.connError(conn, "hello", "", err)
		return
	}
	s.endHandshake(st)
	if st.pool != poolClients && hello.Role != wire.RoleServer {
		s.refuse(conn.RemoteAddr().String(), st.refusal, "hello: a client on a peer-reserve slot")
		return
	}
	if hello.Role == wire.RoleServer {
		cr.stage = stagePeer // sync arms its own deadline before every read
		_ = conn.SetReadDeadline(time.Time{})
	} else {
		cr.stage, cr.idle = stageClient, s.cfg.IdleTimeout
	}
	name := string(hello.Name)
	if isTLS {
		if reason, err := s.checkCert(tc.ConnectionState(), hello.Role, name); err != nil {
			s.Counters.AddViolation(reason)
			s.log.Warn("closing connection: certificate does not fit the hello", "remote", conn.RemoteAddr().String(),
				"role", hello.Role.String(), "name", name, "reason", reason, "error", err)
			return
		}
	}
	switch hello.Role {
	case wire.RoleClient:
		s.serveClient(conn, dec, name)
	case wire.RoleServer:
		s.mu.Lock()
		st.peer = true
		s.mu.Unlock()
		if s.peers == nil {
			s.log.Warn("closing connection: role Server hello but this server is not in a cluster",
				"remote", conn.RemoteAddr().String(), "peer", name)
			s.Counters.AddViolation("peer_not_member")
			return
		}
		s.peers.ServePeer(s.ctx, conn, br, name)
	}
}

// checkCert checks the certificate a TLS connection presented against its
// hello: a role-Server hello needs a member's certificate naming the server
// in the hello; a client hello never opens a book with a member's
// certificate, and under ClientCertNames needs a user's certificate naming
// its user. It returns the violation reason with the error.
func (s *Server) checkCert(cs tls.ConnectionState, role wire.Role, name string) (string, error) {
	var err error
	prefix := "client"
	switch {
	case role == wire.RoleServer:
		prefix, err = "peer", security.CheckMember(cs, name)
	case security.PresentsMember(cs):
		err = fmt.Errorf("%w: a member's certificate never opens a book", security.ErrCertRole)
	case s.cfg.ClientCertNames:
		err = security.CheckUser(cs, name)
	}
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, security.ErrCertRole):
		return prefix + "_cert_role", err
	}
	return prefix + "_cert_name", err
}

// connError logs why a connection ended, at a level fitting the reason,
// and counts violations.
func (s *Server) connError(conn net.Conn, stage, who string, err error) {
	remote := conn.RemoteAddr().String()
	switch kind, reason := connend.Classify(err); kind {
	case connend.Violation:
		s.Counters.AddViolation(reason)
		s.log.Warn("closing connection: protocol violation", "remote", remote, "stage", stage,
			"user", who, "reason", reason, "error", err.Error())
	case connend.Timeout:
		if s.isShutting() {
			return
		}
		s.Counters.IdleClosed.Add(1)
		why := "idle timeout"
		switch stage {
		case "hello":
			why = "handshake timeout"
		case "client reply":
			why = "write timeout: the client does not read its ListAll reply"
		}
		s.log.Info("closing connection: "+why, "remote", remote, "stage", stage, "user", who)
	case connend.Lost:
		s.log.Info("closing connection: the client stopped answering (TCP keepalive)", "remote", remote,
			"stage", stage, "user", who, "error", err)
	default:
		s.log.Debug("connection ended", "remote", remote, "stage", stage, "user", who, "error", err)
	}
}

func (s *Server) isShutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// StopClients stops accepting connections and waits (bounded by ctx) for
// every client connection to finish the frames it has received; peer
// connections keep running so that the last changes can still be pushed.
func (s *Server) StopClients(ctx context.Context) {
	s.mu.Lock()
	s.shutting = true
	s.stopping.Store(true) // before the deadlines below: see connReader
	for c, st := range s.conns {
		if !st.peer {
			_ = c.SetReadDeadline(time.Now()) // unblock reads; buffered frames are still processed
		}
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	for s.clientConns() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-s.untracked: // a connection ended: count again
		}
	}
}

func (s *Server) clientConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.conns {
		if !st.peer {
			n++
		}
	}
	return n
}

// Shutdown stops accepting and lets every connection finish the frames it
// has already received and commit them (each commit is durable by the
// store's own fsync policy; closing the store syncs the rest). It leaves
// the store open for its owner to close. It is idempotent; ctx bounds the
// wait for connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.shutting = true
		s.stopping.Store(true)
		for c := range s.conns {
			// Unblock reads; buffered frames are still processed.
			_ = c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
		s.cancel()
		_ = s.ln.Close()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.Close()
			}
			s.mu.Unlock()
			<-done
		}
		s.log.Info("contact server stopped", "name", s.cfg.Name)
	})
	return nil
}
