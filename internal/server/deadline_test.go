package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The scenarios run here with a short handshake timeout and
// proportional delays, so they take well under a second. The real default
// path is the same code: with HandshakeTimeout 10 s and IdleTimeout 0, the
// handshake deadline (accept + 10 s) is armed only by reads made while the
// hello is being decoded; the first read after it arms no deadline at all,
// so a rest that arrives 12 s after connecting, or a client pipelining for
// 30 s, is read like any other byte. Only the ratio of the delays to the
// handshake timeout matters, and the tests keep it above 1.

// A hello that arrives together with the first bytes of the next frame,
// the rest of which comes later than the handshake timeout, is served.
func TestHelloWithTheStartOfTheNextFrame(t *testing.T) {
	const handshake = 200 * time.Millisecond
	tests := []struct {
		name  string
		split int           // bytes of the Update sent with the hello
		rest  time.Duration // when the rest of it follows
		idle  time.Duration
	}{
		{"first byte, rest after 1.5x the handshake timeout", 1, handshake * 3 / 2, 0},
		{"half the frame, rest after 1.5x the handshake timeout", 138, handshake * 3 / 2, 0},
		{"first byte, idle timeout configured longer than the gap", 1, handshake * 3 / 2, 2 * handshake},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.HandshakeTimeout = handshake; c.IdleTimeout = tc.idle })
			c := dialRaw(t, s)
			upd := rawUpdate("Juan", "85999999999")
			c.send(append(rawHello(2, "Beloin"), upd[:tc.split]...))
			time.Sleep(tc.rest) // the point of the test: time passes mid-frame
			c.send(upd[tc.split:])
			_, got := c.listAll()
			require.Equal(t, []string{"Juan=85999999999"}, got)
			require.Zero(t, s.Counters.IdleClosed.Load())
		})
	}
}

// A client that pipelines without pause for many handshake timeouts, its
// frames split so that the server's buffer never runs dry at a frame
// boundary, is never cut.
func TestPipeliningPastTheHandshakeTimeoutIsNeverCut(t *testing.T) {
	const handshake = 100 * time.Millisecond
	for _, idle := range []time.Duration{0, 3 * handshake} {
		t.Run(fmt.Sprintf("idle timeout %v", idle), func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.HandshakeTimeout = handshake; c.IdleTimeout = idle })
			c := dialRaw(t, s)
			pending := rawHello(2, "pipeliner")
			n := 0
			for start := time.Now(); time.Since(start) < 8*handshake; n++ {
				upd := rawUpdate(fmt.Sprintf("c%04d", n), "1")
				c.send(append(pending, upd[:len(upd)-1]...)) // every write ends one byte short of a frame
				pending = upd[len(upd)-1:]
				time.Sleep(5 * time.Millisecond)
			}
			c.send(pending)
			_, got := c.listAll()
			require.Len(t, got, n)
			require.Zero(t, s.Counters.IdleClosed.Load())
		})
	}
}

// With an idle timeout configured, a quiet client is closed (and what it
// sent is kept); with the default, 0, a quiet client is kept however long
// it waits (here many handshake timeouts) and served when it speaks again.
func TestIdleTimeoutIsOffByDefault(t *testing.T) {
	const handshake = 50 * time.Millisecond
	require.Zero(t, DefaultConfig("x").IdleTimeout, "the default is off")
	t.Run("configured: closed", func(t *testing.T) {
		s := startServer(t, func(c *Config) { c.HandshakeTimeout = handshake; c.IdleTimeout = 3 * handshake })
		c := dialRaw(t, s)
		c.send(rawHello(2, "quiet"), rawUpdate("a", "1"))
		c.waitClosed(5 * time.Second)
		require.Equal(t, uint64(1), s.Counters.IdleClosed.Load())
		check := dialRaw(t, s)
		check.send(rawHello(2, "quiet"))
		_, got := check.listAll()
		require.Equal(t, []string{"a=1"}, got)
	})
	t.Run("default: kept", func(t *testing.T) {
		s := startServer(t, func(c *Config) { c.HandshakeTimeout = handshake })
		c := dialRaw(t, s)
		c.send(rawHello(2, "quiet"), rawUpdate("a", "1"))
		// Quiet for 10 handshake timeouts: the connection stays open
		// (a read that ends in a timeout on our side, not EOF).
		_ = c.SetReadDeadline(time.Now().Add(10 * handshake))
		_, err := c.r.ReadByte()
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the server closed a quiet connection")
		c.send(rawUpdate("b", "2"))
		_, got := c.listAll()
		require.Equal(t, []string{"a=1", "b=2"}, got)
		require.Zero(t, s.Counters.IdleClosed.Load())
	})
}

// A client held while the server waits for its first sync, its hello sent
// with half a frame, is not cut by any deadline during the hold, however
// long the hold is relative to the handshake and idle timeouts.
func TestHeldForTheFirstSyncIsNeverCut(t *testing.T) {
	const handshake = 100 * time.Millisecond
	for _, idle := range []time.Duration{0, 2 * handshake} {
		t.Run(fmt.Sprintf("idle timeout %v", idle), func(t *testing.T) {
			g := newGate()
			s := startServer(t, func(c *Config) { c.HandshakeTimeout = handshake; c.IdleTimeout = idle })
			s.SetReplicator(g)
			c := dialRaw(t, s)
			upd := rawUpdate("a", "1")
			c.send(append(rawHello(2, "early"), upd[:100]...))
			time.Sleep(handshake / 2)
			c.send(upd[100:], rawListAll)
			time.Sleep(5 * handshake) // the hold: longer than either timeout
			g.open()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			head := make([]byte, 4)
			_, err := io.ReadFull(c.r, head)
			require.NoError(t, err, "the held connection was cut")
			require.Equal(t, uint32(1), binary.BigEndian.Uint32(head))
			require.Zero(t, s.Counters.IdleClosed.Load())
		})
	}
}

// StopClients unblocks every client reader at once, including those whose
// reads keep being re-armed because their clients keep sending: the
// per-read arming must not undo its "now".
func TestStopClientsUnblocksEveryReader(t *testing.T) {
	s := startServer(t, nil) // default: no idle deadline to fall back on
	var conns []*rawConn
	for i := range 5 { // quiet after the hello
		c := dialRaw(t, s)
		c.send(rawHello(2, fmt.Sprintf("quiet%d", i)))
		conns = append(conns, c)
	}
	for range 3 { // no hello yet
		conns = append(conns, dialRaw(t, s))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 5 { // pipelining without pause
		c := dialRaw(t, s)
		c.send(rawHello(2, fmt.Sprintf("busy%d", i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			upd := rawUpdate("x", "1")
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(upd); err != nil {
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 5*time.Second, "13 connections", func() bool { return s.Counters.Active.Load() == 13 })
	waitFor(t, 5*time.Second, "the busy clients' frames", func() bool { return s.Counters.ClientFrames[1].Load() > 100 })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	s.StopClients(ctx)
	require.NoError(t, ctx.Err(), "StopClients waited for its context, not for the readers (after %v)", time.Since(start))
	require.Zero(t, s.clientConns())
	for _, c := range conns {
		c.waitClosed(2 * time.Second)
	}
}

// A client that asks for a large reply and never reads it is disconnected
// after WriteTimeout, though no idle timeout is set.
func TestReplyWriteTimeoutWithoutIdleTimeout(t *testing.T) {
	s := startServer(t, func(c *Config) { c.WriteTimeout = 200 * time.Millisecond })
	fill := dialRaw(t, s)
	fill.send(rawHello(2, "big"))
	for i := range 20000 {
		fill.send(rawUpdate(fmt.Sprintf("contact-%05d", i), "123456789"))
	}
	_, got := fill.listAll()
	require.Len(t, got, 20000)
	require.NoError(t, fill.Close())
	waitFor(t, 5*time.Second, "the filler gone", func() bool { return s.Counters.Active.Load() == 0 })

	slow := dialRaw(t, s)
	require.NoError(t, slow.Conn.(*net.TCPConn).SetReadBuffer(4096))
	slow.send(rawHello(2, "big"), rawListAll, rawListAll, rawListAll) // 16 MB of replies, never read
	waitFor(t, 5*time.Second, "the slow client accepted", func() bool { return s.Counters.Active.Load() == 1 })
	waitFor(t, 10*time.Second, "the non-reading client disconnected", func() bool { return s.Counters.Active.Load() == 0 })
	require.Equal(t, uint64(1), s.Counters.IdleClosed.Load())
}

// On a TLS connection a client's Read takes every record that has already
// arrived (under a deadline that is over, so that frames are committed in
// batches as large as on a plain connection): the read timeouts that ends
// it leave the connection usable, and the idle deadline still applies to
// the reads that wait.
func TestTLSClientReadsTakeWhatHasArrivedAndStayUsable(t *testing.T) {
	p := newTestPKI(t)
	s := startServer(t, func(c *Config) {
		c.TLS = p.serverTLS(false)
		c.IdleTimeout = time.Minute
	})
	c := tlsFrom(t, "127.0.0.1", s, p, &p.user)
	var want []string
	var pipeline [][]byte
	for i := range 300 { // each frame its own TLS record, sent back to back
		name := fmt.Sprintf("c%03d", i)
		pipeline = append(pipeline, rawUpdate(name, "1"))
		want = append(want, name+"=1")
	}
	c.send(append([][]byte{rawHello(2, "node-1")}, pipeline...)...)
	_, got := c.listAll()
	require.Equal(t, want, got)
	for round := range 3 { // more frames after the reads that timed out
		name := fmt.Sprintf("d%d", round)
		c.send(rawUpdate(name, "2"))
		want = append(want, name+"=2")
		_, got = c.listAll()
		require.Equal(t, want, got, "round %d", round)
	}
	require.Empty(t, s.Counters.Violations())
}
