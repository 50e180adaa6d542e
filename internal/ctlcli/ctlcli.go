// Package ctlcli is the command line of contactctl, the client people and
// scripts use: put, del, list, import and export against one of several
// servers, failing over in order. It speaks only the client role through
// internal/client and must hold no protocol encoding of its own.
package ctlcli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/security"
	"github.com/contactstore/contactstore/wire"
	"github.com/spf13/cobra"
)

type globals struct {
	servers    []string
	user       string
	userSet    bool // --user given (flag or CONTACT_USER) or taken from $USER
	timeout    time.Duration
	tls        security.TLSFiles
	serverName string
	tlsConfig  *tls.Config // from the --tls-* flags; nil without --tls-ca
	dialer     func(ctx context.Context, addr string) (net.Conn, error)
	stdout     io.Writer
	stderr     io.Writer
}

// clientOptions are the connection options every command uses.
func (g *globals) clientOptions() client.Options {
	opts := client.DefaultOptions()
	opts.IOTimeout = g.timeout
	opts.Dialer = g.dialer
	return opts
}

// setupTLS builds the TLS configuration from --tls-ca (needed), --tls-cert
// and --tls-key (needed when servers verify clients), and the contact
// port's dialer from it. The servers must present members' certificates.
func (g *globals) setupTLS() error {
	if !g.tls.Enabled() {
		return nil
	}
	if g.tls.CA == "" {
		return errors.New("--tls-cert and --tls-key need --tls-ca")
	}
	pool, err := security.LoadCA(g.tls.CA)
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if g.tls.Cert != "" || g.tls.Key != "" {
		c, err := tls.LoadX509KeyPair(g.tls.Cert, g.tls.Key)
		if err != nil {
			return fmt.Errorf("TLS certificate %s / key %s: %v", g.tls.Cert, g.tls.Key, err)
		}
		cert = &c
	}
	g.tlsConfig = security.DialConfig(cert, pool)
	g.dialer = client.TLSDialer(g.tlsConfig, g.serverName)
	return nil
}

// Command returns the contactctl command tree. Output goes to the
// command's Out and Err writers (os.Stdout/os.Stderr by default).
func Command() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "contactctl",
		Short: "Read and write contact books on a contact-server cluster",
		Long: "contactctl talks to contact servers over the contact protocol.\n" +
			"--server takes a comma-separated list; the next server is tried when one is unreachable.\n" +
			"Flags can also be set as CONTACT_<FLAG>, e.g. CONTACT_SERVER, CONTACT_USER.",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := cliutil.BindEnv(cmd.Root().PersistentFlags(), "CONTACT_"); err != nil {
				return err
			}
			g.stdout, g.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			var clean []string
			for _, s := range g.servers {
				if s = strings.TrimSpace(s); s != "" {
					clean = append(clean, s)
				}
			}
			if len(clean) == 0 {
				return errors.New("--server is empty")
			}
			g.servers = clean
			// "" is a user name like any other, so an empty --user is
			// used as given; only a user set nowhere is an error.
			if cmd.Root().PersistentFlags().Changed("user") {
				g.userSet = true
			} else if u := os.Getenv("USER"); u != "" {
				g.user, g.userSet = u, true
			}
			return g.setupTLS()
		},
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.servers, "server", []string{"127.0.0.1:9000"}, "HOST:PORT[,HOST:PORT...] servers, tried in order")
	pf.StringVar(&g.user, "user", "", "whose contact book to use (default $USER; --user \"\" is the empty user name, a book like any other)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "per-operation timeout")
	pf.StringVar(&g.tls.CA, "tls-ca", "", "PEM CA to verify servers with (enables TLS, on the contact port and on --http addresses without a scheme)")
	pf.StringVar(&g.tls.Cert, "tls-cert", "", "PEM user certificate naming --user (servers with --tls-client-auth verify; also shown to --http endpoints with --http-client-auth verify)")
	pf.StringVar(&g.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	pf.StringVar(&g.serverName, "tls-server-name", "", "name the server certificates must carry (default: the host of each --server)")
	root.AddCommand(putCmd(g), delCmd(g), listCmd(g), importCmd(g), exportCmd(g), benchCmd(g),
		statusCmd(g, false), statusCmd(g, true), watchCmd(g), healthCmd(g), certsCmd())
	return root
}

func (g *globals) checkUser() error {
	if !g.userSet {
		return errors.New(`no user: set --user (or CONTACT_USER or $USER); --user "" names the empty user`)
	}
	if err := wire.CheckName([]byte(g.user)); err != nil {
		return fmt.Errorf("user name %q does not fit the protocol: %w (at most %d bytes)", g.user, err, wire.MaxNameLen)
	}
	return nil
}

// checkContact refuses what the protocol cannot carry. An empty name is an
// ordinary contact name.
func checkContact(name, phone string) error {
	if err := wire.CheckName([]byte(name)); err != nil {
		return fmt.Errorf("contact name %q does not fit the protocol: %w (at most %d bytes)", name, err, wire.MaxNameLen)
	}
	if err := wire.CheckPhone([]byte(phone)); err != nil {
		return fmt.Errorf("phone %q does not fit the protocol: %w (at most %d bytes)", phone, err, wire.MaxPhoneLen)
	}
	return nil
}

// withFailover runs op on a connection to the first reachable server; when
// the connection fails during op, op runs again from the start on the next
// server. Every op here is safe to repeat: Updates and Deletes converge to
// the same book, and ListAll only reads.
func (g *globals) withFailover(op func(c *client.Client) error) error {
	opts := g.clientOptions()
	var errs []string
	for i := range g.servers {
		c, err := client.Dial(context.Background(), g.servers[i:i+1], g.user, opts)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		err = op(c)
		_ = c.Close()
		if err == nil {
			return nil
		}
		if wire.IsViolation(err) {
			return fmt.Errorf("server %s broke the protocol: %w", g.servers[i], err)
		}
		errs = append(errs, fmt.Sprintf("%s: %v", g.servers[i], err))
	}
	return fmt.Errorf("no server could complete the request: %s", strings.Join(errs, "; "))
}
