package ctlcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/contactstore/contactstore/internal/security"
)

// httpURL turns an --http address into a URL for path. The scheme decides:
// https:// speaks TLS and http:// plain HTTP; a bare HOST:PORT speaks TLS
// exactly when --tls-ca is given, as the contact port does (a server with
// TLS serves its HTTP endpoint over TLS only).
func (g *globals) httpURL(addr, path string) string {
	switch {
	case strings.HasPrefix(addr, "https://"), strings.HasPrefix(addr, "http://"):
		return strings.TrimSuffix(addr, "/") + path
	case g.tlsConfig != nil:
		return "https://" + addr + path
	}
	return "http://" + addr + path
}

// httpClient is the client for the --http endpoints: with --tls-ca it
// verifies the server's member certificate against the CA (the name in the
// address, or --tls-server-name) and presents --tls-cert if given.
func (g *globals) httpClient() *http.Client {
	cfg := g.tlsConfig
	if cfg == nil {
		cfg = security.DialConfig(nil, nil) // https:// without --tls-ca: the system's roots
	}
	cfg = cfg.Clone()
	cfg.ServerName = g.serverName // empty: the URL's host
	return &http.Client{Timeout: g.timeout, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}
}

// getJSON GETs path from addr and decodes the JSON body into v. It returns
// the status code with an error for any status but 200 (v is still
// decoded when the body is JSON).
func (g *globals) getJSON(ctx context.Context, addr, path string, v any) (int, error) {
	url := g.httpURL(addr, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	c := g.httpClient()
	defer c.CloseIdleConnections()
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("%s: %w", url, err)
	}
	if res.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "HTTP request to an HTTPS server") {
		return res.StatusCode, fmt.Errorf("%s serves HTTPS only: give --tls-ca (or --http https://%s)", addr, strings.TrimPrefix(addr, "http://"))
	}
	jsonErr := json.Unmarshal(body, v)
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("%s: %s", url, res.Status)
	}
	if jsonErr != nil {
		return res.StatusCode, fmt.Errorf("%s: not JSON: %v", url, jsonErr)
	}
	return res.StatusCode, nil
}
