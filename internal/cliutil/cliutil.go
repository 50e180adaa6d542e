// Package cliutil holds what both binaries' command lines share: binding
// CONTACT_* environment variables to flags and turning errors into one
// clear line and a non-zero exit. It must not know about servers or stores.
package cliutil

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvName is the environment variable for a flag: CONTACT_ + the flag name
// upper-cased with dashes as underscores.
func EnvName(prefix, flag string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindEnv sets every flag not given on the command line from its
// environment variable, if present.
func BindEnv(fs *pflag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(EnvName(prefix, f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("invalid value %q in %s: %v", v, EnvName(prefix, f.Name), e)
			}
		}
	})
	return err
}

// Execute runs cmd and, on error, prints "name: error" as one line to
// stderr and exits with status 1. Usage text is shown only for --help.
func Execute(cmd *cobra.Command) {
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	if err := cmd.Execute(); err != nil {
		msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
		fmt.Fprintf(os.Stderr, "%s: %s\n", cmd.Name(), msg)
		os.Exit(1)
	}
}
