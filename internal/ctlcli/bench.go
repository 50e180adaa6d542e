package ctlcli

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/contactstore/contactstore/internal/loadgen"
	"github.com/spf13/cobra"
)

func benchCmd(g *globals) *cobra.Command {
	var servers []string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate load and measure the servers",
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := cmd.Root().PersistentPreRunE(cmd, args); err != nil {
				return err
			}
			if len(servers) > 0 { // --servers is the bench spelling of --server
				g.servers = servers
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringSliceVar(&servers, "servers", nil, "HOST:PORT[,...] to load (default: --server)")
	cmd.AddCommand(benchIngestCmd(g), benchFillCmd(g), benchReplicationCmd(g), benchOverloadCmd(g), benchListAllCmd(g), benchFirstListCmd(g), benchConvergeCmd(g))
	return cmd
}

func benchIngestCmd(g *globals) *cobra.Command {
	cfg := loadgen.DefaultIngestConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Pipelined Updates from many connections, then a ListAll each to confirm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Servers, cfg.Dialer = g.servers, g.dialer
			if cmd.Flags().Changed("duration") && !cmd.Flags().Changed("count") {
				cfg.PerConn = 0
			}
			if !asJSON {
				cfg.Progress = func(sent uint64, el time.Duration) {
					fmt.Fprintf(g.stderr, "\r%10d updates  %9.0f/s  %5.1fs", sent, float64(sent)/el.Seconds(), el.Seconds())
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Ingest(ctx, cfg)
			if !asJSON {
				fmt.Fprintln(g.stderr)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"mode": "ingest", "conns": cfg.Conns, "updates": res.Updates,
					"seconds": res.Elapsed.Seconds(), "updates_per_sec": res.Rate, "mb_per_sec": res.MBPerSec,
				})
			}
			fmt.Fprintf(g.stdout, "ingest: %d changes over %d conns in %.2fs = %.0f changes/s (%.1f MB/s), all confirmed by ListAll\n",
				res.Updates, cfg.Conns, res.Elapsed.Seconds(), res.Rate, res.MBPerSec)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Conns, "conns", cfg.Conns, "concurrent connections")
	f.IntVar(&cfg.Users, "users", cfg.Users, "distinct users the connections write as")
	f.IntVar(&cfg.Contacts, "contacts", cfg.Contacts, "distinct contacts per connection, cycled")
	f.IntVar(&cfg.PerConn, "count", cfg.PerConn, "updates per connection")
	f.DurationVar(&cfg.Duration, "duration", 0, "run for this long instead of --count")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "phone number length in bytes (1..19)")
	f.IntVar(&cfg.Rate, "rate", 0, "total changes per second over all connections (0: as fast as possible)")
	f.Float64Var(&cfg.DeleteRatio, "delete-ratio", 0, "fraction of changes that are Deletes (0..1)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func benchFillCmd(g *globals) *cobra.Command {
	cfg := loadgen.FillConfig{Users: 10_000, Contacts: 100, Workers: 16, ValueSize: 11}
	var asJSON, progress bool
	cmd := &cobra.Command{
		Use:   "fill",
		Short: "Write --users books of --contacts contacts each (or --total contacts in books of --min-contacts..--contacts), confirmed by ListAll",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg.Servers, cfg.Dialer = g.servers, g.dialer
			if progress {
				cfg.Progress = func(n uint64, el time.Duration) {
					fmt.Fprintf(g.stderr, "\r%12d contacts  %9.0f/s  %7.0fs", n, float64(n)/el.Seconds(), el.Seconds())
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Fill(ctx, cfg)
			if progress {
				fmt.Fprintln(g.stderr)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"mode": "fill", "contacts": res.Contacts, "books": res.Books,
					"seconds": res.Elapsed.Seconds(), "contacts_per_sec": res.Rate,
				})
			}
			fmt.Fprintf(g.stdout, "fill: %d contacts over %d users in %.2fs = %.0f contacts/s\n",
				res.Contacts, res.Books, res.Elapsed.Seconds(), res.Rate)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Users, "users", cfg.Users, "number of books (without --total)")
	f.IntVar(&cfg.Contacts, "contacts", cfg.Contacts, "contacts per book (with --total: the largest book, and book 0's size)")
	f.IntVar(&cfg.Total, "total", 0, "write books until they hold this many contacts (replaces --users)")
	f.IntVar(&cfg.MinContacts, "min-contacts", 0, "with --total: the smallest book (sizes spread evenly over the logarithm)")
	f.IntVar(&cfg.FirstUser, "first-user", 0, "index of the first book")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent connections")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "phone number length in bytes (1..19)")
	f.StringVar(&cfg.UserPrefix, "user-prefix", "fill-user-", "book names are this prefix plus an index")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&progress, "progress", false, "print progress on stderr every second")
	return cmd
}

func benchReplicationCmd(g *globals) *cobra.Command {
	cfg := loadgen.ReplicationConfig{Rate: 5000, Duration: 10 * time.Second, PerBook: 50}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replication",
		Short: "Write on the first --server at --rate; readers on the others time when each change becomes visible",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if len(g.servers) < 2 {
				return fmt.Errorf("replication needs at least two --server addresses: the writer's, then the readers'")
			}
			cfg.Writer, cfg.Readers, cfg.Dialer = g.servers[0], g.servers[1:], g.dialer
			if !asJSON {
				cfg.Progress = func(sent uint64, el time.Duration) {
					fmt.Fprintf(g.stderr, "\r%8d changes sent  %6.0f/s  %5.1fs", sent, float64(sent)/el.Seconds(), el.Seconds())
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Replication(ctx, cfg)
			if !asJSON {
				fmt.Fprintln(g.stderr)
			}
			if err != nil {
				return err
			}
			h := &res.Latency
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"mode": "replication", "rate": cfg.Rate, "sent": res.Sent, "seen": res.Seen, "missing": res.Missing,
					"p50_ms": ms(h.Quantile(0.5)), "p90_ms": ms(h.Quantile(0.9)), "p99_ms": ms(h.Quantile(0.99)), "max_ms": ms(h.Max()),
					"cdf": h.CDF(),
				})
			}
			fmt.Fprintf(g.stdout, "replication: %d changes at %d/s to %d readers: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (missing %d)\n",
				res.Sent, cfg.Rate, len(cfg.Readers), ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Max()), res.Missing)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rate, "rate", cfg.Rate, "changes per second")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to write")
	f.IntVar(&cfg.PerBook, "per-book", cfg.PerBook, "contacts per rolling book (keeps each ListAll small)")
	f.DurationVar(&cfg.PollGap, "poll-gap", 200*time.Microsecond, "pause between a reader's ListAll polls (the resolution)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
