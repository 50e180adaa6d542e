package ctlcli

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/contactstore/contactstore/internal/server"
	"github.com/contactstore/contactstore/internal/server/servertest"
	"github.com/stretchr/testify/require"
)

func startServer(t *testing.T) *server.Server {
	return servertest.Start(t, func(c *server.Config) { c.Name = "ctl" })
}

// deadAddr is a loopback address where nothing accepts: a TCP socket bound
// to a port the kernel picks but never listening, held until the test
// ends. Connecting to it is refused, and no other process can take the
// port meanwhile (as it could after listening and closing).
func deadAddr(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

func run(t *testing.T, args ...string) (string, string, error) {
	cmd := Command()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestPutListDelete(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	_, _, err := run(t, srv, "--user", "alice", "put", "Juan", "85999999999")
	require.NoError(t, err)
	_, _, err = run(t, srv, "--user", "alice", "put", "Ana", "1")
	require.NoError(t, err)
	out, _, err := run(t, srv, "--user", "alice", "list")
	require.NoError(t, err)
	require.Equal(t, "Ana\t1\nJuan\t85999999999\n", out)
	_, _, err = run(t, srv, "--user", "alice", "del", "Ana")
	require.NoError(t, err)
	out, _, err = run(t, srv, "--user", "alice", "list", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[{"name":"Juan","phone":"85999999999"}]`, out)
	out, _, err = run(t, srv, "--user", "nobody", "list", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[]`, out)
}

func TestFailoverToNextServer(t *testing.T) {
	s := startServer(t)
	servers := "--server=" + deadAddr(t) + "," + s.Addr().String()
	_, _, err := run(t, servers, "--user", "bob", "put", "x", "1")
	require.NoError(t, err)
	out, _, err := run(t, servers, "--user", "bob", "list")
	require.NoError(t, err)
	require.Equal(t, "x\t1\n", out)
}

func TestNoServerReachable(t *testing.T) {
	_, _, err := run(t, "--server="+deadAddr(t)+","+deadAddr(t), "--user", "bob", "list")
	require.ErrorContains(t, err, "no server could complete the request")
	require.NotContains(t, err.Error(), "\n")
}

func TestRefusesValuesThatDoNotFitBeforeSending(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"long contact", []string{"put", strings.Repeat("n", 256), "1"}, "contact name"},
		{"long phone", []string{"put", "n", strings.Repeat("9", 20)}, "phone"},
		{"long user", []string{"--user", strings.Repeat("u", 300), "list"}, "user name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{srv, "--user", "u"}, tc.args...)
			_, _, err := run(t, args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Equal(t, uint64(0), s.Counters.Accepted.Load(), "nothing was sent")
}

func TestImportExportRoundTrip(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	var csv strings.Builder
	csv.WriteString("name,phone\n")
	for i := range 12000 {
		csv.WriteString("contact-")
		csv.WriteString(strings.Repeat("x", i%7))
		csv.WriteString(string(rune('a' + i%26)))
		csv.WriteString(",")
		csv.WriteString("5550")
		csv.WriteString("\n")
	}
	csv.WriteString("\"Zé, Jr\",+55 85\n")
	path := filepath.Join(t.TempDir(), "in.csv")
	require.NoError(t, os.WriteFile(path, []byte(csv.String()), 0o644))
	_, stderr, err := run(t, srv, "--user", "imp", "import", path)
	require.NoError(t, err)
	require.Contains(t, stderr, "imported 12001 contacts")

	out, _, err := run(t, srv, "--user", "imp", "export")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "name,phone", lines[0])
	require.Contains(t, out, "\"Zé, Jr\",+55 85\n")
	require.Len(t, lines, 1+7*26+1, "duplicate names collapse to one contact")

	// A file with one bad row is refused whole.
	bad := filepath.Join(t.TempDir(), "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("a,1\nb,"+strings.Repeat("9", 25)+"\n"), 0o644))
	_, _, err = run(t, srv, "--user", "imp2", "import", bad)
	require.ErrorContains(t, err, "line 2")
	out, _, err = run(t, srv, "--user", "imp2", "list")
	require.NoError(t, err)
	require.Empty(t, out)
}

// An empty user name and an empty contact name are ordinary values
// through put, list, list --json, del, export and import.
func TestEmptyNames(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	ctl := func(user string, args ...string) string {
		t.Helper()
		out, _, err := run(t, append([]string{srv, "--user", user}, args...)...)
		require.NoError(t, err, "%q %v", user, args)
		return out
	}
	ctl("", "put", "", "1")
	ctl("", "put", "b", "2")
	ctl("alice", "put", "", "9") // another book's empty contact
	require.Equal(t, "\t1\nb\t2\n", ctl("", "list"), "the empty name sorts first")
	require.JSONEq(t, `[{"name":"","phone":"1"},{"name":"b","phone":"2"}]`, ctl("", "list", "--json"))
	require.Equal(t, "\t9\n", ctl("alice", "list"))

	export := ctl("", "export")
	require.Equal(t, "name,phone\n,1\nb,2\n", export)
	path := filepath.Join(t.TempDir(), "book.csv")
	require.NoError(t, os.WriteFile(path, []byte(export), 0o644))
	ctl("copy", "import", "--no-progress", path)
	require.Equal(t, export, ctl("copy", "export"), "export, import, export round-trips")

	ctl("", "del", "")
	require.Equal(t, "b\t2\n", ctl("", "list"))
	require.Equal(t, "\t9\n", ctl("alice", "list"), "only that book's empty contact is deleted")

	t.Setenv("CONTACT_USER", "") // set and empty: the empty user
	out, _, err := run(t, srv, "list")
	require.NoError(t, err)
	require.Equal(t, "b\t2\n", out)
}

// Which first rows are headers: never a row with an empty name.
func TestImportHeaderDetection(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	tests := []struct {
		name, csv, header, want string
	}{
		{"export's header", "name,phone\n,1\n", "auto", "\t1\n"},
		{"contact,phone header", "Contact,Phone\nb,2\n", "auto", "b\t2\n"},
		{"empty name first, no header", ",1\nb,2\n", "auto", "\t1\nb\t2\n"},
		{"empty name and empty phone first", ",\nb,2\n", "auto", "\t\nb\t2\n"},
		{"quoted empty name first", "\"\",1\n", "auto", "\t1\n"},
		{"name,phone as data", "name,phone\n", "no", "name\tphone\n"},
		{"any first row as header", ",1\nb,2\n", "yes", "b\t2\n"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("hdr%d", i)
			path := filepath.Join(t.TempDir(), "in.csv")
			require.NoError(t, os.WriteFile(path, []byte(tc.csv), 0o644))
			_, _, err := run(t, srv, "--user", user, "import", "--no-progress", "--header", tc.header, path)
			require.NoError(t, err)
			out, _, err := run(t, srv, "--user", user, "list")
			require.NoError(t, err)
			require.Equal(t, tc.want, out)
		})
	}
}

// A user set nowhere is an error, not silently the empty user's book.
func TestNoUserIsAnError(t *testing.T) {
	s := startServer(t)
	t.Setenv("USER", "")
	t.Setenv("CONTACT_USER", "")
	require.NoError(t, os.Unsetenv("CONTACT_USER"))
	_, _, err := run(t, "--server="+s.Addr().String(), "list")
	require.ErrorContains(t, err, "no user")
	require.Equal(t, uint64(0), s.Counters.Accepted.Load(), "nothing was sent")
}
