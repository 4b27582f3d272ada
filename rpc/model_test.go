package rpc_test

import (
	"cmp"
	"flag"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestModel drives random sequences of calls over HTTP against a plain
// reference model of accounts, holders, keys, secrets (current and
// retained), scopes and validity, and after every step checks that every
// secret ever issued authenticates exactly as the model says, with the
// model's scopes, and that each account lists exactly the model's keys,
// whole and by holder. rapid shrinks a failure to a short sequence.
//
// make test runs a few sequences; run more with rapid's own flags:
//
//	go test ./rpc -run TestModel -rapid.checks=1000 -rapid.steps=60
func TestModel(t *testing.T) {
	// Bounded for make test, unless the flags say otherwise.
	for name, value := range map[string]string{"rapid.checks": "20", "rapid.steps": "15"} {
		if f := flag.Lookup(name); f != nil && !flagSet(name) {
			old := f.Value.String()
			require.NoError(t, flag.Set(name, value))
			t.Cleanup(func() { _ = flag.Set(name, old) })
		}
	}
	var sequences, steps atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		tb := &checkTB{T: t, rt: rt}
		defer tb.cleanup()
		m := newModel(newTestServer(tb))
		sequences.Add(1)
		rt.Repeat(map[string]func(*rapid.T){
			"account.create":         m.createAccount,
			"account.delete":         m.deleteAccount,
			"apikey.create":          m.createKey,
			"apikey.rotate":          m.rotate,
			"apikey.delete":          m.deleteKey,
			"apikey.update active":   m.setActive,
			"apikey.update expires":  m.setExpiry,
			"apikey.add_scope":       m.addScope,
			"apikey.delete_scope":    m.deleteScope,
			"user.create":            m.createUser,
			"user.create_apikey":     m.login,
			"user.delete":            m.deleteUser,
			"service_account.create": m.createServiceAccount,
			"service_account.update": m.setServiceAccountActive,
			"service_account.delete": m.deleteServiceAccount,
			"clock step":             m.step,
			"": func(rt *rapid.T) {
				steps.Add(1)
				m.check(rt)
				m.checkLists(rt)
			},
		})
		require.NoError(tb, m.ts.Store.CheckKeys())
	})
	t.Logf("%d sequences, %d steps, every secret checked after each", sequences.Load(), steps.Load())
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkTB is the test harness's testing.TB for one rapid check: failures
// go to rapid, which shrinks them; temp dirs and cleanups end with the
// check rather than with the test.
type checkTB struct {
	*testing.T
	rt       *rapid.T
	cleanups []func()
}

func (c *checkTB) Helper()                           {}
func (c *checkTB) Errorf(format string, args ...any) { c.rt.Errorf(format, args...) }
func (c *checkTB) Error(args ...any)                 { c.rt.Error(args...) }
func (c *checkTB) Fatalf(format string, args ...any) { c.rt.Fatalf(format, args...) }
func (c *checkTB) Fatal(args ...any)                 { c.rt.Fatal(args...) }
func (c *checkTB) FailNow()                          { c.rt.FailNow() }
func (c *checkTB) Fail()                             { c.rt.Fail() }
func (c *checkTB) Failed() bool                      { return c.rt.Failed() }
func (c *checkTB) Logf(format string, args ...any)   { c.rt.Logf(format, args...) }
func (c *checkTB) Log(args ...any)                   { c.rt.Log(args...) }
func (c *checkTB) Cleanup(f func())                  { c.cleanups = append(c.cleanups, f) }

func (c *checkTB) TempDir() string {
	dir, err := os.MkdirTemp(c.T.TempDir(), "check")
	if err != nil {
		c.rt.Fatal(err)
	}
	c.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (c *checkTB) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
}

// The model.

type mAccount struct {
	name  string
	root  string          // id of its first key, unrestricted: the one that acts
	users map[string]bool // user name → exists
	sas   map[string]bool // service account name → active
}

type mKey struct {
	id, account string
	owner       string   // "", "user:<name>@<account>", "sa:<account>/<name>"
	user, sa    string   // the holder's name, by kind
	methods     []string // method scope values; empty: unrestricted
	active      bool
	expires     time.Time // zero: never
	current     string
	retained    string    // the secret before the last rotation, if kept
	graceEnd    time.Time // when retained stops
	deleted     bool
}

type model struct {
	ts       *testServer
	now      time.Time
	accounts map[string]*mAccount // live accounts by name
	keys     map[string]*mKey     // every key ever made, by id
	secrets  []mSecret            // every secret ever issued
	probes   int
}

type mSecret struct{ secret, id string }

func newModel(ts *testServer) *model {
	return &model{ts: ts, now: fixedNow, accounts: map[string]*mAccount{}, keys: map[string]*mKey{}}
}

var (
	modelAccounts = []string{"acme", "bolt"}
	modelUsers    = []string{"ann", "bob"}
	modelSAs      = []string{"ci", "ops"}
	// Method scope values, and the two methods the check calls.
	modelMethods = []string{"apikey.*", "apikey.info", "server.list", "server.*", "dns.*"}
)

// loginName is the name a user of account logs in with: user names are
// per account, so every account of the model has the same user names.
func loginName(account, user string) string { return user + "@" + account }

func (m *model) issue(k *mKey, secret string) {
	m.secrets = append(m.secrets, mSecret{secret: secret, id: k.id})
}

// authenticates reports whether secret of key k authenticates now.
func (m *model) authenticates(k *mKey, secret string) bool {
	if k.deleted || !k.active {
		return false
	}
	if !k.expires.IsZero() && !m.now.Before(k.expires) {
		return false
	}
	if k.sa != "" && !m.accounts[k.account].sas[k.sa] {
		return false
	}
	return secret == k.current || (secret == k.retained && m.now.Before(k.graceEnd))
}

func allows(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, v := range methods {
		if v == method || strings.HasSuffix(v, ".*") && strings.HasPrefix(method, strings.TrimSuffix(v, "*")) {
			return true
		}
	}
	return false
}

// check calls, with every secret ever issued, apikey.info on the secret
// itself or server.list (in turns), and compares the outcome with the
// model's: an unknown key, a call the scopes deny, or the call answered.
func (m *model) check(rt *rapid.T) {
	for _, s := range m.secrets {
		k := m.keys[s.id]
		method, params := "apikey.info", any(map[string]any{"id": s.secret})
		if m.probes%2 == 1 {
			method, params = "server.list", nil
		}
		m.probes++
		r := m.ts.call(s.secret, method, params)
		switch {
		case !m.authenticates(k, s.secret):
			if r.Error == nil || r.Error.Code != rpc.CodeUnauthenticated {
				rt.Fatalf("%s of key %s (%s) answered %s %+v; the model says it authenticates nothing: %+v",
					method, k.id, secretKind(k, s.secret), r.Result, r.Error, *k)
			}
		case !allows(k.methods, method):
			if r.Error == nil || r.Error.Code != rpc.CodeForbidden {
				rt.Fatalf("%s of key %s (%s) answered %s %+v; the model says its scopes %v deny it",
					method, k.id, secretKind(k, s.secret), r.Result, r.Error, k.methods)
			}
		default:
			if r.Error != nil {
				rt.Fatalf("%s of key %s (%s) failed %+v; the model says it works: %+v", method, k.id, secretKind(k, s.secret), r.Error, *k)
			}
			if method == "apikey.info" && !strings.Contains(string(r.Result), `"id":"`+k.id+`"`) {
				rt.Fatalf("apikey.info of key %s by its own secret answered %s", k.id, r.Result)
			}
		}
	}
}

// checkLists compares each account's key list, whole and by holder, with
// the model's keys: no key outlives its account or holder, and none is
// hidden from a list.
func (m *model) checkLists(rt *rapid.T) {
	for _, a := range m.accounts {
		want := map[string][]string{} // owner ("account" for none) → ids
		var all []string
		for _, k := range m.keys {
			if k.account != a.name || k.deleted {
				continue
			}
			all = append(all, k.id)
			owner := cmp.Or(k.owner, "account")
			want[owner] = append(want[owner], k.id)
		}
		var listed []rpc.KeyInfo
		m.ts.ok(m.root(a), "apikey.list", nil, &listed)
		var got []string
		for _, k := range listed {
			got = append(got, k.ID)
		}
		slices.Sort(all)
		slices.Sort(got)
		if !slices.Equal(all, got) {
			rt.Fatalf("apikey.list of %s lists %v; the model has %v", a.name, got, all)
		}
		for owner, ids := range want {
			var page struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"items"`
				Total int `json:"total"`
			}
			m.ts.ok(m.root(a), "apikey.list", map[string]any{"owner": owner, "size": 10000}, &page)
			got = got[:0]
			for _, it := range page.Items {
				got = append(got, it.ID)
			}
			slices.Sort(got)
			slices.Sort(ids)
			if !slices.Equal(ids, got) || page.Total != len(ids) {
				rt.Fatalf("apikey.list of %s with owner %s lists %v (total %d); the model has %v", a.name, owner, got, page.Total, ids)
			}
		}
	}
}

func secretKind(k *mKey, secret string) string {
	switch secret {
	case k.current:
		return "current secret"
	case k.retained:
		return "retained secret"
	}
	return "a secret rotated out"
}

// Draws.

func (m *model) liveAccount(rt *rapid.T) *mAccount {
	var names []string
	for _, n := range modelAccounts {
		if m.accounts[n] != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		rt.Skip("no account")
	}
	return m.accounts[rapid.SampledFrom(names).Draw(rt, "account")]
}

// liveKey draws a key that exists; withRoot lets it be an account's first
// key, which the model never switches off, expires or deletes.
func (m *model) liveKey(rt *rapid.T, withRoot bool) *mKey {
	var ids []string
	for id, k := range m.keys {
		if !k.deleted && (withRoot || m.accounts[k.account].root != id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		rt.Skip("no key")
	}
	slices.Sort(ids)
	return m.keys[rapid.SampledFrom(ids).Draw(rt, "key")]
}

// root is the secret that acts for account a: its first key's current one.
func (m *model) root(a *mAccount) string { return m.keys[a.root].current }

func (m *model) drop(pred func(*mKey) bool) {
	for _, k := range m.keys {
		if !k.deleted && pred(k) {
			k.deleted = true
		}
	}
}

// Actions.

func (m *model) createAccount(rt *rapid.T) {
	name := rapid.SampledFrom(modelAccounts).Draw(rt, "name")
	if m.accounts[name] != nil {
		rt.Skip("account exists")
	}
	var a rpc.NewAccountInfo
	m.ts.ok(m.ts.Admin, "account.create", map[string]any{"name": name}, &a)
	m.accounts[name] = &mAccount{name: name, root: a.FirstKey.ID, users: map[string]bool{}, sas: map[string]bool{}}
	k := &mKey{id: a.FirstKey.ID, account: name, active: true, current: a.FirstKey.Key}
	m.keys[k.id] = k
	m.issue(k, k.current)
}

func (m *model) deleteAccount(rt *rapid.T) {
	a := m.liveAccount(rt)
	m.ts.ok(m.ts.Admin, "account.delete", map[string]any{"name": a.name}, nil)
	m.drop(func(k *mKey) bool { return k.account == a.name })
	delete(m.accounts, a.name)
}

func (m *model) createKey(rt *rapid.T) {
	a := m.liveAccount(rt)
	k := &mKey{account: a.name, active: true}
	params := map[string]any{}
	if rapid.Bool().Draw(rt, "scoped") {
		k.methods = rapid.SliceOfNDistinct(rapid.SampledFrom(modelMethods), 1, 3, rapid.ID[string]).Draw(rt, "methods")
		slices.Sort(k.methods)
		params["scopes"] = map[string][]string{"method": k.methods}
	}
	var sas []string
	for _, n := range modelSAs {
		if _, ok := a.sas[n]; ok {
			sas = append(sas, n)
		}
	}
	if len(sas) > 0 && rapid.Bool().Draw(rt, "held") {
		k.sa = rapid.SampledFrom(sas).Draw(rt, "service_account")
		k.owner = "sa:" + a.name + "/" + k.sa
		params["service_account"] = k.sa
	}
	if rapid.Bool().Draw(rt, "expiring") {
		k.expires = m.now.Add(time.Duration(rapid.IntRange(1, 10).Draw(rt, "expires_min")) * time.Minute)
		params["expires_at"] = k.expires.Format(time.RFC3339)
	}
	var out rpc.NewKeyInfo
	m.ts.ok(m.root(a), "apikey.create", params, &out)
	k.id, k.current = out.ID, out.Key
	m.keys[k.id] = k
	m.issue(k, k.current)
}

func (m *model) rotate(rt *rapid.T) {
	k := m.liveKey(rt, true)
	retain := rapid.IntRange(0, 3).Draw(rt, "retain_min")
	var out rpc.NewKeyInfo
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.rotate", map[string]any{"id": k.id, "retain_period_minutes": retain}, &out)
	k.retained, k.graceEnd = "", time.Time{}
	if retain > 0 {
		k.retained, k.graceEnd = k.current, m.now.Add(time.Duration(retain)*time.Minute)
	}
	k.current = out.Key
	m.issue(k, k.current)
}

func (m *model) deleteKey(rt *rapid.T) {
	k := m.liveKey(rt, false)
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.delete", map[string]any{"id": k.id}, nil)
	k.deleted = true
}

func (m *model) setActive(rt *rapid.T) {
	k := m.liveKey(rt, false)
	active := rapid.Bool().Draw(rt, "active")
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.update", map[string]any{"id": k.id, "active": active}, nil)
	k.active = active
}

func (m *model) setExpiry(rt *rapid.T) {
	k := m.liveKey(rt, false)
	expires := ""
	k.expires = time.Time{}
	if rapid.Bool().Draw(rt, "expiring") {
		k.expires = m.now.Add(time.Duration(rapid.IntRange(1, 10).Draw(rt, "expires_min")) * time.Minute)
		expires = k.expires.Format(time.RFC3339)
	}
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.update", map[string]any{"id": k.id, "expires_at": expires}, nil)
}

func (m *model) addScope(rt *rapid.T) {
	k := m.liveKey(rt, false)
	v := rapid.SampledFrom(modelMethods).Draw(rt, "value")
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.add_scope", map[string]any{"id": k.id, "scope_name": "method", "value": v}, nil)
	if !slices.Contains(k.methods, v) {
		k.methods = append(k.methods, v)
		slices.Sort(k.methods)
	}
}

func (m *model) deleteScope(rt *rapid.T) {
	k := m.liveKey(rt, false)
	if len(k.methods) == 0 {
		rt.Skip("unrestricted in method")
	}
	v := rapid.SampledFrom(k.methods).Draw(rt, "value")
	m.ts.ok(m.root(m.accounts[k.account]), "apikey.delete_scope", map[string]any{"id": k.id, "scope_name": "method", "value": v}, nil)
	k.methods = slices.DeleteFunc(slices.Clone(k.methods), func(s string) bool { return s == v })
}

func (m *model) createUser(rt *rapid.T) {
	a := m.liveAccount(rt)
	u := rapid.SampledFrom(modelUsers).Draw(rt, "user")
	if a.users[u] {
		rt.Skip("user exists")
	}
	m.ts.ok(m.root(a), "user.create", map[string]any{"name": u, "password": "correct horse " + u}, nil)
	a.users[u] = true
}

func (m *model) login(rt *rapid.T) {
	a := m.liveAccount(rt)
	var users []string
	for _, u := range modelUsers {
		if a.users[u] {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		rt.Skip("no user")
	}
	u := rapid.SampledFrom(users).Draw(rt, "user")
	var out rpc.NewKeyInfo
	m.ts.ok("", "user.create_apikey", map[string]any{"username": loginName(a.name, u), "password": "correct horse " + u, "access_level": "full"}, &out)
	k := &mKey{id: out.ID, account: a.name, owner: out.Owner, user: u, active: true, current: out.Key}
	m.keys[k.id] = k
	m.issue(k, k.current)
}

func (m *model) deleteUser(rt *rapid.T) {
	a := m.liveAccount(rt)
	u := rapid.SampledFrom(modelUsers).Draw(rt, "user")
	if !a.users[u] {
		rt.Skip("no such user")
	}
	m.ts.ok(m.root(a), "user.delete", map[string]any{"name": u}, nil)
	delete(a.users, u)
	m.drop(func(k *mKey) bool { return k.account == a.name && k.user == u })
}

func (m *model) createServiceAccount(rt *rapid.T) {
	a := m.liveAccount(rt)
	n := rapid.SampledFrom(modelSAs).Draw(rt, "service_account")
	if _, ok := a.sas[n]; ok {
		rt.Skip("service account exists")
	}
	m.ts.ok(m.root(a), "service_account.create", map[string]any{"name": n}, nil)
	a.sas[n] = true
}

func (m *model) setServiceAccountActive(rt *rapid.T) {
	a := m.liveAccount(rt)
	n := rapid.SampledFrom(modelSAs).Draw(rt, "service_account")
	if _, ok := a.sas[n]; !ok {
		rt.Skip("no such service account")
	}
	active := rapid.Bool().Draw(rt, "active")
	m.ts.ok(m.root(a), "service_account.update", map[string]any{"name": n, "active": active}, nil)
	a.sas[n] = active
}

func (m *model) deleteServiceAccount(rt *rapid.T) {
	a := m.liveAccount(rt)
	n := rapid.SampledFrom(modelSAs).Draw(rt, "service_account")
	if _, ok := a.sas[n]; !ok {
		rt.Skip("no such service account")
	}
	m.ts.ok(m.root(a), "service_account.delete", map[string]any{"name": n}, nil)
	delete(a.sas, n)
	m.drop(func(k *mKey) bool { return k.account == a.name && k.sa == n })
}

func (m *model) step(rt *rapid.T) {
	d := time.Duration(rapid.IntRange(10, 240).Draw(rt, "seconds")) * time.Second
	m.ts.advance(d)
	m.now = m.now.Add(d)
}
