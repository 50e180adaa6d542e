package ctlcli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The measuring subcommands count what they read: a fill of varied books
// holds exactly --total contacts, book 0 the largest; listall and
// first-list report that book's size; first-list --min fails while the book
// is smaller.
func TestBenchFillListAllFirstList(t *testing.T) {
	s := startServer(t)
	srv := "--server=" + s.Addr().String()
	out, _, err := run(t, srv, "bench", "fill", "--total", "5000", "--contacts", "1000", "--min-contacts", "10", "--json")
	require.NoError(t, err)
	var fill struct {
		Contacts int `json:"contacts"`
		Books    int `json:"books"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &fill))
	require.Equal(t, 5000, fill.Contacts)
	require.Greater(t, fill.Books, 5, "books of varied sizes, not five of the largest")

	out, _, err = run(t, srv, "--user", "fill-user-0", "bench", "listall", "--runs", "3", "--json")
	require.NoError(t, err)
	var la struct {
		Contacts int     `json:"contacts"`
		Median   float64 `json:"median_ms"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &la))
	require.Equal(t, 1000, la.Contacts)
	require.Positive(t, la.Median)

	out, _, err = run(t, srv, "--user", "fill-user-0", "bench", "first-list", "--min", "1000", "--json")
	require.NoError(t, err)
	var fl struct {
		Contacts int `json:"contacts"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &fl))
	require.Equal(t, 1000, fl.Contacts)
	_, _, err = run(t, srv, "--user", "fill-user-0", "bench", "first-list", "--min", "1001", "--every", "50ms", "--wait", "1s")
	require.ErrorContains(t, err, "waiting for 1001")
}
