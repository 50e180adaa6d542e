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
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate load and measure the servers",
	}
	cmd.AddCommand(benchIngestCmd(g), benchFillCmd(g))
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
			cfg.Servers = g.servers
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
			fmt.Fprintf(g.stdout, "ingest: %d updates over %d conns in %.2fs = %.0f updates/s (%.1f MB/s), all confirmed by ListAll\n",
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
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func benchFillCmd(g *globals) *cobra.Command {
	cfg := loadgen.FillConfig{Users: 10_000, Contacts: 100, Workers: 16, ValueSize: 11}
	cmd := &cobra.Command{
		Use:   "fill",
		Short: "Write --users books of --contacts contacts each, confirmed by ListAll",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg.Servers = g.servers
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Fill(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "fill: %d contacts over %d users in %.2fs = %.0f contacts/s\n",
				res.Contacts, cfg.Users, res.Elapsed.Seconds(), res.Rate)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Users, "users", cfg.Users, "number of books")
	f.IntVar(&cfg.Contacts, "contacts", cfg.Contacts, "contacts per book")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent connections")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "phone number length in bytes (1..19)")
	f.StringVar(&cfg.UserPrefix, "user-prefix", "fill-user-", "book names are this prefix plus an index")
	return cmd
}
