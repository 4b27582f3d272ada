package rpc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
)

// node is one apikeyd node of a deployment on etcd, served on the fast
// path as production serves it.
type node struct {
	st  *store.Store
	url string
}

func etcdNodes(t *testing.T, n int) []node {
	t.Helper()
	storetest.OnEtcdAlready(t)
	stores := storetest.EtcdNodes(t, n, store.Options{UsageFlush: time.Hour})
	_, created, err := stores[0].Bootstrap(adminKey)
	require.NoError(t, err)
	require.True(t, created)
	var nodes []node
	for _, st := range stores {
		srv := rpc.New(st, rpc.Options{Logger: zerolog.Nop()})
		mux := http.NewServeMux()
		mux.Handle("/rpc", srv)
		nodes = append(nodes, node{st: st, url: "http://" + serveFast(t, srv, mux, new(atomic.Int64)) + "/rpc"})
	}
	return nodes
}

// call calls method on n with the admin key and decodes the result into
// out; it returns the call's error object, if any, as an error.
func (n node) call(method string, params, out any) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r wireResponse
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("%s: %w: %s", method, err, reply)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s", method, reply)
	}
	if out != nil {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// Two nodes adding values to one key's scope at once keep every value:
// each write commits against the state it read, or runs again.
func TestNodes_AddScopeRace(t *testing.T) {
	nodes := etcdNodes(t, 2)
	var key struct {
		ID string `json:"id"`
	}
	require.NoError(t, nodes[0].call("apikey.create", map[string]any{"comment": "raced"}, &key))
	const each = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, n := range nodes {
		for j := range each {
			value := fmt.Sprintf("node%d-web%d", i, j)
			wg.Go(func() {
				var info struct {
					Scopes struct {
						Name []string `json:"name"`
					} `json:"scopes"`
				}
				p := map[string]any{"id": key.ID, "scope_name": "name", "value": value}
				if err := n.call("apikey.add_scope", p, nil); err != nil {
					errs <- err
					return
				}
				// A read after a write on the same node sees it.
				if err := n.call("apikey.info", map[string]any{"id": key.ID}, &info); err != nil {
					errs <- err
					return
				}
				if !slices.Contains(info.Scopes.Name, value) {
					errs <- fmt.Errorf("node %d: %s missing right after it was added: %v", i, value, info.Scopes.Name)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every node comes to hold every value (the other node's last write
	// reaches it through its watch, within milliseconds).
	for i, n := range nodes {
		var names []string
		require.Eventually(t, func() bool {
			var info struct {
				Scopes struct {
					Name []string `json:"name"`
				} `json:"scopes"`
			}
			require.NoError(t, n.call("apikey.info", map[string]any{"id": key.ID}, &info))
			names = info.Scopes.Name
			return len(names) == 2*each
		}, time.Second, 5*time.Millisecond, "node %d keeps every value: %v", i, names)
	}
}
