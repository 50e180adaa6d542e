// Package membership owns cluster membership: it wraps hashicorp/memberlist
// (node name = server name), joins and re-joins seeds, publishes this
// node's meta (contact-protocol address, boot id, state digest, health) and
// reports members and membership events.
//
// It must not block memberlist: every delegate callback only copies data
// and hands it to a bounded queue. It knows nothing of stores, frames or
// peer connections and imports nothing of this module.
package membership
