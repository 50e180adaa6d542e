package sync

import (
	gosync "sync"
	"sync/atomic"
)

// Stats are the replication counters, safe for concurrent use.
type Stats struct {
	FramesIn          [6]atomic.Uint64 // by server opcode
	FramesOut         atomic.Uint64    // change frames pushed (not transfers)
	Applied           atomic.Uint64    // incoming changes that won the merge
	Ignored           atomic.Uint64    // incoming changes that lost
	TransfersServed   atomic.Uint64
	TransfersSkipped  atomic.Uint64 // AskForUpdate from a syncing peer already holding our state: nothing sent
	TransferEntriesTx atomic.Uint64
	TransferBytesTx   atomic.Uint64
	PullsDone         atomic.Uint64
	PullEntriesRx     atomic.Uint64
	PullBytesRx       atomic.Uint64
	AntiEntropyPulls  atomic.Uint64
	QueueOverflows    atomic.Uint64
	PeersRefused      atomic.Uint64
	SilentClosed      atomic.Uint64 // peer connections closed after three heartbeat intervals without a byte
	BarrierTimeouts   atomic.Uint64 // ListAll acknowledgements that did not wait for every peer

	mu         gosync.Mutex
	violations map[string]uint64
}

func (s *Stats) addViolation(reason string) {
	s.mu.Lock()
	if s.violations == nil {
		s.violations = map[string]uint64{}
	}
	s.violations[reason]++
	s.mu.Unlock()
}

// Violations returns protocol violations on peer connections by reason.
func (s *Stats) Violations() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.violations))
	for k, v := range s.violations {
		out[k] = v
	}
	return out
}
