package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

type RebootParams struct {
	Name  string `json:"name" rpc:"required"` // a "name" field: name scopes apply
	Force bool   `json:"force"`
}

type Server struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Example_embedding builds the server a hosting panel would run, with its
// own server.* methods beside apikey.*, and makes one call through it. A
// real program would serve srv with an http.Server, as docs/embedding.md
// shows.
func Example_embedding() {
	dir, _ := os.MkdirTemp("", "apikeyd-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "apikeyd.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	const operator = "0123456789abcdef0123456789abcdef"
	if _, _, err := st.Bootstrap(operator); err != nil {
		panic(err)
	}

	srv := rpc.New(st, rpc.Options{})
	rpc.Handle(srv, "server.reboot", scope.Update, "Reboot one server.",
		func(ctx context.Context, p RebootParams) (Server, error) {
			key, _ := rpc.KeyFromContext(ctx) // who is calling
			_ = key.Account
			if p.Name == "db1" && !p.Force {
				return Server{}, rpc.InvalidParam("force", "db1 reboots only with force: true")
			}
			return Server{Name: p.Name, Status: "rebooting"}, nil
		})
	rpc.Handle(srv, "server.list", scope.Read, "List servers.",
		func(ctx context.Context, _ struct{}) ([]Server, error) {
			return []Server{{Name: "web1", Status: "running"}}, nil
		})

	body := `{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1"},"id":1}`
	req := httptest.NewRequest(http.MethodPost, "/rpc", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+operator)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output: {"jsonrpc":"2.0","result":{"name":"web1","status":"rebooting"},"id":1}
}
