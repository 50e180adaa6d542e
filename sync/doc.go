// Package sync owns replication between contact servers over the contact
// protocol: peer connections (one dialed per live member, one accepted from
// each), the push of local changes, HeartBeat/UpdateClock, AskForUpdate
// transfers with the clock-0 barrier, and digest-driven anti-entropy.
//
// Connection roles. The connection a peer dials to us is that peer's feed:
// we push our local changes on it, in order behind any AskForUpdate
// transfer the peer asked for on it. A peer that dials us therefore gets a
// snapshot followed by every later change, with no gap, and a peer whose
// feed breaks re-dials and pulls again. On the connection we dial we send
// AskForUpdate and the barrier first, and heartbeats after.
//
// It must not decode client frames or decide merges: the store merges,
// wire encodes. Membership callbacks never reach it directly; it consumes
// membership's queued events and reconciles against the member list.
//
// Importers that also need the standard library's sync give one an alias.
package sync
