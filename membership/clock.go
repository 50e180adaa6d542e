package membership

import (
	"encoding/binary"
	"maps"
	"time"

	"github.com/hashicorp/memberlist"
)

// ClockOffset is how far another member's wall clock is from this one's,
// measured from memberlist's own pings: every ping acknowledgement carries
// the acknowledging member's wall clock, and the round trip bounds the
// error (half of it).
type ClockOffset struct {
	// Offset is the other member's clock minus ours.
	Offset time.Duration
	// RTT is the round trip of the ping that measured it.
	RTT time.Duration
	// At is when it was measured, by our clock.
	At time.Time
}

// ClockOffsets returns the latest offset measured to each member.
func (m *Membership) ClockOffsets() map[string]ClockOffset {
	m.offsetsMu.Lock()
	defer m.offsetsMu.Unlock()
	return maps.Clone(m.offsets)
}

// pingDelegate puts this member's wall clock in its ping acknowledgements
// and reads the others'. Its callbacks only copy a few bytes under a
// short lock: they never block memberlist.
type pingDelegate Membership

// AckPayload is our wall clock, unix nanoseconds.
func (p *pingDelegate) AckPayload() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(p.cfg.Now().UnixNano()))
}

// NotifyPingComplete records the other member's offset: its clock when it
// acknowledged, against ours half a round trip before the ack arrived.
func (p *pingDelegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	if len(payload) != 8 || other == nil {
		return // a member of an earlier release, or no payload
	}
	now := p.cfg.Now()
	theirs := time.Unix(0, int64(binary.BigEndian.Uint64(payload)))
	off := ClockOffset{Offset: theirs.Sub(now.Add(-rtt / 2)), RTT: rtt, At: now}
	p.offsetsMu.Lock()
	p.offsets[other.Name] = off
	p.offsetsMu.Unlock()
}
