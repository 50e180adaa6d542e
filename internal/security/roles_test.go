package security

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(time.Hour)
	require.NoError(t, err)
	return ca
}

// legacy is a certificate as `contactctl certs` made them before roles:
// both usages, no OU, the name as CN and DNS SAN. Servers and users got
// the same kind, which is what made them interchangeable.
func legacy(t *testing.T, ca *CA, name string) tls.Certificate {
	t.Helper()
	c, _, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, time.Hour)
	require.NoError(t, err)
	return c
}

func leafOf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	return leaf
}

func TestCertRole(t *testing.T) {
	ca := newTestCA(t)
	member, _, _, err := ca.IssueMember("contact-server-1", []string{"127.0.0.1", "db.example"}, time.Hour)
	require.NoError(t, err)
	user, _, _, err := ca.IssueUser("alice", time.Hour)
	require.NoError(t, err)
	issue := func(ou []string, ekus ...x509.ExtKeyUsage) tls.Certificate {
		c, _, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "x", OrganizationalUnit: ou},
			ExtKeyUsage: ekus, DNSNames: []string{"x"}}, time.Hour)
		require.NoError(t, err)
		return c
	}
	sa, cl := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth
	for _, tc := range []struct {
		name string
		cert tls.Certificate
		want Role
	}{
		{"member from IssueMember", member, RoleMember},
		{"user from IssueUser", user, RoleUser},
		{"legacy: both usages, no OU", legacy(t, ca, "contact-server-1"), RoleNone},
		{"member OU without clientAuth", issue([]string{MemberOU}, sa), RoleNone},
		{"user OU that can also serve", issue([]string{UserOU}, sa, cl), RoleNone},
		{"both OUs", issue([]string{MemberOU, UserOU}, sa, cl), RoleNone},
		{"any usage", issue([]string{MemberOU}, x509.ExtKeyUsageAny), RoleNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, CertRole(leafOf(t, tc.cert)))
		})
	}
	leaf := leafOf(t, member)
	require.Equal(t, []string{"contact-server-1", "db.example"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
	require.Empty(t, leafOf(t, user).DNSNames, "a user's certificate names no host")
}

// handshake runs a TLS handshake over a pipe and returns both sides'
// errors and the server side's connection state.
func handshake(t *testing.T, srv, cli *tls.Config) (serverErr, clientErr error, st tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	s, c := tls.Server(a, srv), tls.Client(b, cli)
	done := make(chan error, 1)
	go func() {
		err := s.Handshake()
		if err != nil {
			_ = a.Close() // unblock the client
		}
		done <- err
	}()
	clientErr = c.Handshake()
	if clientErr != nil {
		_ = b.Close()
	}
	serverErr = <-done
	return serverErr, clientErr, s.ConnectionState()
}

// The dialing side (sync's peer dialer, contactctl) accepts only a
// member's certificate from the server it reaches.
func TestDialConfigRefusesAServerWithoutAMemberCertificate(t *testing.T) {
	ca := newTestCA(t)
	member, _, _, err := ca.IssueMember("node-1", nil, time.Hour)
	require.NoError(t, err)
	user, _, _, err := ca.IssueUser("node-1", time.Hour)
	require.NoError(t, err)
	forged, _, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "node-1", OrganizationalUnit: []string{UserOU}},
		DNSNames: []string{"node-1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, time.Hour)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		served tls.Certificate
		ok     bool
	}{
		{"member certificate", member, true},
		{"user certificate (clientAuth only)", user, false},
		{"user OU with serverAuth", forged, false},
		{"legacy certificate of no role", legacy(t, ca, "node-1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := DialConfig(nil, ca.Pool())
			cli.ServerName = "node-1"
			_, err, _ := handshake(t, ServerConfig(tc.served, ca.Pool(), false), cli)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err, "the dialer must refuse a server presenting this certificate")
			}
		})
	}
	// The hook alone, on a state the standard checks would pass.
	require.ErrorIs(t, VerifyMemberServer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leafOf(t, legacy(t, ca, "n"))}}), ErrCertRole)
	require.NoError(t, VerifyMemberServer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leafOf(t, member)}}))
}

// At the hello, the server checks the role of the certificate the client
// presented: CheckMember for a role-Server hello, CheckUser for a client.
func TestCheckMemberAndCheckUser(t *testing.T) {
	ca := newTestCA(t)
	srvCert, _, _, err := ca.IssueMember("node-0", nil, time.Hour)
	require.NoError(t, err)
	member, _, _, err := ca.IssueMember("node-1", nil, time.Hour)
	require.NoError(t, err)
	user, _, _, err := ca.IssueUser("node-1", time.Hour) // a user named like a member
	require.NoError(t, err)
	state := func(c tls.Certificate) tls.ConnectionState {
		cli := DialConfig(&c, ca.Pool())
		cli.ServerName = "node-0"
		serr, cerr, st := handshake(t, ServerConfig(srvCert, ca.Pool(), false), cli)
		require.NoError(t, serr)
		require.NoError(t, cerr)
		return st
	}
	ms, us, ls := state(member), state(user), state(legacy(t, ca, "node-1"))

	require.NoError(t, CheckMember(ms, "node-1"))
	require.ErrorIs(t, CheckMember(ms, "node-2"), ErrCertName)
	require.ErrorIs(t, CheckMember(us, "node-1"), ErrCertRole, "a user's certificate never acts as a peer")
	require.ErrorIs(t, CheckMember(ls, "node-1"), ErrCertRole)

	require.NoError(t, CheckUser(us, "node-1"))
	require.ErrorIs(t, CheckUser(us, "alice"), ErrCertName)
	require.ErrorIs(t, CheckUser(ms, "node-1"), ErrCertRole, "a member's certificate never opens a book")
	require.ErrorIs(t, CheckUser(ls, "node-1"), ErrCertRole)

	require.True(t, PresentsMember(ms))
	require.False(t, PresentsMember(us))
	err = CheckUser(tls.ConnectionState{}, "alice")
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrCertRole) || errors.Is(err, ErrCertName))
}

// Every configuration offers TLS 1.2+ with AEAD suites only: a client that
// offers only CBC or SHA-1 suites gets no connection.
func TestTLSConfigsOfferOnlyAEADSuites(t *testing.T) {
	ca := newTestCA(t)
	member, _, _, err := ca.IssueMember("node-0", nil, time.Hour)
	require.NoError(t, err)
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for name, c := range map[string]*tls.Config{
		"server": ServerConfig(member, ca.Pool(), true),
		"dial":   DialConfig(&member, ca.Pool()),
	} {
		require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion, name)
		require.NotEmpty(t, c.CipherSuites, name)
		for _, id := range c.CipherSuites {
			n := tls.CipherSuiteName(id)
			require.False(t, insecure[id], "%s: %s", name, n)
			require.True(t, strings.Contains(n, "_GCM_") || strings.Contains(n, "CHACHA20_POLY1305"), "%s offers %s", name, n)
			require.True(t, strings.HasPrefix(n, "TLS_ECDHE_"), "%s offers %s", name, n)
		}
	}
	for _, tc := range []struct {
		name   string
		suites []uint16
		max    uint16
		ok     bool
	}{
		{"TLS 1.2 ECDHE-GCM", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, tls.VersionTLS12, true},
		{"TLS 1.3", nil, tls.VersionTLS13, true},
		{"TLS 1.2 CBC-SHA1 only", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, tls.VersionTLS12, false},
		{"TLS 1.2 CBC-SHA256 only", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, tls.VersionTLS12, false},
		{"TLS 1.1", nil, tls.VersionTLS11, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "node-0", MaxVersion: tc.max, CipherSuites: tc.suites}
			if tc.max < tls.VersionTLS12 {
				cli.MinVersion = tc.max
			}
			_, cerr, _ := handshake(t, ServerConfig(member, ca.Pool(), false), cli)
			if tc.ok {
				require.NoError(t, cerr)
			} else {
				require.Error(t, cerr)
			}
		})
	}
}
