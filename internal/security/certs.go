package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CA is a certificate authority for a test cluster.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA valid for validity.
func NewCA(validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "contactstore test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key}, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// IssueMember makes a member's certificate for the server called name (its
// CN and first DNS SAN; OU MemberOU), valid for validity, usable as both
// TLS server and client (peers are both). hosts become extra SANs (IP
// addresses as IP SANs): the names clients dial the server by.
func (ca *CA) IssueMember(name string, hosts []string, validity time.Duration) (tls.Certificate, []byte, []byte, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, OrganizationalUnit: []string{MemberOU}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{name},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != name {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, validity)
}

// IssueUser makes a user's certificate for user (its CN; OU UserOU),
// valid for validity, usable only as a TLS client: it names no host and
// cannot authenticate a server.
func (ca *CA) IssueUser(user string, validity time.Duration) (tls.Certificate, []byte, []byte, error) {
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, OrganizationalUnit: []string{UserOU}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, validity)
}

// Issue signs tmpl as it is, with a fresh key, serial and validity: for
// tests that need a certificate of no role (or of a forged one).
func (ca *CA) Issue(tmpl *x509.Certificate, validity time.Duration) (tls.Certificate, []byte, []byte, error) {
	return ca.issue(tmpl, validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (tls.Certificate, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	return pair, certPEM, keyPEM, err
}

// PEM returns the CA certificate as PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteTestPKI writes ca.pem and, for every server and user name,
// NAME.pem and NAME-key.pem into dir (created if missing): member
// certificates for servers (with hosts as extra SANs), user certificates
// for users. A name may not be both. Keys are written 0600.
func WriteTestPKI(dir string, servers, users, hosts []string, validity time.Duration) error {
	if len(servers)+len(users) == 0 {
		return errors.New("name at least one server or user")
	}
	for _, u := range users {
		if slices.Contains(servers, u) {
			return fmt.Errorf("%q is named both as a server and as a user: a certificate has one role", u)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ca, err := NewCA(validity)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o644); err != nil {
		return err
	}
	issue := func(name string, member bool) error {
		if name == "" || name == "ca" || filepath.Base(name) != name {
			return fmt.Errorf("%q cannot name a certificate file", name)
		}
		var cert, key []byte
		var err error
		if member {
			_, cert, key, err = ca.IssueMember(name, hosts, validity)
		} else {
			_, cert, key, err = ca.IssueUser(name, validity)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), cert, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+"-key.pem"), key, 0o600)
	}
	for _, s := range servers {
		if err := issue(s, true); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := issue(u, false); err != nil {
			return err
		}
	}
	return nil
}
