package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) callCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "call METHOD [PARAM=VALUE | PARAM:=JSON]...",
		Short: "Call any method, forwarded ones included, with params by name",
		Long: `Call any method of the server, built-in, embedded or forwarded to an
upstream, with params by name, and print its result.

PARAM=VALUE is typed by the method's param schema in rpc.discover: a
string param takes VALUE as it is; an integer, number, boolean, array or
object param takes it as JSON (size=10, active=true,
scopes='{"method":["server.list"]}'). PARAM:=JSON always sends VALUE as
raw JSON (comment:='"42"', size:=10). A method that discovery does not
list for the key (or with no key at all), and a param whose schema names
no type, gets every PARAM=VALUE as a string, even one that looks like a
number or JSON (password=12345678 sends "12345678"): use PARAM:=JSON to
send JSON.

Typing costs one rpc.discover call first, which counts against a key's rate
limit and quota like any call; with only PARAM:=JSON (or no params) there
is none.`,
		Example: `  apikeyctl call system.list_methods
  apikeyctl call apikey.list size=2 sort_by=desc:created active=true
  apikeyctl call apikey.create 'scopes={"method":["server.list"]}' comment='backup script'
  apikeyctl call server.reboot name=web1 force=true --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef("call needs a METHOD")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			method := args[0]
			type arg struct {
				name, value string
				raw         bool
			}
			var parsed []arg
			seen := map[string]bool{}
			for _, s := range args[1:] {
				name, value, ok := strings.Cut(s, "=")
				if !ok || name == "" || name == ":" {
					return usagef("%q is not PARAM=VALUE or PARAM:=JSON", s)
				}
				raw := strings.HasSuffix(name, ":")
				name = strings.TrimSuffix(name, ":")
				if seen[name] {
					return usagef("param %s is given twice", name)
				}
				seen[name] = true
				if raw && !json.Valid([]byte(value)) {
					return usagef("%s:= takes JSON, and %q is not", name, value)
				}
				parsed = append(parsed, arg{name, value, raw})
			}
			typed := false
			for _, x := range parsed {
				typed = typed || !x.raw
			}
			var schemas map[string]paramSchema
			if typed && a.hasKey() {
				var err error
				if schemas, err = a.paramSchemas(cmd, method); err != nil {
					return err
				}
			}
			var params any
			if len(parsed) > 0 {
				p := make(map[string]json.RawMessage, len(parsed))
				for _, x := range parsed {
					if x.raw {
						p[x.name] = json.RawMessage(x.value)
						continue
					}
					v, err := schemas[x.name].encode(x.name, x.value)
					if err != nil {
						return err
					}
					p[x.name] = v
				}
				params = p
			}
			return a.callAndPrint(cmd, method, params, func(res json.RawMessage) error {
				return printValue(a.stdout, res)
			})
		},
	}
}

// paramSchema is what apikeyctl needs of one param's JSON Schema: the JSON
// types it allows. nil means unknown (no schema, or none found).
type paramSchema struct {
	types map[string]bool
}

// paramSchemas asks rpc.discover for method's params. A method discovery
// does not list gives an empty map.
func (a *app) paramSchemas(cmd *cobra.Command, method string) (map[string]paramSchema, error) {
	res, err := a.call(cmd, "rpc.discover", nil)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name   string          `json:"name"`
				Schema json.RawMessage `json:"schema"`
			} `json:"params"`
		} `json:"methods"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(res, &doc); err != nil {
		return nil, localError{fmt.Errorf("rpc.discover answered with no OpenRPC document: %v", err)}
	}
	out := map[string]paramSchema{}
	for _, m := range doc.Methods {
		if m.Name != method {
			continue
		}
		for _, p := range m.Params {
			types := map[string]bool{}
			schemaTypes(p.Schema, doc.Components.Schemas, types, 0)
			out[p.Name] = paramSchema{types: types}
		}
	}
	return out, nil
}

// schemaTypes collects the JSON types a schema allows, through type,
// oneOf, anyOf, allOf and local $refs to components.schemas.
func schemaTypes(raw json.RawMessage, defs map[string]json.RawMessage, into map[string]bool, depth int) {
	if len(raw) == 0 || depth > 8 {
		return
	}
	var s struct {
		Type  json.RawMessage   `json:"type"`
		Ref   string            `json:"$ref"`
		OneOf []json.RawMessage `json:"oneOf"`
		AnyOf []json.RawMessage `json:"anyOf"`
		AllOf []json.RawMessage `json:"allOf"`
		Enum  []json.RawMessage `json:"enum"`
		Const json.RawMessage   `json:"const"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return
	}
	var one string
	var many []string
	if json.Unmarshal(s.Type, &one) == nil && one != "" {
		into[one] = true
	} else if json.Unmarshal(s.Type, &many) == nil {
		for _, t := range many {
			into[t] = true
		}
	}
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		schemaTypes(defs[name], defs, into, depth+1)
	}
	for _, list := range [][]json.RawMessage{s.OneOf, s.AnyOf, s.AllOf} {
		for _, sub := range list {
			schemaTypes(sub, defs, into, depth+1)
		}
	}
	for _, v := range append(s.Enum, s.Const) {
		if k := jsonKind(v); k != "" {
			into[k] = true
		}
	}
}

// jsonKind is the JSON Schema type of a JSON value ("" for none); a whole
// number is an "integer".
func jsonKind(v json.RawMessage) string {
	t := strings.TrimSpace(string(v))
	if t == "" || !json.Valid([]byte(t)) {
		return ""
	}
	switch t[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	if strings.ContainsAny(t, ".eE") {
		return "number"
	}
	return "integer"
}

// encode types value by the schema: as it is for a string, as JSON for
// any other type. With no known type (no discovery, or a schema that names
// none) it is a string: PARAM:=JSON is the way to send JSON.
func (s paramSchema) encode(name, value string) (json.RawMessage, error) {
	asString := func() json.RawMessage { b, _ := json.Marshal(value); return b }
	kind := jsonKind(json.RawMessage(value))
	if len(s.types) == 0 {
		return asString(), nil
	}
	if kind != "" && kind != "string" && (s.types[kind] || (kind == "integer" && s.types["number"])) {
		return json.RawMessage(value), nil
	}
	if s.types["string"] {
		return asString(), nil
	}
	var want []string
	for _, t := range []string{"integer", "number", "boolean", "array", "object", "null"} {
		if s.types[t] {
			want = append(want, t)
		}
	}
	return nil, usagef("param %s takes JSON (%s), and %q is not; use %s:= to send raw JSON", name, strings.Join(want, " or "), value, name)
}
