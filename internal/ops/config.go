package ops

import (
	"crypto/tls"
	"errors"

	"github.com/hashicorp/go-hclog"
)

// Config configures the HTTP endpoint.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8080".
	Addr string
	// TLS, if set, makes the endpoint HTTPS only: a plain HTTP request is
	// answered 400 and served nothing. servercli sets it, with the contact
	// port's certificate, whenever the contact port has TLS.
	TLS *tls.Config
	// MaxConns caps the connections open at once (browsers, scrapers,
	// contactctl, health checks); more are closed at once, counted in
	// contact_http_connections_refused_total. 0: no cap.
	MaxConns int
	// MaxHeaderBytes bounds the header of a request (the endpoint takes
	// only short GETs).
	MaxHeaderBytes int
	// Logger receives the endpoint's logs; nil discards them.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults for an endpoint on addr.
func DefaultConfig(addr string) Config {
	return Config{Addr: addr, MaxConns: 256, MaxHeaderBytes: 16 << 10}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("http: empty address")
	case c.MaxConns < 0:
		return errors.New("http: max conns must not be negative (0: no cap)")
	case c.MaxHeaderBytes <= 0:
		return errors.New("http: max header bytes must be positive")
	}
	return nil
}
