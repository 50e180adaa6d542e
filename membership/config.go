package membership

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Config configures Membership.
type Config struct {
	// Name is the node name: the server name.
	Name string
	// BindAddr is memberlist's bind address, host:port (":7946").
	BindAddr string
	// AdvertiseAddr, if set, is the address other members reach this node
	// at (host or host:port); otherwise memberlist picks one.
	AdvertiseAddr string
	// Seeds are the members to join (host or host:port; names are resolved).
	Seeds []string
	// Profile selects memberlist's timing preset: lan, local or wan.
	Profile string
	// RejoinInterval is how often seeds are joined again, so that a healed
	// partition merges (memberlist forgets dead nodes on its own).
	RejoinInterval time.Duration
	// JoinBackoffMax caps the backoff between join attempts at start.
	JoinBackoffMax time.Duration
	// Meta is the initial node meta (contact address and boot id).
	Meta Meta
	// EventQueue bounds the membership events waiting for the consumer.
	EventQueue int
	// Keys encrypt gossip (AES with 16, 24 or 32-byte keys); the first is
	// used to encrypt, all are tried to decrypt (key rotation). Empty: no
	// encryption. A member with another key cannot join.
	Keys [][]byte
	// Label is prepended to every gossip message and checked on receipt,
	// so that clusters sharing a network stay apart.
	Label string
	// Tune, if set, adjusts the memberlist config last (tests use it for
	// fast timings and in-memory transports).
	Tune func(*memberlist.Config)
	// Logger receives membership and memberlist logs.
	Logger hclog.Logger
	// Now is the wall clock. Every ping acknowledgement carries it, so each
	// member learns how far the others' clocks are from its own
	// (ClockOffsets); tests shift it.
	Now func() time.Time
}

// DefaultConfig returns the defaults for a node called name.
func DefaultConfig(name string) Config {
	return Config{
		Name:           name,
		BindAddr:       ":7946",
		Profile:        "lan",
		RejoinInterval: 30 * time.Second,
		JoinBackoffMax: 5 * time.Second,
		EventQueue:     1024,
		Now:            time.Now,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("membership: node name is empty")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("membership: gossip address %q: %v", c.BindAddr, err)
	}
	if _, err := profileConfig(c.Profile); err != nil {
		return err
	}
	for i, k := range c.Keys {
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return fmt.Errorf("membership: gossip key %d is %d bytes; it must be 16, 24 or 32", i+1, l)
		}
	}
	if c.Now == nil {
		return errors.New("membership: Now is nil")
	}
	if c.RejoinInterval <= 0 || c.JoinBackoffMax <= 0 || c.EventQueue <= 0 {
		return errors.New("membership: rejoin interval, join backoff and event queue must be positive")
	}
	return nil
}

func profileConfig(p string) (*memberlist.Config, error) {
	switch p {
	case "lan", "":
		return memberlist.DefaultLANConfig(), nil
	case "local":
		return memberlist.DefaultLocalConfig(), nil
	case "wan":
		return memberlist.DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("membership: gossip profile %q is not lan, local or wan", p)
}
