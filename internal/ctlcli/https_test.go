package ctlcli

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/stretchr/testify/require"
)

// status, members and health speak HTTPS to a server whose HTTP endpoint
// has TLS (--tls-cert), showing a certificate when it verifies clients.
func TestStatusAndHealthOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, security.WriteTestPKI(dir, []string{"srv"}, []string{"alice"}, []string{"127.0.0.1"}, time.Hour))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv-key.pem"))
	require.NoError(t, err)
	pool, err := security.LoadCA(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(opsapi.Status{Name: "srv", Health: "serving", Ready: true, SecurityMissing: []string{"gossip_key"},
			Members: []opsapi.Member{{Name: "srv", Self: true, State: "alive", Health: "serving", InSync: true, HeardSecondsAgo: -1}}})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ready"}`)) })
	ts := httptest.NewUnstartedServer(mux)
	ts.TLS = security.ServerConfig(cert, pool, true) // --http-client-auth verify
	ts.StartTLS()
	defer ts.Close()
	addr := ts.Listener.Addr().String()
	tlsFlags := []string{"--tls-ca", filepath.Join(dir, "ca.pem"), "--tls-cert", filepath.Join(dir, "alice.pem"),
		"--tls-key", filepath.Join(dir, "alice-key.pem")}

	out, _, err := run(t, append(tlsFlags, "status", "--http", addr)...)
	require.NoError(t, err, "a bare HOST:PORT with --tls-ca speaks HTTPS")
	require.Contains(t, out, "srv: serving")
	require.Contains(t, out, "NOT SECURE: missing gossip_key")

	out, _, err = run(t, append(tlsFlags, "members", "--http", "https://"+addr)...)
	require.NoError(t, err)
	require.Contains(t, out, "srv (this)")

	out, _, err = run(t, append(tlsFlags, "health", "--http", "https://"+addr)...)
	require.NoError(t, err)
	require.Equal(t, "ready\n", out)

	_, _, err = run(t, "status", "--http", addr)
	require.ErrorContains(t, err, "serves HTTPS only: give --tls-ca")

	_, _, err = run(t, "health", "--tls-ca", filepath.Join(dir, "ca.pem"), "--http", addr)
	require.Error(t, err, "the endpoint verifies clients: no certificate, no answer")
}
