package membership

import (
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"time"
)

// Meta is what a node publishes about itself through memberlist.
//
// Encoding (version 1), at most MetaMaxSize bytes:
//
//	+----+-------------+-------------+--------+-----------+---------+-------------+
//	| v1 | bootID u64  | digest u64  | health | port u16  | hostLen | host        |
//	+----+-------------+-------------+--------+-----------+---------+-------------+
type Meta struct {
	// ContactHost is the host peers dial for the contact protocol; empty
	// means "my gossip address".
	ContactHost string
	// ContactPort is the contact-protocol port.
	ContactPort uint16
	// BootID changes at every start, so peers can tell a restart from a
	// node that merely stayed alive.
	BootID uint64
	// Digest is the order-independent digest of the node's state.
	Digest uint64
	// Health is the node's HealthStatus, as its HeartBeats send it (the
	// contact protocol's values: 1 serving, 2 syncing, 3 leaving; 0 not
	// published). Membership carries it opaquely, except to tell a member
	// that left from one that died (HealthLeaving).
	Health uint8
}

// HealthLeaving is the Meta.Health of a member that is leaving gracefully:
// the contact protocol's HealthStatus 3 (wire.HealthLeaving). Membership
// imports nothing of ours, so it names here the one value it reads;
// internal/node's tests check that it equals wire's.
const HealthLeaving uint8 = 3

const (
	metaVersion = 1
	// MetaMaxSize stays well under memberlist's 512-byte meta limit.
	MetaMaxSize = 1 + 8 + 8 + 1 + 2 + 1 + 255
)

var errBadMeta = errors.New("membership: malformed node meta")

func (m Meta) encode() []byte {
	host := m.ContactHost
	if len(host) > 255 {
		host = host[:255]
	}
	b := make([]byte, 0, 21+len(host))
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint64(b, m.BootID)
	b = binary.BigEndian.AppendUint64(b, m.Digest)
	b = append(b, m.Health)
	b = binary.BigEndian.AppendUint16(b, m.ContactPort)
	b = append(b, byte(len(host)))
	return append(b, host...)
}

func decodeMeta(b []byte) (Meta, error) {
	if len(b) < 21 || b[0] != metaVersion {
		return Meta{}, errBadMeta
	}
	m := Meta{
		BootID:      binary.BigEndian.Uint64(b[1:]),
		Digest:      binary.BigEndian.Uint64(b[9:]),
		Health:      b[17],
		ContactPort: binary.BigEndian.Uint16(b[18:]),
	}
	n := int(b[20])
	if len(b) != 21+n {
		return Meta{}, errBadMeta
	}
	m.ContactHost = string(b[21:])
	return m, nil
}

// Member is one node as this node sees it.
type Member struct {
	Name       string
	GossipAddr string // ip:port of memberlist
	IP         net.IP // the node's gossip (advertise) IP
	State      string // alive, suspect, dead, left
	Meta       Meta
	Since      time.Time // for departed members: when they were seen to go
}

// ContactAddr is the host:port peers dial for the contact protocol.
func (m Member) ContactAddr() string {
	host := m.Meta.ContactHost
	if host == "" {
		host = m.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(m.Meta.ContactPort)))
}

// Alive reports whether the member is alive (suspect counts as alive:
// memberlist has not decided yet).
func (m Member) Alive() bool { return m.State == "alive" || m.State == "suspect" }
