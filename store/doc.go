// Package store owns the state machine of the contact protocol: per-user
// contact books, entries with stamps, tombstones, the hybrid logical clock,
// the merge rule, tombstone expiry, and durable storage in pebble.
//
// It must not know about connections, frames or peers: callers hand it
// decoded values and get Changes back. It imports nothing of this module.
//
// Layout. An in-memory index, sharded by user, is authoritative for reads
// and for the merge, so ListAll and local stamping never touch the disk.
// Every change that wins the merge is also written to pebble as a Merge
// operand; pebble resolves operands with the very same rule (merger.go), so
// batches committed by different connections in any order still leave
// pebble holding the winner. On Open the index is rebuilt from pebble.
//
// Durability. Changes are committed to pebble's WAL without fsync in batch
// mode; Sync is the barrier that makes everything committed before it
// stable, and concurrent Syncs share one fsync (group commit).
package store
