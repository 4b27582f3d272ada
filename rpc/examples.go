package rpc

import (
	"time"

	"github.com/apikeyd/apikeyd/scope"
)

// Examples: every built-in method carries an OpenRPC example pairing in
// rpc.discover's document, and each pairing is one step of a walkthrough.
// Run in the order of their x-step with the operator key, on a fresh
// server, every step succeeds and its reply has the shape of the example
// result (rpc/discover_exact_test.go runs it): account.create makes the
// account the account.* steps use, apikey.create the keys the apikey.*
// steps use, and deletions come last.

// OpenRPCExamplePairing is an example pairing of a method object: params
// and the result they get. XStep is its place in the walkthrough.
type OpenRPCExamplePairing struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Params      []OpenRPCExample `json:"params"`
	Result      OpenRPCExample   `json:"result"`
	XStep       int              `json:"x-step"`
}

// OpenRPCExample is an example object: a named value.
type OpenRPCExample struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

type exampleStep struct {
	method, title string
	params        []OpenRPCExample
	result        any
}

func ex(name string, v any) OpenRPCExample { return OpenRPCExample{Name: name, Value: v} }

// methodExamples are the walkthrough's pairings by method name.
var methodExamples = func() map[string][]OpenRPCExamplePairing {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := at.Add(time.Hour)
	expires := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		opKeyID   = "019d8c1e-5a30-7b2c-9e4f-0a1b2c3d4e5f"
		acmeKeyID = "019d8c1e-5a31-7c3d-8f50-1b2c3d4e5f60"
		deployID  = "019d8c1e-5a32-7d4e-9061-2c3d4e5f6071"
		oldID     = "019d8c1e-5a33-7e5f-a172-3d4e5f607182"
		aliceKey  = "019d8c1e-5a34-7f60-b283-4e5f60718293"
	)
	acme := AccountInfo{Name: "acme", Comment: "Acme Ltd", Created: at, Keys: 1}
	operator := AccountInfo{Name: "operator", Comment: "the operator", Created: at, Keys: 1}
	ci := ServiceAccountInfo{Name: "ci", Description: "The CI pipeline", Active: true, Created: at}
	deploy := KeyInfo{ID: deployID, Name: "deploy", Comment: "deploy script", Active: true, Created: at,
		Scopes: scope.Scopes{Method: []string{"server.*"}, Access: []string{scope.Read, scope.Update}}, ExpiresAt: &expires}
	described := deploy
	described.Description = "Deploys the web servers"
	named := described
	named.Scopes.Name = []string{"web1"}
	rotated := described
	rotated.LastRotated = &later
	alice := UserInfo{Name: "alice", Login: "alice@operator", Created: at}
	aliceKeyInfo := KeyInfo{ID: aliceKey, Comment: "laptop", Active: true, Created: at, Owner: "user:alice@operator",
		Scopes: scope.Scopes{Access: []string{scope.Create, scope.Delete, scope.Read, scope.Update}}}
	old := KeyInfo{ID: oldID, Name: "old", Comment: "to be deleted", Active: true, Created: at}
	discovered := OpenRPC{OpenRPC: OpenRPCVersion, Info: OpenRPCInfo{Title: "apikeyd", Version: "1.0.0",
		Description: "The methods the calling key could call."},
		Methods: []OpenRPCMethod{{Name: "system.list_methods", Summary: "List every method this key could call, in short.",
			ParamStructure: "either", Params: []OpenRPCContent{}, Result: OpenRPCContent{Name: "result", Schema: anySchema},
			Errors: errorRefs("InvalidParams"), XAccess: scope.Read}}}
	discovered.Components.Errors = map[string]OpenRPCError{"InvalidParams": errorComponents["InvalidParams"]}

	steps := []exampleStep{
		{"account.create", "Create the account acme", []OpenRPCExample{ex("name", "acme"), ex("comment", "Acme Ltd")},
			NewAccountInfo{AccountInfo: acme, FirstKey: NewKeyInfo{KeyInfo: KeyInfo{ID: acmeKeyID, Comment: "first key", Active: true, Created: at},
				Key: "8f14e45fceea167a5a36dedd4bea2543"}}},
		{"account.info", "Describe acme", []OpenRPCExample{ex("name", "acme")}, acme},
		{"account.list", "List every account", []OpenRPCExample{}, []AccountInfo{acme, operator}},
		{"account.update", "Change acme's comment", []OpenRPCExample{ex("name", "acme"), ex("comment", "Acme Ltd (hosting)")},
			AccountInfo{Name: "acme", Comment: "Acme Ltd (hosting)", Created: at, Keys: 1}},
		{"service_account.create", "Create the service account ci", []OpenRPCExample{ex("name", "ci"), ex("description", "The CI pipeline")}, ci},
		{"service_account.info", "Describe ci", []OpenRPCExample{ex("name", "ci")}, ci},
		{"service_account.list", "List the service accounts", []OpenRPCExample{}, []ServiceAccountInfo{ci}},
		{"service_account.update", "Change ci's description", []OpenRPCExample{ex("name", "ci"), ex("description", "The CI pipeline, deploys only")},
			ServiceAccountInfo{Name: "ci", Description: "The CI pipeline, deploys only", Active: true, Created: at}},
		{"apikey.create", "Create the key deploy", []OpenRPCExample{
			ex("scopes", map[string][]string{"method": {"server.*"}, "access": {"READ", "UPDATE"}}),
			ex("comment", "deploy script"), ex("name", "deploy"), ex("expires_at", "2099-01-01T00:00:00Z")},
			NewKeyInfo{KeyInfo: deploy, Key: "c9f0f895fb98ab9159f51fd0297e236d"}},
		{"apikey.create", "Create the key old", []OpenRPCExample{ex("comment", "to be deleted"), ex("name", "old")},
			NewKeyInfo{KeyInfo: old, Key: "45c48cce2e2d7fbdea1afc51c7c6ad26"}},
		{"apikey.info", "Describe deploy", []OpenRPCExample{ex("id", "deploy")}, deploy},
		{"apikey.list", "List keys by name, ten a page", []OpenRPCExample{ex("sort_by", "name"), ex("size", 10)},
			KeyList{Items: []KeySummary{
				{ID: deployID, Name: "deploy", Comment: "deploy script", Active: true, Created: at},
				{ID: opKeyID, Comment: "operator", Active: true, Created: at},
			}, Total: 3, Size: 10, Page: 1, TotalPages: 1}},
		{"apikey.update", "Describe deploy", []OpenRPCExample{ex("id", "deploy"), ex("description", "Deploys the web servers")}, described},
		{"apikey.add_scope", "Let deploy act on web1 only", []OpenRPCExample{ex("id", "deploy"), ex("scope_name", "name"), ex("value", "web1")}, named},
		{"apikey.delete_scope", "Let deploy act on any server again", []OpenRPCExample{ex("id", "deploy"), ex("scope_name", "name"), ex("value", "web1")}, described},
		{"apikey.rotate", "Give deploy a new secret; the old one works for an hour", []OpenRPCExample{ex("id", "deploy"), ex("retain_period_minutes", 60)},
			NewKeyInfo{KeyInfo: rotated, Key: "d3d9446802a44259755d38e6d163e820"}},
		{"apikey.verify", "Ask whether a key this server never issued may call apikey.info",
			[]OpenRPCExample{ex("key", "0123456789abcdef0123456789abcdef"), ex("method", "apikey.info")},
			Verification{Code: "not_found"}},
		{"user.create", "Create the user alice", []OpenRPCExample{ex("name", "alice"), ex("password", "correct horse battery")}, alice},
		{"user.list", "List the users", []OpenRPCExample{}, []UserInfo{alice}},
		{"user.set_password", "Set alice's password", []OpenRPCExample{ex("name", "alice"), ex("password", "staple battery horse")}, struct{}{}},
		{"user.create_apikey", "Log in as alice and get a key of access level apikey", []OpenRPCExample{
			ex("username", "alice@operator"), ex("password", "staple battery horse"), ex("access_level", "apikey"), ex("comment", "laptop")},
			NewKeyInfo{KeyInfo: aliceKeyInfo, Key: "6512bd43d9caa6e02c990b0a82652dca"}},
		{"user.apikeys", "List alice's keys", []OpenRPCExample{ex("username", "alice")},
			map[string]map[string]FilebinKey{"apikeys": {aliceKey: {Key: aliceKey, Created: at, Comment: "laptop", AccessLevel: "apikey"}}}},
		{"user.unlock", "Clear alice's login throttling", []OpenRPCExample{ex("name", "alice")}, alice},
		{"user.delete_apikey", "Delete the key old", []OpenRPCExample{ex("delete_key", "old")},
			map[string]map[string]FilebinKey{"deleted_keys": {oldID: {Key: oldID, Created: at, Comment: "to be deleted", AccessLevel: "full"}}}},
		{"apikey.delete", "Delete deploy", []OpenRPCExample{ex("id", "deploy")}, struct{}{}},
		{"user.delete", "Delete alice and her keys", []OpenRPCExample{ex("name", "alice")}, struct{}{}},
		{"service_account.delete", "Delete ci", []OpenRPCExample{ex("name", "ci")}, struct{}{}},
		{"account.delete", "Delete acme and its keys", []OpenRPCExample{ex("name", "acme")}, struct{}{}},
		{"audit.list", "The first two audit records", []OpenRPCExample{ex("limit", 2)},
			AuditPage{Records: []AuditEntry{
				{Seq: 1, Time: at, Account: "operator", Actor: opKeyID, SourceIP: "127.0.0.1", Method: "account.create", Target: "acme", Outcome: "ok", Count: 1},
				{Seq: 2, Time: at, Account: "operator", Actor: opKeyID, SourceIP: "127.0.0.1", Method: "account.update", Target: "acme", Outcome: "ok", Count: 1},
			}, Next: 2}},
		{"rpc.discover", "This document (abridged)", []OpenRPCExample{}, discovered},
		{"system.list_methods", "The methods this key could call (abridged)", []OpenRPCExample{},
			[]MethodSummary{{Name: "system.list_methods", Summary: "List every method this key could call, in short.", Access: scope.Read, Params: []string{}}}},
	}
	out := map[string][]OpenRPCExamplePairing{}
	for i, st := range steps {
		out[st.method] = append(out[st.method], OpenRPCExamplePairing{
			Name: st.title, Params: st.params, Result: ex("result", mustJSON(st.result)), XStep: i + 1,
			Description: "One step of a walkthrough: on a fresh server, run with the operator key in the order of x-step.",
		})
	}
	return out
}()
