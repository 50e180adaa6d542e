// Package logtest routes a component's logs to the test that runs it, the
// way httptest serves HTTP to one: ForTest returns an hclog.Logger writing
// through t.Log, so output shows only for failing tests (or -v). Only tests
// and test kits import it; it is the one logging package that links
// "testing".
package logtest

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
)

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

// ForTest returns a debug-level logger called name that writes through
// t.Log. Lines logged after the test has finished (by background
// goroutines of libraries that do not wait for them, such as memberlist's
// probes) are dropped: t.Log would panic.
func ForTest(t testing.TB, name string) hclog.Logger {
	done := &atomic.Bool{}
	t.Cleanup(func() { done.Store(true) })
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: testWriter{t, done}})
}
