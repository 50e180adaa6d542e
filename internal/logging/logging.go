// Package logging builds the hclog.Logger the binaries inject everywhere,
// and the test logger that routes to t.Log. It must not hold global state.
package logging

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// New returns a logger at level ("trace".."error") in format "text" or
// "json", writing to w.
func New(name, level, format string, w io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("log level %q is not one of trace, debug, info, warn, error", level)
	}
	var json bool
	switch strings.ToLower(format) {
	case "", "text":
	case "json":
		json = true
	default:
		return nil, fmt.Errorf("log format %q is neither text nor json", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, Output: w, JSONFormat: json}), nil
}

type testWriter struct {
	t    testing.TB
	done *atomic.Bool
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// ForTest returns a logger that writes through t.Log, so output shows only
// for failing tests (or -v). Lines logged after the test has finished (by
// background goroutines of libraries that do not wait for them, such as
// memberlist's probes) are dropped: t.Log would panic.
func ForTest(t testing.TB, name string) hclog.Logger {
	done := &atomic.Bool{}
	t.Cleanup(func() { done.Store(true) })
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: testWriter{t, done}})
}
