package ctlcli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/contactstore/contactstore/internal/clustertest"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/stretchr/testify/require"
)

func TestStatusAndMembers(t *testing.T) {
	h := clustertest.New(t, 2, clustertest.Options{BaseIP: 200, HTTP: true})
	h.WaitConverged(20 * time.Second)
	httpFlag := "--http=" + deadAddr(t) + "," + h.Node(0).HTTPAddr // the first endpoint is down: fail over
	h.WaitFor(10*time.Second, "both members published serving", func() bool {
		out, _, err := run(t, "members", httpFlag)
		return err == nil && strings.Count(out, "serving") == 2
	})

	out, _, err := run(t, "members", httpFlag)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, "header and two members:\n%s", out)
	require.Contains(t, lines[0], "MEMBER")
	require.Contains(t, out, "node-0 (this)")
	require.Contains(t, out, "up/up")

	out, _, err = run(t, "status", "--json", httpFlag)
	require.NoError(t, err)
	var st opsapi.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "node-0", st.Name)
	require.True(t, st.Ready)
	require.Len(t, st.Members, 2)

	_, _, err = run(t, "status", "--http="+deadAddr(t))
	require.ErrorContains(t, err, "no HTTP endpoint answered")

	out, _, err = run(t, "health", "--http="+h.Node(1).HTTPAddr)
	require.NoError(t, err)
	require.Equal(t, "ready\n", out)
	h.Node(1).Node.Sync.SetLeaving()
	_, _, err = run(t, "health", "--http="+h.Node(1).HTTPAddr)
	require.ErrorContains(t, err, "not ready: leaving")
}
