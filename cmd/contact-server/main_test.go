package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/stretchr/testify/require"
)

// beServer makes the test binary run main instead of the tests: the tests
// start it as the contact-server process, so they need no `go build`
// (and, under -race, the server runs with the race detector too).
const beServer = "BE_CONTACT_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(beServer) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is one contact-server process. Every test server listens on
// 127.0.0.1:0 and the tests read the bound address back from its log, so no
// port is picked by listening and closing (which another process could take
// in between), and none is fixed.
type proc struct {
	cmd       *exec.Cmd
	mu        gosync.Mutex
	stderr    bytes.Buffer
	listening chan string // the contact address, once logged
	exited    chan struct{}
}

var listenLine = regexp.MustCompile(`contact server listening: .*\baddr=(\S+)`)

// command returns the contact-server command line args run by this test
// binary.
func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beServer+"=1")
	return cmd
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProc(t, &proc{cmd: command(args...)})
}

// startProc starts p.cmd (set up by the caller: environment, ...).
func startProc(t *testing.T, p *proc) *proc {
	t.Helper()
	p.listening, p.exited = make(chan string, 1), make(chan struct{})
	r, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case p.listening <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); p.wait() })
	return p
}

// wait reaps the process after its stderr has been read to the end.
func (p *proc) wait() error {
	<-p.exited
	return p.cmd.Wait()
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// addr waits for the server to log its contact address.
func (p *proc) addr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.listening:
		return a
	case <-p.exited:
		t.Fatalf("contact-server exited before listening:\n%s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("contact-server did not log its address within 20s:\n%s", p.log())
	}
	return ""
}

func dial(t *testing.T, addr, user string) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), []string{addr}, user, client.DefaultOptions())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestKill9AfterListAllLosesNothing(t *testing.T) {
	dir := t.TempDir()
	// Clustered (gossip on a port of its own choosing), as it runs in
	// production; --http "" keeps the default 127.0.0.1:8080 free.
	args := []string{"--name", "k9", "--listen", "127.0.0.1:0", "--data-dir", dir, "--gossip", "127.0.0.1:0", "--http", ""}
	p := start(t, args...)

	c := dial(t, p.addr(t), "durable")
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
	_ = p.wait()

	p2 := start(t, args...)
	got, err := dial(t, p2.addr(t), "durable").List()
	require.NoError(t, err)
	gotMap := map[string]string{}
	for _, g := range got {
		gotMap[g.Name] = g.Phone
	}
	require.Equal(t, want, gotMap)
}

func TestSIGTERMExitsZeroWithinFiveSeconds(t *testing.T) {
	p := start(t, "--name", "term", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--gossip", "127.0.0.1:0", "--http", "")
	c := dial(t, p.addr(t), "u")
	require.NoError(t, c.Update("a", "1"))
	require.NoError(t, c.Flush()) // an open connection must not hold shutdown up
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status; stderr: %s", p.log())
	case <-time.After(5 * time.Second):
		t.Fatal("contact-server did not exit within 5s of SIGTERM")
	}
}

func TestStartupErrorsAreOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0") // held open for the whole test
	require.NoError(t, err)
	defer busy.Close()
	lockedDir := t.TempDir()
	holder := start(t, "--name", "holder", "--listen", "127.0.0.1:0", "--data-dir", lockedDir, "--gossip", "", "--http", "")
	_ = holder.addr(t) // listening: its store is open and its data dir locked
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
		{"locked data dir", []string{"--listen", "127.0.0.1:0", "--data-dir", lockedDir}, nil, "locked by another server"},
		{"data dir is a file", []string{"--listen", "127.0.0.1:0", "--data-dir", fileAsDir}, nil, "data dir"},
		{"bad env", nil, []string{"CONTACT_IDLE_TIMEOUT=soon"}, "CONTACT_IDLE_TIMEOUT"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(append(tc.args, "--gossip", "", "--http", "")...)
			cmd.Env = append(cmd.Env, tc.env...)
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
