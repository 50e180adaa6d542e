package ops

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/contactstore/contactstore/internal/node"
	"github.com/contactstore/contactstore/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed page/index.html
var page embed.FS

// Deadlines of the HTTP connections (net/http arms them per request): a
// kept-alive connection quiet between requests for httpIdleTimeout is
// closed, and a response not taken within httpWriteTimeout is abandoned,
// so neither an idle browser tab nor a scraper that stops reading holds a
// connection and its goroutine forever. Variables so tests can shorten them.
var (
	httpIdleTimeout  = 2 * time.Minute
	httpWriteTimeout = 30 * time.Second
)

// Server is the HTTP endpoint of one node.
type Server struct {
	ln   net.Listener
	addr string
	srv  *http.Server
}

// Start serves n's endpoints as cfg says, with metrics m (already
// attached).
func Start(cfg Config, n *node.Node, m *Metrics) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err) // "http: listen tcp ADDR: bind: address already in use"
	}
	bound := ln.Addr()
	if cfg.MaxConns > 0 {
		ln = &limitListener{Listener: ln, max: int64(cfg.MaxConns), refused: m.httpRefused.Inc, log: log}
	}
	if cfg.TLS != nil {
		// Go's TLS server answers a plain HTTP request with a 400 saying
		// the server speaks HTTPS, and serves nothing.
		ln = tls.NewListener(ln, cfg.TLS)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		code, state := http.StatusOK, "ready"
		if !n.Ready() {
			code, state = http.StatusServiceUnavailable, "syncing"
			if n.Sync != nil && n.Sync.Health() == wire.HealthLeaving {
				state = "leaving"
			}
		}
		writeJSON(w, code, map[string]string{"status": state})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, status(n))
	})
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, status(n).Members)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		b, _ := page.ReadFile("page/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
	s := &Server{ln: ln, addr: bound.String(), srv: &http.Server{Handler: mux,
		ReadHeaderTimeout: 5 * time.Second, WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog:       log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}}
	go func() { _ = s.srv.Serve(ln) }()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	log.Info("http listening", "addr", s.addr, "scheme", scheme, "max_conns", cfg.MaxConns)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.addr }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
