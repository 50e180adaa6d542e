package ops_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/clustertest"
	"github.com/contactstore/contactstore/internal/opsapi"
	gometrics "github.com/hashicorp/go-metrics"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func members(t *testing.T, addr string) []opsapi.Member {
	code, body := get(t, "http://"+addr+"/v1/members")
	require.Equal(t, http.StatusOK, code)
	var ms []opsapi.Member
	require.NoError(t, json.Unmarshal([]byte(body), &ms))
	return ms
}

func TestEndpointsOfALiveCluster(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{BaseIP: 180, HTTP: true})
	h.WaitConverged(20 * time.Second)
	c := h.Client(0, "ops")
	require.NoError(t, c.Update("a", "1"))
	_, err := c.List()
	require.NoError(t, err)
	h.WaitConverged(10 * time.Second)
	addr := h.Node(1).HTTPAddr

	code, body := get(t, "http://"+addr+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "ok")
	code, _ = get(t, "http://"+addr+"/readyz")
	require.Equal(t, http.StatusOK, code)

	// memberlist emits its awareness score through go-metrics when it
	// changes (under load): the scrape must not see it twice.
	gometrics.SetGaugeWithLabels([]string{"memberlist", "health", "score"}, 1, nil)
	code, body = get(t, "http://"+h.Node(0).HTTPAddr+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`contact_client_frames_total{op="Update"} 1`,
		`contact_peer_connection_up{direction="inbound",peer="node-1"} 1`,
		`contact_store_live_entries 1`,
		`contact_fsync_duration_seconds_count`,
		`contact_memberlist_health_score`,
		`contact_askforupdate_served_total`,
		`contact_members{state="alive"} 3`,
		`contact_membership_events_dropped_total 0`,
		`go_goroutines`,
		`contact_memberlist_`, // memberlist's own go-metrics
	} {
		require.Contains(t, body, want)
	}

	h.WaitFor(10*time.Second, "every member published serving and the same digest", func() bool {
		for _, m := range members(t, addr) {
			if m.Health != "serving" || !m.InSync {
				return false
			}
		}
		return true
	})
	ms := members(t, addr)
	require.Len(t, ms, 3)
	for _, m := range ms {
		require.Equal(t, "alive", m.State, m.Name)
		require.Equal(t, "serving", m.Health, m.Name)
		require.True(t, m.InSync, m.Name)
		if !m.Self {
			require.True(t, m.OutboundUp && m.InboundUp, m.Name)
			require.GreaterOrEqual(t, m.HeardSecondsAgo, 0.0, m.Name)
		}
	}

	// The harness runs the default: no gossip key, no TLS. Status says so.
	code, body = get(t, "http://"+addr+"/v1/status")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"secure": false`)
	var st opsapi.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, []string{"gossip_key", "tls", "client_auth"}, st.SecurityMissing)

	code, body = get(t, "http://"+addr+"/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "<title>contact-server status</title>")

	// A killed member turns dead on the others' views.
	h.Kill(2)
	h.WaitFor(15*time.Second, "node-2 shown dead by node-0", func() bool {
		for _, m := range members(t, h.Node(0).HTTPAddr) {
			if m.Name == "node-2" {
				return m.State == "dead"
			}
		}
		return false
	})
}

func TestReadyzIsUnavailableWhileLeaving(t *testing.T) {
	h := clustertest.New(t, 2, clustertest.Options{BaseIP: 190, HTTP: true})
	h.WaitConverged(20 * time.Second)
	n := h.Node(1).Node
	n.Sync.SetLeaving()
	code, body := get(t, "http://"+h.Node(1).HTTPAddr+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, strings.Contains(body, "leaving"), body)
}
