// Package servertest starts a contact server for a test, the way
// httptest.NewServer starts an HTTP one: on 127.0.0.1 with a port the
// kernel picks, in front of a fresh store in t.TempDir(), logging through
// t.Log, and stopped when the test ends (the server first, then its store,
// the order internal/node keeps). It runs a server alone: clusters are
// internal/clustertest's. Only tests import it.
package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/logging/logtest"
	"github.com/contactstore/contactstore/internal/server"
	"github.com/contactstore/contactstore/store"
)

// Start starts a server called "test" on a fresh store; mod, if set,
// adjusts its config first. The server is serving when Start returns.
func Start(t testing.TB, mod func(*server.Config)) *server.Server {
	t.Helper()
	s, _ := StartWith(t, store.DefaultConfig(t.TempDir()), mod)
	return s
}

// StartWith is Start on a store opened with sc, which it also returns.
func StartWith(t testing.TB, sc store.Config, mod func(*server.Config)) (*server.Server, *store.Store) {
	t.Helper()
	cfg := server.DefaultConfig("test")
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Logger = logtest.ForTest(t, "server")
	if mod != nil {
		mod(&cfg)
	}
	st, err := store.Open(sc, cfg.Logger.Named("store"))
	if err != nil {
		t.Fatalf("servertest: open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("servertest: close store: %v", err)
		}
	})
	s, err := server.New(cfg, st)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	s.Serve()
	t.Cleanup(func() { // runs before the store's: cleanups run last-in first-out
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, st
}
