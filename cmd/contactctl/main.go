// Command contactctl reads and writes contact books. See README.md.
package main

import (
	"github.com/contactstore/contactstore/internal/cliutil"
	"github.com/contactstore/contactstore/internal/ctlcli"
)

func main() { cliutil.Execute(ctlcli.Command()) }
