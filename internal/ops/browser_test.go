package ops_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/contactstore/contactstore/internal/clustertest"
	"github.com/stretchr/testify/require"
)

func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestStatusPageInABrowser opens the status page of a live 3-node cluster
// in headless Chromium: all three members show as serving, and a killed
// member turns dead. UPDATE_DOCS=1 also writes docs/status.png.
func TestStatusPageInABrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
	}
	h := clustertest.New(t, 3, clustertest.Options{BaseIP: 210, HTTP: true, Heartbeat: 200 * time.Millisecond})
	h.WaitConverged(20 * time.Second)
	for i := range 3 {
		c := h.Client(i, fmt.Sprintf("user-%d", i))
		for j := range 20 {
			require.NoError(t, c.Update(fmt.Sprintf("contact-%02d", j), "+55 85 99999-0000"))
		}
		_, err := c.List()
		require.NoError(t, err)
	}
	h.WaitConverged(10 * time.Second)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 420))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+h.Node(0).HTTPAddr+"/")))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('#members tr[data-health="serving"]').length === 3`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the page never showed three serving members")
	banner, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("security").hidden ? "" : document.getElementById("security").textContent`))
	require.NoError(t, err)
	require.Contains(t, banner, "NOT SECURE: missing gossip_key, tls, client_auth", "the page must say the default is insecure")
	require.NoError(t, chromedp.Do(ctx, chromedp.Sleep(1200*time.Millisecond))) // one more refresh fills in change rates
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "status.png")
	if os.Getenv("UPDATE_DOCS") == "1" {
		path = "../../docs/status.png"
	}
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s", path)

	h.Kill(2)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](
		`(() => { const r = document.querySelector('#members tr[data-member="node-2"]'); return r !== null && r.dataset.state === "dead"; })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the page never showed the killed member as dead")
}
