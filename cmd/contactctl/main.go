// Package main is the contactctl binary. It only hands the command line to
// internal/ctlcli and must hold no logic of its own. See README.md.
package main

import (
	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/ctlcli"
)

func main() { cliutil.Execute(ctlcli.Command()) }
