package ctlcli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/opsapi"
	"github.com/spf13/cobra"
)

// benchListAllCmd times ListAll of one book on one connection: the median
// and range of --runs reads (after one warm-up read that is not counted).
func benchListAllCmd(g *globals) *cobra.Command {
	var runs int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "listall",
		Short: "Time --runs ListAll reads of --user's book on one connection (median, min, max)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 {
				return fmt.Errorf("--runs must be at least 1")
			}
			c, err := client.Dial(cmd.Context(), g.servers, g.user, g.clientOptions())
			if err != nil {
				return err
			}
			defer c.Close()
			count := func() (int, error) {
				n := 0
				err := c.ListFunc(func(_, _ []byte) { n++ })
				return n, err
			}
			contacts, err := count()
			if err != nil {
				return err
			}
			ms := make([]float64, 0, runs)
			for range runs {
				t0 := time.Now()
				if _, err := count(); err != nil {
					return err
				}
				ms = append(ms, float64(time.Since(t0))/float64(time.Millisecond))
			}
			slices.Sort(ms)
			med := ms[len(ms)/2]
			if len(ms)%2 == 0 {
				med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"mode": "listall", "user": g.user, "contacts": contacts, "runs": runs,
					"median_ms": med, "min_ms": ms[0], "max_ms": ms[len(ms)-1],
				})
			}
			fmt.Fprintf(g.stdout, "listall %s: %d contacts, %d runs: median %.2f ms, min %.2f ms, max %.2f ms\n",
				g.user, contacts, runs, med, ms[0], ms[len(ms)-1])
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 21, "timed reads")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// benchFirstListCmd measures a restart: started right after the server's
// exec with the exec time in --since-ns, it retries ListAll every
// millisecond until one succeeds and prints the time from --since-ns.
func benchFirstListCmd(g *globals) *cobra.Command {
	var since int64
	var wait, every time.Duration
	var atLeast int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "first-list",
		Short: "Retry ListAll of --user until one succeeds; print the time since --since-ns (a restart's time to serving)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t0 := time.Now()
			if since > 0 {
				t0 = time.Unix(0, since)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			opts := g.clientOptions()
			opts.IOTimeout = time.Second
			var lastErr error
			tries := 0
			for {
				tries++
				n, err := listOnce(ctx, g, opts)
				if err == nil && n < atLeast {
					err = fmt.Errorf("ListAll shows %d contacts, waiting for %d", n, atLeast)
				}
				if err == nil {
					el := time.Since(t0)
					if asJSON {
						return json.NewEncoder(g.stdout).Encode(map[string]any{
							"mode": "first-list", "user": g.user, "contacts": n, "ms": float64(el) / float64(time.Millisecond), "tries": tries,
						})
					}
					fmt.Fprintf(g.stdout, "first ListAll of %s (%d contacts) after %.1f ms (%d tries)\n", g.user, n, float64(el)/float64(time.Millisecond), tries)
					return nil
				}
				if ctx.Err() == nil || lastErr == nil {
					lastErr = err // not the try the deadline cut short
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("no ListAll succeeded within %v: %v", wait, lastErr)
				case <-time.After(every):
				}
			}
		},
	}
	cmd.Flags().Int64Var(&since, "since-ns", 0, "start of the measurement, Unix nanoseconds (default: now)")
	cmd.Flags().DurationVar(&wait, "wait", time.Minute, "give up after this long")
	cmd.Flags().DurationVar(&every, "every", time.Millisecond, "pause between tries (the resolution)")
	cmd.Flags().IntVar(&atLeast, "min", 0, "succeed only once ListAll shows at least this many contacts")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func listOnce(ctx context.Context, g *globals, opts client.Options) (int, error) {
	c, err := client.Dial(ctx, g.servers, g.user, opts)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	err = c.ListFunc(func(_, _ []byte) { n++ })
	return n, err
}

// benchConvergeCmd waits until every --http endpoint reports ready with the
// same state digest (and, with --live, at least that many contacts), and
// prints the time since --since-ns: a join's or a restart's time to
// convergence, at the resolution of --every. With --members, every member
// must also see that many members alive with both peer links up.
func benchConvergeCmd(g *globals) *cobra.Command {
	var addrs []string
	var since int64
	var every, wait time.Duration
	var live, members int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "converge",
		Short: "Poll /v1/status of every --http until all are ready with equal digests; print the time since --since-ns",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(addrs) == 0 {
				return fmt.Errorf("converge needs --http addresses")
			}
			t0 := time.Now()
			if since > 0 {
				t0 = time.Unix(0, since)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			sts := make([]opsapi.Status, len(addrs))
			errs := make([]error, len(addrs))
			rounds := 0
			for {
				rounds++
				var wg gosync.WaitGroup
				for i, a := range addrs {
					wg.Go(func() {
						sts[i] = opsapi.Status{}
						_, errs[i] = g.getJSON(ctx, a, "/v1/status", &sts[i])
					})
				}
				wg.Wait()
				why := ""
				for i := range addrs {
					switch {
					case errs[i] != nil:
						why = errs[i].Error()
					case !sts[i].Ready:
						why = addrs[i] + " not ready"
					case sts[i].Digest != sts[0].Digest:
						why = addrs[i] + " digest differs"
					case sts[i].Live < live:
						why = fmt.Sprintf("%s holds %d contacts", addrs[i], sts[i].Live)
					case members > 0:
						why = sts[i].LinksMissing(addrs[i], members)
					}
					if why != "" {
						break
					}
				}
				if why == "" {
					el := time.Since(t0)
					if asJSON {
						return json.NewEncoder(g.stdout).Encode(map[string]any{
							"mode": "converge", "members": len(addrs), "digest": sts[0].Digest, "live": sts[0].Live,
							"ms": float64(el) / float64(time.Millisecond), "rounds": rounds,
						})
					}
					fmt.Fprintf(g.stdout, "%d members ready with digest %s (%d contacts) after %.1f ms\n",
						len(addrs), sts[0].Digest, sts[0].Live, float64(el)/float64(time.Millisecond))
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("not converged within %v: %s", wait, why)
				case <-time.After(every):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&addrs, "http", nil, "HTTP addresses of the members (comma-separated or repeated)")
	f.Int64Var(&since, "since-ns", 0, "start of the measurement, Unix nanoseconds (default: now)")
	f.DurationVar(&every, "every", 100*time.Millisecond, "pause between polling rounds (the resolution)")
	f.DurationVar(&wait, "wait", 5*time.Minute, "give up after this long")
	f.IntVar(&live, "live", 0, "also wait until every member holds at least this many live contacts")
	f.IntVar(&members, "members", 0, "also wait until every member sees this many members alive, its peer links to each up both ways")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
