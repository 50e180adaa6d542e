package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/contactstore/contactstore"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// goList runs `go list -json -deps ./...` once from the module root and
// returns every package of the module (the standard library and other
// modules, listed only as dependencies, are left out).
func goList(t *testing.T) []pkg {
	t.Helper()
	listed.once.Do(func() { listed.pkgs, listed.err = runGoList() })
	require.NoError(t, listed.err)
	statSources(t)
	require.NotEmpty(t, listed.pkgs, "go list listed no package of %s", module)
	return listed.pkgs
}

var listed struct {
	once gosync.Once
	pkgs []pkg
	err  error
}

func runGoList() ([]pkg, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Deps,Module", "./...")
	cmd.Dir = "../.." // the module root
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, fmt.Errorf("go list: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			slices.SortFunc(pkgs, func(a, b pkg) int { return strings.Compare(a.ImportPath, b.ImportPath) })
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		if p.Module != nil && p.Module.Path == module {
			pkgs = append(pkgs, p)
		}
	}
}

// ours returns the packages of this module in list, relative to the module
// ("wire", "internal/server").
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
	for _, p := range goList(t) {
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
	for _, p := range goList(t) {
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
// peers. wire, store and membership import nothing of ours (a package in
// a subfolder of wire/, such as wire/connend, imports only wire); sync
// imports only those; nothing imports cmd.
func TestImportsPointDownTheStack(t *testing.T) {
	inWire := func(imp string) bool { return imp == "wire" || strings.HasPrefix(imp, "wire/") }
	allowed := map[string]func(imp string) bool{
		"wire":       func(string) bool { return false },
		"store":      func(string) bool { return false },
		"membership": func(string) bool { return false },
		"sync":       func(imp string) bool { return inWire(imp) || imp == "store" || imp == "membership" },
	}
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		imports := ours(p.Imports)
		ok, ruled := allowed[rel]
		if strings.HasPrefix(rel, "wire/") {
			ok, ruled = func(imp string) bool { return imp == "wire" }, true
		}
		for _, imp := range imports {
			require.False(t, ruled && !ok(imp), "%s imports %s, against the import rules of docs/architecture.md", rel, imp)
			require.False(t, strings.HasPrefix(imp, "cmd/"), "%s imports %s: nothing imports cmd", rel, imp)
		}
	}
}

// contactctl is a client: it links none of the server. Its status commands
// decode the JSON shapes of internal/opsapi, not internal/ops.
func TestContactctlLinksNoServer(t *testing.T) {
	forbidden := []string{
		"github.com/cockroachdb/pebble", // the store's storage
		"github.com/hashicorp/memberlist",
		"github.com/prometheus/",
		module + "/store", module + "/membership", module + "/sync",
		module + "/internal/server", module + "/internal/node", module + "/internal/ops",
	}
	var ctl *pkg
	for _, p := range goList(t) {
		if p.ImportPath == module+"/cmd/contactctl" {
			ctl = &p
		}
	}
	require.NotNil(t, ctl, "go list did not list cmd/contactctl")
	for _, d := range ctl.Deps {
		for _, f := range forbidden {
			require.False(t, d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/"),
				"contactctl links %s (forbidden: %s); `go list -deps ./cmd/contactctl` shows the chain", d, f)
		}
	}
}
