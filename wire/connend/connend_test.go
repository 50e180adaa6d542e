package connend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

// The errors a connection's reader really returns, each classified.
func TestClassify(t *testing.T) {
	// A decoder reading an unknown opcode returns a typed violation.
	var f wire.ClientFrame
	violation := wire.NewDecoder(bufio.NewReader(bytes.NewReader([]byte{9}))).ClientFrame(&f)
	require.Error(t, violation)
	// A frame cut short.
	truncated := wire.NewDecoder(bufio.NewReader(bytes.NewReader([]byte{1, 'a'}))).ClientFrame(&f)
	require.Error(t, truncated)
	// A read past its deadline, and a read on a connection closed here.
	a, b := net.Pipe()
	defer b.Close()
	require.NoError(t, a.SetReadDeadline(time.Now()))
	_, deadline := a.Read(make([]byte, 1))
	require.Error(t, deadline)
	_, ctxErr := (&net.Dialer{}).DialContext(canceled(), "tcp", "127.0.0.1:1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	_, closed := ln.Accept()
	require.Error(t, closed)

	tests := []struct {
		name   string
		err    error
		kind   Kind
		reason string
	}{
		{"no error", nil, Closed, ""},
		{"EOF between frames", io.EOF, Closed, ""},
		{"closed locally", closed, Closed, ""},
		{"deadline passed", deadline, Timeout, ""},
		{"deadline, wrapped", fmt.Errorf("peer: %w", deadline), Timeout, ""},
		{"os deadline error", os.ErrDeadlineExceeded, Timeout, ""},
		{"keepalive gave up", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}, Lost, ""},
		{"unknown opcode", violation, Violation, "unknown_opcode"},
		{"violation, wrapped", fmt.Errorf("hello: %w", violation), Violation, "unknown_opcode"},
		{"truncated frame", truncated, Broken, ""},
		{"dial canceled", ctxErr, Broken, ""},
		{"anything else", errors.New("connection reset by peer"), Broken, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, reason := Classify(tc.err)
			require.Equal(t, tc.kind, kind, "%v", tc.err)
			require.Equal(t, tc.reason, reason)
		})
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestViolationsCount(t *testing.T) {
	var v Violations
	require.Zero(t, v.Total())
	require.Empty(t, v.Snapshot())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				v.Add("no_nul")
			}
			v.Add("book_full")
		}()
	}
	wg.Wait()
	require.Equal(t, map[string]uint64{"no_nul": 800, "book_full": 8}, v.Snapshot())
	require.Equal(t, uint64(808), v.Total())
	snap := v.Snapshot()
	snap["no_nul"] = 0
	require.Equal(t, uint64(800), v.Snapshot()["no_nul"], "Snapshot is a copy")
}
