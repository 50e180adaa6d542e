package security

import "strings"

// Posture is which protections a member runs with. The default runs with
// none of them (the seed's clients speak plain TCP), which must never be
// silent: Warning is logged at start and /v1/status reports Secure and
// Missing.
type Posture struct {
	// Clustered: the member gossips (a gossip key matters only then).
	Clustered bool
	// GossipKey: gossip is encrypted and authenticated with a shared key.
	GossipKey bool
	// TLS: the contact port speaks TLS and peers prove they are members
	// with a member's certificate.
	TLS bool
	// ClientAuth: clients prove their user with a user's certificate
	// (--tls-client-auth verify).
	ClientAuth bool
}

// Missing names the protections that are off, in a fixed order:
// "gossip_key" (clustered members only), "tls", "client_auth".
func (p Posture) Missing() []string {
	out := []string{}
	if p.Clustered && !p.GossipKey {
		out = append(out, "gossip_key")
	}
	if !p.TLS {
		out = append(out, "tls")
	}
	if !p.ClientAuth {
		out = append(out, "client_auth")
	}
	return out
}

// Secure reports whether every protection is on.
func (p Posture) Secure() bool { return len(p.Missing()) == 0 }

// Warning is one line saying what an attacker who can reach this member's
// ports can do, and how to stop it; "" when the posture is secure.
func (p Posture) Warning() string {
	if p.Secure() {
		return ""
	}
	var can []string
	switch {
	case !p.TLS:
		can = append(can, "read and change every contact book on the contact port (no TLS, no client certificates)")
	case !p.ClientAuth:
		can = append(can, "read and change every contact book on the contact port (TLS proves the server, but without --tls-client-auth verify no client proves its user)")
	}
	if p.Clustered && !p.GossipKey {
		gossip := "join the gossip without a key, take over a member's name with forged gossip (its peers then dial the attacker)"
		if !p.TLS {
			gossip += ", and pose as that member to receive full-state transfers of every book and push changes"
		}
		can = append(can, gossip)
	}
	return "INSECURE: anyone on the network who can reach this server can " + strings.Join(can, "; and ") +
		". Missing: " + strings.Join(p.Missing(), ", ") +
		". Secure it with a gossip key (CONTACT_GOSSIP_KEY or --gossip-keyring), --tls-cert/--tls-key/--tls-ca and --tls-client-auth verify (README, \"Securing a cluster\")"
}
