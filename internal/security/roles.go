package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// Certificates come in two roles that must never stand in for each other:
// a member's certificate (a contact server: it serves the contact port and
// dials its peers) and a user's certificate (a client that opens one book).
// One CA may issue both; the role is written into the certificate and
// checked on both sides of every connection:
//
//   - member: subject OU "contact-server", extended key usages serverAuth
//     and clientAuth, the server's name as a DNS SAN (and CN);
//   - user: subject OU "contact-user", extended key usage clientAuth only
//     (so it can never authenticate a TLS server), the user's name as CN.
//
// A certificate carrying both OUs, or neither, has no role: it is refused
// wherever a role is needed. Certificates made before roles existed (both
// usages, no OU) are refused too: they are exactly the ambiguous kind.
const (
	MemberOU = "contact-server"
	UserOU   = "contact-user"
)

// ErrCertRole is returned when a verified certificate is not of the role
// the connection needs (a member's certificate opening a book, a user's
// acting as a peer, a certificate of no role).
var ErrCertRole = errors.New("certificate is not of the role this connection needs")

// errNoCert: the connection presented no certificate the CA verified.
var errNoCert = errors.New("no verified certificate")

// Role names a certificate's role for logs and errors.
type Role string

// The roles a certificate can have.
const (
	RoleNone   Role = "none"
	RoleMember Role = "member"
	RoleUser   Role = "user"
)

// CertRole reads the role written into leaf: its OU marker and its
// extended key usages must agree, else the role is RoleNone.
func CertRole(leaf *x509.Certificate) Role {
	member := slices.Contains(leaf.Subject.OrganizationalUnit, MemberOU)
	user := slices.Contains(leaf.Subject.OrganizationalUnit, UserOU)
	serverAuth := hasEKU(leaf, x509.ExtKeyUsageServerAuth)
	clientAuth := hasEKU(leaf, x509.ExtKeyUsageClientAuth)
	switch {
	case member && !user && serverAuth && clientAuth:
		return RoleMember
	case user && !member && clientAuth && !serverAuth:
		return RoleUser
	}
	return RoleNone
}

// hasEKU reports whether leaf lists usage explicitly. ExtKeyUsageAny does
// not count: a certificate good for anything has no role.
func hasEKU(leaf *x509.Certificate, usage x509.ExtKeyUsage) bool {
	return slices.Contains(leaf.ExtKeyUsage, usage)
}

// verifiedLeaf is the leaf of the connection's first verified chain.
func verifiedLeaf(st tls.ConnectionState) (*x509.Certificate, error) {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil, errNoCert
	}
	return st.VerifiedChains[0][0], nil
}

// CheckMember reports whether the connection presented a certificate the
// CA verified, of the member role, naming the server name (a DNS SAN or
// the CN): what a role-Server hello needs. Errors wrap ErrCertRole or
// ErrCertName.
func CheckMember(st tls.ConnectionState, name string) error {
	leaf, err := verifiedLeaf(st)
	if err != nil {
		return err
	}
	if r := CertRole(leaf); r != RoleMember {
		return fmt.Errorf("%w: %q is a %s certificate, not a member's (OU %q, serverAuth and clientAuth)",
			ErrCertRole, leaf.Subject.CommonName, r, MemberOU)
	}
	return CheckName(st, name)
}

// CheckUser reports whether the connection presented a certificate the CA
// verified, of the user role, whose CN is user: what a client hello needs
// under --tls-client-auth verify. Errors wrap ErrCertRole or ErrCertName.
func CheckUser(st tls.ConnectionState, user string) error {
	leaf, err := verifiedLeaf(st)
	if err != nil {
		return err
	}
	if r := CertRole(leaf); r != RoleUser {
		return fmt.Errorf("%w: %q is a %s certificate, not a user's (OU %q, clientAuth only)",
			ErrCertRole, leaf.Subject.CommonName, r, UserOU)
	}
	if leaf.Subject.CommonName != user {
		return fmt.Errorf("%w: certificate names user %q, hello says %q", ErrCertName, leaf.Subject.CommonName, user)
	}
	return nil
}

// PresentsMember reports whether the connection presented a verified
// member certificate (whatever name it carries).
func PresentsMember(st tls.ConnectionState) bool {
	leaf, err := verifiedLeaf(st)
	return err == nil && CertRole(leaf) == RoleMember
}

// VerifyMemberServer is a tls.Config VerifyConnection hook for the dialing
// side: the server at the other end must present a member certificate. It
// runs after the standard verification (chain to RootCAs, ServerName), so
// it checks only the role. DialConfig installs it; sync's peer dialer and
// contactctl both get it through their *tls.Config.
func VerifyMemberServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoCert
	}
	leaf := cs.PeerCertificates[0]
	if r := CertRole(leaf); r != RoleMember {
		return fmt.Errorf("%w: the server presented %q, a %s certificate, not a member's (OU %q)",
			ErrCertRole, leaf.Subject.CommonName, r, MemberOU)
	}
	return nil
}
