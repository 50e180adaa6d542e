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
// Encoding (version 2), at most MetaMaxSize bytes:
//
//	+----+------------+-------------+------------+------------+----------+--------+----------+---------+------+
//	| v2 | bootID u64 | storeID u64 | digest u64 | cutoff u32 | mark u32 | health | port u16 | hostLen | host |
//	+----+------------+-------------+------------+------------+----------+--------+----------+---------+------+
//
// Version 1 (a member of an earlier release) is still read: it lacks the
// store id, cutoff and mark, which decode as zero (unknown).
type Meta struct {
	// ContactHost is the host peers dial for the contact protocol; empty
	// means "my gossip address".
	ContactHost string
	// ContactPort is the contact-protocol port.
	ContactPort uint16
	// BootID changes at every start, so peers can tell a restart from a
	// node that merely stayed alive.
	BootID uint64
	// StoreID identifies the node's data dir (set when it was created):
	// what peers know of the node's data is keyed by it.
	StoreID uint64
	// Published is what changes while the node runs.
	Published
}

// Published is the part of Meta a running node republishes.
type Published struct {
	// Digest is the order-independent digest of the node's state, valid at
	// Cutoff: two digests are comparable only at equal cutoffs (0: the
	// digest is not comparable now).
	Digest uint64
	Cutoff uint32
	// Mark is the last time (in stamp seconds) the node's changes were
	// known to be on a serving peer: how fresh its data is.
	Mark uint32
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
	metaVersion1 = 1
	metaVersion  = 2
	metaFixed    = 1 + 8 + 8 + 8 + 4 + 4 + 1 + 2 + 1
	// MetaMaxSize stays well under memberlist's 512-byte meta limit.
	MetaMaxSize = metaFixed + 255
)

var errBadMeta = errors.New("membership: malformed node meta")

func (m Meta) encode() []byte {
	host := m.ContactHost
	if len(host) > 255 {
		host = host[:255]
	}
	b := make([]byte, 0, metaFixed+len(host))
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint64(b, m.BootID)
	b = binary.BigEndian.AppendUint64(b, m.StoreID)
	b = binary.BigEndian.AppendUint64(b, m.Digest)
	b = binary.BigEndian.AppendUint32(b, m.Cutoff)
	b = binary.BigEndian.AppendUint32(b, m.Mark)
	b = append(b, m.Health)
	b = binary.BigEndian.AppendUint16(b, m.ContactPort)
	b = append(b, byte(len(host)))
	return append(b, host...)
}

func decodeMeta(b []byte) (Meta, error) {
	if len(b) > 0 && b[0] == metaVersion1 {
		return decodeMetaV1(b)
	}
	if len(b) < metaFixed || b[0] != metaVersion {
		return Meta{}, errBadMeta
	}
	m := Meta{
		BootID:  binary.BigEndian.Uint64(b[1:]),
		StoreID: binary.BigEndian.Uint64(b[9:]),
		Published: Published{
			Digest: binary.BigEndian.Uint64(b[17:]),
			Cutoff: binary.BigEndian.Uint32(b[25:]),
			Mark:   binary.BigEndian.Uint32(b[29:]),
			Health: b[33],
		},
		ContactPort: binary.BigEndian.Uint16(b[34:]),
	}
	n := int(b[36])
	if len(b) != metaFixed+n {
		return Meta{}, errBadMeta
	}
	m.ContactHost = string(b[metaFixed:])
	return m, nil
}

// decodeMetaV1 reads the meta of an earlier release:
//
//	| v1 | bootID u64 | digest u64 | health | port u16 | hostLen | host |
func decodeMetaV1(b []byte) (Meta, error) {
	if len(b) < 21 {
		return Meta{}, errBadMeta
	}
	m := Meta{
		BootID:      binary.BigEndian.Uint64(b[1:]),
		Published:   Published{Digest: binary.BigEndian.Uint64(b[9:]), Health: b[17]},
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
