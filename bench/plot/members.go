package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// growth is one line of bench/members.sh's JSON: per-member medians at rest
// for one cluster size.
type growth struct {
	Members   int     `json:"members"`
	CPU       float64 `json:"cpu_pct"`
	RSS       float64 `json:"rss_mb"`
	GossipBps float64 `json:"gossip_bps"`
	PeerBps   float64 `json:"peer_bps"`
}

// plotMembers draws panels against the member count: traffic sent per
// member (memberlist gossip, peer links), CPU per member (unless withCPU is
// false: CPU figures taken without the exclusive bench lock are not
// published), RSS per member.
func plotMembers(path, png string, withCPU bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []growth
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var g growth
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, g)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Members < rows[j].Members })
	series := func(y func(growth) float64) plotter.XYs {
		var pts plotter.XYs
		for _, r := range rows {
			pts = append(pts, plotter.XY{X: float64(r.Members), Y: y(r)})
		}
		return pts
	}
	panel := func(title, ylabel string, lines ...any) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "members"
		p.Y.Label.Text = ylabel
		p.X.Min, p.Y.Min = 0, 0
		p.Legend.Top, p.Legend.Left = true, true
		return p, plotutil.AddLinePoints(p, lines...)
	}
	traffic, err := panel("Sent per member at rest", "KB/s",
		"memberlist (gossip)", series(func(g growth) float64 { return g.GossipBps / 1e3 }),
		"peer links (heartbeats)", series(func(g growth) float64 { return g.PeerBps / 1e3 }))
	if err != nil {
		return err
	}
	cpu, err := panel("CPU per member at rest", "% of one core",
		"median member", series(func(g growth) float64 { return g.CPU }))
	if err != nil {
		return err
	}
	rss, err := panel("RSS per member at rest", "MB",
		"median member", series(func(g growth) float64 { return g.RSS }))
	if err != nil {
		return err
	}
	row := []*plot.Plot{traffic, cpu, rss}
	if !withCPU {
		row = []*plot.Plot{traffic, rss}
	}
	img := vgimg.New(vg.Length(4*len(row))*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	plots := [][]*plot.Plot{row}
	canvases := plot.Align(plots, t, dc)
	for j, p := range plots[0] {
		p.Draw(canvases[0][j])
	}
	w, err := os.Create(png)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}
