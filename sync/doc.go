// Package sync owns replication between contact servers over the contact
// protocol: peer connections (one dialed to every live member, one
// accepted from each), feeding every peer this server's changes from the
// store's change log, HeartBeat/UpdateClock, AskForUpdate transfers from
// snapshots, the initial sync and the refill of a stale member, client
// acknowledgement barriers, the clock bound's reports, and digest-driven
// anti-entropy.
//
// It must not decode client frames or decide merges: the store merges and
// logs, wire encodes. Membership callbacks never reach it directly: it
// consumes membership's queued events and reconciles against the member
// list.
//
// # Connection roles
//
// The connection a peer dials to us is that peer's feed: we send on it,
// in sequence order, every change of our change log after the peer's
// cursor (where its last confirmation left it, kept by the store across
// restarts of either side), and a snapshot when the peer asks
// (AskForUpdate) or when its cursor fell behind the trimmed part of the
// log. A peer that falls behind is never dropped and never starts over:
// its feed simply reads further back in the log, from memory or disk,
// until it is caught up. On the connection we dial we receive the peer's
// feed, send AskForUpdate when we need a full state, and our barriers.
//
// # Flow control
//
// A client commit is admitted by Pace (pace.go): it waits while more than
// half of the serving peers, and at least two (Config.PaceAll: any), have
// not confirmed the log up to PaceLag changes behind its head, so that a
// load above what the cluster applies slows the clients (TCP's
// back-pressure) instead of leaving every peer further behind for as long
// as it lasts. Stopped, starting and transfer-receiving peers are not
// waited for, nor peers far behind until their feeds bring them within
// reach, nor is a commit of PaceSmall changes or fewer. A feed asks
// for a confirmation (a HeartBeat) every PaceLag/4 changes it writes.
//
// # HeartBeats are barriers
//
// Every HeartBeat we send carries Clock 0, so the peer answers each with
// exactly one UpdateClock, in order. A peer answers only once it has
// committed every frame received before the HeartBeat, and, on a
// connection that is its feed to us, once it has sent us everything its
// log held when the HeartBeat arrived. So the answer to a HeartBeat we
// sent on a feed confirms the feed's position (the peer holds every change
// sent before it), and the answer to one we sent on the connection we
// dialed tells us we have every change the peer had logged when it asked.
//
// Every connection sends a HeartBeat each interval; so that a member's
// heartbeat work does not grow with the cluster, the interval stretches
// beyond HeartbeatBudget HeartBeats a second over all its connections
// (beyond 33 members at the default), and the silence that closes a
// connection with it.
//
// # Concurrency
//
// Each connection has two goroutines: its reader, which applies the
// peer's frames to the store (a large batch spreads its shards over up to
// GOMAXPROCS goroutines inside the store's Commit, which returns only
// when all are done) and hands control events (HeartBeats to
// answer, answers to ours, AskForUpdate) to an inbox without ever
// blocking; and its owner, the only writer, which owns the connection's
// state (cursor, HeartBeat accounting, pull and snapshot progress) and
// acts on the inbox, the log's head moving, its ticker and requests from
// the manager. Waits are condition waits on channels closed when a state
// changes (the store's head, a feed's confirmed position, readiness),
// never polling. The Manager owns the peer table under one mutex (mu);
// a connection's inbox and published state have their own small locks,
// never held while taking mu. Lock order: Manager.mu, then a conn's inMu
// or pubMu; nothing is held across I/O. Every goroutine belongs to the
// Manager's or a connection's WaitGroup and ends on Shutdown, Abort or the
// connection's close.
//
// Importers that also need the standard library's sync give one an alias.
package sync
