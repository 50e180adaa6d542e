// Package main is the contact-server binary. It only hands the command
// line to internal/servercli and must hold no logic of its own. See README.md.
package main

import (
	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/servercli"
)

func main() { cliutil.Execute(servercli.Command()) }
