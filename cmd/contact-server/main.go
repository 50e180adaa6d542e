// Command contact-server runs one contact server. See README.md.
package main

import (
	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/servercli"
)

func main() { cliutil.Execute(servercli.Command()) }
