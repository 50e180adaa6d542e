// Package main is bench/plot: it draws the benchmark PNGs of docs/benchmarks.md from the JSON
// that `contactctl bench ... --json` prints: ingest throughput against the
// number of connections, the write-to-visible latency distribution, and
// per-member costs against the member count (bench/members.sh).
// bench/plots.sh runs it; it is a development tool, not a shipped binary,
// and must not measure anything itself.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	throughput := flag.String("throughput", "", "JSON lines of `contactctl bench ingest --json` runs")
	latency := flag.String("latency", "", "JSON of one `contactctl bench replication --json` run")
	members := flag.String("members", "", "JSON lines of bench/members.sh (one per cluster size)")
	membersCPU := flag.Bool("members-cpu", true, "draw the CPU panel of -members")
	out := flag.String("out", "docs", "directory for the PNGs")
	flag.Parse()
	if err := run(*throughput, *latency, *members, *membersCPU, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(throughput, latency, members string, membersCPU bool, out string) error {
	if members != "" {
		if err := plotMembers(members, filepath.Join(out, "members.png"), membersCPU); err != nil {
			return err
		}
	}
	if throughput != "" {
		if err := plotThroughput(throughput, filepath.Join(out, "throughput.png")); err != nil {
			return err
		}
	}
	if latency != "" {
		if err := plotLatency(latency, filepath.Join(out, "latency.png")); err != nil {
			return err
		}
	}
	return nil
}

func plotThroughput(path, png string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var pts plotter.XYs
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Conns int     `json:"conns"`
			Rate  float64 `json:"updates_per_sec"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		pts = append(pts, plotter.XY{X: float64(r.Conns), Y: r.Rate / 1e6})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
	p := plot.New()
	p.Title.Text = "Single-node ingest (pipelined Updates, fsync=batch, confirmed by ListAll)"
	p.X.Label.Text = "client connections"
	p.Y.Label.Text = "million Updates/s"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{}
	p.Y.Min = 0
	if err := plotutil.AddLinePoints(p, "contact-server", pts); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 4*vg.Inch, png)
}

func plotLatency(path, png string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r struct {
		Rate int          `json:"rate"`
		CDF  [][2]float64 `json:"cdf"`
		P50  float64      `json:"p50_ms"`
		P99  float64      `json:"p99_ms"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var pts plotter.XYs
	for _, c := range r.CDF {
		pts = append(pts, plotter.XY{X: max(c[0], 0.001), Y: c[1] * 100})
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Write-to-visible latency, 3 nodes, %d changes/s (p50 %.2f ms, p99 %.2f ms)", r.Rate, r.P50, r.P99)
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "% of changes visible"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{}
	p.Y.Min, p.Y.Max = 0, 100
	if err := plotutil.AddLines(p, "both readers", pts); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 4*vg.Inch, png)
}
