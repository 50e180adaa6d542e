package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/server/servertest"
	"github.com/stretchr/testify/require"
)

func startServer(t *testing.T) string {
	return servertest.Start(t, nil).Addr().String()
}

// The client library refuses no empty name: an empty user is a book and
// an empty contact a contact like any other.
func TestEmptyNames(t *testing.T) {
	addr := startServer(t)
	c, err := Dial(context.Background(), []string{addr}, "", DefaultOptions())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Update("", "1"))
	require.NoError(t, c.Update("b", "2"))
	require.NoError(t, c.Update("", ""))
	got, err := c.List()
	require.NoError(t, err)
	require.Equal(t, []Contact{{"", ""}, {"b", "2"}}, got)
	require.NoError(t, c.Delete(""))
	got, err = c.List()
	require.NoError(t, err)
	require.Equal(t, []Contact{{"b", "2"}}, got)
}

// A long pipeline of Updates after a ListAll is not cut by a write
// deadline armed for that ListAll: each write arms its own.
func TestPipelineAfterAListIsNotCutByItsDeadline(t *testing.T) {
	addr := startServer(t)
	opts := DefaultOptions()
	// Another connection, with the default timeout, first: the server is
	// serving (past its first sync) before the short deadlines start.
	other, err := Dial(context.Background(), []string{addr}, "u", DefaultOptions())
	require.NoError(t, err)
	defer other.Close()
	_, err = other.List()
	require.NoError(t, err)
	opts.IOTimeout = 500 * time.Millisecond
	c, err := Dial(context.Background(), []string{addr}, "u", opts)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.List()
	require.NoError(t, err)
	time.Sleep(3 * opts.IOTimeout / 2) // the point: time passes after the ListAll
	for i := range 1000 {              // 277 KB: the buffer flushes on its own
		require.NoError(t, c.Update(fmt.Sprintf("c%04d", i), "1"))
	}
	require.NoError(t, c.Flush())
	// Read back on another connection with the default timeout: how long
	// the server takes to apply them on a loaded machine is not the point.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := other.List()
		require.NoError(t, err)
		if len(got) == 1000 || time.Now().After(deadline) {
			require.Len(t, got, 1000, "every pipelined Update arrived")
			break
		}
	}
}

// fakeServer accepts one connection, reads the hello and a ListAll, and
// answers with count contacts, one every gap.
func fakeServer(t *testing.T, count int, gap time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := io.ReadFull(conn, make([]byte, 257+1)); err != nil {
			return
		}
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(count))); err != nil {
			return
		}
		for i := range count {
			time.Sleep(gap)
			e := make([]byte, 276)
			copy(e, fmt.Sprintf("c%d", i))
			copy(e[256:], "1")
			if _, err := conn.Write(e); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, conn)
	}()
	return ln.Addr().String()
}

// A ListAll reply that keeps arriving is read to its end however long it
// takes in total; a server silent for IOTimeout is given up on.
func TestReadDeadlineIsArmedBeforeEveryRead(t *testing.T) {
	opts := DefaultOptions()
	opts.IOTimeout = 600 * time.Millisecond // wide margins: a loaded machine oversleeps
	t.Run("slow but steady reply", func(t *testing.T) {
		c, err := Dial(context.Background(), []string{fakeServer(t, 8, 150*time.Millisecond)}, "u", opts)
		require.NoError(t, err)
		defer c.Close()
		got, err := c.List() // 1.2 s in all, never 600 ms without a byte
		require.NoError(t, err)
		require.Len(t, got, 8)
	})
	t.Run("silent server", func(t *testing.T) {
		c, err := Dial(context.Background(), []string{fakeServer(t, 2, 2*time.Second)}, "u", opts)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.List()
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})
}
