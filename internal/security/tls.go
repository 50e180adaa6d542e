package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
)

// TLSFiles names the PEM files of --tls-cert, --tls-key and --tls-ca.
type TLSFiles struct {
	Cert, Key, CA string
}

// Enabled reports whether any TLS file is given.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Load reads the certificate, its key and the CA pool. All three are needed.
func (f TLSFiles) Load() (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, errors.New("TLS needs --tls-cert, --tls-key and --tls-ca together")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("TLS certificate %s / key %s: %v", f.Cert, f.Key, err)
	}
	pool, err := LoadCA(f.CA)
	return cert, pool, err
}

// LoadCA reads a PEM bundle of CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", path)
	}
	return pool, nil
}

// aeadSuites are the TLS 1.2 cipher suites every configuration allows:
// ECDHE key exchange with an AEAD cipher only (no CBC, no SHA-1 MACs, no
// RSA key exchange). TLS 1.3's suites are all AEAD and not configurable.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// base is what every TLS configuration here starts from: TLS 1.2 or
// later, AEAD suites only.
func base() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: slices.Clone(aeadSuites)}
}

// ServerConfig is the contact port's TLS: this server's certificate, and
// client certificates verified against the CA whenever one is presented
// (peers always present theirs; clients must when requireClient is set).
// Which role a verified certificate has is checked at the hello
// (CheckMember, CheckUser), where the hello says what it wants to be.
func ServerConfig(cert tls.Certificate, ca *x509.CertPool, requireClient bool) *tls.Config {
	c := base()
	c.Certificates, c.ClientCAs, c.ClientAuth = []tls.Certificate{cert}, ca, tls.VerifyClientCertIfGiven
	if requireClient {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// DialConfig is the TLS a peer or a client dials with: it verifies the
// server against the CA (ServerName must then be set per connection),
// requires the server's certificate to be a member's (VerifyMemberServer:
// a user's certificate never serves), and presents cert, if any.
func DialConfig(cert *tls.Certificate, ca *x509.CertPool) *tls.Config {
	c := base()
	c.RootCAs, c.VerifyConnection = ca, VerifyMemberServer
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// ErrCertName is returned when a connection's verified certificate does
// not name the server or user its hello claims.
var ErrCertName = errors.New("certificate does not name the hello's name")

// CheckName reports whether the connection presented a certificate that
// the CA verified and that names name (a DNS SAN or the CN).
func CheckName(st tls.ConnectionState, name string) error {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return errors.New("no verified client certificate")
	}
	leaf := st.VerifiedChains[0][0]
	if leaf.Subject.CommonName == name || slices.Contains(leaf.DNSNames, name) {
		return nil
	}
	return fmt.Errorf("%w: certificate names %q %v, hello says %q", ErrCertName, leaf.Subject.CommonName, leaf.DNSNames, name)
}
