package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

func TestRawClientFromProtocol(t *testing.T) {
	s := startServer(t, nil)
	a := dialRaw(t, s)
	a.send(rawHello(2, "Beloin"), rawUpdate("Juan", "85999999999"), rawUpdate("Ana", "+55 85 3333-0000"), rawUpdate("Zoe", "7"))
	raw, got := a.listAll()
	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Juan=85999999999", "Zoe=7"}, got)
	require.Len(t, raw, 4+3*276)

	a.send(rawDelete("Zoe"))
	raw, got = a.listAll()
	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Juan=85999999999"}, got)
	// Byte-exact against the contract's vector for this reply.
	for _, v := range loadVectors(t) {
		if strings.HasPrefix(v.desc, "ListAll reply: 2 contacts") {
			require.Equal(t, hex.EncodeToString(v.raw), hex.EncodeToString(raw))
		}
	}

	other := dialRaw(t, s)
	other.send(rawHello(2, "Someone"))
	_, got = other.listAll()
	require.Empty(t, got, "another user's book is separate")
	other.send(rawUpdate("X", "1"))

	same := dialRaw(t, s)
	same.send(rawHello(2, "Beloin"), rawUpdate("Bob", "2"))
	_, got = same.listAll()
	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Bob=2", "Juan=85999999999"}, got)
	_, got = a.listAll()
	require.Equal(t, []string{"Ana=+55 85 3333-0000", "Bob=2", "Juan=85999999999"}, got, "two connections of one user share one book")
}

// Every bad vector closes only its connection, keeps what was applied
// before it, and leaves a parallel client working.
func TestBadVectorsCloseOnlyThatConnection(t *testing.T) {
	s := startServer(t, nil)
	good := dialRaw(t, s)
	good.send(rawHello(2, "good"), rawUpdate("keep", "1"))
	for i, v := range loadVectors(t) {
		if v.ok {
			continue
		}
		t.Run(v.desc, func(t *testing.T) {
			before := s.Counters.TotalViolations()
			c := dialRaw(t, s)
			user := fmt.Sprintf("victim%d", i)
			clientFrame := !strings.Contains(v.desc, "hello") && !strings.Contains(v.desc, "role byte")
			if clientFrame {
				// A client frame: send a valid hello and one change first.
				c.send(rawHello(2, user), rawUpdate("applied", "5"))
			}
			c.send(v.raw)
			c.waitClosed(5 * time.Second)
			require.Equal(t, before+1, s.Counters.TotalViolations(), "the violation is counted")

			_, got := good.listAll()
			require.Equal(t, []string{"keep=1"}, got, "a parallel client keeps working")
			if clientFrame {
				check := dialRaw(t, s)
				check.send(rawHello(2, user))
				_, got = check.listAll()
				require.Equal(t, []string{"applied=5"}, got, "what was applied before the bad frame is kept")
			}
		})
	}
}

// Valid frames cut at every offset and then closed: the server drops the
// partial frame, keeps everything before it, and keeps serving.
func TestTruncatedFramesAtEveryOffset(t *testing.T) {
	s := startServer(t, nil)
	for cut := 1; cut < 257+277+257+1; cut++ {
		user := fmt.Sprintf("trunc%d", cut)
		stream := append(append(append(rawHello(2, user), rawUpdate("c", "1")...), rawDelete("c")...), rawListAll...)
		c := dialRaw(t, s)
		c.send(stream[:cut])
		_ = c.Conn.(*net.TCPConn).CloseWrite()
		c.waitClosed(5 * time.Second)

		var want []string
		if cut >= 257+277 && cut < 257+277+257 {
			want = []string{"c=1"} // the Update was whole, the Delete was not
		}
		check := dialRaw(t, s)
		check.send(rawHello(2, user))
		_, got := check.listAll()
		require.Equal(t, want, got, "cut at %d", cut)
		_ = check.Close()
	}
	require.Equal(t, uint64(0), s.Counters.TotalViolations(), "truncation is not a violation")
}

func TestRandomGarbageNeverHurtsTheServer(t *testing.T) {
	s := startServer(t, nil)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		c := dialRaw(t, s)
		buf := make([]byte, r.IntN(2000)+1)
		for j := range buf {
			buf[j] = byte(r.UintN(256))
		}
		if i%2 == 0 { // half start with a valid client hello
			buf = append(rawHello(2, "g"), buf...)
		}
		_, _ = c.Write(buf)
		_ = c.Close()
	}
	c := dialRaw(t, s)
	c.send(rawHello(2, "after-garbage"), rawUpdate("a", "1"))
	_, got := c.listAll()
	require.Equal(t, []string{"a=1"}, got)
}

func TestSilentConnectionsAreClosed(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.HandshakeTimeout = 200 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	t.Run("no hello", func(t *testing.T) {
		c := dialRaw(t, s)
		c.waitClosed(3 * time.Second)
	})
	t.Run("idle after hello", func(t *testing.T) {
		c := dialRaw(t, s)
		c.send(rawHello(2, "idle"), rawUpdate("a", "1"))
		c.waitClosed(3 * time.Second)
		check := dialRaw(t, s)
		check.send(rawHello(2, "idle"))
		_, got := check.listAll()
		require.Equal(t, []string{"a=1"}, got)
	})
}

func TestThousandIdleConnectionsDoNotStarveClients(t *testing.T) {
	s := startServer(t, func(c *Config) {
		// They never send a hello: the handshake deadline closes them
		// (2 s rather than the default 10 s keeps the fast suite fast).
		c.HandshakeTimeout = 2 * time.Second
		c.IdleTimeout = 2 * time.Second
		c.MaxConnsPerAddr = 0 // one test address plays a thousand idle clients
	})
	conns := make([]net.Conn, 0, 1000)
	for range 1000 {
		c, err := net.Dial("tcp", s.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	waitFor(t, 5*time.Second, "1000 connections accepted", func() bool { return s.Counters.Active.Load() >= 1000 })
	c := dialRaw(t, s)
	c.send(rawHello(2, "busy"), rawUpdate("a", "1"))
	_, got := c.listAll()
	require.Equal(t, []string{"a=1"}, got)
	waitFor(t, 15*time.Second, "idle connections closed", func() bool { return s.Counters.Active.Load() <= 1 })
}

func TestMaxConnsClosesExtraConnectionsAtOnce(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxConns = 3 })
	for range 3 {
		c := dialRaw(t, s)
		c.send(rawHello(2, "u"))
	}
	waitFor(t, 5*time.Second, "3 active", func() bool { return s.Counters.Active.Load() == 3 })
	extra := dialRaw(t, s)
	extra.waitClosed(2 * time.Second)
	require.Equal(t, uint64(1), s.Counters.RefusedLimit.Load())
}

func TestRoleServerRefusedWithoutCluster(t *testing.T) {
	s := startServer(t, nil)
	c := dialRaw(t, s)
	c.send(rawHello(1, "intruder"))
	c.waitClosed(2 * time.Second)
	require.Equal(t, uint64(1), s.Counters.Violations()["peer_not_member"])
}

func TestThousandConcurrentClients(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxConnsPerAddr = 0 }) // one test address plays a thousand clients
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(context.Background(), []string{s.Addr().String()}, fmt.Sprintf("user%d", i), client.DefaultOptions())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range 10 {
				if err := c.Update(fmt.Sprintf("c%02d", j), fmt.Sprint(i)); err != nil {
					errs <- err
					return
				}
			}
			got, err := c.List()
			if err == nil && len(got) != 10 {
				err = fmt.Errorf("user%d: listed %d contacts, want 10", i, len(got))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, n*10, s.store.Stats().Live)
}

func TestSlowReaderStallsNobodyElse(t *testing.T) {
	s := startServer(t, nil)
	c, err := client.Dial(context.Background(), []string{s.Addr().String()}, "big", client.DefaultOptions())
	require.NoError(t, err)
	for i := range 20000 {
		require.NoError(t, c.Update(fmt.Sprintf("contact-%05d", i), "123456789"))
	}
	_, err = c.List()
	require.NoError(t, err)
	require.NoError(t, c.Close())
	// A client asks for a 5.5 MB reply and never reads it.
	slow := dialRaw(t, s)
	slow.send(rawHello(2, "big"), rawListAll, rawListAll, rawListAll)
	// Others are served meanwhile.
	for i := range 20 {
		o := dialRaw(t, s)
		o.send(rawHello(2, fmt.Sprintf("other%d", i)), rawUpdate("a", "1"))
		_, got := o.listAll()
		require.Equal(t, []string{"a=1"}, got)
	}
}

func TestShutdownKeepsEverythingAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := startServerWith(t, store.DefaultConfig(dir), nil)
	c := dialRaw(t, s)
	c.send(rawHello(2, "u"))
	for i := range 100 {
		c.send(rawUpdate(fmt.Sprintf("c%03d", i), "1"))
	}
	waitFor(t, 5*time.Second, "100 changes applied", func() bool { return s.store.Stats().Live == 100 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, s.Shutdown(ctx))
	// The server leaves the store to its owner: still open and writable.
	b := s.store.NewBatch()
	require.NoError(t, b.Update([]byte("owner"), []byte("after"), []byte("1")))
	_, err := b.Commit()
	require.NoError(t, err)
	b.Close()
	require.NoError(t, s.store.Close())
	s2 := startServerWith(t, store.DefaultConfig(dir), nil)
	require.Equal(t, 101, s2.store.Stats().Live)
}

// gate is a Replicator whose sync completes when it is opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) WaitSynced(ctx context.Context) bool {
	select {
	case <-g.ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *gate) Barrier(context.Context, store.Pos) bool { return true }

func (g *gate) Pace(context.Context, int) func() { return func() {} }

func TestClientFramesWaitUntilSynced(t *testing.T) {
	g := newGate()
	s := startServer(t, nil)
	s.SetReplicator(g)
	c := dialRaw(t, s)
	c.send(rawHello(2, "early"), rawUpdate("a", "1"), rawListAll)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.r.ReadByte()
	require.Error(t, err, "no reply while the server is still syncing")
	require.Equal(t, 0, s.store.Stats().Live, "nothing applied while syncing")
	g.open()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	head := make([]byte, 4)
	_, err = io.ReadFull(c.r, head)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 1}, head)
}

func TestFullBookClosesTheConnectionAndKeepsWhatCameBefore(t *testing.T) {
	sc := store.DefaultConfig(t.TempDir())
	sc.MaxContactsPerBook = 3
	s := startServerWith(t, sc, nil)
	c := dialRaw(t, s)
	c.send(rawHello(2, "full"), rawUpdate("a", "1"), rawUpdate("b", "1"), rawUpdate("c", "1"), rawUpdate("d", "1"))
	c.waitClosed(5 * time.Second)
	require.Equal(t, uint64(1), s.Counters.Violations()["book_full"])
	check := dialRaw(t, s)
	check.send(rawHello(2, "full"), rawUpdate("a", "2")) // replacing still works
	_, got := check.listAll()
	require.Equal(t, []string{"a=2", "b=1", "c=1"}, got)
}

func TestConnectionRatePerAddress(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxConnRate = 5 })
	var refused int
	for range 30 {
		c, err := net.Dial("tcp", s.Addr().String())
		require.NoError(t, err)
		_, _ = c.Write(rawHello(2, "burst"))
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !os.IsTimeout(err) {
			refused++ // closed by the server, not merely silent
		}
		_ = c.Close()
	}
	require.Positive(t, refused, "a burst beyond the rate is refused")
	require.Equal(t, uint64(refused), s.Counters.RefusedRate.Load())
	waitFor(t, 5*time.Second, "the bucket to refill", func() bool {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		_, _ = c.Write(append(rawHello(2, "later"), rawListAll...))
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = io.ReadFull(c, make([]byte, 4))
		return err == nil
	})
}

// pacer is a Replicator whose flow control holds every commit until the
// test lets it through, and records what it admitted.
type pacer struct {
	gate
	st       *store.Store
	called   chan int
	let      chan struct{}
	mu       sync.Mutex
	released []int // live contacts in the store when each release ran
}

func (p *pacer) Pace(ctx context.Context, n int) func() {
	p.called <- n
	select {
	case <-p.let:
	case <-ctx.Done():
	}
	return func() {
		p.mu.Lock()
		p.released = append(p.released, p.st.Stats().Live)
		p.mu.Unlock()
	}
}

// A client commit goes through flow control: nothing is applied while it
// is held, and its release comes after the commit.
func TestClientCommitsWaitForFlowControl(t *testing.T) {
	s := startServer(t, nil)
	p := &pacer{gate: *newGate(), st: s.store, called: make(chan int, 1), let: make(chan struct{})}
	p.open()
	s.SetReplicator(p)
	c := dialRaw(t, s)
	c.send(rawHello(2, "paced"), rawUpdate("a", "1"), rawUpdate("b", "1"), rawListAll)
	var n int
	select {
	case n = <-p.called:
	case <-time.After(5 * time.Second):
		t.Fatal("the commit did not go through flow control")
	}
	require.Positive(t, n)
	require.Equal(t, 0, s.store.Stats().Live, "applied while flow control held it")
	close(p.let)
	_, got := c.listAll()
	require.Equal(t, []string{"a=1", "b=1"}, got)
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotEmpty(t, p.released)
	require.Equal(t, 2, p.released[len(p.released)-1], "released before the commit")
}
