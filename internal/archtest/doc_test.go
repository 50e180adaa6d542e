package archtest

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the import list of docs/architecture.md from go list")

const (
	archDoc     = "../../docs/architecture.md"
	importBegin = "<!-- imports:begin -->\n"
	importEnd   = "<!-- imports:end -->\n"
)

// importList is the "Imports" block of docs/architecture.md: one line per
// package of the module, with the packages of ours it imports.
func importList(t *testing.T) string {
	var b strings.Builder
	b.WriteString("```\n")
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		imports := strings.Join(ours(p.Imports), ", ")
		if imports == "" {
			imports = "(nothing of ours)"
		}
		fmt.Fprintf(&b, "%-26s -> %s\n", rel, imports)
	}
	b.WriteString("```\n")
	return b.String()
}

// The import arrows in docs/architecture.md are exactly what go list says.
func TestArchitectureListsTheImports(t *testing.T) {
	doc, err := os.ReadFile(archDoc)
	require.NoError(t, err)
	before, rest, ok := strings.Cut(string(doc), importBegin)
	require.True(t, ok, "%s has no %q marker", archDoc, strings.TrimSpace(importBegin))
	got, after, ok := strings.Cut(rest, importEnd)
	require.True(t, ok, "%s has no %q marker", archDoc, strings.TrimSpace(importEnd))
	want := importList(t)
	if *update {
		require.NoError(t, os.WriteFile(archDoc, []byte(before+importBegin+want+importEnd+after), 0o644))
		return
	}
	require.Equal(t, want, got, "docs/architecture.md lists stale imports; regenerate with "+
		"go test ./internal/archtest -run TestArchitectureListsTheImports -update")
}
