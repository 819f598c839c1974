package dpdk

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// exportedAPI lists the package's exported declarations as the compiler
// would see them with cgo on or off: name -> signature (or exported fields).
func exportedAPI(t *testing.T, cgo bool) map[string]string {
	t.Helper()
	ctx := build.Default
	ctx.GOOS, ctx.CgoEnabled = "linux", cgo
	pkg, err := ctx.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	api := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range append(pkg.GoFiles, pkg.CgoFiles...) {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				key := d.Name.Name
				if d.Recv != nil {
					recv := types.ExprString(d.Recv.List[0].Type)
					if !ast.IsExported(strings.TrimPrefix(recv, "*")) {
						continue
					}
					key = recv + "." + key
				}
				api[key] = types.ExprString(d.Type)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							api["type "+s.Name.Name] = typeShape(s.Type)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								api[d.Tok.String()+" "+n.Name] = ""
							}
						}
					}
				}
			}
		}
	}
	return api
}

// typeShape is a struct's exported fields, or the type expression.
func typeShape(e ast.Expr) string {
	st, ok := e.(*ast.StructType)
	if !ok {
		return types.ExprString(e)
	}
	var fields []string
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			if n.IsExported() {
				fields = append(fields, n.Name+" "+types.ExprString(f.Type))
			}
		}
	}
	return "struct{" + strings.Join(fields, "; ") + "}"
}

// TestStubAPI keeps the cgo-free build's stubs in step with the binding:
// code written against one must compile against the other.
func TestStubAPI(t *testing.T) {
	withCgo, without := exportedAPI(t, true), exportedAPI(t, false)
	var keys []string
	for k := range withCgo {
		keys = append(keys, k)
	}
	for k := range without {
		if _, ok := withCgo[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		a, okA := withCgo[k]
		b, okB := without[k]
		switch {
		case !okB:
			t.Errorf("%s %s exists only with cgo", k, a)
		case !okA:
			t.Errorf("%s %s exists only without cgo", k, b)
		case a != b:
			t.Errorf("%s differs: %s with cgo, %s without", k, a, b)
		}
	}
	if len(withCgo) < 50 {
		t.Errorf("only %d exported declarations found: the listing is broken", len(withCgo))
	}
}
