package node

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/logging/logtest"
	"github.com/contactstore/contactstore/membership"
	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

// membership names the one health value it reads without importing wire.
func TestMembershipHealthLeavingIsWires(t *testing.T) {
	require.Equal(t, uint8(wire.HealthLeaving), membership.HealthLeaving)
}

func testConfig(t *testing.T, name string) Config {
	cfg := DefaultConfig(name)
	cfg.Store.Dir = t.TempDir()
	cfg.Server.ListenAddr = "127.0.0.1:0"
	cfg.Gossip.BindAddr = "" // alone: these tests are about assembly, not replication
	cfg.Logger = logtest.ForTest(t, name)
	return cfg
}

func TestNameHasOneSourceOfTruth(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"only the node's name", func(*Config) {}, ""},
		{"components named the same", func(c *Config) { c.Server.Name, c.Gossip.Name, c.Sync.Name = "n1", "n1", "n1" }, ""},
		{"server named otherwise", func(c *Config) { c.Server.Name = "other" }, `the server config is named "other" but the node "n1"`},
		{"gossip named otherwise", func(c *Config) { c.Gossip.Name = "other" }, `the gossip config is named "other" but the node "n1"`},
		{"sync named otherwise", func(c *Config) { c.Sync.Name = "other" }, `the sync config is named "other" but the node "n1"`},
		{"no name", func(c *Config) { c.Name = "" }, "server name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "n1")
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				_, err = Start(cfg)
				require.ErrorContains(t, err, tc.wantErr, "Start refuses what Validate refuses")
				return
			}
			require.NoError(t, err)
			n, err := Start(cfg)
			require.NoError(t, err)
			defer n.Kill()
			require.Equal(t, "n1", n.Server.Name())
		})
	}
}

// The node owns the store: a start that fails after opening it closes it
// again (its directory is free for the next start), and Shutdown closes it
// after the server has stopped.
func TestNodeOpensAndClosesTheStore(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := testConfig(t, "owner")
	cfg.Server.ListenAddr = busy.Addr().String()
	_, err = Start(cfg)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	require.ErrorContains(t, err, "contact port: listen tcp "+busy.Addr().String())

	cfg.Server.ListenAddr = "127.0.0.1:0"
	n, err := Start(cfg) // the failed start left the data dir unlocked
	require.NoError(t, err)
	c, err := client.Dial(context.Background(), []string{n.Server.Addr().String()}, "u", client.DefaultOptions())
	require.NoError(t, err)
	require.NoError(t, c.Update("a", "1"))
	_, err = c.List()
	require.NoError(t, err)
	_ = c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, n.Shutdown(ctx))
	st, err := store.Open(cfg.Store, nil) // locked while open: Shutdown closed it
	require.NoError(t, err)
	defer st.Close()
	list, err := st.List([]byte("u"), nil)
	require.NoError(t, err)
	require.Equal(t, []store.Contact{{Name: "a", Phone: "1"}}, list)
}
