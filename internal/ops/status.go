package ops

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/wire"
)

// Status is /v1/status: this server and the cluster as it sees it.
type Status struct {
	Name          string   `json:"name"`
	Health        string   `json:"health"`
	Ready         bool     `json:"ready"`
	Clock         uint32   `json:"clock"`
	Digest        string   `json:"digest"`
	Live          int      `json:"live"`
	Tombstones    int      `json:"tombstones"`
	Users         int      `json:"users"`
	ContactAddr   string   `json:"contact_addr"`
	UptimeSeconds float64  `json:"uptime_seconds"`
	ClientFrames  uint64   `json:"client_frames"`
	ChangesPushed uint64   `json:"changes_pushed"`
	Applied       uint64   `json:"changes_applied"`
	Ignored       uint64   `json:"changes_ignored"`
	HealthScore   int      `json:"memberlist_health_score"`
	Members       []Member `json:"members"`
}

// Member is one row of /v1/members.
type Member struct {
	Name        string `json:"name"`
	Self        bool   `json:"self"`
	State       string `json:"state"`  // alive, suspect, dead, left
	Health      string `json:"health"` // as published in its node meta
	GossipAddr  string `json:"gossip_addr"`
	ContactAddr string `json:"contact_addr"`
	Digest      string `json:"digest"`
	InSync      bool   `json:"in_sync"` // digest equals this server's

	// What this server knows from its peer connections (peers only).
	OutboundUp      bool    `json:"outbound_up"`
	InboundUp       bool    `json:"inbound_up"`
	HeartbeatHealth string  `json:"heartbeat_health,omitempty"`
	Clock           uint32  `json:"clock"`
	HeardSecondsAgo float64 `json:"heard_seconds_ago"` // -1: never
	QueueBytes      int     `json:"queue_bytes"`
	InitialPull     bool    `json:"initial_pull_done"`
	ChangesReceived uint64  `json:"changes_received"`
	DownSince       string  `json:"down_since,omitempty"`
}

var started = time.Now()

func healthName(h uint8) string {
	if h == 0 {
		return "unknown"
	}
	return wire.Health(h).String()
}

func status(n *node.Node) Status {
	st := n.Store.Stats()
	sc := &n.Server.Counters
	s := Status{
		Name: n.Server.Name(), Clock: st.Clock, Digest: fmt.Sprintf("%016x", st.Digest), Live: st.Live,
		Tombstones: st.Tombstones, Users: st.Users, ContactAddr: n.Server.Addr().String(), Ready: n.Ready(),
		UptimeSeconds: time.Since(started).Seconds(), Health: wire.HealthServing.String(),
		ClientFrames: sc.ClientFrames[1].Load() + sc.ClientFrames[2].Load() + sc.ClientFrames[3].Load(),
	}
	if n.Sync == nil {
		s.Members = []Member{{Name: s.Name, Self: true, State: "alive", Health: s.Health, ContactAddr: s.ContactAddr,
			Digest: s.Digest, InSync: true, HeardSecondsAgo: -1}}
		return s
	}
	ss := n.Sync.Stats()
	s.Health = n.Sync.Health().String()
	s.ChangesPushed, s.Applied, s.Ignored = ss.FramesOut.Load(), ss.Applied.Load(), ss.Ignored.Load()
	s.HealthScore = n.Members.HealthScore()
	s.Members = members(n, s.Digest)
	return s
}

func members(n *node.Node, myDigest string) []Member {
	peers := map[string]Member{}
	for _, p := range n.Sync.Peers() {
		m := Member{OutboundUp: p.OutboundUp, InboundUp: p.InboundUp, Clock: p.LastClock, QueueBytes: p.QueueBytes,
			InitialPull: p.InitialPull, ChangesReceived: p.ChangesIn, HeardSecondsAgo: -1}
		if !p.LastHeard.IsZero() {
			m.HeartbeatHealth = p.LastHealth.String()
			m.HeardSecondsAgo = time.Since(p.LastHeard).Seconds()
		}
		peers[p.Name] = m
	}
	var out []Member
	add := func(name, state, gossip, contact string, health uint8, digest uint64, self bool) {
		m := peers[name]
		if _, ok := peers[name]; !ok {
			m.HeardSecondsAgo = -1
		}
		m.Name, m.State, m.GossipAddr, m.ContactAddr, m.Self = name, state, gossip, contact, self
		m.Health = healthName(health)
		m.Digest = fmt.Sprintf("%016x", digest)
		m.InSync = m.Digest == myDigest
		if self {
			m.Health, m.InSync = n.Sync.Health().String(), true
			m.Digest = myDigest
			m.Clock = n.Store.Clock()
		}
		out = append(out, m)
	}
	for _, mem := range n.Members.Members() {
		add(mem.Name, mem.State, mem.GossipAddr, mem.ContactAddr(), mem.Meta.Health, mem.Meta.Digest, mem.Name == n.Server.Name())
	}
	for _, mem := range n.Members.Departed() {
		add(mem.Name, mem.State, mem.GossipAddr, mem.ContactAddr(), 0, mem.Meta.Digest, false)
		out[len(out)-1].Health, out[len(out)-1].InSync = mem.State, false
		out[len(out)-1].DownSince = mem.Since.UTC().Format(time.RFC3339)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}
