// Package logging builds the hclog.Logger the binaries inject everywhere
// (the test logger that routes to t.Log is in logging/logtest). It must not
// hold global state.
package logging

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New returns a logger at level ("trace".."error") in format "text" or
// "json", writing to w.
func New(name, level, format string, w io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("log level %q is not one of trace, debug, info, warn, error", level)
	}
	var json bool
	switch strings.ToLower(format) {
	case "", "text":
	case "json":
		json = true
	default:
		return nil, fmt.Errorf("log format %q is neither text nor json", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, Output: w, JSONFormat: json}), nil
}
