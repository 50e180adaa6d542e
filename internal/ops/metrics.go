package ops

import (
	"fmt"
	gosync "sync"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/wire"
	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is one node's registry.
type Metrics struct {
	reg         *prometheus.Registry
	fsync       prometheus.Histogram
	httpRefused prometheus.Counter
}

// NewMetrics returns a registry with the Go runtime and process collectors
// and the fsync histogram; Attach adds the node's own metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "contact_fsync_duration_seconds", Help: "Duration of fsync barriers (ListAll durability, background syncs).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	m.httpRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "contact_http_connections_refused_total", Help: "HTTP connections closed at once because the endpoint's connection cap was reached.",
	})
	m.reg.MustRegister(m.fsync, m.httpRefused, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveFsync records one fsync barrier; give it to store.Config.OnSync.
func (m *Metrics) ObserveFsync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var goMetricsOnce gosync.Once

// Attach registers n's metrics. The first registry attached in a process
// also receives memberlist's go-metrics (go-metrics has one global sink).
func (m *Metrics) Attach(n *node.Node) error {
	if err := m.reg.Register(&nodeCollector{n: n}); err != nil {
		return err
	}
	var err error
	goMetricsOnce.Do(func() {
		var sink *gmprom.PrometheusSink
		sink, err = gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: m.reg, Expiration: time.Minute})
		if err == nil {
			cfg := gometrics.DefaultConfig("contact")
			cfg.EnableHostname, cfg.EnableRuntimeMetrics = false, false
			// memberlist's own health gauge would come out as
			// contact_memberlist_health_score, the name of ours (dMLHealth)
			// with another help text: the registry then fails every scrape
			// from memberlist's first change of awareness (any failure) on.
			cfg.BlockedPrefixes = []string{"contact.memberlist.health.score"}
			_, err = gometrics.NewGlobal(cfg, sink)
		}
	})
	return err
}

// nodeCollector reads the node's counters at scrape time.
type nodeCollector struct{ n *node.Node }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dClientFrames  = desc("contact_client_frames_total", "Client frames handled, by opcode.", "op")
	dPeerFramesIn  = desc("contact_peer_frames_received_total", "Server frames received from peers, by opcode.", "op")
	dChangesPushed = desc("contact_peer_changes_pushed_total", "Local changes pushed to the peer feeds.")
	dViolations    = desc("contact_protocol_violations_total", "Connections closed for breaking the protocol, by role and reason.", "role", "reason")
	dMerge         = desc("contact_merge_changes_total", "Changes received from peers, by merge outcome.", "result")
	dConnsActive   = desc("contact_connections_active", "Open connections (clients and peers).")
	dConnsAccepted = desc("contact_connections_accepted_total", "Connections accepted.")
	dConnsRefused  = desc("contact_connections_refused_total", "Connections closed at once, by reason.", "reason")
	dConnSlots     = desc("contact_connection_slots", "Connection slots in use: the client share (clients, of which handshaking), the peer reserve, and probation.", "pool")
	dConnsReserved = desc("contact_connections_reserved_total", "Connections admitted from the peer reserve because the client share refused them.")
	dIdleClosed    = desc("contact_connections_idle_closed_total", "Connections closed by the idle timeout.")
	dPeerUp        = desc("contact_peer_connection_up", "Whether the peer connection is up, by peer and direction.", "peer", "direction")
	dPeerLag       = desc("contact_peer_lag_changes", "Changes of this server's log the peer's feed has not confirmed.", "peer")
	dPeerLagSec    = desc("contact_peer_lag_seconds", "Seconds since the peer last confirmed this server's whole log (0: in sync).", "peer")
	dPeerBytes     = desc("contact_peer_bytes_sent_total", "Bytes sent on the peer's feed, by kind (live, catch_up, snapshot).", "peer", "kind")
	dPeerOffset    = desc("contact_peer_clock_offset_seconds", "The peer's wall clock minus this server's, from membership pings.", "peer")
	dPeerChanges   = desc("contact_peer_changes_received_total", "Changes received from the peer.", "peer")
	dTransfers     = desc("contact_askforupdate_served_total", "AskForUpdate transfers served.")
	dSilent        = desc("contact_peer_silent_closed_total", "Peer connections closed after three heartbeat intervals without a byte.")
	dTransfersSkip = desc("contact_askforupdate_skipped_total", "AskForUpdate from a syncing peer that already held this state: nothing sent.")
	dTxEntries     = desc("contact_askforupdate_entries_sent_total", "Entries sent by AskForUpdate transfers.")
	dTxBytes       = desc("contact_askforupdate_bytes_sent_total", "Bytes sent by AskForUpdate transfers.")
	dPulls         = desc("contact_askforupdate_pulls_total", "AskForUpdate pulls completed.")
	dCatchUpRounds = desc("contact_sync_catchup_rounds_total", "Extra catch-up rounds a starting member took because the last one lasted longer than the serve lag (peers wrote on meanwhile).")
	dRxEntries     = desc("contact_askforupdate_entries_received_total", "Change frames received on a connection while a pull ran on it: the transfer, and the peer's feed of its changes meanwhile (the same frames on the same connection; a transfer's own size is contact_askforupdate_bytes_sent_total on its sender).")
	dRxBytes       = desc("contact_askforupdate_bytes_received_total", "Bytes of change frames received on a connection while a pull ran on it: the transfer, and the peer's feed of its changes meanwhile (a transfer's own size is contact_askforupdate_bytes_sent_total on its sender).")
	dAntiEntropy   = desc("contact_anti_entropy_pulls_total", "Pulls started because digests differed.")
	dTransfersRun  = desc("contact_transfers_total", "Full transfers sent, by outcome (started, served, aborted).", "outcome")
	dFeedBytes     = desc("contact_feed_bytes_sent_total", "Bytes fed to peers from the change log, by kind (live, catch_up).", "kind")
	dExpiredSkip   = desc("contact_feed_expired_skipped_total", "Logged changes not fed to a peer: stamped below the tombstone expiry cutoff.")
	dClockAhead    = desc("contact_clock_ahead_total", "Clocks or stamps heard from peers beyond the clock bound (--max-clock-ahead).")
	dRefillDropped = desc("contact_refill_dropped_total", "Entries a refill of stale data dropped (the cluster had deleted them).")
	dMark          = desc("contact_mark_seconds", "Last time this server's changes were known on a serving peer (seconds since 2024-01-01; 0: never).")
	dStale         = desc("contact_stale_data", "1 while this server has been out of contact longer than the tombstone grace.")
	dCutoff        = desc("contact_tombstone_cutoff_seconds", "Tombstones stamped below this are dropped (seconds since 2024-01-01).")
	dLogHead       = desc("contact_log_changes_total", "Changes this server logged for its peers.")
	dPaced         = desc("contact_client_paced_commits_total", "Client commits held by flow control because most serving peers were behind (--pace-lag).")
	dPacedSec      = desc("contact_client_paced_seconds_total", "Time client commits were held by flow control.")
	dAckTimeouts   = desc("contact_replica_ack_timeouts_total", "ListAll acknowledgements given before every live peer confirmed (timeout).")
	dLive          = desc("contact_store_live_entries", "Live contacts held.")
	dTombstones    = desc("contact_store_tombstones", "Delete markers held.")
	dUsers         = desc("contact_store_users", "Contact books held.")
	dClock         = desc("contact_clock", "The server's hybrid logical clock (seconds since 2024-01-01).")
	dDigest        = desc("contact_state_digest_info", "The state digest, as a label (equal on servers that hold the same state).", "digest")
	dHealth        = desc("contact_health_status", "HealthStatus sent in heartbeats: 1 serving, 2 syncing, 3 leaving.")
	dReady         = desc("contact_ready", "1 once the initial transfers completed and the server is not leaving.")
	dMLHealth      = desc("contact_memberlist_health_score", "memberlist's awareness score (0 is healthy).")
	dMembers       = desc("contact_members", "Members known, by state.", "state")
	dEventsDropped = desc("contact_membership_events_dropped_total", "Membership events dropped because the queue was full (the member list is still reconciled).")
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dClientFrames, dPeerFramesIn, dChangesPushed, dViolations, dMerge, dConnsActive,
		dConnsAccepted, dConnsRefused, dConnSlots, dConnsReserved, dIdleClosed, dPeerUp, dPeerLag, dPeerLagSec, dPeerBytes, dPeerOffset, dPeerChanges,
		dTransfers, dTransfersSkip, dSilent, dTxEntries, dTxBytes, dPulls, dCatchUpRounds, dRxEntries, dRxBytes, dAntiEntropy,
		dTransfersRun, dFeedBytes, dExpiredSkip, dClockAhead, dRefillDropped, dMark, dStale, dCutoff, dLogHead,
		dAckTimeouts, dPaced, dPacedSec, dLive, dTombstones, dUsers, dClock, dDigest, dHealth, dReady, dMLHealth, dMembers, dEventsDropped} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	n := c.n
	sc := &n.Server.Counters
	for op := wire.ClientUpdate; op <= wire.ClientListAll; op++ {
		counter(dClientFrames, sc.ClientFrames[op].Load(), op.String())
	}
	for reason, v := range sc.Violations() {
		counter(dViolations, v, "client", reason)
	}
	gauge(dConnsActive, float64(sc.Active.Load()))
	counter(dConnsAccepted, sc.Accepted.Load())
	for reason, v := range sc.Refused() {
		counter(dConnsRefused, v, reason)
	}
	slots := n.Server.Slots()
	gauge(dConnSlots, float64(slots.Clients), "clients")
	gauge(dConnSlots, float64(slots.Handshakes), "handshaking")
	gauge(dConnSlots, float64(slots.Reserve), "peer_reserve")
	gauge(dConnSlots, float64(slots.Probation), "probation")
	counter(dConnsReserved, sc.Reserved.Load())
	counter(dIdleClosed, sc.IdleClosed.Load())
	st := n.Store.Stats()
	gauge(dLive, float64(st.Live))
	gauge(dTombstones, float64(st.Tombstones))
	gauge(dUsers, float64(st.Books))
	gauge(dMark, float64(n.Store.Mark()))
	gauge(dStale, b2f(n.Store.Stale()))
	gauge(dCutoff, float64(st.Cutoff))
	counter(dLogHead, st.LogHead)
	gauge(dClock, float64(st.Clock))
	gauge(dDigest, 1, fmt.Sprintf("%016x", st.Digest))
	ready := 0.0
	if n.Ready() {
		ready = 1
	}
	gauge(dReady, ready)
	if n.Sync == nil {
		gauge(dHealth, float64(wire.HealthServing))
		return
	}
	ss := n.Sync.Stats()
	gauge(dHealth, float64(n.Sync.Health()))
	for op := wire.ServerUpdate; op <= wire.ServerAskForUpdate; op++ {
		counter(dPeerFramesIn, ss.FramesIn[op].Load(), op.String())
	}
	counter(dChangesPushed, ss.FramesOut.Load())
	for reason, v := range ss.Violations.Snapshot() {
		counter(dViolations, v, "peer", reason)
	}
	counter(dMerge, ss.Applied.Load(), "applied")
	counter(dMerge, ss.Ignored.Load(), "ignored")
	counter(dTransfers, ss.TransfersServed.Load())
	counter(dTransfersSkip, ss.TransfersSkipped.Load())
	counter(dSilent, ss.SilentClosed.Load())
	counter(dTxEntries, ss.TransferEntriesTx.Load())
	counter(dTxBytes, ss.TransferBytesTx.Load())
	counter(dPulls, ss.PullsDone.Load())
	counter(dCatchUpRounds, ss.CatchUpRounds.Load())
	counter(dRxEntries, ss.PullEntriesRx.Load())
	counter(dRxBytes, ss.PullBytesRx.Load())
	counter(dAntiEntropy, ss.AntiEntropyPulls.Load())
	counter(dTransfersRun, ss.TransfersStarted.Load(), "started")
	counter(dTransfersRun, ss.TransfersServed.Load(), "served")
	counter(dTransfersRun, ss.TransfersAborted.Load(), "aborted")
	counter(dFeedBytes, ss.LiveBytesTx.Load(), "live")
	counter(dFeedBytes, ss.CatchUpBytesTx.Load(), "catch_up")
	counter(dExpiredSkip, ss.FeedExpiredSkipped.Load())
	counter(dClockAhead, ss.ClockAhead.Load())
	counter(dRefillDropped, ss.RefillDropped.Load())
	counter(dAckTimeouts, ss.BarrierTimeouts.Load())
	counter(dPaced, ss.PacedCommits.Load())
	ch <- prometheus.MustNewConstMetric(dPacedSec, prometheus.CounterValue, float64(ss.PacedNanos.Load())/1e9)
	for _, p := range n.Sync.Peers() {
		gauge(dPeerUp, b2f(p.OutboundUp), p.Name, "outbound")
		gauge(dPeerUp, b2f(p.InboundUp), p.Name, "inbound")
		gauge(dPeerLag, float64(p.LagChanges), p.Name)
		gauge(dPeerLagSec, p.LagSeconds, p.Name)
		counter(dPeerBytes, p.LiveBytes, p.Name, "live")
		counter(dPeerBytes, p.CatchUpBytes, p.Name, "catch_up")
		counter(dPeerBytes, p.SnapshotBytes, p.Name, "snapshot")
		if p.HasWallOffset {
			gauge(dPeerOffset, p.WallOffset.Seconds(), p.Name)
		}
		counter(dPeerChanges, p.ChangesIn, p.Name)
	}
	gauge(dMLHealth, float64(n.Members.HealthScore()))
	counter(dEventsDropped, n.Members.DroppedEvents())
	states := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	for _, m := range n.Members.Members() {
		states[m.State]++
	}
	for _, m := range n.Members.Departed() {
		states[m.State]++
	}
	for s, v := range states {
		gauge(dMembers, float64(v), s)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
