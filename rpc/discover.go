package rpc

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// Discovery: rpc.discover answers with an OpenRPC document, and
// system.list_methods with a short list, of every method the calling key
// could call, built-in, embedded and forwarded alike. Both come from the
// method table, as docs/api.md's method index does.

// OpenRPCVersion is the version of the OpenRPC specification the
// documents follow.
const OpenRPCVersion = "1.3.2"

// MethodDoc describes a method's params and result for discovery. Typed
// fills it from the Go types; a gateway copies it from the upstream's
// catalog.
type MethodDoc struct {
	// Params maps a param name to its JSON Schema.
	Params map[string]json.RawMessage
	// Result is the JSON Schema of the result.
	Result json.RawMessage
	// ParamStructure is OpenRPC's: "by-name", "by-position" or "either"
	// ("" means either).
	ParamStructure string
}

// OpenRPC is an OpenRPC document.
type OpenRPC struct {
	OpenRPC    string          `json:"openrpc"`
	Info       OpenRPCInfo     `json:"info"`
	Methods    []OpenRPCMethod `json:"methods"`
	Components struct {
		Errors map[string]OpenRPCError `json:"errors"`
	} `json:"components"`
}

// OpenRPCInfo is the document's info object.
type OpenRPCInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// OpenRPCMethod is one method of the document. XAccess and XTakesName are
// apikeyd's extensions: the access class and whether name scopes apply.
type OpenRPCMethod struct {
	Name           string              `json:"name"`
	Summary        string              `json:"summary,omitempty"`
	ParamStructure string              `json:"paramStructure"`
	Params         []OpenRPCContent    `json:"params"`
	Result         OpenRPCContent      `json:"result"`
	Errors         []map[string]string `json:"errors,omitempty"`
	XAccess        string              `json:"x-access"`
	XTakesName     bool                `json:"x-takes-name"`
	XOpen          bool                `json:"x-open,omitempty"`
	// Examples pair example params with the result they get; see
	// methodExamples.
	Examples []OpenRPCExamplePairing `json:"examples,omitempty"`
}

// OpenRPCContent is a content descriptor: a named, schema-typed value.
type OpenRPCContent struct {
	Name     string          `json:"name"`
	Required bool            `json:"required,omitempty"`
	Schema   json.RawMessage `json:"schema"`
}

// OpenRPCError is an error object of the components.
type OpenRPCError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
}

// MethodSummary is one method in system.list_methods.
type MethodSummary struct {
	Name      string   `json:"name"`
	Summary   string   `json:"summary,omitempty"`
	Access    string   `json:"access"`
	TakesName bool     `json:"takes_name"`
	Params    []string `json:"params"`
	Open      bool     `json:"open,omitempty"`
}

// errorComponents are the errors every method may answer with, by the
// names method objects refer to them.
var errorComponents = map[string]OpenRPCError{
	"InvalidParams":   {CodeInvalidParams, "invalid params"},
	"Unauthenticated": {CodeUnauthenticated, "the API key is missing or not valid"},
	"Forbidden":       {CodeForbidden, "the key's scopes do not allow this call"},
	"NotFound":        {CodeNotFound, "no such object in this account"},
	"Conflict":        {CodeConflict, "the change clashes with stored data"},
	"RateLimited":     {CodeRateLimited, "too many calls; retry later"},
	"Internal":        {CodeInternalError, "internal error"},
	"UpstreamDown":    {CodeUpstreamUnavailable, "the upstream service could not be reached"},
	"UpstreamTimeout": {CodeUpstreamTimeout, "the upstream service did not answer in time"},
	"UpstreamReply":   {CodeUpstreamBadReply, "the upstream service answered with something that is not JSON-RPC 2.0"},
}

func errorRefs(names ...string) []map[string]string {
	out := make([]map[string]string, len(names))
	for i, n := range names {
		out[i] = map[string]string{"$ref": "#/components/errors/" + n}
	}
	return out
}

func registerDiscovery(s *Server) {
	h := discoveryHandlers{s}
	for _, m := range []Method{
		Typed(Method{Name: "rpc.discover", Summary: "Describe, as an OpenRPC document, every method this key could call."}, h.discover),
		Typed(Method{Name: "system.list_methods", Summary: "List every method this key could call, in short."}, h.listMethods),
	} {
		m.Access = scope.Read
		m.AnyKey = true
		s.Register(m)
	}
}

type discoveryHandlers struct{ s *Server }

// reachable returns the methods k could call, sorted by name: those for
// which authorize, the one access decision, allows some call (for a
// name-scoped key, with one of its names). The ip scope is not considered:
// it depends on where a call comes from, not on the method, and the
// discovery call itself has passed it.
func (s *Server) reachable(k *store.Key) []*Method {
	var out []*Method
	for _, m := range s.methods {
		if authorize(k, accessQuery{method: m, anyCall: true}) == nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Method) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (h discoveryHandlers) discover(ctx context.Context, _ struct{}) (OpenRPC, error) {
	doc := OpenRPC{
		OpenRPC: OpenRPCVersion,
		Info: OpenRPCInfo{Title: "apikeyd", Version: h.s.opts.Version,
			Description: "The methods the calling key could call. x-access is each method's access class; x-takes-name says whether name scopes apply."},
		Methods: []OpenRPCMethod{},
	}
	if doc.Info.Version == "" {
		doc.Info.Version = "dev"
	}
	doc.Components.Errors = errorComponents
	k := caller(ctx)
	reachable := h.s.reachable(k)
	for _, m := range reachable {
		om := m.openRPC()
		h.s.withCaller(&om, k, reachable)
		doc.Methods = append(doc.Methods, om)
	}
	return doc, nil
}

func (h discoveryHandlers) listMethods(ctx context.Context, _ struct{}) ([]MethodSummary, error) {
	out := []MethodSummary{}
	for _, m := range h.s.reachable(caller(ctx)) {
		out = append(out, m.summary())
	}
	return out, nil
}

func (m *Method) summary() MethodSummary {
	ms := MethodSummary{Name: m.Name, Summary: m.Summary, Access: m.Access, TakesName: m.TakesName(), Params: []string{}, Open: m.Open}
	for _, p := range m.Params {
		ms.Params = append(ms.Params, p.Name)
	}
	return ms
}

var anySchema = json.RawMessage(`{}`)

func (m *Method) openRPC() OpenRPCMethod {
	om := OpenRPCMethod{
		Name: m.Name, Summary: m.Summary, ParamStructure: m.Doc.ParamStructure,
		Params: []OpenRPCContent{}, XAccess: m.Access, XTakesName: m.TakesName(), XOpen: m.Open,
		Result: OpenRPCContent{Name: "result", Schema: m.Doc.Result},
	}
	if om.ParamStructure == "" {
		om.ParamStructure = "either"
	}
	if om.Result.Schema == nil {
		om.Result.Schema = anySchema
	}
	for _, p := range m.Params {
		schema := m.Doc.Params[p.Name]
		if schema == nil {
			schema = anySchema
		}
		om.Params = append(om.Params, OpenRPCContent{Name: p.Name, Required: p.Required, Schema: schema})
	}
	errs := []string{"InvalidParams", "Internal"}
	if !m.Open {
		errs = append(errs, "Unauthenticated", "Forbidden", "RateLimited")
	}
	if m.Forwarded {
		errs = append(errs, "UpstreamDown", "UpstreamTimeout", "UpstreamReply")
	}
	om.Errors = errorRefs(errs...)
	if !m.Forwarded {
		om.Examples = methodExamples[m.Name]
	}
	return om
}

// typeDoc makes a MethodDoc from a params struct type and a result type.
func typeDoc(params []structParam, pt, rt reflect.Type) MethodDoc {
	d := MethodDoc{Params: map[string]json.RawMessage{}}
	for _, p := range params {
		f := pt.Field(p.index)
		d.Params[p.Name] = paramSchema(p.Name, f.Tag.Get("schema"), func() schema { return schemaOf(f.Type, 0) })
	}
	d.Result = mustJSON(schemaOf(rt, 0))
	return d
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// schemaOf returns a JSON Schema for values of t as encoding/json writes
// and reads them.
func schemaOf(t reflect.Type, depth int) map[string]any {
	if depth > 8 {
		return map[string]any{}
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), depth)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), depth+1)}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addStructFields(t, props, &required, depth)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// addStructFields adds t's JSON fields to props, flattening embedded
// structs as encoding/json does.
func addStructFields(t reflect.Type, props map[string]any, required *[]string, depth int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addStructFields(ft, props, required, depth)
				continue
			}
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, depth+1)
		if f.Tag.Get("rpc") == "required" || !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}
