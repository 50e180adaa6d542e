package ctlcli

import (
	"fmt"
	"time"

	"github.com/contactstore/contactstore/internal/security"
	"github.com/spf13/cobra"
)

func certsCmd() *cobra.Command {
	var (
		dir            string
		servers, users []string
		hosts          []string
		validity       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a CA and certificates for a test cluster (servers and users)",
		Long: "certs writes DIR/ca.pem and, per name, DIR/NAME.pem and DIR/NAME-key.pem. A server's certificate\n" +
			"names the server (CN and DNS SAN) plus every --hosts entry, and serves both as TLS server and peer client.\n" +
			"A user's certificate names the user, for servers started with --tls-client-auth verify.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := security.WriteTestPKI(dir, servers, users, hosts, validity); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote a CA and %d certificates to %s\n", len(servers)+len(users), dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "certs", "directory to write into")
	f.StringSliceVar(&servers, "servers", nil, "server names, e.g. contact-server-1,contact-server-2")
	f.StringSliceVar(&users, "users", nil, "user names that get client certificates")
	f.StringSliceVar(&hosts, "hosts", []string{"localhost", "127.0.0.1"}, "extra names and IPs on every server certificate")
	f.DurationVar(&validity, "validity", 365*24*time.Hour, "how long the certificates are valid")
	return cmd
}
