//go:build slow

package composetest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	project = "contactchaos"
	image   = "contactstore/contact-server:dev"
)

// env is the Compose project under test.
type env struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose", with -p and -f
	net     string   // the project's network
}

func run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (e *env) dc(args ...string) string {
	e.t.Helper()
	out, err := run(e.compose[0], append(e.compose[1:], args...)...)
	require.NoError(e.t, err, "%s %s: %s", strings.Join(e.compose, " "), strings.Join(args, " "), out)
	return out
}

func (e *env) docker(args ...string) string {
	e.t.Helper()
	out, err := run("docker", args...)
	require.NoError(e.t, err, "docker %s: %s", strings.Join(args, " "), out)
	return out
}

// setup builds the image and starts the 3-node cluster, or skips.
func setup(t *testing.T) *env {
	if out, err := run("docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("no Docker engine answers (%v: %s)", err, firstLine(out))
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	file := filepath.Join(root, "docker-compose.yml")
	e := &env{t: t}
	if _, err := run("docker", "compose", "version"); err == nil {
		e.compose = []string{"docker", "compose", "-p", project, "-f", file}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		e.compose = []string{"docker-compose", "-p", project, "-f", file}
	} else {
		t.Skip("neither 'docker compose' nor 'docker-compose' is installed")
	}
	// The image: static binaries, then FROM scratch around them.
	build := t.TempDir()
	gb := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(build, "bin")+"/", "./cmd/contact-server", "./cmd/contactctl")
	gb.Dir, gb.Env = root, append(os.Environ(), "CGO_ENABLED=0") // static: the image has no libc
	out, err := gb.CombinedOutput()
	require.NoError(t, err, "%s", out)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(build, "Dockerfile"), df, 0o644))
	e.docker("build", "-q", "-t", image, build)

	// docker-compose.yml refuses to start without a gossip key (make
	// compose-key writes one to .env); the test brings its own, so it needs
	// no file in the checkout. The environment wins over .env.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("CONTACT_GOSSIP_KEY", base64.StdEncoding.EncodeToString(key))
	_, _ = run(e.compose[0], append(e.compose[1:], "down", "-v", "--remove-orphans")...)
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				out, _ := run(e.compose[0], append(e.compose[1:], "logs", "--tail", "30", fmt.Sprintf("contact-server-%d", i))...)
				t.Logf("---- contact-server-%d ----\n%s", i, out)
			}
		}
		_, _ = run(e.compose[0], append(e.compose[1:], "down", "-v", "--remove-orphans", "-t", "2")...)
	})
	e.dc("up", "-d")
	e.net = e.docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", e.id("contact-server-1"))
	e.waitReady(e.httpAddrs(), 60*time.Second)
	e.requireKeyedGossip()
	return e
}

// requireKeyedGossip checks that the members run with the gossip key
// docker-compose.yml passes them (and, as the file says, without TLS).
func (e *env) requireKeyedGossip() {
	e.t.Helper()
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + e.httpAddrs()[0] + "/v1/status")
	require.NoError(e.t, err)
	defer res.Body.Close()
	var st struct {
		Missing []string `json:"security_missing"`
	}
	require.NoError(e.t, json.NewDecoder(res.Body).Decode(&st))
	require.Equal(e.t, []string{"tls", "client_auth"}, st.Missing, "the Compose members must gossip with a key")
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// id is the container of a service (the first replica).
func (e *env) id(service string) string {
	e.t.Helper()
	ids := e.ids(service)
	require.NotEmpty(e.t, ids, "no container for %s", service)
	return ids[0]
}

func (e *env) ids(service string) []string {
	out := e.dc("ps", "-q", service)
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

func (e *env) ip(id string) string {
	return e.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id)
}

// The three named members, through the ports published on loopback.
var (
	contactAddrs = []string{"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"}
	services     = []string{"contact-server-1", "contact-server-2", "contact-server-3"}
)

func (e *env) httpAddrs() []string {
	return []string{"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"}
}

func ready(addr string) bool {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func (e *env) waitReady(addrs []string, d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for _, a := range addrs {
		for !ready(a) {
			if time.Now().After(deadline) {
				e.t.Fatalf("%s not ready within %v", a, d)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func hostPort(ip, port string) string { return net.JoinHostPort(ip, port) }
