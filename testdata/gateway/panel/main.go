// Command panel is the sample upstream of docs/gateway.md: a hosting
// panel's internal JSON-RPC 2.0 API with three server.* methods, which
// answers rpc.discover with catalog.json. It trusts the caller that
// apikeyd names in X-Apikeyd-Account only when the request carries the
// shared token.
//
//	PANEL_TOKEN=s3cret go run ./testdata/gateway/panel --addr 127.0.0.1:9000
package main

import (
	_ "embed"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"sync"
)

//go:embed catalog.json
var catalog json.RawMessage

type server struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	token := os.Getenv("PANEL_TOKEN")
	var mu sync.Mutex
	servers := map[string]*server{"web1": {"web1", "running"}, "web2": {"web2", "running"}, "db1": {"db1", "running"}}

	http.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "not from apikeyd", http.StatusForbidden)
			return
		}
		var req struct {
			Method string `json:"method"`
			Params struct {
				Name  string `json:"name"`
				Force bool   `json:"force"`
			} `json:"params"`
			ID json.RawMessage `json:"id"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		log.Printf("%s name=%q account=%q key=%q", req.Method, req.Params.Name,
			r.Header.Get("X-Apikeyd-Account"), r.Header.Get("X-Apikeyd-Key-Id"))
		reply := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		mu.Lock()
		switch s := servers[req.Params.Name]; {
		case req.Method == "rpc.discover":
			reply["result"] = catalog
		case req.Method == "server.list":
			list := []server{}
			for _, s := range servers {
				list = append(list, *s)
			}
			reply["result"] = list
		case s == nil:
			reply["error"] = map[string]any{"code": -32004, "message": "no such server", "data": map[string]string{"name": req.Params.Name}}
		case req.Method == "server.info":
			reply["result"] = s
		case req.Method == "server.reboot":
			s.Status = "rebooting"
			reply["result"] = s
		default:
			reply["error"] = map[string]any{"code": -32601, "message": "Method not found"}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	})
	log.Printf("panel on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
