// Package opsapi holds the JSON shapes of a contact server's HTTP API,
// /v1/status and /v1/members: internal/ops encodes them on the server,
// contactctl (internal/ctlcli) decodes them. It is the whole contract
// between the two, so contactctl links none of the server (no store,
// memberlist or metrics). It must import nothing but the standard library:
// only types, field documentation, JSON tags and what the fields say taken
// together (Status.LinksMissing) live here.
package opsapi

import "fmt"

// Status is /v1/status: this server and the cluster as it sees it.
type Status struct {
	Name          string  `json:"name"`
	Health        string  `json:"health"` // serving, syncing, leaving
	Ready         bool    `json:"ready"`
	Clock         uint32  `json:"clock"`
	Digest        string  `json:"digest"` // 16 hex digits
	Live          int     `json:"live"`
	Tombstones    int     `json:"tombstones"`
	Users         int     `json:"users"`
	ContactAddr   string  `json:"contact_addr"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	ClientFrames  uint64  `json:"client_frames"`
	ChangesPushed uint64  `json:"changes_pushed"`
	Applied       uint64  `json:"changes_applied"`
	Ignored       uint64  `json:"changes_ignored"`
	HealthScore   int     `json:"memberlist_health_score"`
	// NotReadyReason says why Ready is false: "syncing", "leaving", or
	// "clock: ..." when this server's wall clock is further than the bound
	// from most serving peers.
	NotReadyReason string `json:"not_ready_reason,omitempty"`
	// Alone: the last sync reached no peer (no seed answered, or no other
	// member), and the server serves its own data. SyncNote says how the
	// last sync went.
	Alone    bool   `json:"alone"`
	SyncNote string `json:"sync_note,omitempty"`
	// Mark is the last time this server's changes were known to be on a
	// serving peer (RFC 3339; empty: never); StaleData is true while it
	// has been out of contact for longer than the tombstone grace.
	Mark      string `json:"mark,omitempty"`
	StaleData bool   `json:"stale_data"`
	// LogHead counts the changes this server ever logged for its peers.
	LogHead uint64 `json:"log_head"`
	// Secure is true only when gossip is encrypted with a key (members
	// that gossip), the contact port speaks TLS, and clients must prove
	// their user with a certificate. SecurityMissing names what is off:
	// "gossip_key", "tls", "client_auth" ([] when secure).
	Secure          bool     `json:"secure"`
	SecurityMissing []string `json:"security_missing"`
	Members         []Member `json:"members"`
}

// Member is one row of /v1/members (and of Status.Members).
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
	// Its wall clock minus ours, from membership's pings (ClockMeasured
	// false: not measured yet), and how far beyond the clock bound its
	// clock or stamps were last seen (0: never).
	ClockOffsetSeconds float64 `json:"clock_offset_seconds"`
	ClockMeasured      bool    `json:"clock_measured"`
	ClockAheadSeconds  float64 `json:"clock_ahead_seconds,omitempty"`
	// Replication lag of our changes to it: changes its feed has not
	// confirmed, and seconds since it last confirmed our whole log.
	LagChanges uint64  `json:"lag_changes"`
	LagSeconds float64 `json:"lag_seconds"`
	// Bytes sent on its feed, by kind.
	BytesLive       uint64 `json:"bytes_live"`
	BytesCatchUp    uint64 `json:"bytes_catch_up"`
	BytesSnapshot   uint64 `json:"bytes_snapshot"`
	Activity        string `json:"activity,omitempty"` // a pull or transfer under way
	Mark            string `json:"mark,omitempty"`     // as published in its node meta
	ChangesReceived uint64 `json:"changes_received"`
	DownSince       string `json:"down_since,omitempty"` // RFC 3339, departed members only
}

// LinksMissing says what keeps the server who reported st from seeing want
// members alive with both peer links to each up ("" when nothing does).
func (st Status) LinksMissing(who string, want int) string {
	alive := 0
	for _, m := range st.Members {
		if m.State != "alive" {
			continue
		}
		alive++
		if !m.Self && (!m.OutboundUp || !m.InboundUp) {
			return fmt.Sprintf("%s: links to %s not up", who, m.Name)
		}
	}
	if alive != want {
		return fmt.Sprintf("%s sees %d members alive", who, alive)
	}
	return ""
}
