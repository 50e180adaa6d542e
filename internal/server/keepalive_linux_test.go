package server

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Accepted connections carry TCP keepalive with the configured period.
func TestKeepAliveOnAcceptedConnections(t *testing.T) {
	s := startServer(t, func(c *Config) { c.KeepAlive = 7 * time.Second })
	c := dialRaw(t, s)
	c.send(rawHello(2, "u"))
	waitFor(t, 5*time.Second, "the connection", func() bool { return s.Counters.Active.Load() == 1 })
	s.mu.Lock()
	var conn net.Conn
	for k := range s.conns {
		conn = k
	}
	s.mu.Unlock()
	got := keepAliveOf(t, conn)
	require.Equal(t, keepAlive{on: true, idle: 7, interval: 7, count: keepAliveProbes}, got)
}

type keepAlive struct {
	on                    bool
	idle, interval, count int
}

// keepAliveOf reads a TCP connection's keepalive settings from the kernel.
func keepAliveOf(t *testing.T, conn net.Conn) keepAlive {
	t.Helper()
	raw, err := conn.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var ka keepAlive
	var on int
	var errs [4]error
	require.NoError(t, raw.Control(func(fd uintptr) {
		on, errs[0] = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		ka.idle, errs[1] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		ka.interval, errs[2] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		ka.count, errs[3] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	}))
	for _, err := range errs {
		require.NoError(t, err)
	}
	ka.on = on != 0
	return ka
}
