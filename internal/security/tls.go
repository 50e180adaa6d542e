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

// ServerConfig is the contact port's TLS: this server's certificate, and
// client certificates verified against the CA whenever one is presented
// (peers always present theirs; clients must when requireClient is set).
func ServerConfig(cert tls.Certificate, ca *x509.CertPool, requireClient bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca, ClientAuth: auth, MinVersion: tls.VersionTLS12}
}

// DialConfig is the TLS a peer or a client dials with: it verifies the
// server against the CA (ServerName must then be set per connection) and
// presents cert, if any.
func DialConfig(cert *tls.Certificate, ca *x509.CertPool) *tls.Config {
	c := &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}
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
