package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A publish asked not to wait returns even when memberlist never confirms
// its broadcast: after Leave (as after a refutation that drew a higher
// incarnation) memberlist drops the alive message without notice, and its
// UpdateNode(0) waited for that notice for ever. The 10 s are a hang
// detector, not a timing.
func TestPublishReturnsWhenTheBroadcastIsDropped(t *testing.T) {
	start := func(name, ip string) *Membership {
		cfg := DefaultConfig(name)
		cfg.BindAddr, cfg.Profile = ip+":0", "local"
		m, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Shutdown() })
		return m
	}
	a, b := start("a", "127.0.4.50"), start("b", "127.0.4.51")
	bn := b.ml.LocalNode()
	_, err := a.ml.Join([]string{fmt.Sprintf("%s:%d", bn.Addr, bn.Port)})
	require.NoError(t, err)
	require.NoError(t, a.Leave(time.Second))

	done := make(chan error, 1)
	go func() { done <- a.Publish(Published{Digest: 1}, 0) }()
	select {
	case err := <-done:
		require.Error(t, err, "nothing was broadcast, so the publish is reported as not done")
	case <-time.After(10 * time.Second):
		t.Fatal("Publish with timeout 0 never returned: memberlist dropped the update and waited for it")
	}
	a.metaMu.Lock()
	pending := a.publishPending
	a.metaMu.Unlock()
	require.True(t, pending, "the next publish goes out again, even unchanged")
}
