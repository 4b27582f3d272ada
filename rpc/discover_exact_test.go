package rpc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The discovery document is exact: what a client generates from a param's
// schema is accepted, and what lies just outside it is refused with
// invalid_params. These tests generate params from the document the
// server publishes, as a third-party tool (@open-rpc/test-coverage) does,
// and call each method over HTTP; so the schemas and the validators cannot
// drift apart.

// exactMethod is a method of the document as a client reads it.
type exactMethod struct {
	Name   string `json:"name"`
	Params []struct {
		Name     string          `json:"name"`
		Required bool            `json:"required"`
		Schema   json.RawMessage `json:"schema"`
	} `json:"params"`
	Result struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"result"`
	Examples []struct {
		Name   string `json:"name"`
		Params []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"params"`
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		Step int `json:"x-step"`
	} `json:"examples"`
}

// exactParam is one param with its schema, parsed and compiled.
type exactParam struct {
	name     string
	required bool
	raw      map[string]any
	compiled *jsonschema.Schema
}

func compileSchema(t *testing.T, id string, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	u := "mem:///" + url.PathEscape(id)
	require.NoError(t, c.AddResource(u, doc))
	s, err := c.Compile(u)
	require.NoError(t, err, "schema of %s", id)
	return s
}

// conforms reports whether v, as JSON, is valid against s.
func conforms(s *jsonschema.Schema, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	return err == nil && s.Validate(inst) == nil
}

// exactDocument is rpc.discover's document for the operator key.
func exactDocument(t *testing.T, ts *testServer) []exactMethod {
	t.Helper()
	r := ts.call(ts.Admin, "rpc.discover", nil)
	require.Nil(t, r.Error)
	var doc struct {
		Methods []exactMethod `json:"methods"`
	}
	require.NoError(t, json.Unmarshal(r.Result, &doc))
	return doc.Methods
}

func exactParams(t *testing.T, m exactMethod) []exactParam {
	t.Helper()
	var out []exactParam
	for _, p := range m.Params {
		var raw map[string]any
		require.NoError(t, json.Unmarshal(p.Schema, &raw))
		out = append(out, exactParam{name: p.Name, required: p.Required, raw: raw, compiled: compileSchema(t, m.Name+"."+p.Name, p.Schema)})
	}
	return out
}

// builtinMethods are the methods of a server that embeds nothing.
func builtinMethods(t *testing.T) []string {
	ts := newTestServer(t)
	var out []string
	for _, m := range ts.RPC.Methods() {
		if !strings.HasPrefix(m.Name, "server.") { // the harness's embedded methods
			out = append(out, m.Name)
		}
	}
	return out
}

// --- generating values from a schema ---

type strategy int

const (
	smallest strategy = iota
	largest
	middle
)

// fromPattern makes a string that pattern matches: the smallest, largest
// or a middle choice at each alternative, class and repeat; an unbounded
// repeat runs n times.
func fromPattern(t *testing.T, pattern string, st strategy, n int) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	require.NoError(t, err, pattern)
	var b strings.Builder
	var gen func(re *syntax.Regexp)
	repeat := func(sub *syntax.Regexp, count int) {
		for range count {
			gen(sub)
		}
	}
	pick := func(lo, hi int) int {
		switch st {
		case smallest:
			return lo
		case largest:
			return hi
		}
		return (lo + hi + 1) / 2
	}
	gen = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			b.WriteString(string(re.Rune))
		case syntax.OpCharClass:
			pairs := len(re.Rune) / 2
			i := pick(0, pairs-1)
			r := re.Rune[2*i]
			if st == largest {
				r = re.Rune[2*i+1]
			}
			b.WriteRune(r)
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			b.WriteByte('x')
		case syntax.OpCapture:
			gen(re.Sub[0])
		case syntax.OpConcat:
			for _, s := range re.Sub {
				gen(s)
			}
		case syntax.OpAlternate:
			gen(re.Sub[pick(0, len(re.Sub)-1)])
		case syntax.OpStar:
			repeat(re.Sub[0], pick(0, n))
		case syntax.OpPlus:
			repeat(re.Sub[0], pick(1, max(n, 1)))
		case syntax.OpQuest:
			repeat(re.Sub[0], pick(0, 1))
		case syntax.OpRepeat:
			hi := re.Max
			if hi < 0 {
				hi = max(n, re.Min)
			}
			repeat(re.Sub[0], pick(re.Min, hi))
		}
	}
	gen(re)
	return b.String()
}

func num(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// merged is branch b of an anyOf or oneOf of s, with s's other keywords.
func merged(s map[string]any, of string, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		if k != of {
			out[k] = v
		}
	}
	for k, v := range b {
		if k == "properties" {
			props := map[string]any{}
			if pp, ok := out["properties"].(map[string]any); ok {
				for pk, pv := range pp {
					props[pk] = pv
				}
			}
			for pk, pv := range v.(map[string]any) {
				props[pk] = pv
			}
			out[k] = props
			continue
		}
		out[k] = v
	}
	return out
}

// candidates generates values from s: each enum value or const, both ends
// of each range and length, and strings that match each pattern at its
// shortest and longest. Some may break a rule the generator does not
// read (not, a combination); callers keep those the schema accepts.
func candidates(t *testing.T, s map[string]any) []any {
	if e, ok := s["enum"].([]any); ok {
		return e
	}
	if c, ok := s["const"]; ok {
		return []any{c}
	}
	for _, of := range []string{"anyOf", "oneOf"} {
		if bs, ok := s[of].([]any); ok {
			var out []any
			for _, b := range bs {
				out = append(out, candidates(t, merged(s, of, b.(map[string]any)))...)
			}
			return out
		}
	}
	switch s["type"] {
	case "string":
		lo, hasLo := num(s["minLength"])
		hi, hasHi := num(s["maxLength"])
		long := 8
		if hasHi {
			long = int(hi)
		}
		if p, ok := s["pattern"].(string); ok {
			var out []any
			for _, st := range []strategy{smallest, largest, middle} {
				for _, n := range []int{max(int(lo), 1), long} {
					out = append(out, fromPattern(t, p, st, n))
				}
			}
			return out
		}
		out := []any{"", strings.Repeat("a", long), strings.Repeat("é", long), "A value, with spaces."}
		if hasLo {
			out = append(out, strings.Repeat("a", int(lo)), strings.Repeat("é", int(lo)))
		}
		return out
	case "integer":
		lo, hasLo := num(s["minimum"])
		hi, hasHi := num(s["maximum"])
		if !hasLo {
			lo = 0
		}
		out := []any{lo, lo + 1}
		if hasHi {
			out = append(out, hi, math.Floor((lo+hi)/2))
		} else {
			out = append(out, lo+1000)
		}
		return out
	case "boolean":
		return []any{false, true}
	case "array":
		items := candidates(t, s["items"].(map[string]any))
		out := []any{[]any{}}
		for _, c := range items {
			out = append(out, []any{c})
		}
		if hi, ok := num(s["maxItems"]); ok && len(items) > 0 {
			full := make([]any, int(hi))
			for i := range full {
				full[i] = items[i%len(items)]
			}
			out = append(out, full)
		}
		return out
	case "object":
		props, _ := s["properties"].(map[string]any)
		out := []any{map[string]any{}}
		first, last := map[string]any{}, map[string]any{}
		for _, name := range sortedKeys(props) {
			cs := candidates(t, props[name].(map[string]any))
			for _, c := range cs {
				out = append(out, map[string]any{name: c})
			}
			if len(cs) > 0 {
				first[name], last[name] = cs[0], cs[len(cs)-1]
			}
		}
		return append(out, first, last)
	}
	return []any{"x", 1, true}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// valid are p's candidates that its schema accepts, without duplicates.
func (p exactParam) valid(t *testing.T) []any {
	var out []any
	seen := map[string]bool{}
	for _, c := range candidates(t, p.raw) {
		b, _ := json.Marshal(c)
		if !seen[string(b)] && conforms(p.compiled, c) {
			seen[string(b)] = true
			out = append(out, c)
		}
	}
	require.NotEmpty(t, out, "no value generated from the schema of %s: %v", p.name, p.raw)
	return out
}

// outsideProbes are values just outside s: one past each bound, a value
// not in an enum, strings that break a pattern, the wrong type, unknown
// members. Callers keep those the schema refuses.
func outsideProbes(t *testing.T, s map[string]any) []any {
	out := []any{12345, true, []any{}, map[string]any{}, "x", 1.5}
	if e, ok := s["enum"].([]any); ok {
		out = append(out, "NOT_IN_ENUM", "")
		for _, v := range e {
			if str, ok := v.(string); ok {
				out = append(out, strings.ToLower(str)+"x", strings.ToUpper(str)+" ")
			}
		}
	}
	for _, of := range []string{"anyOf", "oneOf"} {
		if bs, ok := s[of].([]any); ok {
			for _, b := range bs {
				out = append(out, outsideProbes(t, merged(s, of, b.(map[string]any)))...)
			}
		}
	}
	switch s["type"] {
	case "string":
		if hi, ok := num(s["maxLength"]); ok {
			out = append(out, strings.Repeat("a", int(hi)+1), strings.Repeat("é", int(hi)+1))
		}
		if lo, ok := num(s["minLength"]); ok && lo > 0 {
			out = append(out, "", strings.Repeat("é", int(lo)-1))
		}
		if p, ok := s["pattern"].(string); ok {
			for _, st := range []strategy{smallest, largest} {
				v := fromPattern(t, p, st, 3)
				out = append(out, v+" ", " "+v, v+"!", v+"\x01", v[:len(v)/2])
			}
		}
		out = append(out, "", " ", "bad name", "a/b", "x!", "\x01", "a:b", "-1", "contains:", "gt:", "Server.*",
			"999.1.1.1", "1.2.3.4/33", "::g", "2026-02-30T00:00:00Z", "2026-01-02", "2026-01-02T15:04:05", "user:", "sa:x", "READ ")
	case "integer":
		if lo, ok := num(s["minimum"]); ok {
			out = append(out, lo-1)
		}
		if hi, ok := num(s["maximum"]); ok {
			out = append(out, hi+1)
		}
		out = append(out, "1")
	case "array":
		if items, ok := s["items"].(map[string]any); ok {
			for _, bad := range outsideProbes(t, items) {
				out = append(out, []any{bad})
			}
			if hi, ok := num(s["maxItems"]); ok {
				if cs := candidates(t, items); len(cs) > 0 {
					over := make([]any, int(hi)+1)
					for i := range over {
						over[i] = cs[0]
					}
					out = append(out, over)
				}
			}
		}
	case "object":
		out = append(out, map[string]any{"no_such_member": 1})
		if props, ok := s["properties"].(map[string]any); ok {
			for _, name := range sortedKeys(props) {
				for _, bad := range outsideProbes(t, props[name].(map[string]any)) {
					out = append(out, map[string]any{name: bad})
				}
			}
		}
	}
	return out
}

// outside are p's probes that its schema refuses, without duplicates.
func (p exactParam) outside(t *testing.T) []any {
	var out []any
	seen := map[string]bool{}
	for _, c := range outsideProbes(t, p.raw) {
		b, _ := json.Marshal(c)
		if c != nil && !seen[string(b)] && !conforms(p.compiled, c) {
			seen[string(b)] = true
			out = append(out, c)
		}
	}
	return out
}

// --- rules the schemas state in words ---

// issuedByServer are params whose values only the server makes: apikey.list's
// cursor is the next_cursor of an earlier page. Their schemas bound their
// form; the refusal side is still checked.
var issuedByServer = map[string]bool{"apikey.list.cursor": true}

// together are params sent beside a probe of the keyed param, for bounds
// that depend on another param: page's maximum is for the largest size.
var together = map[string]map[string]any{"apikey.list.page": {"size": rpc.MaxPageSize}}

// combine applies the rules between params that a schema of one param
// cannot state and its description does: a param whose anyOf branches are
// titled with the values of another param's enum takes the branch that
// param names (apikey.add_scope's value and scope_name); an expiry lies in
// the future and after not_before; page not with cursor; remove_quota not
// with quota.
func combine(t *testing.T, params []exactParam, vals map[string]any, varied string) map[string]any {
	for _, p := range params {
		bs, ok := p.raw["anyOf"].([]any)
		if !ok || len(bs) == 0 {
			continue
		}
		titled := true
		for _, b := range bs {
			_, ok := b.(map[string]any)["title"]
			titled = titled && ok
		}
		if !titled {
			continue
		}
		for _, q := range params {
			e, ok := q.raw["enum"].([]any)
			if !ok || len(e) != len(bs) {
				continue
			}
			sel, _ := vals[q.name].(string)
			for _, b := range bs {
				branch := b.(map[string]any)
				if branch["title"] != sel {
					continue
				}
				bp := exactParam{name: p.name, raw: merged(p.raw, "anyOf", branch), compiled: compileSchema(t, "branch", mustMarshal(t, merged(p.raw, "anyOf", branch)))}
				if v, ok := vals[p.name]; ok && conforms(bp.compiled, v) {
					continue
				}
				if varied == p.name {
					// The value decides: name the type it is a value of.
					for _, b2 := range bs {
						br := b2.(map[string]any)
						if conforms(compileSchema(t, "branch", mustMarshal(t, merged(p.raw, "anyOf", br))), vals[p.name]) {
							vals[q.name] = br["title"]
							break
						}
					}
					continue
				}
				vals[p.name] = bp.valid(t)[0]
			}
		}
	}
	future := slices.ContainsFunc(params, func(p exactParam) bool {
		d, _ := p.raw["description"].(string)
		return p.name == "expires_at" && strings.Contains(d, "in the future")
	})
	if ea, ok := vals["expires_at"].(string); ok && ea != "" && future {
		at, err := time.Parse(time.RFC3339, ea)
		require.NoError(t, err)
		if !at.After(fixedNow) {
			delete(vals, "expires_at")
		} else if nb, ok := vals["not_before"].(string); ok && nb != "" {
			if b, err := time.Parse(time.RFC3339, nb); err == nil && !at.After(b) {
				delete(vals, "not_before")
			}
		}
	}
	if _, ok := vals["cursor"]; ok {
		delete(vals, "page")
	}
	if rq, _ := vals["remove_quota"].(bool); rq {
		delete(vals, "quota")
	}
	return vals
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// baseline is the required params at their first generated value.
func baseline(t *testing.T, params []exactParam) map[string]any {
	vals := map[string]any{}
	for _, p := range params {
		if p.required {
			vals[p.name] = p.valid(t)[0]
		}
	}
	return vals
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestDiscoverExact_GeneratedParamsAccepted calls every method the operator
// key may call with params generated from the document: the required ones
// alone; all of them at their smallest and at their largest; and each
// param at each of its values (each enum value, both ends of each length
// and range, pattern-made strings), the others required only. None may be
// refused as invalid params; errors about state (key_not_found,
// account_exists, ...) are fine. Each result matches its result schema.
func TestDiscoverExact_GeneratedParamsAccepted(t *testing.T) {
	names := builtinMethods(t)
	for _, m := range exactDocument(t, newTestServer(t)) {
		if !slices.Contains(names, m.Name) {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			ts := newTestServer(t)
			params := exactParams(t, m)
			result := compileSchema(t, m.Name+".result", m.Result.Schema)
			base := baseline(t, params)
			calls := []map[string]any{combine(t, params, clone(base), "")}
			for _, end := range []int{0, -1} {
				all := clone(base)
				for _, p := range params {
					if issuedByServer[m.Name+"."+p.name] {
						continue
					}
					vs := p.valid(t)
					if end == 0 {
						all[p.name] = vs[0]
					} else {
						all[p.name] = vs[len(vs)-1]
					}
				}
				calls = append(calls, combine(t, params, all, ""))
			}
			for _, p := range params {
				if issuedByServer[m.Name+"."+p.name] {
					continue
				}
				for _, v := range p.valid(t) {
					vals := clone(base)
					vals[p.name] = v
					calls = append(calls, combine(t, params, vals, p.name))
				}
			}
			for _, vals := range calls {
				r := ts.call(ts.Admin, m.Name, vals)
				if r.Error != nil {
					assert.NotEqual(t, int64(rpc.CodeInvalidParams), r.Error.Code, "%s(%s) refused: %s", m.Name, show(vals), r.Error.Message)
					continue
				}
				var got any
				require.NoError(t, json.Unmarshal(r.Result, &got))
				assert.True(t, conforms(result, got), "%s(%s): the result does not match its schema: %s", m.Name, show(vals), r.Result)
			}
		})
	}
}

// TestDiscoverExact_OutsideRefused is the converse: each param at each
// value just outside its schema (one past a length or range, not in an
// enum, breaking a pattern, of another type, with an unknown member),
// beside valid required params, is refused with invalid_params naming
// that param, and nothing stored changes.
func TestDiscoverExact_OutsideRefused(t *testing.T) {
	names := builtinMethods(t)
	for _, m := range exactDocument(t, newTestServer(t)) {
		if !slices.Contains(names, m.Name) {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			ts := newTestServer(t)
			params := exactParams(t, m)
			base := combine(t, params, baseline(t, params), "")
			for _, p := range params {
				probes := p.outside(t)
				require.NotEmpty(t, probes, "no value outside the schema of %s", p.name)
				for _, bad := range probes {
					vals := clone(base)
					for k, v := range together[m.Name+"."+p.name] {
						vals[k] = v
					}
					vals[p.name] = bad
					ts.unchanged(func() {
						r := ts.call(ts.Admin, m.Name, vals)
						if !assert.NotNil(t, r.Error, "%s(%s) was accepted, though %s lies outside its schema", m.Name, show(vals), p.name) {
							return
						}
						assert.Equal(t, int64(rpc.CodeInvalidParams), r.Error.Code, "%s(%s): %s", m.Name, show(vals), r.Error.Message)
						assert.True(t, strings.HasPrefix(r.Error.Data.Field, p.name), "%s(%s): field %q, want %s", m.Name, show(vals), r.Error.Data.Field, p.name)
					})
				}
			}
		})
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return fmt.Sprintf("%s...(%d bytes)", b[:200], len(b))
	}
	return string(b)
}

// TestDiscoverExact_Examples runs the walkthrough the document's examples
// make: every built-in method has an example pairing; its params match the
// param schemas and its result the result schema; and run in the order of
// x-step with the operator key on a fresh server, every call succeeds
// with a reply of the example result's shape.
func TestDiscoverExact_Examples(t *testing.T) {
	ts := newTestServer(t)
	doc := exactDocument(t, ts)
	type step struct {
		m      exactMethod
		params map[string]any
		result any
		step   int
		name   string
	}
	var steps []step
	byName := map[string]exactMethod{}
	for _, m := range doc {
		byName[m.Name] = m
		params := exactParams(t, m)
		result := compileSchema(t, m.Name+".result", m.Result.Schema)
		for _, ex := range m.Examples {
			vals := map[string]any{}
			for _, p := range ex.Params {
				i := slices.IndexFunc(params, func(q exactParam) bool { return q.name == p.Name })
				if assert.GreaterOrEqual(t, i, 0, "%s's example names param %s, which it does not take", m.Name, p.Name) {
					assert.True(t, conforms(params[i].compiled, p.Value), "%s's example: %s=%v is outside its schema", m.Name, p.Name, p.Value)
				}
				vals[p.Name] = p.Value
			}
			for _, p := range params {
				_, given := vals[p.name]
				assert.True(t, given || !p.required, "%s's example lacks the required %s", m.Name, p.name)
			}
			assert.True(t, conforms(result, ex.Result.Value), "%s's example result does not match its result schema", m.Name)
			steps = append(steps, step{m: m, params: vals, result: ex.Result.Value, step: ex.Step, name: ex.Name})
		}
	}
	for _, name := range builtinMethods(t) {
		assert.NotEmpty(t, byName[name].Examples, "%s has no example", name)
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].step < steps[j].step })
	for i, s := range steps {
		require.Equal(t, i+1, s.step, "the steps are numbered 1, 2, ...")
		r := ts.call(ts.Admin, s.m.Name, s.params)
		if !assert.Nil(t, r.Error, "step %d, %s (%s): %+v", s.step, s.m.Name, s.name, r.Error) {
			continue
		}
		var got any
		require.NoError(t, json.Unmarshal(r.Result, &got))
		assert.Empty(t, shapeMismatch("result", s.result, got), "step %d, %s: %s", s.step, s.m.Name, show(got))
	}
}

var keyIDKey = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// shapeMismatch says where got has not the shape of want: each member
// want has (members named by a key id stand for any key id), of the same
// JSON type; each element of an array like one of want's elements.
func shapeMismatch(path string, want, got any) string {
	switch w := want.(type) {
	case nil:
		return ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path + ": not an object"
		}
		norm := func(m map[string]any) map[string][]any {
			out := map[string][]any{}
			for k, v := range m {
				if keyIDKey.MatchString(k) {
					k = "<key id>"
				}
				out[k] = append(out[k], v)
			}
			return out
		}
		gn := norm(g)
		for k, wvs := range norm(w) {
			gvs, ok := gn[k]
			if !ok {
				return path + "." + k + ": missing"
			}
			for _, gv := range gvs {
				if msg := shapeMismatch(path+"."+k, wvs[0], gv); msg != "" {
					return msg
				}
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			return path + ": not an array"
		}
		if len(w) > 0 && len(g) == 0 {
			return path + ": empty"
		}
		for i, gv := range g {
			var msgs []string
			for _, wv := range w {
				msg := shapeMismatch(fmt.Sprintf("%s[%d]", path, i), wv, gv)
				if msg == "" {
					msgs = nil
					break
				}
				msgs = append(msgs, msg)
			}
			if len(msgs) > 0 {
				return msgs[0]
			}
		}
		return ""
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return fmt.Sprintf("%s: %T, want %T", path, got, want)
	}
	return ""
}
