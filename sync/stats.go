package sync

import (
	"sync/atomic"

	"github.com/contactstore/contactstore/wire/connend"
)

// Stats are the replication counters, safe for concurrent use.
type Stats struct {
	FramesIn           [6]atomic.Uint64 // by server opcode
	FramesOut          atomic.Uint64    // change frames fed from the log (not transfers)
	Applied            atomic.Uint64    // incoming changes that won the merge
	Ignored            atomic.Uint64    // incoming changes that lost
	LiveBytesTx        atomic.Uint64    // fed to peers close to the head
	CatchUpBytesTx     atomic.Uint64    // fed to peers catching up from further back in the log
	FeedExpiredSkipped atomic.Uint64    // log changes not fed: stamped below the expiry cutoff
	TransfersStarted   atomic.Uint64
	TransfersServed    atomic.Uint64
	TransfersAborted   atomic.Uint64
	TransfersSkipped   atomic.Uint64 // AskForUpdate from a syncing peer already holding our state: nothing sent
	TransferEntriesTx  atomic.Uint64
	TransferBytesTx    atomic.Uint64
	PullsDone          atomic.Uint64
	PullEntriesRx      atomic.Uint64
	PullBytesRx        atomic.Uint64
	AntiEntropyPulls   atomic.Uint64
	CatchUpRounds      atomic.Uint64 // catch-up rounds a starting member repeated because the last one took longer than ServeLag
	RefillDropped      atomic.Uint64 // entries a refill dropped: the cluster had deleted them
	FeedsAttached      atomic.Uint64 // feed connections (peers' dials) taken on: a reconnect counts again
	PeersRefused       atomic.Uint64
	SilentClosed       atomic.Uint64 // peer connections closed after three heartbeat intervals without a byte
	BarrierTimeouts    atomic.Uint64 // ListAll acknowledgements that did not wait for every peer
	PacedCommits       atomic.Uint64 // client commits held by flow control (Pace)
	PacedNanos         atomic.Uint64 // time client commits were held by flow control
	ClockAhead         atomic.Uint64 // clocks or stamps heard beyond the clock bound

	// Violations counts protocol violations on peer connections by reason.
	Violations connend.Violations
}
