package sync

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The heartbeat budget stretches each connection's interval only when two
// connections per peer at the configured interval would exceed it.
func TestHeartbeatIntervalKeepsToTheBudget(t *testing.T) {
	for _, tc := range []struct {
		base   time.Duration
		budget int
		peers  int
		want   time.Duration
	}{
		{time.Second, 0, 1000, time.Second},             // no bound
		{time.Second, 64, 2, time.Second},               // 3 members
		{time.Second, 64, 32, time.Second},              // 33 members: exactly the budget
		{time.Second, 64, 63, 63 * time.Second / 32},    // 64 members: 126 links at 64 a second
		{time.Second, 64, 255, 255 * time.Second / 32},  // 256 members
		{100 * time.Millisecond, 2, 3, 3 * time.Second}, // the cluster test below
		{10 * time.Second, 64, 63, 10 * time.Second},    // a longer interval is kept
	} {
		t.Run(fmt.Sprintf("base=%v/budget=%d/peers=%d", tc.base, tc.budget, tc.peers), func(t *testing.T) {
			got := heartbeatInterval(tc.base, tc.budget, tc.peers)
			require.Equal(t, tc.want, got)
			if tc.budget > 0 && got > tc.base {
				perSecond := float64(2*tc.peers) / got.Seconds()
				require.InDelta(t, float64(tc.budget), perSecond, 0.001, "HeartBeats a second over all connections")
			}
		})
	}
}

// The silence stretches with the interval, and when many members leave at
// once it keeps the old, longer interval for two of them: a peer's next
// HeartBeat may still come one old interval after its last.
func TestSilenceFollowsTheBudgetAndOutlastsAShrink(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m, _ := testManager(t, nil, func(c *Config) {
		c.HeartbeatInterval = time.Second
		c.HeartbeatBudget = 64
		c.Now = func() time.Time { return now }
	})
	m.setPeerCount(2)
	require.Equal(t, 3*time.Second, m.silence(), "3 members: three plain intervals")
	m.setPeerCount(127) // 128 members: 254 links at 64 a second
	long := heartbeatInterval(time.Second, 64, 127)
	require.Equal(t, 254*time.Second/64, long)
	require.Equal(t, 3*long+3*long/4, m.silence(), "stretched, with a quarter's margin")
	m.setPeerCount(2) // 125 members left at once
	require.Equal(t, time.Second, m.hbInterval(), "our HeartBeats go back to every second")
	require.Equal(t, 3*long+3*long/4, m.silence(), "but a peer's next one may come one old interval late")
	now = now.Add(2*long + time.Millisecond)
	require.Equal(t, 3*time.Second, m.silence(), "two old intervals later, three plain ones")
}
