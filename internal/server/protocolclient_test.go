package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/server"
	"github.com/contactstore/contactstore/internal/server/servertest"
	"github.com/stretchr/testify/require"
)

// protocolClient is a client written only from ../shared/PROTOCOL.md: raw
// bytes over a net.Conn, no package of this project. It is what a person's
// own client does.
type protocolClient struct{ conn net.Conn }

// field is a fixed-width string field: the value, then NUL padding.
func field(v string, width int) []byte {
	b := make([]byte, width)
	copy(b, v)
	return b
}

func dialProtocol(t *testing.T, addr, user string) *protocolClient {
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := &protocolClient{conn}
	c.write(t, append([]byte{2}, field(user, 256)...)) // role 2 (Client), name256
	return c
}

func (c *protocolClient) write(t *testing.T, b []byte) {
	_, err := c.conn.Write(b)
	require.NoError(t, err)
}

func (c *protocolClient) update(t *testing.T, contact, phone string) {
	c.write(t, append(append([]byte{1}, field(contact, 256)...), field(phone, 20)...))
}

func (c *protocolClient) delete(t *testing.T, contact string) {
	c.write(t, append([]byte{2}, field(contact, 256)...))
}

// listAll sends ListAll (op 3) and reads Count u32 BE, then Count x
// (name256, phone20); it returns "name=phone" per contact.
func (c *protocolClient) listAll(t *testing.T) []string {
	c.write(t, []byte{3})
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, 4)
	_, err := io.ReadFull(c.conn, head)
	require.NoError(t, err, "no ListAll reply: the server closed the connection?")
	out := []string{}
	for range binary.BigEndian.Uint32(head) {
		e := make([]byte, 256+20)
		_, err := io.ReadFull(c.conn, e)
		require.NoError(t, err)
		name, _, _ := bytes.Cut(e[:256], []byte{0})
		phone, _, _ := bytes.Cut(e[256:], []byte{0})
		out = append(out, string(name)+"="+string(phone))
	}
	return out
}

// An empty user name and an empty contact name are ordinary values
// (PROTOCOL.md "Errors"). The client adds a contact with an empty name,
// waits longer than the server's handshake timeout, and lists: it sees it.
func TestClientFromTheProtocolWithEmptyNames(t *testing.T) {
	const handshake = 100 * time.Millisecond
	s := servertest.Start(t, func(c *server.Config) { c.HandshakeTimeout = handshake })
	addr := s.Addr().String()

	for _, user := range []string{"", "Beloin"} {
		c := dialProtocol(t, addr, user)
		c.update(t, "", "85999999999")
		c.update(t, "Ana", "1")
		time.Sleep(3 * handshake) // "waits": a person at the menu
		require.Equal(t, []string{"=85999999999", "Ana=1"}, c.listAll(t), "user %q", user)

		again := dialProtocol(t, addr, user) // another connection, same book
		require.Equal(t, []string{"=85999999999", "Ana=1"}, again.listAll(t), "user %q", user)
		again.delete(t, "")
		require.Equal(t, []string{"Ana=1"}, again.listAll(t), "user %q", user)
	}
	require.Zero(t, s.Counters.TotalViolations())
}
