package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/security"
	"github.com/stretchr/testify/require"
)

// fakePeers stands in for sync: it reports the name of every role-Server
// connection it is handed, answers "peer-ok" and holds the connection
// until the other side or the server closes it.
type fakePeers struct{ got chan string }

func newFakePeers() *fakePeers { return &fakePeers{got: make(chan string, 16)} }

// install is a startServer hook: f handles peers, and isMember (if set)
// says which addresses are members'.
func (f *fakePeers) install(isMember func(net.IP) bool) func(*Server) {
	return func(s *Server) {
		s.SetPeerHandler(f)
		if isMember != nil {
			s.SetIsMember(isMember)
		}
	}
}

func (f *fakePeers) ServePeer(ctx context.Context, conn net.Conn, br *bufio.Reader, name string) {
	f.got <- name
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	_, _ = conn.Write([]byte("peer-ok"))
	_, _ = io.Copy(io.Discard, br)
}

// dialFrom opens a TCP connection to s from the loopback address ip.
func dialFrom(t testing.TB, ip string, s *Server) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.Addr().String())
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func rawFrom(t testing.TB, ip string, s *Server) *rawConn {
	t.Helper()
	c, err := dialFrom(t, ip, s)
	require.NoError(t, err)
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

// hoard opens n silent connections from ip.
func hoard(t *testing.T, ip string, s *Server, n int) {
	t.Helper()
	for range n {
		_, err := dialFrom(t, ip, s)
		require.NoError(t, err)
	}
}

// expectPeerServed sends a role-Server hello as name on c and waits for
// the peer handler's answer.
func expectPeerServed(t *testing.T, c *rawConn, peers *fakePeers, name string) {
	t.Helper()
	c.send(rawHello(1, name))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len("peer-ok"))
	_, err := io.ReadFull(c.r, buf)
	require.NoError(t, err, "the peer's connection was not served")
	require.Equal(t, "peer-ok", string(buf))
	require.Equal(t, name, <-peers.got)
}

// waitGone asserts the server ends the connection within d, by a close or
// a reset (it may close with our last frames unread).
func (c *rawConn) waitGone(d time.Duration) {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.r)
	var ne net.Error
	require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "server did not end the connection within %v", d)
}

const memberIPAddr = "127.0.0.9"

func isMemberAddr(ip net.IP) bool { return ip.Equal(net.ParseIP(memberIPAddr)) }

// One address holding thousands of idle connections gets its own share
// and no more: a client on another address is still served, and once the
// client share is full a reconnecting peer (a role-Server hello from a
// member's address) still comes in from the reserve, while clients, even
// from that member's address, do not.
func TestOneAddressHoardingConnectionsIsCapped(t *testing.T) {
	peers := newFakePeers()
	s := startServer(t, func(c *Config) {
		c.MaxConnRate = 0 // the cap on open connections is under test, not the rate
		c.MaxConns = 700
		c.MaxConnsPerAddr = 512
		c.PeerReserve = 4
	}, peers.install(isMemberAddr))

	const hoarded = 2000
	hoard(t, "127.0.0.2", s, hoarded)
	waitFor(t, 10*time.Second, "the hoarder's extra connections refused", func() bool {
		return s.Counters.RefusedPerAddr.Load() == hoarded-512
	})
	require.Equal(t, 512, s.Slots().Clients, "one address holds at most its per-address share")

	c := rawFrom(t, "127.0.0.3", s)
	c.send(rawHello(2, "alice"), rawUpdate("Juan", "1"))
	_, got := c.listAll()
	require.Equal(t, []string{"Juan=1"}, got, "a client on another address is served")

	// Fill the client share from a third address.
	hoard(t, "127.0.0.4", s, 700-s.Slots().Clients)
	waitFor(t, 5*time.Second, "the client share full", func() bool { return s.Slots().Clients == 700 })
	late := rawFrom(t, "127.0.0.5", s)
	late.waitClosed(5 * time.Second)
	require.Equal(t, uint64(1), s.Counters.RefusedLimit.Load(), "a client beyond the share is refused")

	peer := rawFrom(t, memberIPAddr, s)
	expectPeerServed(t, peer, peers, "node-9")
	require.Equal(t, 1, s.Slots().Reserve)

	sneaky := rawFrom(t, memberIPAddr, s)
	sneaky.send(rawHello(2, "alice"), rawListAll)
	sneaky.waitGone(5 * time.Second)
	require.Equal(t, uint64(2), s.Counters.RefusedLimit.Load(), "a client hello on a reserve slot is refused")
	require.Equal(t, uint64(2), s.Counters.Reserved.Load())
}

// Sockets that never finish their handshake hold at most MaxHandshakes
// slots; past that, new connections are refused until one finishes, and a
// member's still come in.
func TestConnectionsInTheirHandshakeAreCapped(t *testing.T) {
	peers := newFakePeers()
	s := startServer(t, func(c *Config) {
		c.MaxConnRate = 0
		c.MaxHandshakes = 10
		c.PeerReserve = 2
	}, peers.install(isMemberAddr))
	var silent []*rawConn
	for i := range 10 {
		silent = append(silent, rawFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%5), s))
	}
	waitFor(t, 5*time.Second, "10 handshaking", func() bool { return s.Slots().Handshakes == 10 })
	rawFrom(t, "127.0.0.8", s).waitClosed(5 * time.Second)
	require.Equal(t, uint64(1), s.Counters.RefusedHandshakes.Load())

	expectPeerServed(t, rawFrom(t, memberIPAddr, s), peers, "node-9")

	silent[0].send(rawHello(2, "bob")) // one finishes its handshake: a slot frees
	waitFor(t, 5*time.Second, "9 handshaking", func() bool { return s.Slots().Handshakes == 9 })
	c := rawFrom(t, "127.0.0.8", s)
	c.send(rawHello(2, "carol"), rawUpdate("a", "1"))
	_, got := c.listAll()
	require.Equal(t, []string{"a=1"}, got)
}

type testPKI struct {
	ca                    *security.CA
	srvCert, member, user tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	ca, err := security.NewCA(time.Hour)
	require.NoError(t, err)
	p := &testPKI{ca: ca}
	// The server is "test"; node-1 is a member; a user is called node-1
	// too, as in the attack where a user named like a member acts as it.
	p.srvCert, _, _, err = ca.IssueMember("test", []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	p.member, _, _, err = ca.IssueMember("node-1", nil, time.Hour)
	require.NoError(t, err)
	p.user, _, _, err = ca.IssueUser("node-1", time.Hour)
	require.NoError(t, err)
	return p
}

func (p *testPKI) serverTLS(requireClient bool) *tls.Config {
	return security.ServerConfig(p.srvCert, p.ca.Pool(), requireClient)
}

func tlsFrom(t *testing.T, ip string, s *Server, p *testPKI, cert *tls.Certificate) *rawConn {
	t.Helper()
	c, err := dialFrom(t, ip, s)
	require.NoError(t, err)
	cfg := security.DialConfig(cert, p.ca.Pool())
	cfg.ServerName = "test"
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	require.NoError(t, tc.Handshake())
	_ = tc.SetDeadline(time.Time{})
	return &rawConn{t: t, Conn: tc, r: bufio.NewReader(tc)}
}

// A member's certificate never opens a book, and a user's certificate
// never acts as a peer, even when the user is named like a member.
func TestCertificateRolesAreChecked(t *testing.T) {
	p := newTestPKI(t)
	peers := newFakePeers()
	s := startServer(t, func(c *Config) {
		c.TLS = p.serverTLS(false)
		c.ClientCertNames = true
	}, peers.install(nil))

	t.Run("member certificate as a client of a book", func(t *testing.T) {
		c := tlsFrom(t, "127.0.0.1", s, p, &p.member)
		c.send(rawHello(2, "node-1"), rawListAll)
		c.waitGone(5 * time.Second)
		require.Equal(t, uint64(1), s.Counters.Violations()["client_cert_role"])
	})
	t.Run("user certificate as a peer", func(t *testing.T) {
		c := tlsFrom(t, "127.0.0.1", s, p, &p.user)
		c.send(rawHello(1, "node-1"))
		c.waitGone(5 * time.Second)
		require.Equal(t, uint64(1), s.Counters.Violations()["peer_cert_role"])
	})
	t.Run("user certificate opens its own book", func(t *testing.T) {
		c := tlsFrom(t, "127.0.0.1", s, p, &p.user)
		c.send(rawHello(2, "node-1"), rawUpdate("a", "1"))
		_, got := c.listAll()
		require.Equal(t, []string{"a=1"}, got)
	})
	t.Run("member certificate as a peer", func(t *testing.T) {
		expectPeerServed(t, tlsFrom(t, "127.0.0.1", s, p, &p.member), peers, "node-1")
	})
	require.Len(t, peers.got, 0)
}

// With TLS, a member whose address gossip does not show (NAT) still gets
// in once the client share is full, by presenting a member's certificate;
// anyone else on probation is refused for the reason the share gave.
func TestMemberCertificateIsAdmittedFromTheReserve(t *testing.T) {
	p := newTestPKI(t)
	peers := newFakePeers()
	s := startServer(t, func(c *Config) {
		c.TLS = p.serverTLS(false)
		c.MaxConns = 3
		c.PeerReserve = 4
	}, peers.install(nil))
	hoard(t, "127.0.0.2", s, 3)
	waitFor(t, 5*time.Second, "the client share full", func() bool { return s.Slots().Clients == 3 })

	expectPeerServed(t, tlsFrom(t, "127.0.0.3", s, p, &p.member), peers, "node-1")
	require.Equal(t, 1, s.Slots().Reserve)

	c := tlsFrom(t, "127.0.0.3", s, p, &p.user)
	_, _ = c.Write(append(rawHello(2, "node-1"), rawListAll...)) // the server may have closed already
	c.waitGone(5 * time.Second)
	require.Equal(t, uint64(1), s.Counters.RefusedLimit.Load())
	waitFor(t, 5*time.Second, "the probation slot given back", func() bool { return s.Slots().Probation == 0 })
}
