package clustertest

import (
	"context"
	"errors"
	"net"
	gosync "sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network is the harness's switch: it can cut traffic between node IPs,
// both gossip (through a memberlist transport wrapper) and peer
// connections (every peer connection is dialed through Dial, which wraps
// it so that reads and writes fail once its two ends are cut off).
type Network struct {
	mu      gosync.RWMutex
	blocked map[[2]string]bool
	// slow limits what the node at the first IP reads from the second on
	// peer connections it dialed, in bytes per second.
	slow map[[2]string]int
}

func newNetwork() *Network {
	return &Network{blocked: map[[2]string]bool{}, slow: map[[2]string]int{}}
}

// Throttle makes the node at ip a read what it dialed to b at most
// bytesPerSec (0 lifts the limit): a peer that cannot keep up.
func (n *Network) Throttle(a, b string, bytesPerSec int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if bytesPerSec <= 0 {
		delete(n.slow, [2]string{a, b})
	} else {
		n.slow[[2]string{a, b}] = bytesPerSec
	}
}

func (n *Network) rate(a, b string) int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.slow[[2]string{a, b}]
}

// Blocked reports whether traffic between IPs a and b is cut.
func (n *Network) Blocked(a, b string) bool {
	if a == b {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.blocked[[2]string{a, b}]
}

func (n *Network) set(a, b string, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.blocked[[2]string{a, b}], n.blocked[[2]string{b, a}] = true, true
	} else {
		delete(n.blocked, [2]string{a, b})
		delete(n.blocked, [2]string{b, a})
	}
}

func (n *Network) healAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked = map[[2]string]bool{}
}

var errCut = errors.New("harness: network cut")

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// Dial returns a peer dialer for the node at ip.
func (n *Network) Dial(ip string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		peer := hostOf(addr)
		if n.Blocked(ip, peer) {
			return nil, errCut
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &cutConn{Conn: c, n: n, a: ip, b: peer}, nil
	}
}

type cutConn struct {
	net.Conn
	n    *Network
	a, b string
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.n.Blocked(c.a, c.b) {
		_ = c.Conn.Close()
		return 0, errCut
	}
	if r := c.n.rate(c.a, c.b); r > 0 {
		// Read at most a tenth of a second's worth, and take that long.
		p = p[:min(len(p), max(1, r/10))]
		time.Sleep(time.Duration(len(p)) * time.Second / time.Duration(r))
	}
	k, err := c.Conn.Read(p)
	if err == nil && c.n.Blocked(c.a, c.b) {
		_ = c.Conn.Close()
		return 0, errCut
	}
	return k, err
}

func (c *cutConn) Write(p []byte) (int, error) {
	if c.n.Blocked(c.a, c.b) {
		_ = c.Conn.Close()
		return 0, errCut
	}
	return c.Conn.Write(p)
}

// transport filters a memberlist transport through the Network.
type transport struct {
	*memberlist.NetTransport
	n       *Network
	ip      string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
}

func newTransport(n *Network, ip string, port int) (*transport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: port})
	if err != nil {
		return nil, err
	}
	t := &transport{NetTransport: nt, n: n, ip: ip, packets: make(chan *memberlist.Packet, 64),
		streams: make(chan net.Conn, 16), done: make(chan struct{})}
	// The forwarder never blocks: memberlist's listeners must always be
	// drained (its Shutdown waits for them), and a full queue drops the
	// packet, as a real network would.
	go func() {
		for {
			select {
			case p := <-nt.PacketCh():
				if !n.Blocked(ip, hostOf(p.From.String())) {
					select {
					case t.packets <- p:
					default:
					}
				}
			case c := <-nt.StreamCh():
				if n.Blocked(ip, hostOf(c.RemoteAddr().String())) {
					_ = c.Close()
					continue
				}
				select {
				case t.streams <- c:
				default:
					_ = c.Close()
				}
			case <-t.done:
				return
			}
		}
	}()
	return t, nil
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.n.Blocked(t.ip, hostOf(addr)) {
		return time.Now(), nil // dropped on the wire
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.n.Blocked(t.ip, hostOf(addr)) {
		return nil, errCut
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *transport) Shutdown() error {
	err := t.NetTransport.Shutdown() // the forwarder drains it meanwhile
	close(t.done)
	return err
}
