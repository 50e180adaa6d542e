package ops

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/logging/logtest"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/stretchr/testify/require"
)

type httpPKI struct {
	ca                   *security.CA
	server, member, user tls.Certificate
}

func newHTTPPKI(t *testing.T) *httpPKI {
	ca, err := security.NewCA(time.Hour)
	require.NoError(t, err)
	p := &httpPKI{ca: ca}
	p.server, _, _, err = ca.IssueMember("node-0", []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	p.member, _, _, err = ca.IssueMember("node-1", nil, time.Hour)
	require.NoError(t, err)
	p.user, _, _, err = ca.IssueUser("ops", time.Hour)
	require.NoError(t, err)
	return p
}

func startHTTP(t *testing.T, mod func(*Config)) (*Server, *Metrics) {
	cfg := DefaultConfig("127.0.0.1:0")
	cfg.Logger = logtest.ForTest(t, "http")
	if mod != nil {
		mod(&cfg)
	}
	m := NewMetrics()
	s, err := Start(cfg, nil, m)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s, m
}

func httpsClient(p *httpPKI, cert *tls.Certificate) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: security.DialConfig(cert, p.ca.Pool())}}
}

func healthz(c *http.Client, url string) (int, string, error) {
	res, err := c.Get(url + "/healthz")
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// With TLS configured the endpoint speaks HTTPS, with the member's
// certificate, and nothing but HTTPS: a plain HTTP request gets no data.
func TestHTTPOverTLSWhenTLSIsConfigured(t *testing.T) {
	p := newHTTPPKI(t)
	s, _ := startHTTP(t, func(c *Config) { c.TLS = security.ServerConfig(p.server, p.ca.Pool(), false) })

	code, body, err := healthz(httpsClient(p, nil), "https://"+s.Addr())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"ok"`)

	code, body, err = healthz(&http.Client{Timeout: 5 * time.Second}, "http://"+s.Addr())
	if err == nil {
		require.Equal(t, http.StatusBadRequest, code, "plain HTTP must not be served")
		require.NotContains(t, body, `"ok"`)
	}

	_, _, err = healthz(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: x509PoolOf(t)}}}, "https://"+s.Addr())
	require.Error(t, err, "a client trusting another CA must not accept the endpoint")
}

func x509PoolOf(t *testing.T) *x509.CertPool {
	other, err := security.NewCA(time.Hour)
	require.NoError(t, err)
	return other.Pool()
}

// --http-client-auth verify: an HTTPS client must present a certificate
// from the CA (a member's or a user's).
func TestHTTPClientAuthVerify(t *testing.T) {
	p := newHTTPPKI(t)
	s, _ := startHTTP(t, func(c *Config) { c.TLS = security.ServerConfig(p.server, p.ca.Pool(), true) })
	url := "https://" + s.Addr()
	_, _, err := healthz(httpsClient(p, nil), url)
	require.Error(t, err, "no client certificate")
	for _, cert := range []tls.Certificate{p.user, p.member} {
		code, _, err := healthz(httpsClient(p, &cert), url)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
}

// Connections past MaxConns are closed at once and counted; one freed
// slot serves again. Headers past MaxHeaderBytes are refused.
func TestHTTPConnectionCapAndHeaderLimit(t *testing.T) {
	s, m := startHTTP(t, func(c *Config) { c.MaxConns = 3 })
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = extra.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a connection past the cap is closed at once")
	require.Equal(t, 1.0, httpRefused(t, m))

	require.NoError(t, held[0].Close())
	c := &http.Client{Timeout: 5 * time.Second}
	require.Eventually(t, func() bool {
		code, _, err := healthz(c, "http://"+s.Addr())
		return err == nil && code == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "a freed slot serves again")
	c.CloseIdleConnections()

	// (Retried while the connection just closed still holds its slot.)
	code := 0
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/healthz", nil)
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		res, err := c.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		code = res.StatusCode
		return true
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
}

func httpRefused(t *testing.T, m *Metrics) float64 {
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == "contact_http_connections_refused_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("contact_http_connections_refused_total not exported")
	return 0
}
