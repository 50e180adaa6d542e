package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/stretchr/testify/require"
)

// buildBinary compiles this command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "contact-server")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}}
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

func dialWhenUp(t *testing.T, addr, user string) *client.Client {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := client.Dial(context.Background(), []string{addr}, user, client.DefaultOptions())
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s did not come up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKill9AfterListAllLosesNothing(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	args := []string{"--name", "k9", "--listen", addr, "--data-dir", dir, "--gossip", freeAddr(t)}
	p := start(t, bin, args...)

	c := dialWhenUp(t, addr, "durable")
	want := map[string]string{}
	for i := range 5000 {
		name := fmt.Sprintf("c%05d", i)
		if i%10 == 3 {
			require.NoError(t, c.Delete(fmt.Sprintf("c%05d", i-1)))
			delete(want, fmt.Sprintf("c%05d", i-1))
		}
		require.NoError(t, c.Update(name, fmt.Sprint(i)))
		want[name] = fmt.Sprint(i)
	}
	listed, err := c.List()
	require.NoError(t, err)
	require.Len(t, listed, len(want))
	// kill -9 right after the reply: no chance to flush anything more.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()

	start(t, bin, args...)
	c2 := dialWhenUp(t, addr, "durable")
	got, err := c2.List()
	require.NoError(t, err)
	gotMap := map[string]string{}
	for _, g := range got {
		gotMap[g.Name] = g.Phone
	}
	require.Equal(t, want, gotMap)
}

func TestSIGTERMExitsZeroWithinFiveSeconds(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	p := start(t, bin, "--name", "term", "--listen", addr, "--data-dir", t.TempDir(), "--gossip", freeAddr(t))
	c := dialWhenUp(t, addr, "u")
	require.NoError(t, c.Update("a", "1"))
	require.NoError(t, c.Flush()) // an open connection must not hold shutdown up
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status; stderr: %s", p.stderr)
	case <-time.After(5 * time.Second):
		t.Fatal("contact-server did not exit within 5s of SIGTERM")
	}
}

func TestStartupErrorsAreOneLine(t *testing.T) {
	bin := buildBinary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	lockedDir := t.TempDir()
	holder := start(t, bin, "--name", "holder", "--listen", freeAddr(t), "--data-dir", lockedDir, "--gossip", "")
	_ = dialWhenUp(t, holder.cmd.Args[4], "u")
	fileAsDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(fileAsDir, nil, 0o644))

	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, nil, "unknown flag"},
		{"bad fsync", []string{"--fsync", "never"}, nil, "fsync"},
		{"port in use", []string{"--listen", busy.Addr().String(), "--data-dir", t.TempDir()}, nil, "address already in use"},
		{"locked data dir", []string{"--listen", freeAddr(t), "--data-dir", lockedDir}, nil, "locked by another server"},
		{"data dir is a file", []string{"--listen", freeAddr(t), "--data-dir", fileAsDir}, nil, "data dir"},
		{"bad env", nil, []string{"CONTACT_IDLE_TIMEOUT=soon"}, "CONTACT_IDLE_TIMEOUT"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tc.args, "--gossip", "")...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "must exit non-zero")
			msg := strings.TrimSpace(stderr.String())
			lines := strings.Split(msg, "\n")
			last := lines[len(lines)-1]
			require.Contains(t, last, tc.want)
			require.True(t, strings.HasPrefix(last, "contact-server: "), "one clear line: %q", last)
			require.NotContains(t, msg, "goroutine ", "no stack trace")
		})
	}
}
