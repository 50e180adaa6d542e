package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/contactstore/contactstore"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// goList runs `go list -json` with args from the module root and decodes
// every package it prints.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	statSources(t)
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps"}, args...)...)
	cmd.Dir = "../.." // the module root
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
	}
	require.NoError(t, err, "go list %v", args)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs, "go list %v listed nothing", args)
	return pkgs
}

// ours returns the packages of this module in list, relative to the module
// ("wire", "internal/server", "" for the root).
func ours(list []string) []string {
	var out []string
	for _, p := range list {
		if rel, ok := strings.CutPrefix(p, module+"/"); ok {
			out = append(out, rel)
		}
	}
	return out
}

// statSources stats every Go file and go.mod of the module. go test caches
// a passing result keyed on the files the test itself touched; what `go
// list` reads in its own process is not among them, so without this a
// cached pass would hide an import added since.
func statSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || strings.HasSuffix(p, ".go") || d.Name() == "go.mod":
			_, err = os.Stat(p)
		}
		return err
	})
	require.NoError(t, err)
}

func isTestKit(rel string) bool { return strings.HasSuffix(path.Base(rel), "test") }

// Only test kits (clustertest, chaostest, logtest, ...) may import
// "testing"; everything else is code the binaries could link.
func TestOnlyTestKitsImportTesting(t *testing.T) {
	kits := 0
	for _, p := range goList(t, "./...") {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if isTestKit(rel) {
			kits++
			continue
		}
		require.False(t, slices.Contains(p.Imports, "testing"),
			"%s imports \"testing\": move what needs it into a package whose name ends in test (like httptest)", rel)
	}
	require.Positive(t, kits, "no test kit found: is the module root right?")
}

// Neither binary links "testing" or any test kit, even indirectly.
func TestBinariesLinkNoTestCode(t *testing.T) {
	for _, p := range goList(t, "-deps", "./cmd/...") {
		if !strings.HasPrefix(p.ImportPath, module+"/cmd/") {
			continue
		}
		require.False(t, slices.Contains(p.Deps, "testing"), "%s links \"testing\"", p.ImportPath)
		for _, d := range ours(p.Deps) {
			require.False(t, isTestKit(d), "%s links the test kit %s", p.ImportPath, d)
		}
	}
}

// Imports point down the stack: connection -> wire -> store -> sync ->
// peers. wire, store and membership import nothing of ours, sync imports
// only those three, and nothing imports cmd.
func TestImportsPointDownTheStack(t *testing.T) {
	allowed := map[string][]string{
		"wire":       nil,
		"store":      nil,
		"membership": nil,
		"sync":       {"wire", "store", "membership"},
	}
	for _, p := range goList(t, "./...") {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		imports := ours(p.Imports)
		if want, ok := allowed[rel]; ok {
			for _, imp := range imports {
				require.True(t, slices.Contains(want, imp), "%s imports %s; it may import only %v", rel, imp, want)
			}
		}
		for _, imp := range imports {
			require.False(t, strings.HasPrefix(imp, "cmd/"), "%s imports %s: nothing imports cmd", rel, imp)
		}
	}
}
