package ctlcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/contactstore/contactstore/internal/loadgen"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/contactstore/contactstore/wire"
	"github.com/spf13/cobra"
)

// overloadCounters are the /metrics series bench overload reports, per
// server, as they grew during the run.
var overloadCounters = []struct{ key, label string }{
	{`contact_transfers_total{outcome="started"}`, "transfers started"},
	{`contact_transfers_total{outcome="aborted"}`, "transfers aborted"},
	{`contact_askforupdate_bytes_sent_total`, "full-transfer bytes sent"},
	{`contact_askforupdate_pulls_total`, "pulls completed"},
	{`contact_anti_entropy_pulls_total`, "anti-entropy pulls"},
	{`contact_feed_bytes_sent_total{kind="live"}`, "feed bytes sent, live"},
	{`contact_feed_bytes_sent_total{kind="catch_up"}`, "feed bytes sent, catch-up"},
	{`contact_peer_silent_closed_total`, "peer connections closed silent"},
}

func benchOverloadCmd(g *globals) *cobra.Command {
	cfg := loadgen.OverloadConfig{Ingest: loadgen.DefaultIngestConfig(), Duration: 60 * time.Second,
		MarkerEvery: 5 * time.Second, MarkerWait: 30 * time.Second, PollGap: time.Millisecond, ConvergeTimeout: 2 * time.Minute}
	cfg.Ingest.Conns = 20
	var httpAddrs []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "overload",
		Short: "A client load on the first --server while markers written there are timed until every other server lists them",
		Long: `A client load (as bench ingest, for --duration) on the first --server; every
--marker-every a marker contact is written there, confirmed by ListAll, and timed
until each other server lists it (servers may join during the run). After the
load: the time until every server's /v1/status reports the same digest, and how
each server's transfer and feed counters (/metrics) grew during the run.
--http gives the servers' HTTP addresses in the --servers order.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if len(g.servers) < 2 || len(httpAddrs) != len(g.servers) {
				return fmt.Errorf("overload needs at least two --servers (the writer first) and one --http address for each, in the same order")
			}
			cfg.Servers, cfg.HTTP, cfg.Dialer = g.servers, httpAddrs, g.dialer
			cfg.Status = func(ctx context.Context, addr string) (opsapi.Status, error) {
				var st opsapi.Status
				_, err := g.getJSON(ctx, addr, "/v1/status", &st)
				return st, err
			}
			client := g.httpClient()
			cfg.Metrics = func(ctx context.Context, addr string) (string, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.httpURL(addr, "/metrics"), nil)
				if err != nil {
					return "", err
				}
				res, err := client.Do(req)
				if err != nil {
					return "", err
				}
				defer res.Body.Close()
				body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
				if err == nil && res.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %s", addr, res.Status)
				}
				return string(body), err
			}
			cfg.Progress = func(format string, args ...any) {
				fmt.Fprintf(g.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Overload(ctx, cfg)
			if res == nil {
				return err
			}
			if asJSON {
				if jerr := json.NewEncoder(g.stdout).Encode(res); jerr != nil {
					return jerr
				}
			} else {
				printOverload(g.stdout, cfg, res)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&httpAddrs, "http", nil, "HOST:PORT[,...] HTTP address of each --servers entry, same order")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the load runs")
	f.IntVar(&cfg.Ingest.Conns, "conns", cfg.Ingest.Conns, "load connections")
	f.IntVar(&cfg.Ingest.Users, "users", cfg.Ingest.Users, "distinct users the load writes as")
	f.IntVar(&cfg.Ingest.Contacts, "contacts", cfg.Ingest.Contacts, "distinct contacts per load connection, cycled")
	f.IntVar(&cfg.Ingest.Rate, "rate", 0, "total load changes per second (0: as fast as possible)")
	f.DurationVar(&cfg.MarkerEvery, "marker-every", cfg.MarkerEvery, "time between markers (the first after it)")
	f.DurationVar(&cfg.MarkerWait, "marker-wait", cfg.MarkerWait, "how long a marker is waited for on each server")
	f.DurationVar(&cfg.PollGap, "poll-gap", cfg.PollGap, "pause between a server's ListAll polls (the resolution)")
	f.DurationVar(&cfg.ConvergeTimeout, "converge-timeout", cfg.ConvergeTimeout, "longest wait for equal digests after the load")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func ms(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func printOverload(w io.Writer, cfg loadgen.OverloadConfig, res *loadgen.OverloadResult) {
	in := res.Ingest
	fmt.Fprintf(w, "load: %d Updates over %d connections to %s in %.2f s = %.0f Updates/s (sending stopped at %.2f s)\n\n",
		in.Updates, cfg.Ingest.Conns, cfg.Servers[0], in.Elapsed.Seconds(), in.Rate, in.SendEnd.Sub(in.Started).Seconds())
	names := make([]string, len(cfg.Servers))
	for i := range names {
		names[i] = cfg.Servers[i]
		if res.Final != nil && res.Final[i].Name != "" {
			names[i] = res.Final[i].Name
		}
	}
	head := "| marker | written at | confirmed on " + names[0] + " |"
	sep := "|---|---|---|"
	for _, n := range names[1:] {
		head += " listed on " + n + " |"
		sep += "---|"
	}
	fmt.Fprintln(w, head+" every serving member |")
	fmt.Fprintln(w, sep+"---|")
	worst := time.Duration(0)
	for k, m := range res.Markers {
		row := fmt.Sprintf("| %d | %.1f s | %s |", k+1, m.At.Seconds(), ms(m.Seen[0]))
		for i := 1; i < len(m.Seen); i++ {
			cell := ms(m.Seen[i])
			if !m.Serving[i] {
				cell += " (not serving)"
			}
			row += " " + cell + " |"
		}
		fmt.Fprintln(w, row+" "+ms(m.AllServing)+" |")
		if m.AllServing < 0 || worst < 0 {
			worst = -1
		} else {
			worst = max(worst, m.AllServing)
		}
	}
	fmt.Fprintf(w, "\nworst marker, every serving member: %s\n", ms(worst))
	for i, at := range res.ServingAt {
		switch {
		case at < 0:
			fmt.Fprintf(w, "%s: never seen serving\n", names[i])
		case at > 0:
			fmt.Fprintf(w, "%s: serving at %.2f s\n", names[i], at.Seconds())
		}
	}
	if res.Converged >= 0 {
		fmt.Fprintf(w, "all %d digests equal %s after the load's last send (%s after its final ListAll replies)\n",
			len(names), ms(res.Converged), ms(res.ConvergedAfterAck))
	} else {
		fmt.Fprintf(w, "digests NOT equal within %s after the load\n", cfg.ConvergeTimeout)
	}
	st := res.Final[0]
	copyBytes := st.Live*wire.ServerUpdateSize + st.Tombstones*wire.ServerDeleteSize
	fmt.Fprintf(w, "one state copy (%d live, %d tombstones, at the end): %d bytes (%.0f MB)\n\n", st.Live, st.Tombstones, copyBytes, float64(copyBytes)/1e6)
	head, sep = "| counter (grew during the run) |", "|---|"
	for _, n := range names {
		head += " " + n + " |"
		sep += "---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	// What each server was sent, by kind, summed over every sender's
	// per-peer counters (contact_peer_bytes_sent_total{kind,peer}).
	for _, kind := range []string{"snapshot", "catch_up", "live"} {
		row := "| bytes received, " + kind + " |"
		for _, n := range names {
			v := 0.0
			for i := range names {
				v += res.Counters[i][fmt.Sprintf(`contact_peer_bytes_sent_total{kind=%q,peer=%q}`, kind, n)]
			}
			row += fmt.Sprintf(" %.0f (%.1f MB) |", v, v/1e6)
		}
		fmt.Fprintln(w, row)
	}
	for _, c := range overloadCounters {
		row := "| " + c.label + " |"
		for i := range names {
			v := res.Counters[i][c.key]
			if strings.Contains(c.key, "bytes") {
				row += fmt.Sprintf(" %.0f (%.1f MB) |", v, v/1e6)
			} else {
				row += fmt.Sprintf(" %.0f |", v)
			}
		}
		fmt.Fprintln(w, row)
	}
}
