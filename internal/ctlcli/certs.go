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
		Long: "certs writes DIR/ca.pem and, per name, DIR/NAME.pem and DIR/NAME-key.pem (keys 0600).\n" +
			"A server's is a member certificate: OU contact-server, the server's name (CN and DNS SAN) plus every\n" +
			"--hosts entry, usable as TLS server and as peer client. A user's is a user certificate: OU contact-user,\n" +
			"the user as CN, client use only, for servers started with --tls-client-auth verify. The two never stand\n" +
			"in for each other: a member's certificate opens no book, a user's never acts as a peer or a server.",
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
