package ops

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

var started = time.Now()

func healthName(h uint8) string {
	if h == 0 {
		return "unknown"
	}
	return wire.Health(h).String()
}

// Posture is the security posture of a member configured with cfg: what
// its start warning and /v1/status report.
func Posture(cfg node.Config) security.Posture {
	return security.Posture{
		Clustered:  cfg.Clustered(),
		GossipKey:  len(cfg.Gossip.Keys) > 0,
		TLS:        cfg.Server.TLS != nil,
		ClientAuth: cfg.Server.TLS != nil && cfg.Server.ClientCertNames,
	}
}

func status(n *node.Node) opsapi.Status {
	st := n.Store.Stats()
	sc := &n.Server.Counters
	s := opsapi.Status{
		Name: n.Server.Name(), Clock: st.Clock, Digest: fmt.Sprintf("%016x", st.Digest), Live: st.Live,
		Tombstones: st.Tombstones, Users: st.Books, ContactAddr: n.Server.Addr().String(), Ready: n.Ready(),
		UptimeSeconds: time.Since(started).Seconds(), Health: wire.HealthServing.String(),
		ClientFrames:   sc.ClientFrames[1].Load() + sc.ClientFrames[2].Load() + sc.ClientFrames[3].Load(),
		NotReadyReason: n.NotReadyReason(), Mark: markTime(n.Store.Mark()), StaleData: n.Store.Stale(),
		LogHead: st.LogHead,
	}
	posture := Posture(n.Config())
	s.Secure, s.SecurityMissing = posture.Secure(), posture.Missing()
	if n.Sync == nil {
		s.Members = []opsapi.Member{{Name: s.Name, Self: true, State: "alive", Health: s.Health, ContactAddr: s.ContactAddr,
			Digest: s.Digest, InSync: true, HeardSecondsAgo: -1}}
		return s
	}
	ss := n.Sync.Stats()
	s.Health = n.Sync.Health().String()
	s.Alone, s.SyncNote = n.Sync.Alone(), n.Sync.SyncNote()
	s.ChangesPushed, s.Applied, s.Ignored = ss.FramesOut.Load(), ss.Applied.Load(), ss.Ignored.Load()
	s.HealthScore = n.Members.HealthScore()
	s.Members = members(n, s.Digest)
	return s
}

// markTime formats a mark (stamp seconds) as RFC 3339; 0 is "never" ("").
func markTime(mark uint32) string {
	if mark == 0 {
		return ""
	}
	return store.TimeOf(mark).UTC().Format(time.RFC3339)
}

func members(n *node.Node, myDigest string) []opsapi.Member {
	peers := map[string]opsapi.Member{}
	for _, p := range n.Sync.Peers() {
		m := opsapi.Member{OutboundUp: p.OutboundUp, InboundUp: p.InboundUp, Clock: p.LastClock,
			ChangesReceived: p.ChangesIn, HeardSecondsAgo: -1, ClockOffsetSeconds: p.WallOffset.Seconds(),
			ClockMeasured: p.HasWallOffset, ClockAheadSeconds: p.AheadBy.Seconds(), LagChanges: p.LagChanges,
			LagSeconds: p.LagSeconds, BytesLive: p.LiveBytes, BytesCatchUp: p.CatchUpBytes,
			BytesSnapshot: p.SnapshotBytes, Activity: p.State}
		if !p.LastHeard.IsZero() {
			m.HeartbeatHealth = p.LastHealth.String()
			m.HeardSecondsAgo = time.Since(p.LastHeard).Seconds()
		}
		peers[p.Name] = m
	}
	var out []opsapi.Member
	add := func(name, state, gossip, contact string, health uint8, digest uint64, mark uint32, self bool) {
		m := peers[name]
		if _, ok := peers[name]; !ok {
			m.HeardSecondsAgo = -1
		}
		m.Name, m.State, m.GossipAddr, m.ContactAddr, m.Self = name, state, gossip, contact, self
		m.Health = healthName(health)
		m.Digest = fmt.Sprintf("%016x", digest)
		m.InSync = m.Digest == myDigest
		m.Mark = markTime(mark)
		if self {
			m.Health, m.InSync = n.Sync.Health().String(), true
			m.Digest = myDigest
			m.Clock = n.Store.Clock()
		}
		out = append(out, m)
	}
	for _, mem := range n.Members.Members() {
		add(mem.Name, mem.State, mem.GossipAddr, mem.ContactAddr(), mem.Meta.Health, mem.Meta.Digest, mem.Meta.Mark, mem.Name == n.Server.Name())
	}
	for _, mem := range n.Members.Departed() {
		add(mem.Name, mem.State, mem.GossipAddr, mem.ContactAddr(), 0, mem.Meta.Digest, mem.Meta.Mark, false)
		out[len(out)-1].Health, out[len(out)-1].InSync = mem.State, false
		out[len(out)-1].DownSince = mem.Since.UTC().Format(time.RFC3339)
	}
	slices.SortFunc(out, func(a, b opsapi.Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}
