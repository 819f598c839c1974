package poolrelay

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// goFiles returns every .go file of the repository, skipping testdata.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGofmt(t *testing.T) {
	for _, f := range goFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := format.Source(src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if !bytes.Equal(src, out) {
			t.Errorf("%s is not gofmt-clean: run gofmt -w %s", f, f)
		}
	}
}

// Every package has exactly one package doc comment, so go doc shows what it
// is for and no two files disagree about it.
func TestPackageDocs(t *testing.T) {
	docs := map[string][]string{}
	dirs := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range goFiles(t) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		dirs[filepath.Dir(f)] = true
		af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
			docs[filepath.Dir(f)] = append(docs[filepath.Dir(f)], f)
		}
	}
	for d := range dirs {
		switch n := len(docs[d]); {
		case n == 0:
			t.Errorf("package %s has no package doc comment", d)
		case n > 1:
			t.Errorf("package %s has %d package doc comments: %v", d, n, docs[d])
		}
	}
}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
	CgoFiles     []string
	GoFiles      []string
}

func goList(t *testing.T, env []string, patterns ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps=false", "-json"}, patterns...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/poolrelay/poolrelay"

// A layering rule: no package of the trees in from (those in except aside)
// depends on a package of the trees in forbidden (those in allowed aside) or
// on a standard package in std: not in its own code, even transitively, and
// (unless codeOnly) not in its tests' direct imports. A tree is a
// module-relative folder and everything below it; "" is the whole module.
type layerRule struct {
	from, except, forbidden, allowed, std []string
	codeOnly                              bool
	why                                   string
}

// layering is the shape of the repository (the README's layout map): each
// tree has one job, and imports run one way, from the commands down.
var layering = []layerRule{
	{
		from:      []string{"dataplane"},
		forbidden: []string{"ctl", "control", "pool", "daemon", "configs", "ledger", "endnode", "sim", "cmd", "bench"},
		std:       []string{"net/http"},
		why: "the data plane imports no control, operator, ledger or assembly package, nor an HTTP stack: " +
			"a worker that could block on any of them is a worker that stalls (its time comes from internal/clock)",
	},
	{
		from:      []string{"endnode", "pool"},
		forbidden: []string{"control", "daemon", "ctl", "configs", "dataplane", "sched", "sim", "cmd", "bench"},
		allowed:   []string{"dataplane/wire"},
		why: "the end node, and the control protocol it shares with relays, use nothing of the relay's: " +
			"not its control core, process, operator surface, configuration, data plane engine or scheduler " +
			"(dataplane/wire, the POOL frame codec, is both ends')",
	},
	{
		from:      []string{"cmd/pool_node"},
		forbidden: []string{"control", "daemon", "ctl", "configs", "dataplane", "sched", "sim", "bench"},
		allowed:   []string{"dataplane/wire"},
		codeOnly:  true,
		why: "the end node command ships nothing of the relay's either " +
			"(its tests do start a relay's control core, to talk to a real one)",
	},
	{
		from:      []string{"configs"},
		forbidden: []string{"ctl", "daemon", "cmd", "bench", "endnode", "sim"},
		why: "the configuration format composes the sections of the subsystems below the assembly; " +
			"the operator surface and the assembly read it, not the other way round",
	},
	{
		from:      []string{"ctl"},
		forbidden: []string{"daemon", "cmd", "bench"},
		why:       "the operator surface serves the relay through api.Backend; the assembly implements it",
	},
	{
		from:      []string{"control"},
		forbidden: []string{"ctl", "daemon", "configs", "cmd", "bench"},
		why:       "the control core speaks to peers; the operator surface and the assembly sit above it",
	},
	{
		from:      []string{""},
		except:    []string{"cmd", "bench", "daemon"},
		forbidden: []string{"daemon"},
		why:       "the process assembly is the composition root: only commands import it",
	},
}

// inTree reports whether the import path pkg is in one of the module-relative
// trees.
func inTree(pkg string, trees []string) bool {
	for _, tree := range trees {
		root := module
		if tree != "" {
			root += "/" + tree
		}
		if pkg == root || strings.HasPrefix(pkg, root+"/") {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH: cannot list package dependencies")
	}
	pkgs := goList(t, nil, "./...")
	for _, r := range layering {
		bad := func(d string) bool {
			return inTree(d, r.forbidden) && !inTree(d, r.allowed) || slices.Contains(r.std, d)
		}
		for _, p := range pkgs {
			if !inTree(p.ImportPath, r.from) || inTree(p.ImportPath, r.except) {
				continue
			}
			for _, d := range p.Deps {
				if bad(d) {
					t.Errorf("%s depends on %s: %s", p.ImportPath, d, r.why)
				}
			}
			for _, d := range append(p.TestImports, p.XTestImports...) {
				if !r.codeOnly && bad(d) {
					t.Errorf("a test of %s imports %s: %s", p.ImportPath, d, r.why)
				}
			}
		}
	}
}

// The crypto core is a leaf tree of the relay: it reaches no data plane,
// control, protocol, ledger, operator or assembly package, not even
// transitively. What it needs of the POOL header's layout it takes from
// internal/poolhdr, which the data plane's codec reads too.
func TestCryptoImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH: cannot list package dependencies")
	}
	above := []string{"dataplane", "ctl", "control", "pool", "daemon", "configs", "ledger", "endnode", "sim", "sched", "cmd", "bench"}
	for _, p := range goList(t, nil, "./crypto/...") {
		for _, d := range p.Deps {
			for _, a := range above {
				if d == module+"/"+a || strings.HasPrefix(d, module+"/"+a+"/") {
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
		}
	}
}

// cgo and unsafe stay in the DPDK binding's leaf package, its tests
// included; everything else, tests too, builds with CGO_ENABLED=0.
func TestCgoAndUnsafeConfined(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH: cannot list packages")
	}
	allowed := func(path string) bool { return path == module+"/dataplane/dpdk" }
	for _, p := range goList(t, nil, "./...") {
		if allowed(p.ImportPath) {
			continue
		}
		if len(p.CgoFiles) > 0 {
			t.Errorf("%s has cgo files %v", p.ImportPath, p.CgoFiles)
		}
		for _, imp := range p.Imports {
			if imp == "unsafe" || imp == "C" {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if imp == "unsafe" || imp == "C" {
				t.Errorf("a test of %s imports %s", p.ImportPath, imp)
			}
		}
	}
	cmd := exec.Command("go", "build", "./...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 go build ./... failed: %v\n%s", err, out)
	}
}

// eachGoFile parses, in mode, every .go file of the repository that keep
// accepts, and calls check with it.
func eachGoFile(t *testing.T, mode parser.Mode, keep func(path string) bool, check func(fset *token.FileSet, path string, af *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	for _, f := range goFiles(t) {
		if !keep(f) {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, mode)
		if err != nil {
			t.Fatal(err)
		}
		check(fset, f, af)
	}
}

// isTest reports whether path is a test file.
func isTest(path string) bool { return strings.HasSuffix(path, "_test.go") }

// in reports whether path's file is in the folder dir (slash-separated).
func in(path, dir string) bool { return filepath.ToSlash(filepath.Dir(path)) == dir }

// selectorName is "pkg.Name" for a package-qualified expression, "" for any
// other.
func selectorName(e ast.Expr) string {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok {
			return id.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

// selectors reports the package-qualified names (os.Rename,
// unix.CLOCK_THREAD_CPUTIME_ID, ...) a parsed file uses, by the name the
// file gives the package.
func selectors(af *ast.File) map[string]bool {
	found := map[string]bool{}
	ast.Inspect(af, func(n ast.Node) bool {
		if e, ok := n.(ast.Expr); ok {
			if name := selectorName(e); name != "" {
				found[name] = true
			}
		}
		return true
	})
	return found
}

// Files that import unsafe say so in their name (*_unsafe.go), so a reviewer
// finds every one of them with a glob; test files are exempt.
func TestUnsafeFilesNamed(t *testing.T) {
	keep := func(f string) bool { return !isTest(f) && !strings.HasSuffix(f, "_unsafe.go") }
	eachGoFile(t, parser.ImportsOnly, keep, func(_ *token.FileSet, f string, af *ast.File) {
		for _, imp := range af.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "unsafe" {
				t.Errorf("%s imports unsafe: name it *_unsafe.go", f)
			}
		}
	})
}

// A file is replaced atomically and durably in one place, internal/atomicfile
// (temporary file, fsync, rename or link, directory fsync, every error
// returned): a second copy is how the copies came to differ in what they
// fsync and which errors they drop.
func TestOneAtomicFileWrite(t *testing.T) {
	keep := func(f string) bool { return !isTest(f) && !in(f, "internal/atomicfile") }
	eachGoFile(t, 0, keep, func(_ *token.FileSet, f string, af *ast.File) {
		c := selectors(af)
		if c["os.CreateTemp"] && (c["os.Rename"] || c["os.Link"]) {
			t.Errorf("%s writes a temporary file and renames it into place: use internal/atomicfile", f)
		}
	})
}

// The calling thread's CPU time is read in one place, internal/cputime, by
// tests and benchmarks alike.
func TestOneThreadCPUClock(t *testing.T) {
	keep := func(f string) bool { return !in(f, "internal/cputime") }
	eachGoFile(t, 0, keep, func(_ *token.FileSet, f string, af *ast.File) {
		c := selectors(af)
		if c["unix.CLOCK_THREAD_CPUTIME_ID"] || c["unix.RUSAGE_THREAD"] || c["syscall.RUSAGE_THREAD"] {
			t.Errorf("%s reads the thread's CPU clock itself: use internal/cputime", f)
		}
	})
}

// Benchmarks reduce their runs with one median, bench/internal/stats's, so
// that every report's "median" is the same figure.
func TestOneMedian(t *testing.T) {
	keep := func(f string) bool { return !in(f, "bench/internal/stats") }
	eachGoFile(t, 0, keep, func(_ *token.FileSet, f string, af *ast.File) {
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && strings.EqualFold(fd.Name.Name, "median") {
				t.Errorf("%s defines %s: use bench/internal/stats.Median", f, fd.Name.Name)
			}
		}
	})
}

// Time is injected through one interface, internal/clock's Clock, and read
// for real through one clock, clock.System: no other interface declares
// Now, and no other method Now returns time.Now(). Tests drive clock.Fake:
// a test type with a method Now is another fake clock unless it also has
// AfterFunc (timers, which clock.Fake does not have). An interface that
// needs more than the time embeds clock.Clock.
func TestOneClock(t *testing.T) {
	keep := func(f string) bool { return !in(f, "internal/clock") }
	eachGoFile(t, 0, keep, func(fset *token.FileSet, f string, af *ast.File) {
		nows := map[string]token.Pos{} // a test file's receiver types with Now
		timers := map[string]bool{}    // ... and those with AfterFunc
		ast.Inspect(af, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.InterfaceType:
				for _, m := range n.Methods.List {
					for _, name := range m.Names {
						if name.Name == "Now" {
							t.Errorf("%s: an interface declares Now: use (or embed) internal/clock.Clock", fset.Position(name.Pos()))
						}
					}
				}
			case *ast.FuncDecl:
				if n.Recv == nil || n.Body == nil {
					break
				}
				if isTest(f) {
					switch recv := receiverName(n.Recv.List[0].Type); n.Name.Name {
					case "Now":
						nows[recv] = n.Pos()
					case "AfterFunc":
						timers[recv] = true
					}
				}
				if n.Name.Name != "Now" || len(n.Body.List) != 1 {
					break
				}
				if r, ok := n.Body.List[0].(*ast.ReturnStmt); ok && len(r.Results) == 1 {
					if c, ok := r.Results[0].(*ast.CallExpr); ok && len(c.Args) == 0 && selectorName(c.Fun) == "time.Now" {
						t.Errorf("%s: another real clock: use internal/clock.System", fset.Position(n.Pos()))
					}
				}
			}
			return true
		})
		for recv, pos := range nows {
			if !timers[recv] {
				t.Errorf("%s: a test clock %s: use internal/clock.Fake (or System)", fset.Position(pos), recv)
			}
		}
	})
}

// receiverName is the type name of a method's receiver (T for T and *T).
func receiverName(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// Padding against false sharing is written one way, internal/cacheline's Pad
// (and Isolated): a blank array field elsewhere is a second way, with its own
// idea of a line's size. dataplane/dpdk is exempt: its blank fields mirror C
// structs' layouts, not padding.
func TestOneCacheLinePad(t *testing.T) {
	keep := func(f string) bool { return !in(f, "internal/cacheline") && !in(f, "dataplane/dpdk") }
	eachGoFile(t, 0, keep, func(fset *token.FileSet, f string, af *ast.File) {
		ast.Inspect(af, func(n ast.Node) bool {
			if st, ok := n.(*ast.StructType); ok {
				for _, fld := range st.Fields.List {
					if _, isArray := fld.Type.(*ast.ArrayType); isArray && len(fld.Names) == 1 && fld.Names[0].Name == "_" {
						t.Errorf("%s: a blank array field pads by hand: use cacheline.Pad", fset.Position(fld.Pos()))
					}
				}
			}
			return true
		})
	})
}

// A package whose tests run on a plain dpdk.Init EAL takes its TestMain from
// dpdktest/testmain instead of writing the start function again; only the
// binding's own tests (which testmain would import) and packages that start
// their EAL with devices of their own (a named start function) call
// dpdktest.Run themselves.
func TestOneDPDKTestMain(t *testing.T) {
	keep := func(f string) bool { return isTest(f) && !in(f, "dataplane/dpdk") }
	eachGoFile(t, 0, keep, func(fset *token.FileSet, f string, af *ast.File) {
		ast.Inspect(af, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok && selectorName(c.Fun) == "dpdktest.Run" && len(c.Args) == 4 {
				if _, lit := c.Args[3].(*ast.FuncLit); lit {
					t.Errorf("%s: TestMain writes the EAL start again: use dpdktest/testmain.Run", fset.Position(c.Pos()))
				}
			}
			return true
		})
	})
}

// Commands live under cmd/ (and benchmark drivers under bench/), and nothing
// under cmd/ is a library: a package main elsewhere hides a program among
// the libraries, and a library under cmd/ is one that other trees import
// from a command's folder.
func TestCommandsUnderCmd(t *testing.T) {
	keep := func(f string) bool { return !isTest(f) }
	eachGoFile(t, parser.PackageClauseOnly, keep, func(_ *token.FileSet, f string, af *ast.File) {
		top, _, _ := strings.Cut(filepath.ToSlash(f), "/")
		isMain := af.Name.Name == "main"
		switch {
		case isMain && top != "cmd" && top != "bench":
			t.Errorf("%s: package main outside cmd/ and bench/", f)
		case !isMain && top == "cmd":
			t.Errorf("%s: a library (package %s) under cmd/: move it beside what it serves", f, af.Name.Name)
		}
	})
}
