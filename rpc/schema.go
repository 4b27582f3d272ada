package rpc

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// Param constraints: what the handlers enforce of a param, as the JSON
// Schema that rpc.discover publishes for it. A params struct field names
// its constraint with a tag, `schema:"identity_name"`; Typed reads the tag
// and puts the constraint's schema in the method's Doc, so the document
// says what the validator checks. Each schema is built from the same
// named limits the validators use (MaxIdentityNameLen, scope.AccessClasses,
// store.SortFields, ...); the patterns restate the validators' character
// rules, and rpc/discover_exact_test.go proves, for every param of every
// method, that values generated from the schema are accepted and values
// just outside it are refused with invalid_params.
//
// An embedding program may use these tags on its own params structs too.

// Patterns of the constraints, as JSON Schema (ECMA 262) regular
// expressions that Go's regexp reads the same way.
const (
	identityClass   = `[A-Za-z0-9._-]`
	identityPattern = `^` + identityClass + `+$`
	secretPattern   = `^[0-9a-f]{32}$`
	keyIDPattern    = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
	// holderRefPattern is "<owner>/<key name>": "account", "user:..." or
	// "sa:..." and a name (splitHolderRef).
	holderRefPattern = `^(account|user:[\s\S]+|sa:[\s\S]+)/` + identityClass + `{1,64}$`
	// rfc3339 is a time as time.Parse(time.RFC3339) reads it: day numbers
	// within their month (February to the 28th), fractions of a second
	// and an offset or Z.
	rfc3339 = `[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))` +
		`T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])`
	ipv4Addr = `((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])`
	hex4     = `[0-9a-fA-F]{1,4}`
	ipv6Addr = `((` + hex4 + `:){7}` + hex4 + `|(` + hex4 + `:){1,7}:|(` + hex4 + `:){1,6}:` + hex4 +
		`|(` + hex4 + `:){1,5}(:` + hex4 + `){1,2}|(` + hex4 + `:){1,4}(:` + hex4 + `){1,3}|(` + hex4 + `:){1,3}(:` + hex4 + `){1,4}` +
		`|(` + hex4 + `:){1,2}(:` + hex4 + `){1,5}|` + hex4 + `:(:` + hex4 + `){1,6}|:((:` + hex4 + `){1,7}|:))`
	// methodPattern is scope.validMethodPattern: a method name of two or
	// more dotted segments, or one or more segments and ".*".
	methodPattern = `^([a-z0-9_]+(\.[a-z0-9_]+)+|[a-z0-9_]+(\.[a-z0-9_]+)*\.\*)$`
	// controlFree is a string without the characters unicode.IsControl
	// reports (C0, DEL and C1).
	controlFree = `^[^\x00-\x1F\x7F-\x9F]*$`
)

type schema = map[string]any

func str(s schema) schema { s["type"] = "string"; return s }

func identityName() schema {
	return str(schema{"minLength": 1, "maxLength": MaxIdentityNameLen, "pattern": identityPattern})
}

// keyName is validKeyName for a name that is given: an identity name that
// looks like neither a key id nor a key.
func keyName() schema {
	s := identityName()
	s["not"] = schema{"anyOf": []any{schema{"pattern": secretPattern}, schema{"pattern": keyIDPattern}}}
	return s
}

// rfcTime is an RFC 3339 time, or "" for none (absent).
func rfcTime(desc string) schema {
	return str(schema{"anyOf": []any{
		schema{"const": ""},
		schema{"format": "date-time", "pattern": "^" + rfc3339 + "$"},
	}, "description": desc})
}

func scopeValue(typ string) schema {
	base := schema{"title": typ, "minLength": 1, "maxLength": scope.MaxValueLen}
	switch typ {
	case scope.TypeMethod:
		base["pattern"] = methodPattern
	case scope.TypeAccess:
		base["enum"] = slices.Clone(scope.AccessClasses)
	case scope.TypeIP:
		base["anyOf"] = []any{
			schema{"pattern": `^` + ipv4Addr + `(/(3[0-2]|[12]?[0-9]))?$`},
			schema{"pattern": `^` + ipv6Addr + `(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$`},
		}
	default:
		base["pattern"] = controlFree
	}
	return str(base)
}

func integer(lo, hi int64) schema {
	return schema{"type": "integer", "minimum": lo, "maximum": hi}
}

// paramSchemas are the named constraints, each built once.
var paramSchemas = func() map[string]schema {
	sorts := []any{}
	for _, dir := range []string{"", "asc:", "desc:"} {
		for _, f := range store.SortFields {
			sorts = append(sorts, dir+f)
		}
	}
	scopeProps := schema{}
	for _, typ := range scope.Types {
		scopeProps[typ] = schema{"type": "array", "maxItems": scope.MaxValues, "items": scopeValue(typ)}
	}
	timeCond := str(schema{"pattern": `^((eq|gt|gte|lt|lte):)?` + rfc3339 + `$`})
	valueByType := []any{}
	for _, typ := range scope.Types {
		valueByType = append(valueByType, scopeValue(typ))
	}
	return map[string]schema{
		"identity_name": identityName(),
		// An identity name, or "" for none.
		"identity_name_or_empty": str(schema{"anyOf": []any{schema{"const": ""}, identityName()}}),
		"key_name":               keyName(),
		// apikey.update's name: "" removes it.
		"key_name_or_empty": str(schema{"anyOf": []any{schema{"const": ""}, keyName()}}),
		// validRef: a key id, a key, a key name or "<holder>/<key name>".
		"key_ref": str(schema{"anyOf": []any{
			schema{"pattern": keyIDPattern}, schema{"pattern": secretPattern}, keyName(),
			schema{"pattern": holderRefPattern, "not": schema{"pattern": `/([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`}},
		}}),
		"secret":      str(schema{"pattern": secretPattern}),
		"comment":     str(schema{"maxLength": MaxCommentLen}),
		"description": str(schema{"maxLength": MaxDescriptionLen}),
		"password":    str(schema{"minLength": MinPasswordLen, "maxLength": MaxPasswordLen}),
		"time":        rfcTime("An RFC 3339 time like 2026-01-02T15:04:05Z; \"\" for none."),
		"expiry": rfcTime("An RFC 3339 time like 2026-01-02T15:04:05Z, in the future and after not_before; " +
			"\"\" for none."),
		// user.create_apikey's expires_at: there is no not_before.
		"login_expiry": rfcTime("An RFC 3339 time like 2026-01-02T15:04:05Z, in the future; \"\" for none (a key that never expires)."),
		"access_level": str(schema{"enum": slices.Sorted(maps.Keys(scope.AccessLevels))}),
		"scope_type":   str(schema{"enum": slices.Clone(scope.Types)}),
		// A value of the type scope_name names: the branch titled with
		// that type.
		"scope_value": str(schema{"anyOf": valueByType, "description": "A value of the scope type scope_name names: the anyOf branch titled with it."}),
		"scopes":      schema{"type": "object", "properties": scopeProps, "additionalProperties": false},
		"rate_limit": schema{
			"type": "object", "additionalProperties": false,
			"properties": schema{"limit": integer(0, store.MaxRateLimit), "interval_seconds": schema{"type": "integer"}},
			// A limit of 0 (none) needs no interval; any other needs one.
			"anyOf": []any{
				schema{"properties": schema{"limit": schema{"const": 0}}},
				schema{"required": []any{"interval_seconds"}, "properties": schema{"interval_seconds": integer(store.MinRateInterval, store.MaxRateInterval)}},
			},
			"description": "limit calls per interval_seconds; a limit of 0 means none.",
		},
		"quota": schema{
			"type": "object", "additionalProperties": false,
			"properties": schema{
				"remaining":     schema{"type": "integer", "minimum": 0},
				"refill":        str(schema{"enum": []any{"", store.RefillDaily, store.RefillMonthly}}),
				"refill_amount": schema{"type": "integer"},
			},
			// A refill needs a refill_amount of at least 1.
			"anyOf": []any{
				schema{"properties": schema{"refill": schema{"const": ""}}},
				schema{"required": []any{"refill_amount"}, "properties": schema{"refill_amount": schema{"type": "integer", "minimum": 1}}},
			},
		},
		"list_name": str(schema{"pattern": `^((equals|contains|startswith|endswith):)?` + identityClass + `{1,64}$`,
			"description": "A key name, or \"contains:\", \"startswith:\" or \"endswith:\" and part of one."}),
		"owner": str(schema{"pattern": `^(account|user:` + identityClass + `{1,64}(@` + identityClass + `{1,64})?|sa:` +
			identityClass + `{1,64}/` + identityClass + `{1,64})$`}),
		"time_filter": schema{"oneOf": []any{
			timeCond,
			schema{"type": "array", "minItems": 1, "maxItems": maxTimeConditions, "items": timeCond},
		}, "description": "A condition, or a list of them: gt, gte, lt, lte or eq, a colon and an RFC 3339 time, or a bare time (eq)."},
		"sort_by": str(schema{"enum": sorts}),
		"page": schema{"type": "integer", "minimum": 1, "maximum": 1_000_000_000 / MaxPageSize,
			"description": fmt.Sprintf("At most 1000000000 / size (%d at the largest size); not with cursor.", 1_000_000_000/MaxPageSize)},
		"size": integer(1, MaxPageSize),
		"cursor": str(schema{"maxLength": maxCursorLen, "pattern": `^[A-Za-z0-9_-]*$`,
			"description": "The next_cursor of an earlier page with the same sort_by; not with page."}),
		"retain_minutes": integer(0, MaxRetainMinutes),
		"audit_limit":    integer(0, MaxAuditPage),
		"audit_after":    schema{"type": "integer", "minimum": 0},
		"ip": str(schema{"anyOf": []any{
			schema{"const": ""}, schema{"pattern": "^" + ipv4Addr + "$"}, schema{"pattern": "^" + ipv6Addr + "$"},
		}}),
		// method_name is filled in by rpc.discover: the methods the
		// calling key could call.
		"method_name": str(schema{"pattern": `^[a-z0-9_]+(\.[a-z0-9_]+)+$`}),
	}
}()

// paramSchema returns the schema of a params struct field: its named
// constraint when it has a schema tag, else the schema of its Go type.
// An unknown name panics, at registration.
func paramSchema(name, tag string, fallback func() schema) json.RawMessage {
	if tag == "" {
		return mustJSON(fallback())
	}
	s, ok := paramSchemas[tag]
	if !ok {
		panic(fmt.Sprintf("rpc: param %s names an unknown schema %q", name, tag))
	}
	return mustJSON(s)
}

// withCaller adapts a method's document to the calling key, for the
// constraints that depend on it: apikey.verify's method is one of the
// methods the key could call, and user.apikeys needs a username from a
// key that no user holds.
func (s *Server) withCaller(om *OpenRPCMethod, k *store.Key, reachable []*Method) {
	for i, p := range om.Params {
		switch {
		case om.Name == "apikey.verify" && p.Name == "method":
			names := make([]string, len(reachable))
			for j, m := range reachable {
				names[j] = m.Name
			}
			om.Params[i].Schema = mustJSON(str(schema{"enum": names,
				"description": "A method of this server; those listed are the ones the calling key could call."}))
		case om.Name == "user.apikeys" && p.Name == "username" && k.Owner == "":
			om.Params[i].Required = true
		}
	}
}
