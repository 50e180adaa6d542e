package ops

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// limitListener closes, at once, every connection accepted while max are
// open, so that idle keep-alive connections cannot pile up past the cap
// (each also ends after httpIdleTimeout). Refusals are counted and logged
// at most once a second.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused func() // counts one refusal
	log     hclog.Logger

	mu      sync.Mutex
	lastLog time.Time
	pending int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused()
		l.logRefusal(c.RemoteAddr().String())
		_ = c.Close()
	}
}

func (l *limitListener) logRefusal(remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending++
	if now := time.Now(); now.Sub(l.lastLog) >= time.Second {
		l.log.Warn("refusing HTTP connection: too many open", "remote", remote, "reason", "max_conns",
			"limit", l.max, "refused_since_last_line", l.pending)
		l.lastLog, l.pending = now, 0
	}
}

// limitConn gives its slot back on its first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
