package clustertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

func TestMemberWithAnotherGossipKeyCannotJoin(t *testing.T) {
	good, bad := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	h := New(t, 2, Options{BaseIP: 220, Tune: func(i int, c *node.Config) {
		c.Gossip.Keys = [][]byte{good}
		if i == 1 {
			c.Gossip.Keys = [][]byte{bad}
		}
	}})
	// A third member with the right key joins; by then the wrong-key member
	// has tried many times.
	third := h.Add()
	h.WaitFor(20*time.Second, "node-2 joins node-0", func() bool {
		_, ok := h.Node(0).Node.Members.Lookup(third.Name)
		return ok && third.Node.Ready()
	})
	_, ok := h.Node(0).Node.Members.Lookup("node-1")
	require.False(t, ok, "a member with another gossip key must not join")
	require.False(t, h.Node(1).Node.Members.Joined())
}

type pki struct {
	ca    *security.CA
	certs map[string]tls.Certificate
}

// newPKI makes a CA with member certificates for servers and user
// certificates for users.
func newPKI(t *testing.T, servers []string, users ...string) *pki {
	ca, err := security.NewCA(time.Hour)
	require.NoError(t, err)
	p := &pki{ca: ca, certs: map[string]tls.Certificate{}}
	for _, n := range servers {
		c, _, _, err := ca.IssueMember(n, nil, time.Hour)
		require.NoError(t, err)
		p.certs[n] = c
	}
	for _, n := range users {
		c, _, _, err := ca.IssueUser(n, time.Hour)
		require.NoError(t, err)
		p.certs[n] = c
	}
	return p
}

// tlsTune gives node i the certificate named certName(i).
func (p *pki) tune(certName func(i int) string, clientNames bool) func(int, *node.Config) {
	return func(i int, c *node.Config) {
		cert := p.certs[certName(i)]
		c.Server.TLS = security.ServerConfig(cert, p.ca.Pool(), false)
		c.Server.ClientCertNames = clientNames
		c.Sync.TLS = security.DialConfig(&cert, p.ca.Pool())
	}
}

func (p *pki) client(t *testing.T, addr, serverName, user, certName string) (*client.Client, error) {
	var cert *tls.Certificate
	if c, ok := p.certs[certName]; ok {
		cert = &c
	}
	opts := client.DefaultOptions()
	opts.IOTimeout = 3 * time.Second
	opts.Dialer = client.TLSDialer(security.DialConfig(cert, p.ca.Pool()), serverName)
	return client.Dial(context.Background(), []string{addr}, user, opts)
}

func TestTLSClusterReplicatesAndRefusesWhatItMust(t *testing.T) {
	p := newPKI(t, []string{"node-0", "node-1", "node-2"}, "alice")
	h := New(t, 3, Options{BaseIP: 230, Tune: p.tune(func(i int) string { return fmt.Sprintf("node-%d", i) }, true)})
	h.WaitConverged(20 * time.Second)

	t.Run("replicates over TLS", func(t *testing.T) {
		c, err := p.client(t, h.Node(0).ContactAddr(), "node-0", "alice", "alice")
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Update("Juan", "1"))
		_, err = c.List()
		require.NoError(t, err)
		h.WaitConverged(10 * time.Second)
		require.Equal(t, []string{"Juan=1"}, h.List(2, "alice"))
	})

	t.Run("client certificate naming another user", func(t *testing.T) {
		before := h.Node(1).Node.Server.Counters.Violations()["client_cert_name"]
		c, err := p.client(t, h.Node(1).ContactAddr(), "node-1", "bob", "alice")
		require.NoError(t, err)
		defer c.Close()
		_, err = c.List()
		require.Error(t, err, "bob's book must not open with alice's certificate")
		require.Equal(t, before+1, h.Node(1).Node.Server.Counters.Violations()["client_cert_name"])
	})

	t.Run("member certificate as a client of a book", func(t *testing.T) {
		before := h.Node(1).Node.Server.Counters.Violations()["client_cert_role"]
		c, err := p.client(t, h.Node(1).ContactAddr(), "node-1", "node-0", "node-0")
		require.NoError(t, err)
		defer c.Close()
		_, err = c.List()
		require.Error(t, err, "a member's certificate must not open the book named after the member")
		require.Equal(t, before+1, h.Node(1).Node.Server.Counters.Violations()["client_cert_role"])
	})

	t.Run("client without a certificate", func(t *testing.T) {
		c, err := p.client(t, h.Node(1).ContactAddr(), "node-1", "alice", "")
		if err == nil {
			_, err = c.List()
			c.Close()
		}
		require.Error(t, err)
	})

	t.Run("plain TCP to the TLS port", func(t *testing.T) {
		before := h.Node(0).Node.Server.Counters.Violations()["tls_handshake"]
		conn, err := net.Dial("tcp", h.Node(0).ContactAddr())
		require.NoError(t, err)
		defer conn.Close()
		hello, _ := wire.AppendHello(nil, wire.RoleClient, []byte("alice"))
		_, _ = conn.Write(append(hello, byte(wire.ClientListAll)))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := conn.Read(buf); err != nil {
				break // the server closes it (after at most a TLS alert)
			}
		}
		h.WaitFor(5*time.Second, "the handshake failure counted", func() bool {
			return h.Node(0).Node.Server.Counters.Violations()["tls_handshake"] == before+1
		})
	})
}

func TestPeerWhoseCertificateNamesAnotherServerIsRefused(t *testing.T) {
	p := newPKI(t, []string{"node-0", "node-1"})
	// node-2 holds node-1's certificate: it cannot prove it is node-2.
	h := New(t, 2, Options{BaseIP: 240, Tune: p.tune(func(i int) string {
		if i == 2 {
			return "node-1"
		}
		return fmt.Sprintf("node-%d", i)
	}, false)})
	h.WaitConverged(20 * time.Second)
	h.Add()
	h.WaitFor(20*time.Second, "node-0 refuses node-2's hello", func() bool {
		return h.Node(0).Node.Server.Counters.Violations()["peer_cert_name"] > 0
	})
	require.False(t, h.Node(2).Node.Ready(), "node-2 never gets a peer's state")
	c, err := p.client(t, h.Node(1).ContactAddr(), "node-1", "zoe", "")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Update("still", "replicates"))
	_, err = c.List()
	require.NoError(t, err)
	h.WaitFor(10*time.Second, "node-0 and node-1 keep replicating", func() bool {
		return fmt.Sprint(h.List(0, "zoe")) == "[still=replicates]"
	})
}

// A certificate that is not a member's never acts as a peer, in either
// direction: node-2 holds a certificate naming it, from the cluster's CA,
// good for serverAuth and clientAuth, but marked as a user's. Its dials
// are refused at the hello (peer_cert_role), and the others' dials to it
// are refused by the dialer's role check (security.VerifyMemberServer, set
// in the *tls.Config sync dials with), so it never gets the cluster's
// state.
func TestUserCertificateNeverActsAsAPeer(t *testing.T) {
	p := newPKI(t, []string{"node-0", "node-1"})
	forged, _, _, err := p.ca.Issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "node-2", OrganizationalUnit: []string{security.UserOU}}, DNSNames: []string{"node-2"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, time.Hour)
	require.NoError(t, err)
	p.certs["node-2"] = forged
	var dialsRefused atomic.Int64 // node-0's dials to node-2 that its TLS config refused
	base := p.tune(func(i int) string { return fmt.Sprintf("node-%d", i) }, false)
	h := New(t, 2, Options{BaseIP: 245, Tune: func(i int, c *node.Config) {
		base(i, c)
		if i != 0 {
			return
		}
		check := c.Sync.TLS.VerifyConnection // what security.DialConfig installed
		c.Sync.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
			var err error
			if check != nil {
				err = check(cs)
			}
			if err != nil && cs.ServerName == "node-2" {
				dialsRefused.Add(1)
			}
			return err
		}
	}})
	h.WaitConverged(20 * time.Second)
	c, err := p.client(t, h.Node(0).ContactAddr(), "node-0", "zoe", "")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Update("secret", "1"))
	_, err = c.List()
	require.NoError(t, err)

	h.Add()
	h.WaitFor(20*time.Second, "node-2 refused in both directions", func() bool {
		return h.Node(0).Node.Server.Counters.Violations()["peer_cert_role"] > 0 && dialsRefused.Load() > 0
	})
	for _, peer := range h.Node(0).Node.Sync.Peers() {
		if peer.Name == "node-2" {
			require.False(t, peer.OutboundUp || peer.InboundUp, "node-0 has a peer link with node-2")
		}
	}
	require.False(t, h.Node(2).Node.Ready(), "node-2 never gets a peer's state")
	require.Empty(t, h.List(2, "zoe"), "node-2 holds none of zoe's book")
}
