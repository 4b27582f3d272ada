package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The long run is `make soak`: go test ./cmd/apikeyd -run TestSoak -soak.duration=60s.
var (
	soakDuration = flag.Duration("soak.duration", 2*time.Second, "length of TestSoak's traffic")
	soakClients  = flag.Int("soak.clients", 64, "concurrent clients of TestSoak")
	soakAccounts = flag.Int("soak.accounts", 8, "accounts TestSoak's clients are spread over")
)

const soakPassword = "soak password 1"

// soakAccount is one tenant: the secret of its first key, which its
// clients use, and every key id known to belong to it.
type soakAccount struct {
	name, secret string
}

// soakWorld is what the clients learned from acknowledged replies.
type soakWorld struct {
	mu      sync.Mutex
	owner   map[string]string   // key id -> account, from create and login replies
	seen    map[string][]string // key id -> accounts whose calls returned it
	byAcct  map[string][]string // account -> key ids, in the order their creates were acknowledged
	created map[string]bool     // acknowledged creates (and logins) by id
	deleted map[string]bool     // acknowledged deletes by id
	calls   map[string]int      // acknowledged calls by kind
	refused int                 // cross-account calls refused as key_not_found
	faults  []string            // what broke an invariant during the run
	lost    int                 // calls without a reply
}

func (w *soakWorld) fault(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.faults) < 50 {
		w.faults = append(w.faults, fmt.Sprintf(format, args...))
	}
}

// saw records that a call of account acct returned key id.
func (w *soakWorld) saw(acct string, ids ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		w.seen[id] = append(w.seen[id], acct)
	}
}

func (w *soakWorld) own(acct, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owner[id] = acct
	w.byAcct[acct] = append(w.byAcct[acct], id)
	w.created[id] = true
	w.seen[id] = append(w.seen[id], acct)
}

// soakIDs returns the ids of a list reply, in either of its shapes.
func soakIDs(res json.RawMessage) ([]string, bool) {
	var items []struct{ ID string }
	if json.Unmarshal(res, &items) != nil {
		var page struct {
			Items []struct{ ID string }
		}
		if json.Unmarshal(res, &page) != nil {
			return nil, false
		}
		items = page.Items
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids, true
}

// soakClient sends mixed calls for its account until stop closes. It
// deletes only keys it created, so that an acknowledged delete and an
// acknowledged create of the same key never race in its own records;
// other clients of the account see, list and change the same keys, and
// clients of other accounts try to read and delete them.
func soakClient(c *http.Client, addr string, me soakAccount, others []soakAccount, w *soakWorld, stop <-chan struct{}, rng *rand.Rand) {
	var mine []string
	shared := func() string { // a key any client of this account made, perhaps deleted since
		w.mu.Lock()
		defer w.mu.Unlock()
		ids := w.byAcct[me.name]
		return ids[max(0, len(ids)-1-rng.IntN(min(len(ids), 200)))]
	}
	call := func(kind, key, method string, params any) (json.RawMessage, string, bool) {
		res, errID, ok := crashCall(c, addr, key, method, params)
		w.mu.Lock()
		if ok {
			w.calls[kind]++
		} else {
			w.lost++
		}
		w.mu.Unlock()
		return res, errID, ok
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		switch op := rng.IntN(100); {
		case op < 20 || len(mine) == 0:
			res, errID, ok := call("create", me.secret, "apikey.create", map[string]any{"comment": "soak"})
			var k struct{ ID, Key string }
			if !ok || errID != "" || json.Unmarshal(res, &k) != nil || k.ID == "" {
				if ok {
					w.fault("%s: apikey.create: %q", me.name, errID)
				}
				continue
			}
			w.own(me.name, k.ID)
			mine = append(mine, k.ID)
		case op < 36:
			i := rng.IntN(len(mine))
			id := mine[i]
			_, errID, ok := call("delete", me.secret, "apikey.delete", map[string]any{"id": id})
			if !ok {
				continue
			}
			if errID != "" {
				w.fault("%s: apikey.delete of its own key %s: %q", me.name, id, errID)
				continue
			}
			mine = append(mine[:i], mine[i+1:]...)
			w.mu.Lock()
			w.deleted[id] = true
			w.mu.Unlock()
		case op < 50:
			var params any = map[string]any{"size": 50, "sort_by": "desc:created"}
			if rng.IntN(10) == 0 {
				params = nil // the whole list, Memset's shape
			}
			res, errID, ok := call("list", me.secret, "apikey.list", params)
			if !ok {
				continue
			}
			ids, parsed := soakIDs(res)
			if errID != "" || !parsed {
				w.fault("%s: apikey.list: %q %s", me.name, errID, res)
				continue
			}
			w.saw(me.name, ids...)
		case op < 65:
			id := mine[rng.IntN(len(mine))]
			if rng.IntN(2) == 0 {
				id = shared()
			}
			res, errID, ok := call("info", me.secret, "apikey.info", map[string]any{"id": id})
			if !ok {
				continue
			}
			if errID == "key_not_found" && !slices.Contains(mine, id) {
				continue // another client of the account may have deleted it
			}
			var k struct{ ID string }
			if errID != "" || json.Unmarshal(res, &k) != nil || k.ID != id {
				w.fault("%s: apikey.info %s: %q %s", me.name, id, errID, res)
				continue
			}
			w.saw(me.name, k.ID)
		case op < 78:
			id := mine[rng.IntN(len(mine))]
			res, errID, ok := call("add_scope", me.secret, "apikey.add_scope",
				map[string]any{"id": id, "scope_name": "name", "value": fmt.Sprintf("soak.%d", rng.IntN(4))})
			if !ok {
				continue
			}
			var k struct{ ID string }
			if errID != "" || json.Unmarshal(res, &k) != nil || k.ID != id {
				w.fault("%s: apikey.add_scope %s: %q %s", me.name, id, errID, res)
				continue
			}
			w.saw(me.name, k.ID)
		case op < 95:
			// Another account's client tries this account's key by id.
			o := others[rng.IntN(len(others))]
			id := mine[rng.IntN(len(mine))]
			method := "apikey.info"
			if rng.IntN(3) == 0 {
				method = "apikey.delete"
			}
			res, errID, ok := call("cross", o.secret, method, map[string]any{"id": id})
			if !ok {
				continue
			}
			if errID != "key_not_found" {
				w.fault("%s's key %s: %s by %s answered %q %s", me.name, id, method, o.name, errID, res)
				continue
			}
			w.mu.Lock()
			w.refused++
			w.mu.Unlock()
		default:
			res, errID, ok := call("login", "", "user.create_apikey", map[string]any{
				"username": "soak@" + me.name, "password": soakPassword, "access_level": "full", "comment": "soak login"})
			if !ok || errID == "busy" {
				continue
			}
			var k struct{ ID string }
			if errID != "" || json.Unmarshal(res, &k) != nil || k.ID == "" {
				w.fault("%s: user.create_apikey: %q %s", me.name, errID, res)
				continue
			}
			w.own(me.name, k.ID)
		}
	}
}

// TestSoak runs many clients over several accounts for a while against
// the built server with mixed traffic, then checks that every acknowledged
// create is listed, every acknowledged delete is gone, and that no call
// returned a key of another account. `make soak` runs 64 clients over 8
// accounts for 60 s; make test runs 2 s.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real server")
	}
	require.GreaterOrEqual(t, *soakAccounts, 2, "cross-account calls need two accounts")
	bin := buildApikeyd(t)
	s := startCrashServer(t, bin, filepath.Join(t.TempDir(), "apikeyd.db"))
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *soakClients}}
	defer c.CloseIdleConnections()

	w := &soakWorld{owner: map[string]string{}, seen: map[string][]string{}, byAcct: map[string][]string{}, created: map[string]bool{},
		deleted: map[string]bool{}, calls: map[string]int{}}
	accounts := make([]soakAccount, *soakAccounts)
	for i := range accounts {
		name := fmt.Sprintf("soak%d", i)
		res, errID, ok := crashCall(c, s.addr, testAdminKey, "account.create", map[string]any{"name": name})
		require.True(t, ok)
		require.Empty(t, errID)
		var a struct {
			FirstKey struct{ ID, Key string } `json:"first_key"`
		}
		require.NoError(t, json.Unmarshal(res, &a))
		require.NotEmpty(t, a.FirstKey.Key)
		accounts[i] = soakAccount{name: name, secret: a.FirstKey.Key}
		w.own(name, a.FirstKey.ID)
		_, errID, ok = crashCall(c, s.addr, a.FirstKey.Key, "user.create", map[string]any{"name": "soak", "password": soakPassword})
		require.True(t, ok)
		require.Empty(t, errID)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *soakClients {
		me := accounts[i%len(accounts)]
		var others []soakAccount
		for _, a := range accounts {
			if a.name != me.name {
				others = append(others, a)
			}
		}
		wg.Add(1)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		go func() {
			defer wg.Done()
			soakClient(c, s.addr, me, others, w, stop, rng)
		}()
	}
	time.Sleep(*soakDuration)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	// Every account's full list, with the traffic stopped.
	listed := map[string]string{}
	for _, a := range accounts {
		res, errID, ok := crashCall(c, s.addr, a.secret, "apikey.list", nil)
		require.True(t, ok)
		require.Empty(t, errID)
		ids, parsed := soakIDs(res)
		require.True(t, parsed)
		w.saw(a.name, ids...)
		for _, id := range ids {
			listed[id] = a.name
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	total := 0
	kinds := make([]string, 0, len(w.calls))
	for k, n := range w.calls {
		total += n
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	summary := fmt.Sprintf("%d clients over %d accounts for %s: %d calls, %.0f calls/s;", *soakClients, len(accounts),
		elapsed.Round(time.Millisecond), total, float64(total)/elapsed.Seconds())
	for _, k := range kinds {
		summary += fmt.Sprintf(" %s %d", k, w.calls[k])
	}
	summary += fmt.Sprintf("; %d keys created, %d deleted, %d cross-account calls refused, %d calls without a reply",
		len(w.created), len(w.deleted), w.refused, w.lost)
	t.Log(summary)

	problems := append(slices.Clone(w.faults), soakVerify(w, listed)...)
	if w.lost > 0 {
		problems = append(problems, fmt.Sprintf("%d calls without a reply", w.lost))
	}
	require.Empty(t, problems, summary)
	require.NotZero(t, w.calls["create"], "no create was acknowledged: the test tested nothing")
	require.NotZero(t, w.refused, "no cross-account call was made")
}

// soakVerify checks the world against each account's full list, taken
// with the traffic stopped (listed: key id -> the account that listed it),
// and returns what is wrong. Call it with w.mu held.
func soakVerify(w *soakWorld, listed map[string]string) (problems []string) {
	ids := make([]string, 0, len(w.created))
	for id := range w.created {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		switch acct, ok := listed[id]; {
		case w.deleted[id] && ok:
			problems = append(problems, fmt.Sprintf("acknowledged delete of %s (of %s) is listed", id, acct))
		case !w.deleted[id] && !ok:
			problems = append(problems, fmt.Sprintf("acknowledged create of %s (of %s) is not listed", id, w.owner[id]))
		case ok && acct != w.owner[id]:
			problems = append(problems, fmt.Sprintf("key %s of %s is listed in %s", id, w.owner[id], acct))
		}
	}
	seen := make([]string, 0, len(w.seen))
	for id := range w.seen {
		seen = append(seen, id)
	}
	sort.Strings(seen)
	for _, id := range seen {
		for _, acct := range w.seen[id] {
			if w.owner[id] != acct {
				problems = append(problems, fmt.Sprintf("key %s (of %q) was returned to %s", id, w.owner[id], acct))
				break
			}
		}
	}
	return problems
}

// TestSoak_VerifyFlags: the soak's final check finds each kind of fault
// it is there for, so that TestSoak's pass means something.
func TestSoak_VerifyFlags(t *testing.T) {
	world := func() *soakWorld {
		w := &soakWorld{owner: map[string]string{}, seen: map[string][]string{}, byAcct: map[string][]string{},
			created: map[string]bool{}, deleted: map[string]bool{}, calls: map[string]int{}}
		w.own("a", "k1")
		w.own("a", "k2")
		w.own("b", "k3")
		w.deleted["k2"] = true
		return w
	}
	require.Empty(t, soakVerify(world(), map[string]string{"k1": "a", "k3": "b"}), "a clean run")

	w := world()
	assert.Equal(t, []string{"acknowledged create of k1 (of a) is not listed"},
		soakVerify(w, map[string]string{"k3": "b"}))
	assert.Equal(t, []string{"acknowledged delete of k2 (of a) is listed"},
		soakVerify(w, map[string]string{"k1": "a", "k2": "a", "k3": "b"}))
	assert.Equal(t, []string{"key k3 of b is listed in a"},
		soakVerify(w, map[string]string{"k1": "a", "k3": "a"}))
	w.saw("b", "k1")
	assert.Equal(t, []string{`key k1 (of "a") was returned to b`},
		soakVerify(w, map[string]string{"k1": "a", "k3": "b"}))
	w = world()
	w.saw("a", "unknown-id")
	assert.Equal(t, []string{`key unknown-id (of "") was returned to a`},
		soakVerify(w, map[string]string{"k1": "a", "k3": "b"}))
}
