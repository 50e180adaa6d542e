// Package store owns the state machine of the contact protocol: per-user
// contact books, entries with stamps, tombstones and their expiry, the
// bounded hybrid logical clock, the merge rule, the change log peers are
// fed from, staleness and refill, and durable storage in pebble.
//
// It must not know about connections, frames or peers: callers hand it
// decoded values and read changes and snapshots back. It imports nothing
// of this module.
//
// # Layout
//
// Everything lives in pebble (keys.go has the key spaces). No entry is
// kept in memory: the merge reads the stored entry from pebble (bloom
// filters and the block cache make that cheap; a batch's keys are read in
// order through one iterator), so memory is set by the configuration
// (memtable, block cache, log tail), not by how many contacts the store
// holds, and opening takes the same time at any size.
//
// # Shards and concurrency
//
// Users are split over NumShards shards. A Batch stages a caller's
// changes; Commit applies them shard by shard, each under its shard's
// lock: read the stored entries, merge (stamping local changes), and write
// the entries, the tombstone index, the book counts, one change-log record
// (the final entry of each key the commit changed locally, in key order)
// and the shard's state (digest, counts, log head) in one pebble batch.
// Decisions and commits of a shard are therefore in the same order, the
// persisted digest always matches the committed entries (a crash at any
// point leaves them consistent), and shards commit in parallel. Readers
// (ListAll, transfers, the log) use pebble iterators and snapshots: they
// see committed state only and take no shard lock. Lock order: a shard's
// lock, then pubMu, then headMu (each held briefly); never two shard locks.
//
// # Durability
//
// Changes are committed to pebble's WAL without fsync in batch mode; Sync
// is the barrier that makes everything committed before it stable, and
// concurrent Syncs share one fsync (group commit).
//
// # Time
//
// One injected wall clock (Config.Now) drives stamps, the clock bound,
// tombstone expiry and staleness, so tests move it by days. See clock.go,
// expiry.go and stale.go for the rules.
package store
