package store_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWrites_OneDoor holds the store's source to the rules of write.go,
// which keep the auth cache true to the data: write transactions begin
// only in write.go; only putRecord and deleteRecord write the keys bucket;
// and no write through updateKeys or batchKeys, which drop only the keys
// they write, writes an account, a user or a service account.
func TestWrites_OneDoor(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, fault := range oneDoorFaults(fset, name, f, &checked) {
			t.Error(fault)
		}
	}
	assert.Positive(t, checked, "found no key-only writes to check")
}

// TestWrites_OneDoorSeesWrites: the check above finds a write transaction
// begun on the engine, on the store's bbolt file or on the bbolt file
// beneath it, a raw write to the keys bucket, and a holder written through
// a key-only door.
func TestWrites_OneDoorSeesWrites(t *testing.T) {
	const src = `package store
func (s *Store) a() { _ = s.db.Update(nil) }
func (s *Store) b() { _ = s.file.Bolt().Update(nil) }
func (s *Store) c() { _ = s.file.Bolt().Batch(nil) }
func (s *Store) d() { _, _ = s.file.Bolt().Begin(true) }
func (s *Store) e(tx kv.Tx) { _ = tx.DB().Update(nil) }
func f(tx kv.Tx) { _ = tx.Bucket(bucketKeys).Put(nil, nil) }
func (s *Store) g() {
	_ = s.updateKeys(func(tx kv.Tx) error { return tx.Bucket(bucketUsers).Put(nil, nil) })
}
func (s *Store) reads() { _, _ = s.file.Bolt().Begin(false); _ = s.db.View(nil) }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "other.go", src, 0)
	require.NoError(t, err)
	checked := 0
	faults := oneDoorFaults(fset, "other.go", f, &checked)
	var lines []int
	for _, fault := range faults {
		line, _, _ := strings.Cut(strings.TrimPrefix(fault, "other.go:"), ":")
		n, err := strconv.Atoi(line)
		require.NoError(t, err, fault)
		lines = append(lines, n)
	}
	assert.Equal(t, []int{2, 3, 4, 5, 6, 7, 9}, lines, "%q", faults)
	assert.Equal(t, 1, checked)
}

// oneDoorFaults returns where f, the file name, breaks the rules of
// write.go, and counts the key-only writes it checked in checked.
func oneDoorFaults(fset *token.FileSet, name string, f *ast.File, checked *int) []string {
	holderBuckets := map[string]bool{"bucketAccounts": true, "bucketUsers": true, "bucketServiceAccounts": true}
	var faults []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			at := fset.Position(call.Pos())
			switch sel.Sel.Name {
			case "Update", "Batch", "Begin":
				if isDB(sel.X) && name != "write.go" {
					if sel.Sel.Name != "Begin" || beginsWrite(call) {
						faults = append(faults, fmt.Sprintf("%s: a write transaction begun outside write.go", at))
					}
				}
			case "Put", "Delete":
				if opensBucket(sel.X, "bucketKeys") && fn.Name.Name != "putRecord" && fn.Name.Name != "deleteRecord" {
					faults = append(faults, fmt.Sprintf("%s: %s writes the keys bucket; use putRecord or deleteRecord", at, fn.Name.Name))
				}
			case "updateKeys", "batchKeys":
				*checked++
				for _, at := range holderWrites(call, holderBuckets) {
					faults = append(faults, fmt.Sprintf("%s: %s through %s writes an account, user or service account; use update or batch",
						fset.Position(at), fn.Name.Name, sel.Sel.Name))
				}
			}
			return true
		})
	}
	return faults
}

// holderWrites finds, in a key-only write, writes to the buckets of
// accounts, users and service accounts: through tx.Bucket(b) directly or
// through a variable holding it, and calls of the helpers that write them.
// Reading them (a holder's state) is fine.
func holderWrites(call *ast.CallExpr, holderBuckets map[string]bool) []token.Pos {
	vars := map[string]bool{}
	ast.Inspect(call, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, rhs := range as.Rhs {
				if id, ok := as.Lhs[i].(*ast.Ident); ok && opensAny(rhs, holderBuckets) {
					vars[id.Name] = true
				}
			}
		}
		return true
	})
	writers := map[string]bool{"Put": true, "Delete": true, "CreateBucket": true, "CreateBucketIfNotExists": true,
		"DeleteBucket": true, "NextSequence": true, "SetSequence": true}
	var found []token.Pos
	ast.Inspect(call, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch f := c.Fun.(type) {
		case *ast.SelectorExpr:
			if !writers[f.Sel.Name] {
				return true
			}
			if id, ok := f.X.(*ast.Ident); ok && vars[id.Name] || opensAny(f.X, holderBuckets) {
				found = append(found, c.Pos())
			}
		case *ast.Ident:
			if f.Name == "deleteAccountUsers" || f.Name == "deleteAccountServiceAccounts" {
				found = append(found, c.Pos())
			}
		}
		return true
	})
	return found
}

func opensAny(x ast.Expr, names map[string]bool) bool {
	for name := range names {
		if opensBucket(x, name) {
			return true
		}
	}
	return false
}

// isDB reports whether x is an engine or a bbolt file as the store names
// them: db, s.db, tx.DB(), the bbolt engine s.file, and the file beneath
// it, s.file.Bolt().
func isDB(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.Ident:
		return x.Name == "db"
	case *ast.SelectorExpr:
		return x.Sel.Name == "db" || x.Sel.Name == "DB" || x.Sel.Name == "file"
	case *ast.CallExpr:
		sel, ok := x.Fun.(*ast.SelectorExpr)
		return ok && (sel.Sel.Name == "DB" || sel.Sel.Name == "Bolt")
	}
	return false
}

func beginsWrite(call *ast.CallExpr) bool {
	if len(call.Args) != 1 {
		return true
	}
	id, ok := call.Args[0].(*ast.Ident)
	return !ok || id.Name != "false"
}

// opensBucket reports whether x is tx.Bucket(name), directly.
func opensBucket(x ast.Expr, name string) bool {
	call, ok := x.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Bucket" {
		return false
	}
	id, ok := call.Args[0].(*ast.Ident)
	return ok && id.Name == name
}
