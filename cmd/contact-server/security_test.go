package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/stretchr/testify/require"
)

var httpLine = regexp.MustCompile(`http listening: addr=(\S+) scheme=(\S+)`)

// httpAddr waits for the server to log its HTTP address and scheme.
func (p *proc) httpAddr(t *testing.T) (addr, scheme string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := httpLine.FindStringSubmatch(p.log()); m != nil {
			return m[1], m[2]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no HTTP address logged:\n%s", p.log())
	return "", ""
}

func getStatus(t *testing.T, c *http.Client, url string) opsapi.Status {
	t.Helper()
	res, err := c.Get(url + "/v1/status")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var st opsapi.Status
	require.NoError(t, json.NewDecoder(res.Body).Decode(&st))
	return st
}

// The default configuration runs, but says at start, in one line, what an
// attacker on the network can do, and /v1/status says it is not secure.
func TestInsecureDefaultIsNotSilent(t *testing.T) {
	p := start(t, "--name", "open", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--gossip", "127.0.0.1:0", "--http", "127.0.0.1:0")
	_ = p.addr(t)
	addr, scheme := p.httpAddr(t)
	require.Equal(t, "http", scheme)
	log := p.log()
	require.Equal(t, 1, strings.Count(log, "INSECURE"), "one warning:\n%s", log)
	for _, s := range []string{"read and change every contact book", "join the gossip", "take over a member's name",
		"full-state transfers", "Missing: gossip_key, tls, client_auth"} {
		require.Contains(t, log, s)
	}
	st := getStatus(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr)
	require.False(t, st.Secure)
	require.Equal(t, []string{"gossip_key", "tls", "client_auth"}, st.SecurityMissing)
}

// Secured the documented way (the gossip key from the environment, member
// and user certificates from contactctl certs, clients verified): no
// warning, the HTTP endpoint speaks HTTPS with the member's certificate
// and nothing else, and /v1/status says secure.
func TestSecuredServerServesHTTPSOnly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, security.WriteTestPKI(dir, []string{"sec"}, []string{"alice"}, []string{"127.0.0.1"}, time.Hour))
	p := &proc{cmd: command("--name", "sec", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--gossip", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "sec.pem"), "--tls-key", filepath.Join(dir, "sec-key.pem"),
		"--tls-ca", filepath.Join(dir, "ca.pem"), "--tls-client-auth", "verify")}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	p.cmd.Env = append(p.cmd.Env, "CONTACT_GOSSIP_KEY="+key)
	p = startProc(t, p)
	_ = p.addr(t)
	addr, scheme := p.httpAddr(t)
	require.Equal(t, "https", scheme)
	require.NotContains(t, p.log(), "INSECURE")
	require.NotContains(t, p.cmd.Args, key, "the key is not on the command line")

	pool, err := security.LoadCA(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: security.DialConfig(nil, pool)}}
	st := getStatus(t, https, "https://"+addr)
	require.True(t, st.Secure)
	require.Empty(t, st.SecurityMissing)

	res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v1/status")
	if err == nil {
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "plain HTTP is refused when TLS is configured")
	}
	_, err = https.Get("https://" + addr + "/v1/status")
	require.NoError(t, err)
}
