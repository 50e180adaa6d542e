// Package client is a Go client of the contact protocol's client role: it
// dials one of several servers (failing over in order), sends Updates and
// Deletes pipelined, and reads ListAll replies. contactctl, the tests and
// the benchmarks use it.
//
// It must not know about peers or the store; it speaks only wire frames.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/contactstore/contactstore/wire"
)

// Contact is one entry of a ListAll reply.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// Options configures Dial.
type Options struct {
	// DialTimeout bounds each connection attempt.
	DialTimeout time.Duration
	// IOTimeout bounds each read and each write of the connection: how
	// long a server may stay silent while a ListAll reply is awaited (or
	// in the middle of one), and how long a write may block. It is armed
	// before every read and write, never once for a whole operation, so a
	// large reply that keeps arriving, or a long pipeline of Updates, is
	// never cut by a deadline armed before it started.
	IOTimeout time.Duration
	// Dialer replaces net.Dialer (TLS, tests); nil uses TCP.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// TLSDialer returns a Dialer that speaks TLS with cfg, verifying the
// server's certificate against serverName, or the address's host when
// serverName is empty.
func TLSDialer(cfg *tls.Config, serverName string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c := cfg.Clone()
		c.ServerName = serverName
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		d := tls.Dialer{Config: c}
		return d.DialContext(ctx, "tcp", addr)
	}
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{DialTimeout: 3 * time.Second, IOTimeout: 30 * time.Second}
}

// Client is one client connection. It is not safe for concurrent use.
type Client struct {
	opts Options
	user string
	addr string
	conn net.Conn
	io   *timedConn
	bw   *bufio.Writer
	dec  *wire.Decoder
	buf  []byte
}

// ErrNoServer means no server in the list could be reached.
var ErrNoServer = errors.New("no server reachable")

// Dial connects as user to the first reachable server of addrs, in order.
// The user name may be empty: an empty name is a book like any other.
func Dial(ctx context.Context, addrs []string, user string, opts Options) (*Client, error) {
	hello, err := wire.AppendHello(nil, wire.RoleClient, []byte(user))
	if err != nil {
		return nil, fmt.Errorf("user name %q: %w", user, err)
	}
	var errs []string
	for _, addr := range addrs {
		conn, err := dial(ctx, addr, opts)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		tc := &timedConn{conn: conn, timeout: opts.IOTimeout}
		c := &Client{opts: opts, user: user, addr: addr, conn: conn, io: tc,
			bw: bufio.NewWriterSize(tc, 64<<10), dec: wire.NewDecoder(bufio.NewReaderSize(tc, 64<<10))}
		if _, err := c.bw.Write(hello); err != nil {
			_ = conn.Close()
			errs = append(errs, err.Error())
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w (%s)", ErrNoServer, strings.Join(errs, "; "))
}

func dial(ctx context.Context, addr string, opts Options) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if opts.Dialer != nil {
		return opts.Dialer(dctx, addr)
	}
	var d net.Dialer
	return d.DialContext(dctx, "tcp", addr)
}

// Addr is the server this client is connected to.
func (c *Client) Addr() string { return c.addr }

// Update queues an Update; it is sent on the next Flush or List.
func (c *Client) Update(contact, phone string) error {
	var err error
	c.buf, err = wire.AppendClientUpdate(c.buf[:0], []byte(contact), []byte(phone))
	if err != nil {
		return err
	}
	_, err = c.bw.Write(c.buf)
	return err
}

// Delete queues a Delete.
func (c *Client) Delete(contact string) error {
	var err error
	c.buf, err = wire.AppendClientDelete(c.buf[:0], []byte(contact))
	if err != nil {
		return err
	}
	_, err = c.bw.Write(c.buf)
	return err
}

// Flush sends everything queued.
func (c *Client) Flush() error { return c.bw.Flush() }

// List sends ListAll and returns the user's contacts. When it returns
// without error, every change sent before it is durable on the server.
func (c *Client) List() ([]Contact, error) {
	var out []Contact
	err := c.ListFunc(func(name, phone []byte) {
		out = append(out, Contact{Name: string(name), Phone: string(phone)})
	})
	return out, err
}

// ListFunc is List without building a slice: fn sees each contact's bytes,
// valid only during the call.
func (c *Client) ListFunc(fn func(name, phone []byte)) error {
	_, _ = c.bw.Write(wire.AppendClientListAll(c.buf[:0]))
	if err := c.Flush(); err != nil {
		return err
	}
	n, err := c.dec.ListAllCount(0)
	if err != nil {
		return err
	}
	for range n {
		name, phone, err := c.dec.ListAllEntry()
		if err != nil {
			return err
		}
		fn(name, phone)
	}
	return nil
}

// RawWriter returns a writer of pre-encoded client frames on this
// connection, for load generators; it flushes what Update and Delete queued
// first. Bytes written must be whole, valid frames.
func (c *Client) RawWriter() io.Writer {
	_ = c.Flush()
	return c.io // each write armed with IOTimeout, like the client's own
}

// Close closes the connection (queued frames not flushed are dropped).
func (c *Client) Close() error { return c.conn.Close() }

// timedConn arms the connection's read or write deadline, IOTimeout from
// now, before every read and every write of it (0: no deadline).
type timedConn struct {
	conn    net.Conn
	timeout time.Duration
}

func (t *timedConn) deadline() time.Time {
	if t.timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(t.timeout)
}

func (t *timedConn) Read(p []byte) (int, error) {
	_ = t.conn.SetReadDeadline(t.deadline())
	return t.conn.Read(p)
}

func (t *timedConn) Write(p []byte) (int, error) {
	_ = t.conn.SetWriteDeadline(t.deadline())
	return t.conn.Write(p)
}
