package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/logging/logtest"
	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

// startServer starts a server on 127.0.0.1:0 in front of a fresh store;
// both stop when the test ends (the server first, as internal/node does).
// hooks run before Serve (SetPeerHandler, SetIsMember, ...).
func startServer(t testing.TB, mod func(*Config), hooks ...func(*Server)) *Server {
	t.Helper()
	return startServerWith(t, store.DefaultConfig(t.TempDir()), mod, hooks...)
}

// startServerWith is startServer on a store opened with sc.
func startServerWith(t testing.TB, sc store.Config, mod func(*Config), hooks ...func(*Server)) *Server {
	t.Helper()
	cfg := DefaultConfig("test")
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Logger = logtest.ForTest(t, "server")
	if mod != nil {
		mod(&cfg)
	}
	st, err := store.Open(sc, cfg.Logger.Named("store"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	s, err := New(cfg, st)
	require.NoError(t, err)
	for _, h := range hooks {
		h(s)
	}
	s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// Raw protocol helpers written from PROTOCOL.md alone, not from package
// wire, so the server is checked against the contract itself.
func pad(s string, width int) []byte {
	b := make([]byte, width)
	copy(b, s)
	return b
}

func rawHello(role byte, name string) []byte { return append([]byte{role}, pad(name, 256)...) }
func rawUpdate(contact, phone string) []byte {
	return append(append([]byte{1}, pad(contact, 256)...), pad(phone, 20)...)
}
func rawDelete(contact string) []byte { return append([]byte{2}, pad(contact, 256)...) }

var rawListAll = []byte{3}

type rawConn struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, s *Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(frames ...[]byte) {
	c.t.Helper()
	for _, f := range frames {
		_, err := c.Write(f)
		require.NoError(c.t, err)
	}
}

// listAll sends ListAll and returns the raw reply bytes and the contacts.
func (c *rawConn) listAll() ([]byte, []string) {
	c.t.Helper()
	c.send(rawListAll)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, 4)
	_, err := io.ReadFull(c.r, head)
	require.NoError(c.t, err)
	n := binary.BigEndian.Uint32(head)
	body := make([]byte, int(n)*276)
	_, err = io.ReadFull(c.r, body)
	require.NoError(c.t, err)
	var out []string
	for i := 0; i < int(n); i++ {
		e := body[i*276 : (i+1)*276]
		name := e[:256]
		phone := e[256:]
		out = append(out, strings.TrimRight(string(name[:indexNUL(name)]), "")+"="+string(phone[:indexNUL(phone)]))
	}
	return append(head, body...), out
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// waitClosed asserts the server closes the connection within d.
func (c *rawConn) waitClosed(d time.Duration) {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.r)
	require.NoError(c.t, err, "server did not close the connection within %v", d)
}

type vector struct {
	ok   bool
	desc string
	raw  []byte
}

func loadVectors(t testing.TB) []vector {
	path := "../../../shared/testdata/vectors.txt"
	if _, err := os.Stat(path); err != nil {
		path = "../../wire/testdata/vectors.txt"
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []vector
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		p := strings.SplitN(line, "|", 3)
		raw, err := hex.DecodeString(strings.TrimSpace(p[2]))
		require.NoError(t, err)
		out = append(out, vector{strings.TrimSpace(p[0]) == "ok", strings.TrimSpace(p[1]), raw})
	}
	return out
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
