// Package opsapi holds the JSON shapes of a contact server's HTTP API,
// /v1/status and /v1/members: internal/ops encodes them on the server,
// contactctl (internal/ctlcli) decodes them. It is the whole contract
// between the two, so contactctl links none of the server (no store,
// memberlist or metrics). It must import nothing but the standard library:
// only types, field documentation and JSON tags live here.
package opsapi

// Status is /v1/status: this server and the cluster as it sees it.
type Status struct {
	Name          string   `json:"name"`
	Health        string   `json:"health"` // serving, syncing, leaving
	Ready         bool     `json:"ready"`
	Clock         uint32   `json:"clock"`
	Digest        string   `json:"digest"` // 16 hex digits
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
	QueueBytes      int     `json:"queue_bytes"`
	InitialPull     bool    `json:"initial_pull_done"`
	ChangesReceived uint64  `json:"changes_received"`
	DownSince       string  `json:"down_since,omitempty"` // RFC 3339, departed members only
}
