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
	"text/tabwriter"
	"time"

	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/spf13/cobra"
)

// fetchStatus reads /v1/status from the first reachable --http address.
func (g *globals) fetchStatus(ctx context.Context, addrs []string) (opsapi.Status, error) {
	var errs []string
	for _, a := range addrs {
		var st opsapi.Status
		if _, err := g.getJSON(ctx, a, "/v1/status", &st); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return st, nil
	}
	return opsapi.Status{}, fmt.Errorf("no HTTP endpoint answered: %s", strings.Join(errs, "; "))
}

func printStatus(w io.Writer, st opsapi.Status, withSummary bool) {
	if withSummary {
		fmt.Fprintf(w, "%s: %s, %d contacts in %d books, %d tombstones, clock %d, digest %s\n",
			st.Name, st.Health, st.Live, st.Users, st.Tombstones, st.Clock, st.Digest)
		if st.NotReadyReason != "" {
			fmt.Fprintf(w, "not ready: %s\n", st.NotReadyReason)
		}
		if st.Alone {
			fmt.Fprintf(w, "alone: %s\n", st.SyncNote)
		}
		if st.StaleData {
			fmt.Fprintf(w, "stale data: last in contact with a serving peer %s\n", st.Mark)
		}
		if !st.Secure && st.SecurityMissing != nil { // nil: a server too old to say
			fmt.Fprintf(w, "NOT SECURE: missing %s (README: Securing a cluster)\n", strings.Join(st.SecurityMissing, ", "))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tHEALTH\tCLOCK\tOFFSET\tDIGEST\tIN SYNC\tLINKS OUT/IN\tLAG\tLAST HEARD\tCONTACT")
	for _, m := range st.Members {
		name, links, heard, queue, offset := m.Name, "-", "-", "-", "-"
		if m.Self {
			name += " (this)"
		} else {
			links = upDown(m.OutboundUp) + "/" + upDown(m.InboundUp)
			queue = fmt.Sprintf("%d (%.1fs)", m.LagChanges, m.LagSeconds)
			if m.ClockMeasured {
				offset = fmt.Sprintf("%+.1fs", m.ClockOffsetSeconds)
			}
			if m.ClockAheadSeconds > 0 {
				offset += " AHEAD"
			}
		}
		if m.HeardSecondsAgo >= 0 {
			heard = fmt.Sprintf("%.1fs ago", m.HeardSecondsAgo)
		}
		sync := "yes"
		if !m.InSync {
			sync = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, m.State, m.Health, m.Clock, offset, m.Digest, sync, links, queue, heard, m.ContactAddr)
	}
	_ = tw.Flush()
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

type statusFlags struct {
	http     []string
	asJSON   bool
	interval time.Duration
}

// httpFlagHelp says how an --http address picks HTTP or HTTPS.
const httpFlagHelp = "; https://HOST:PORT speaks TLS, http://HOST:PORT plain HTTP, and a bare HOST:PORT TLS exactly when --tls-ca is given"

func (f *statusFlags) bind(cmd *cobra.Command, withInterval bool) {
	cmd.Flags().StringSliceVar(&f.http, "http", []string{"127.0.0.1:8080"}, "HOST:PORT[,...] of the servers' --http endpoints, tried in order"+httpFlagHelp)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
	if withInterval {
		cmd.Flags().DurationVar(&f.interval, "interval", time.Second, "refresh interval")
	}
}

func statusCmd(g *globals, membersOnly bool) *cobra.Command {
	f := &statusFlags{}
	use, short := "status", "Show this server and the cluster as it sees it (needs --http)"
	if membersOnly {
		use, short = "members", "List the cluster's members as one server sees them (needs --http)"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			st, err := g.fetchStatus(context.Background(), f.http)
			if err != nil {
				return err
			}
			if f.asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if membersOnly {
					return enc.Encode(st.Members)
				}
				return enc.Encode(st)
			}
			printStatus(g.stdout, st, !membersOnly)
			return nil
		},
	}
	f.bind(cmd, false)
	return cmd
}

func watchCmd(g *globals) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use: "watch", Short: "Refresh the status table until interrupted (needs --http)", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			for {
				st, err := g.fetchStatus(ctx, f.http)
				fmt.Fprint(g.stdout, "\033[H\033[2J") // home, clear
				if err != nil {
					fmt.Fprintf(g.stdout, "%s  %v\n", time.Now().Format("15:04:05"), err)
				} else {
					fmt.Fprintf(g.stdout, "%s  every %v, Ctrl-C to stop\n", time.Now().Format("15:04:05"), f.interval)
					printStatus(g.stdout, st, true)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(f.interval):
				}
			}
		},
	}
	f.bind(cmd, true)
	return cmd
}

// healthCmd exits 0 when the server's /readyz says ready: the container
// health check (a FROM-scratch image has no curl).
func healthCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use: "health", Short: "Exit 0 if the server at --http is ready (serving), 1 otherwise", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			var body struct{ Status string }
			code, err := g.getJSON(context.Background(), addr, "/readyz", &body)
			if err != nil && code != http.StatusServiceUnavailable {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("not ready: %s", body.Status)
			}
			fmt.Fprintln(g.stdout, body.Status)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8080", "HOST:PORT of the server's --http endpoint"+httpFlagHelp)
	return cmd
}
