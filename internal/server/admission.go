package server

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/contactstore/contactstore/internal/security"
)

// Admission: which new connections get a slot. A slot is taken at accept,
// before anything is read, so that holding sockets open costs an address
// its own share and nobody else's:
//
//   - the client share: at most MaxConns connections, of which at most
//     MaxConnsPerAddr from one source address and at most MaxHandshakes
//     still in their handshake (TLS handshake and hello);
//   - the peer reserve: PeerReserve more slots, taken only when the client
//     share refuses a connection whose source address is a live member's
//     (Server.SetIsMember), so that no flood of clients, from however many
//     addresses, stops replication;
//   - probation: with TLS, up to PeerReserve/4 connections the client share
//     refused may finish their TLS handshake; one that presents a member's
//     certificate moves into the reserve, any other is refused for the
//     reason it was first refused. (It covers members whose connections come
//     from an address gossip does not show, e.g. through NAT.)
//
// A connection admitted from the reserve or on probation must say role
// Server in its hello: the reserve is never a way round the client share.
// Every refusal is counted by reason (Counters) and logged, at most one
// line per reason a second.

// pool is where a connection's slot came from.
type pool uint8

const (
	poolClients   pool = iota // the client share
	poolReserve               // the peer reserve: a member's address, or a member's certificate after probation
	poolProbation             // waiting for its TLS handshake to show a member's certificate
)

// Refusal reasons, as counted in contact_connections_refused_total.
const (
	refuseRate       = "conn_rate"
	refuseMaxConns   = "max_conns"
	refusePerAddr    = "max_conns_per_addr"
	refuseHandshakes = "max_handshakes"
)

// connState is the server's record of one open connection (under Server.mu).
type connState struct {
	ip          string
	pool        pool
	handshaking bool   // counted in admission.handshakes (client share only)
	peer        bool   // the hello said role Server
	refusal     string // reserve and probation: why the client share refused it
}

// admission counts the slots in use (under Server.mu).
type admission struct {
	clients    int            // client share in use
	perAddr    map[string]int // client share in use, by source address
	handshakes int            // client-share connections still in their handshake
	reserve    int            // peer reserve in use
	probation  int            // connections on probation
}

// probationSlots is how many connections may be on probation at once.
func (c Config) probationSlots() int {
	if c.TLS == nil || c.PeerReserve == 0 {
		return 0
	}
	return max(1, c.PeerReserve/4)
}

func remoteIP(conn net.Conn) string {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}

// clientShareRefusalLocked says why the client share cannot take one more
// connection from ip ("" if it can).
func (s *Server) clientShareRefusalLocked(ip string) string {
	switch {
	case s.adm.clients >= s.cfg.MaxConns:
		return refuseMaxConns
	case s.cfg.MaxConnsPerAddr > 0 && s.adm.perAddr[ip] >= s.cfg.MaxConnsPerAddr:
		return refusePerAddr
	case s.cfg.MaxHandshakes > 0 && s.adm.handshakes >= s.cfg.MaxHandshakes:
		return refuseHandshakes
	}
	return ""
}

// admit takes a slot for conn, or returns the reason it is refused ("" and
// nil when the server is shutting down). A tracked connection holds a wg
// slot until untrack.
func (s *Server) admit(conn net.Conn) (*connState, string) {
	ip := remoteIP(conn)
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		return nil, ""
	}
	reason := s.clientShareRefusalLocked(ip)
	if reason == "" {
		st := &connState{ip: ip, pool: poolClients, handshaking: true}
		s.adm.clients++
		s.adm.perAddr[ip]++
		s.adm.handshakes++
		s.trackLocked(conn, st)
		s.mu.Unlock()
		return st, ""
	}
	s.mu.Unlock()
	// The client share is full for this address: a member may still come
	// in from the reserve. isMember runs outside the lock (it reads the
	// member list).
	member := s.isMember != nil && s.cfg.PeerReserve > 0 && s.isMember(net.ParseIP(ip))
	s.mu.Lock()
	defer s.mu.Unlock()
	var st *connState
	switch {
	case s.shutting:
		return nil, ""
	case member && s.adm.reserve < s.cfg.PeerReserve:
		st = &connState{ip: ip, pool: poolReserve, refusal: reason}
		s.adm.reserve++
		s.Counters.Reserved.Add(1)
	case !member && s.adm.probation < s.cfg.probationSlots():
		st = &connState{ip: ip, pool: poolProbation, refusal: reason}
		s.adm.probation++
	default:
		return nil, reason
	}
	s.trackLocked(conn, st)
	return st, ""
}

func (s *Server) trackLocked(conn net.Conn, st *connState) {
	s.conns[conn] = st
	s.Counters.Active.Add(1)
	s.wg.Add(1)
}

// releaseLocked gives back st's slots.
func (s *Server) releaseLocked(st *connState) {
	switch st.pool {
	case poolClients:
		s.adm.clients--
		if s.adm.perAddr[st.ip]--; s.adm.perAddr[st.ip] <= 0 {
			delete(s.adm.perAddr, st.ip)
		}
	case poolReserve:
		s.adm.reserve--
	case poolProbation:
		s.adm.probation--
	}
	s.endHandshakeLocked(st)
}

// endHandshake marks st past its handshake (its hello is in, or it ended).
func (s *Server) endHandshake(st *connState) {
	s.mu.Lock()
	s.endHandshakeLocked(st)
	s.mu.Unlock()
}

func (s *Server) endHandshakeLocked(st *connState) {
	if st.handshaking {
		st.handshaking = false
		s.adm.handshakes--
	}
}

// passProbation moves a connection on probation into the reserve if its
// TLS handshake showed a member's certificate and the reserve has room.
func (s *Server) passProbation(st *connState, tc *tls.Conn) bool {
	if !security.PresentsMember(tc.ConnectionState()) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adm.reserve >= s.cfg.PeerReserve {
		st.refusal = refuseMaxConns
		return false
	}
	s.adm.probation--
	s.adm.reserve++
	st.pool = poolReserve
	s.Counters.Reserved.Add(1)
	return true
}

// refuse counts a refused connection and logs it (rate-limited per
// reason).
func (s *Server) refuse(remote, reason, when string) {
	limit := 0
	switch reason {
	case refuseMaxConns:
		s.Counters.RefusedLimit.Add(1)
		limit = s.cfg.MaxConns
	case refusePerAddr:
		s.Counters.RefusedPerAddr.Add(1)
		limit = s.cfg.MaxConnsPerAddr
	case refuseHandshakes:
		s.Counters.RefusedHandshakes.Add(1)
		limit = s.cfg.MaxHandshakes
	}
	if n, ok := s.refusals.allow(reason, time.Now()); ok {
		why := map[string]string{
			refuseMaxConns:   "the client share of connections is full",
			refusePerAddr:    "too many open connections from one address",
			refuseHandshakes: "too many connections still in their handshake",
		}[reason]
		s.log.Warn("refusing connection: "+why, "remote", remote, "reason", reason, "limit", limit,
			"when", when, "refused_since_last_line", n)
	}
}

// refusalLog rate-limits refusal log lines: one a second per reason, with
// the number refused since the last line.
type refusalLog struct {
	mu      sync.Mutex
	last    map[string]time.Time
	pending map[string]int
}

func (l *refusalLog) allow(reason string, now time.Time) (refused int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.pending = map[string]time.Time{}, map[string]int{}
	}
	l.pending[reason]++
	if now.Sub(l.last[reason]) < time.Second {
		return 0, false
	}
	refused = l.pending[reason]
	l.last[reason], l.pending[reason] = now, 0
	return refused, true
}

// Slots is a snapshot of the slots in use, by pool.
type Slots struct {
	Clients    int // client share (MaxConns)
	Handshakes int // of which still in their handshake (MaxHandshakes)
	Reserve    int // peer reserve (PeerReserve)
	Probation  int // waiting for a member's certificate
}

// Slots returns the slots in use now.
func (s *Server) Slots() Slots {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Slots{Clients: s.adm.clients, Handshakes: s.adm.handshakes, Reserve: s.adm.reserve, Probation: s.adm.probation}
}
