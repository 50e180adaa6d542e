// Package server assembles a contact server: the TCP listener, the
// handshake, client connections, and the hand-off of peer connections to
// the replication layer. It owns connection lifecycle (deadlines, the
// connection cap, violations, graceful shutdown).
//
// It must not encode frames by hand (wire does) nor decide merges (store
// does); it only moves decoded frames between them.
package server
