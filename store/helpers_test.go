package store

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Info})
}

// fakeNow is a settable wall clock.
type fakeNow struct{ t time.Time }

func (f *fakeNow) Now() time.Time { return f.t }

func openTest(t testing.TB, dir string, mod func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig(dir)
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func names(cs []Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name + "=" + c.Phone
	}
	return out
}

func commit(t testing.TB, b *Batch) uint64 {
	t.Helper()
	seq, err := b.Commit()
	require.NoError(t, err)
	return seq
}

func mustUpdate(t testing.TB, b *Batch, user, contact, phone []byte) Change {
	t.Helper()
	ch, err := b.Update(user, contact, phone)
	require.NoError(t, err)
	return ch
}
