package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// The short run is part of make test; a longer one:
// go test ./cmd/apikeyd -run TestHistory -history.clients=16 -history.ops=2000 -history.max-run=60s
var (
	histClients = flag.Int("history.clients", 8, "concurrent clients of TestHistory")
	histOps     = flag.Int("history.ops", 150, "calls per client of TestHistory")
	histMaxRun  = flag.Duration("history.max-run", 3*time.Second, "longest run of TestHistory's clients")
)

// histScopeValues are the name scope values the clients add and remove. The
// name type is used, not method, so that a scoped key still authenticates
// system.list_methods and the authentication check stays about existence.
var histScopeValues = []string{"hist.a", "hist.b", "hist.c"}

// Kinds of call in a history.
const (
	histCreate      = "create"
	histDelete      = "delete"
	histAddScope    = "add_scope"
	histDeleteScope = "delete_scope"
	histInfo        = "info"
	histAuth        = "auth" // a call made with the key's own secret
)

// histInput is one call as invoked. id is empty for create: the key it
// makes is known from the reply.
type histInput struct {
	op, id, value string
}

// histOutput is one reply: errID is data.error_id, or "" on success; id
// is the created key's id; scopes are the key's name scope values after the
// call (info, add_scope, delete_scope), sorted and joined by ",". A
// pending call got no reply (the server was killed): it may or may not
// have taken effect, at any moment up to the kill.
type histOutput struct {
	errID, id, scopes string
	pending           bool
}

// histState is one key in the sequential model: not yet created, live
// with a set of name scope values, or deleted for good.
type histState struct {
	created, deleted bool
	scopes           string // sorted, joined by ","
}

func (s histState) live() bool { return s.created && !s.deleted }

func withScope(scopes, v string, add bool) string {
	var set []string
	if scopes != "" {
		set = strings.Split(scopes, ",")
	}
	set = slices.DeleteFunc(set, func(s string) bool { return s == v })
	if add {
		set = append(set, v)
	}
	slices.Sort(set)
	return strings.Join(set, ",")
}

// histStep is the sequential specification of one key.
func histStep(state, input, output any) (bool, any) {
	s, in, out := state.(histState), input.(histInput), output.(histOutput)
	switch in.op {
	case histCreate:
		// A key id is new: the create comes first, and only once.
		return !s.created && out.errID == "", histState{created: true}
	case histDelete:
		if s.live() {
			return out.errID == "", histState{created: true, deleted: true}
		}
		return out.errID == "key_not_found", s
	case histAddScope, histDeleteScope:
		if !s.live() {
			return out.errID == "key_not_found", s
		}
		next := s
		next.scopes = withScope(s.scopes, in.value, in.op == histAddScope)
		return out.errID == "" && out.scopes == next.scopes, next
	case histInfo:
		if !s.live() {
			return out.errID == "key_not_found", s
		}
		return out.errID == "" && out.scopes == s.scopes, s
	case histAuth:
		// Any reply other than invalid_key means the secret authenticated.
		return (out.errID != "invalid_key") == s.live(), s
	}
	return false, s
}

// histSteps is histStep with calls whose reply never came: such a write
// leaves the key as it was or as the write would make it.
func histSteps(state, input, output any) []any {
	s, in, out := state.(histState), input.(histInput), output.(histOutput)
	if !out.pending {
		if ok, next := histStep(state, input, output); ok {
			return []any{next}
		}
		return nil
	}
	switch in.op {
	case histDelete:
		if s.live() {
			return []any{s, histState{created: true, deleted: true}}
		}
	case histAddScope, histDeleteScope:
		if s.live() {
			next := s
			next.scopes = withScope(s.scopes, in.value, in.op == histAddScope)
			return []any{s, next}
		}
	}
	return []any{s}
}

// histKeyOf is the key an operation is about.
func histKeyOf(op porcupine.Operation) string {
	if in := op.Input.(histInput); in.id != "" {
		return in.id
	}
	return op.Output.(histOutput).id
}

var histModel = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := histKeyOf(op)
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		parts := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() []any { return []any{histState{}} },
	Step: histSteps,
	DescribeOperation: func(input, output any) string {
		in, out := input.(histInput), output.(histOutput)
		res := "ok"
		if out.pending {
			res = "no reply"
		} else if out.errID != "" {
			res = out.errID
		} else if out.scopes != "" {
			res = "[" + out.scopes + "]"
		}
		switch in.op {
		case histCreate:
			return fmt.Sprintf("create() -> %s %s", out.id, res)
		case histAddScope, histDeleteScope:
			return fmt.Sprintf("%s(%s, %s) -> %s", in.op, in.id, in.value, res)
		}
		return fmt.Sprintf("%s(%s) -> %s", in.op, in.id, res)
	},
	DescribeState: func(state any) string {
		s := state.(histState)
		switch {
		case !s.created:
			return "not created"
		case s.deleted:
			return "deleted"
		}
		return "live [" + s.scopes + "]"
	},
}).ToModel()

// histKey is a key the clients share: its id and secret are known once
// its create was acknowledged.
type histKey struct{ id, secret string }

// histRecorder collects operations from every client, timed on one
// monotonic clock.
type histRecorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	keys  []histKey
	lost  int // calls with no reply: the test expects none
}

func (r *histRecorder) now() int64 { return int64(time.Since(r.start)) }

// settle ends the calls left without a reply by a kill that was over at
// killedAt: each may have taken effect up to then, and one sent after it
// took none and is dropped.
func (r *histRecorder) settle(killedAt int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = slices.DeleteFunc(r.ops, func(op porcupine.Operation) bool {
		return op.Return == math.MaxInt64 && op.Call >= killedAt
	})
	for i := range r.ops {
		if r.ops[i].Return == math.MaxInt64 {
			r.ops[i].Return = killedAt
		}
	}
}

// readAll reads every key the clients learned of, by id and by its
// secret, into the history: after a restart, what survived.
func (r *histRecorder) readAll(c *http.Client, addr string, client int) bool {
	r.mu.Lock()
	keys := slices.Clone(r.keys)
	r.mu.Unlock()
	for _, k := range keys {
		for _, in := range []histInput{{op: histInfo, id: k.id}, {op: histAuth, id: k.id}} {
			method, bearer, params := "apikey.info", testAdminKey, any(map[string]any{"id": k.id})
			if in.op == histAuth {
				method, bearer, params = "system.list_methods", k.secret, nil
			}
			call := r.now()
			res, errID, ok := crashCall(c, addr, bearer, method, params)
			ret := r.now()
			if !ok {
				return false
			}
			out := histOutput{errID: errID}
			if errID == "" && in.op == histInfo {
				out.scopes = nameScopes(res)
			}
			r.mu.Lock()
			r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
			r.mu.Unlock()
		}
	}
	return true
}

// nameScopes returns the sorted, joined name scope values of a key reply.
func nameScopes(res json.RawMessage) string {
	var k struct{ Scopes map[string][]string }
	_ = json.Unmarshal(res, &k)
	v := slices.Clone(k.Scopes["name"])
	slices.Sort(v)
	return strings.Join(v, ",")
}

// histClient makes ops calls, or fewer if stop closes first, on keys every
// client shares, so that calls on one key overlap.
func histClient(c *http.Client, addr string, r *histRecorder, client, ops int, stop <-chan struct{}, rng *rand.Rand) {
	for range ops {
		select {
		case <-stop:
			return
		default:
		}
		r.mu.Lock()
		var k histKey
		n := len(r.keys)
		if n > 0 {
			// Mostly recent keys, so that live keys see most of the calls.
			k = r.keys[max(0, n-1-rng.IntN(min(n, 6)))]
		}
		r.mu.Unlock()
		op := rng.IntN(20)
		if n == 0 || op < 3 {
			call := r.now()
			res, errID, ok := crashCall(c, addr, testAdminKey, "apikey.create", map[string]any{"comment": "history"})
			ret := r.now()
			var key struct{ ID, Key string }
			if !ok {
				// The key it may have made is unknown, so no later call names it.
				r.mu.Lock()
				r.lost++
				r.mu.Unlock()
				return
			}
			if errID == "" && (json.Unmarshal(res, &key) != nil || key.ID == "") {
				r.mu.Lock()
				r.lost++
				r.mu.Unlock()
				continue
			}
			if errID != "" {
				continue // no key: nothing to check it against
			}
			r.mu.Lock()
			r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: histInput{op: histCreate},
				Output: histOutput{id: key.ID}, Call: call, Return: ret})
			r.keys = append(r.keys, histKey{id: key.ID, secret: key.Key})
			r.mu.Unlock()
			continue
		}
		in := histInput{id: k.id}
		var method string
		params := map[string]any{"id": k.id}
		bearer := testAdminKey
		switch {
		case op < 5:
			in.op, method = histDelete, "apikey.delete"
		case op < 9:
			in.op, method = histAddScope, "apikey.add_scope"
		case op < 12:
			in.op, method = histDeleteScope, "apikey.delete_scope"
		case op < 16:
			in.op, method = histInfo, "apikey.info"
		default:
			in.op, method, params, bearer = histAuth, "system.list_methods", nil, k.secret
		}
		if in.op == histAddScope || in.op == histDeleteScope {
			in.value = histScopeValues[rng.IntN(len(histScopeValues))]
			params["scope_name"], params["value"] = "name", in.value
		}
		call := r.now()
		res, errID, ok := crashCall(c, addr, bearer, method, params)
		ret := r.now()
		if !ok {
			// No reply: the server is gone. A write may have taken effect
			// up to the kill (settle sets its return); a read tells nothing.
			r.mu.Lock()
			r.lost++
			if in.op != histInfo && in.op != histAuth {
				r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in,
					Output: histOutput{pending: true}, Call: call, Return: math.MaxInt64})
			}
			r.mu.Unlock()
			return
		}
		out := histOutput{errID: errID}
		if errID == "" && in.op != histDelete && in.op != histAuth {
			out.scopes = nameScopes(res)
		}
		r.mu.Lock()
		r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
		r.mu.Unlock()
	}
}

// histCheck checks a history for linearizability against histModel. When
// it is not, it writes porcupine's visualization (each key's longest
// linearizable prefix and the calls that break it) and says where.
func histCheck(ops []porcupine.Operation) (ok bool, summary string) {
	res, info := porcupine.CheckOperationsVerbose(histModel, ops, 30*time.Second)
	if res == porcupine.Ok {
		return true, ""
	}
	summary = fmt.Sprintf("history of %d operations is %s, not linearizable", len(ops), res)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("apikeyd-history-%d.html", time.Now().UnixNano()))
	if err := porcupine.VisualizePath(histModel, info, path); err != nil {
		return false, summary + fmt.Sprintf("; visualization not written: %v", err)
	}
	return false, summary + "; visualization: " + path
}

// TestHistory runs clients that create and delete keys, change their
// scopes, read them and authenticate with their secrets, all at once over
// real HTTP against the built server, and checks that the history of
// invocations and replies is linearizable: some order of the calls, each
// taking effect between its invoke and its return, explains every reply.
func TestHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real server")
	}
	bin := buildApikeyd(t)
	s := startCrashServer(t, bin, filepath.Join(t.TempDir(), "apikeyd.db"))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *histClients}}
	defer c.CloseIdleConnections()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := &histRecorder{start: time.Now()}
	stop := make(chan struct{})
	timer := time.AfterFunc(*histMaxRun, func() { close(stop) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for i := range *histClients {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		go func() {
			defer wg.Done()
			histClient(c, s.addr, r, i, *histOps, stop, rng)
		}()
	}
	wg.Wait()
	require.Zero(t, r.lost, "calls without a reply from a server that was not stopped")
	counts := map[string]int{}
	for _, op := range r.ops {
		counts[op.Input.(histInput).op]++
	}
	t.Logf("%d operations on %d keys: %v", len(r.ops), len(r.keys), counts)
	require.NotZero(t, counts[histDelete], "no delete in the history")
	require.NotZero(t, counts[histAuth], "no authentication in the history")
	ok, summary := histCheck(r.ops)
	require.True(t, ok, summary)
}

// TestHistory_ModelRejects: the checker, with this model, refuses
// histories that no order explains, so TestHistory's pass means something.
func TestHistory_ModelRejects(t *testing.T) {
	op := func(client int, in histInput, out histOutput, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	create := op(0, histInput{op: histCreate}, histOutput{id: "k"}, 0, 1)
	for name, bad := range map[string][]porcupine.Operation{
		"secret authenticates after an acknowledged delete": {create,
			op(0, histInput{op: histDelete, id: "k"}, histOutput{}, 2, 3),
			op(1, histInput{op: histAuth, id: "k"}, histOutput{}, 4, 5)},
		"info sees a key after an acknowledged delete": {create,
			op(0, histInput{op: histDelete, id: "k"}, histOutput{}, 2, 3),
			op(1, histInput{op: histInfo, id: "k"}, histOutput{}, 4, 5)},
		"a scope added before the read is missing": {create,
			op(0, histInput{op: histAddScope, id: "k", value: "hist.a"}, histOutput{scopes: "hist.a"}, 2, 3),
			op(1, histInput{op: histInfo, id: "k"}, histOutput{}, 4, 5)},
		"a key deleted twice": {create,
			op(0, histInput{op: histDelete, id: "k"}, histOutput{}, 2, 4),
			op(1, histInput{op: histDelete, id: "k"}, histOutput{}, 3, 5)},
		"a new key does not authenticate": {create,
			op(1, histInput{op: histAuth, id: "k"}, histOutput{errID: "invalid_key"}, 2, 3)},
	} {
		require.False(t, porcupine.CheckOperations(histModel, bad), name)
	}
	// Overlapping calls may take effect in either order.
	good := []porcupine.Operation{create,
		op(0, histInput{op: histDelete, id: "k"}, histOutput{}, 2, 6),
		op(1, histInput{op: histAuth, id: "k"}, histOutput{}, 3, 7),
		op(2, histInput{op: histInfo, id: "k"}, histOutput{errID: "key_not_found"}, 4, 8)}
	require.True(t, porcupine.CheckOperations(histModel, good))

	// A delete without a reply may have taken effect, or not, but not after
	// the kill.
	pending := op(0, histInput{op: histDelete, id: "k"}, histOutput{pending: true}, 2, 4)
	for _, after := range []histOutput{{}, {errID: "invalid_key"}} {
		require.True(t, porcupine.CheckOperations(histModel, []porcupine.Operation{create, pending,
			op(1, histInput{op: histAuth, id: "k"}, after, 5, 6)}), "either outcome of a pending delete")
	}
	require.False(t, porcupine.CheckOperations(histModel, []porcupine.Operation{create, pending,
		op(1, histInput{op: histAuth, id: "k"}, histOutput{errID: "invalid_key"}, 5, 6),
		op(1, histInput{op: histAuth, id: "k"}, histOutput{}, 7, 8)}), "a pending delete undone later")

	// A failing history names its visualization.
	ok, summary := histCheck([]porcupine.Operation{create,
		op(0, histInput{op: histDelete, id: "k"}, histOutput{}, 2, 3),
		op(1, histInput{op: histAuth, id: "k"}, histOutput{}, 4, 5)})
	require.False(t, ok)
	_, path, found := strings.Cut(summary, "visualization: ")
	require.True(t, found, summary)
	require.FileExists(t, path)
	require.NoError(t, os.Remove(path))
}
