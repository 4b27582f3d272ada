// Package gateway is apikeyd's gateway mode: methods the server does not
// serve itself are forwarded, after authentication and the access
// decision, to an upstream JSON-RPC 2.0 service. Only catalogued methods
// are forwarded; the catalog is an OpenRPC document, from the upstream's own
// rpc.discover or from a file. Forward registers each in rpc's method table
// as a Forwarded method whose handler posts the call upstream; the core
// authenticates, decides access, audits and logs it as any other call.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	jsonv2 "github.com/go-json-experiment/json"
)

// Headers apikeyd sets on every forwarded call. The caller's own
// Authorization header is never passed on; Upstream.Token, when set, goes
// in Authorization instead, so the upstream can tell calls that came
// through apikeyd from any other.
const (
	HeaderAccount = "X-Apikeyd-Account" // the calling key's account
	HeaderKeyID   = "X-Apikeyd-Key-Id"  // the calling key's public id
	HeaderOwner   = "X-Apikeyd-Owner"   // its user or service account, if any
)

// Upstream is a JSON-RPC 2.0 service over HTTP that calls are forwarded to.
type Upstream struct {
	// URL is the upstream's endpoint, such as http://127.0.0.1:9000/rpc.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds each forwarded call; 0 means 10 seconds.
	Timeout time.Duration
	// MaxReplyBytes caps a reply read from the upstream; 0 means 8 MiB.
	MaxReplyBytes int64
	// MaxConns bounds the connections to the upstream, and so the calls
	// waiting on it at once; 0 means 4096. A call that finds them all busy
	// waits for one up to a second (or half its Timeout, if less), then
	// fails with upstream_unavailable, never sent.
	MaxConns int

	hc *fasthttp.HostClient // made by defaults
}

func (u *Upstream) defaults() {
	if u.Timeout <= 0 {
		u.Timeout = 10 * time.Second
	}
	if u.MaxReplyBytes <= 0 {
		u.MaxReplyBytes = 8 << 20
	}
	if u.MaxConns <= 0 {
		u.MaxConns = 4096
	}
	if u.hc == nil {
		pu, err := url.Parse(u.URL)
		if err != nil {
			pu = &url.URL{}
		}
		u.hc = &fasthttp.HostClient{Addr: fasthttp.AddMissingPort(pu.Host, pu.Scheme == "https"),
			IsTLS: pu.Scheme == "https", MaxConns: u.MaxConns, MaxConnWaitTimeout: min(time.Second, u.Timeout/2), MaxResponseBodySize: int(u.MaxReplyBytes),
			DisablePathNormalizing: true, NoDefaultUserAgentHeader: true,
			// A reply's head may be larger than fasthttp's 4 KiB default.
			ReadBufferSize: 16 << 10}
		if !u.hc.IsTLS {
			u.hc.DialTimeout = dialSendOnRead
		}
	}
}

// RedactedURL is the URL without any password in it, for logs.
func (u *Upstream) RedactedURL() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// builtinNamespaces are served by apikeyd itself and never forwarded.
var builtinNamespaces = []string{"apikey", "account", "user", "service_account", "audit", "rpc", "system"}

// CatalogMethod is one forwardable method of an upstream.
type CatalogMethod struct {
	Name    string
	Summary string
	Params  []rpc.Param
	Access  string
	Doc     rpc.MethodDoc
}

// maxCatalogBytes bounds a catalog document.
const maxCatalogBytes = 8 << 20

// ParseCatalog reads an OpenRPC document into the methods to forward. Each
// method's access class is its "x-access" member, MANAGE when absent, so
// that an unannotated method needs the widest access. It refuses methods in
// apikeyd's own namespaces, malformed names and classes, and references it
// cannot resolve.
func ParseCatalog(doc []byte) ([]CatalogMethod, error) {
	if len(doc) > maxCatalogBytes {
		return nil, fmt.Errorf("catalog: larger than %d bytes", maxCatalogBytes)
	}
	var d struct {
		Methods []struct {
			Name           string `json:"name"`
			Summary        string `json:"summary"`
			Ref            string `json:"$ref"`
			ParamStructure string `json:"paramStructure"`
			Params         []struct {
				Name     string          `json:"name"`
				Required bool            `json:"required"`
				Schema   json.RawMessage `json:"schema"`
				Ref      string          `json:"$ref"`
			} `json:"params"`
			Result *struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"result"`
			Access string `json:"x-access"`
		} `json:"methods"`
	}
	// Strict (names exact, none twice, UTF-8), but open to the many
	// members of OpenRPC that apikeyd does not read.
	if err := jsonv2.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("catalog: not an OpenRPC document: %w", err)
	}
	var out []CatalogMethod
	seen := map[string]bool{}
	for i, m := range d.Methods {
		where := fmt.Sprintf("catalog: method %d (%q)", i, m.Name)
		switch {
		case m.Ref != "":
			return nil, fmt.Errorf("%s: $ref methods are not supported; write the method out", where)
		case !rpc.ValidMethodName(m.Name):
			return nil, fmt.Errorf("%s: malformed name (want dotted lowercase segments, like server.reboot)", where)
		case slices.Contains(builtinNamespaces, strings.SplitN(m.Name, ".", 2)[0]):
			return nil, fmt.Errorf("%s: the %s.* namespace is apikeyd's own", where, strings.SplitN(m.Name, ".", 2)[0])
		case seen[m.Name]:
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		seen[m.Name] = true
		cm := CatalogMethod{Name: m.Name, Summary: m.Summary, Access: m.Access,
			Doc: rpc.MethodDoc{Params: map[string]json.RawMessage{}, ParamStructure: m.ParamStructure}}
		if cm.Access == "" {
			cm.Access = scope.Manage
		}
		if !slices.Contains(scope.AccessClasses, cm.Access) {
			return nil, fmt.Errorf("%s: x-access %q is not one of %s", where, cm.Access, strings.Join(scope.AccessClasses, ", "))
		}
		switch m.ParamStructure {
		case "", "either", "by-name", "by-position":
		default:
			return nil, fmt.Errorf("%s: paramStructure %q is not by-name, by-position or either", where, m.ParamStructure)
		}
		pseen := map[string]bool{}
		for _, p := range m.Params {
			if p.Ref != "" {
				return nil, fmt.Errorf("%s: $ref params are not supported; write the param out", where)
			}
			if p.Name == "" || pseen[p.Name] {
				return nil, fmt.Errorf("%s: empty or repeated param name %q", where, p.Name)
			}
			pseen[p.Name] = true
			cm.Params = append(cm.Params, rpc.Param{Name: p.Name, Required: p.Required})
			if len(p.Schema) > 0 {
				cm.Doc.Params[p.Name] = p.Schema
			}
		}
		if m.Result != nil && len(m.Result.Schema) > 0 {
			cm.Doc.Result = m.Result.Schema
		}
		out = append(out, cm)
	}
	return out, nil
}

// Discover fetches the upstream's OpenRPC document by calling its
// rpc.discover.
func (u *Upstream) Discover(ctx context.Context) ([]byte, error) {
	u.defaults()
	res, err := u.call(ctx, []byte(`{"jsonrpc":"2.0","method":"rpc.discover","id":1}`), nil)
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, fmt.Errorf("upstream rpc.discover: error %d: %s", res.Error.Code, res.Error.Message)
	}
	return res.Result, nil
}

// Forward registers every method of catalog in s's table as forwarded to
// u. Forwarded methods are authenticated, scope-checked and audited like
// any other; those of every class but READ are audited as mutations.
func Forward(s *rpc.Server, u *Upstream, catalog []CatalogMethod) error {
	u.defaults()
	for _, cm := range catalog {
		if _, taken := s.Method(cm.Name); taken {
			return fmt.Errorf("forward %s: a method of that name is already served", cm.Name)
		}
	}
	log := s.Logger()
	for _, cm := range catalog {
		m := rpc.Method{Name: cm.Name, Summary: cm.Summary, Params: cm.Params, Access: cm.Access,
			Mutates: cm.Access != scope.Read, Doc: cm.Doc, Forwarded: true}
		f := &forwarded{u: u, log: log, name: cm.Name, params: cm.Params,
			byPosition: cm.Doc.ParamStructure == "by-position"}
		m.Handler = f.call
		s.Register(m)
	}
	return nil
}

// forwarded is one method forwarded to an upstream.
type forwarded struct {
	u          *Upstream
	log        *zerolog.Logger
	name       string
	params     []rpc.Param // in catalog order
	byPosition bool        // the upstream takes params as an array
}

// upstreamReply is a JSON-RPC 2.0 response as the upstream sends it.
type upstreamReply struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	ID json.RawMessage `json:"id"`
}

// call sends one call upstream and returns its result, or its error as
// the upstream gave it.
func (f *forwarded) call(ctx context.Context, p *rpc.Params) (any, error) {
	u, method := f.u, f.name
	for _, prm := range f.params {
		if prm.Required && p.Get(prm.Name) == nil {
			return nil, rpc.InvalidParam(prm.Name, "is required")
		}
	}
	body := make([]byte, 0, 256)
	body = append(body, `{"jsonrpc":"2.0","method":`...)
	body = jsonwire.AppendString(body, method)
	if p.Len() > 0 {
		body = append(body, `,"params":`...)
		body = f.appendParams(body, p)
	}
	body = append(body, `,"id":1}`...)
	who, _ := rpc.CallerFrom(ctx) // always known: forwarded methods need a key
	res, err := u.call(ctx, body, &who)
	if err != nil {
		f.log.Warn().Str("method", method).Str("upstream", u.RedactedURL()).Str("outcome", err.ID).Msg("upstream call failed")
		return nil, err
	}
	if res.Error != nil { // the upstream's own error, passed on as it gave it
		return nil, &rpc.Error{Code: res.Error.Code, Message: res.Error.Message, ID: rpc.ErrIDUpstreamError, PassThrough: true, RawData: res.Error.Data}
	}
	return rawResult(res.Result), nil
}

// rawResult is a result already encoded, by the upstream: it is copied
// into the reply as it is.
type rawResult json.RawMessage

func (r rawResult) AppendJSON(dst []byte) []byte { return append(dst, r...) }

// appendParams appends the params as the upstream takes them: an object
// by name, or for a by-position method an array in catalog order.
func (f *forwarded) appendParams(dst []byte, p *rpc.Params) []byte {
	if !f.byPosition {
		dst = append(dst, '{')
		i := 0
		for name, value := range p.All() {
			if i > 0 {
				dst = append(dst, ',')
			}
			i++
			dst = jsonwire.AppendString(dst, name)
			dst = append(dst, ':')
			dst = append(dst, value...)
		}
		return append(dst, '}')
	}
	last := -1
	for i, prm := range f.params {
		if p.Get(prm.Name) != nil {
			last = i
		}
	}
	dst = append(dst, '[')
	for i := 0; i <= last; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if v := p.Get(f.params[i].Name); v != nil {
			dst = append(dst, v...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, ']')
}

var (
	errUpstreamTimeout = rpc.Errorf(rpc.CodeUpstreamTimeout, rpc.ErrIDUpstreamTimeout,
		"the upstream service did not answer in time; the call may or may not have taken effect")
	errUpstreamBadReply = rpc.Errorf(rpc.CodeUpstreamBadReply, rpc.ErrIDUpstreamBadReply,
		"the upstream service answered with something that is not a JSON-RPC 2.0 response")
)

func upstreamUnavailable(detail string) *rpc.Error {
	e := rpc.Errorf(rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable, "the upstream service could not be reached")
	e.Detail = detail
	return e
}

// parseUpstreamReply reads a JSON-RPC 2.0 response to id 1 with the exact-
// key scanner: no reflection on the hot path of a forwarded call. The
// result is kept as the raw bytes the upstream sent.
func parseUpstreamReply(raw []byte) (*upstreamReply, bool) {
	if !jsonwire.Valid(raw) {
		return nil, false
	}
	var scratch [4]jsonwire.Member
	members, err := jsonwire.MembersLimit(scratch[:0], raw, 16)
	if err != nil {
		return nil, false
	}
	var res upstreamReply
	for _, m := range members {
		switch string(m.Key) {
		case "jsonrpc":
			res.JSONRPC, _ = jsonwire.RawString(m.Value)
		case "result":
			res.Result = m.Value // raw is this reply's own buffer
		case "error":
			if jsonwire.Kind(m.Value) == 'n' {
				continue
			}
			if jsonv2.Unmarshal(m.Value, &res.Error) != nil || res.Error == nil || res.Error.Message == "" {
				return nil, false
			}
		case "id":
			res.ID = m.Value
		}
	}
	if res.JSONRPC != "2.0" || (res.Result == nil) == (res.Error == nil) || string(res.ID) != "1" {
		return nil, false
	}
	return &res, true
}

// call posts body to the upstream with who is calling, and reads the reply.
func (u *Upstream) call(ctx context.Context, body []byte, who *rpc.Caller) (*upstreamReply, *rpc.Error) {
	deadline := time.Now().Add(u.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(u.URL)
	req.Header.SetContentType("application/json")
	if u.Token != "" {
		req.Header.Set("Authorization", "Bearer "+u.Token)
	}
	if who != nil {
		req.Header.Set(HeaderAccount, who.Account)
		req.Header.Set(HeaderKeyID, who.KeyID)
		if who.Owner != "" {
			req.Header.Set(HeaderOwner, who.Owner)
		}
	}
	req.SetBodyRaw(body)
	if err := u.hc.DoDeadline(req, resp, deadline); err != nil {
		switch {
		case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout):
			return nil, errUpstreamTimeout
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return nil, errUpstreamBadReply
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			return nil, upstreamUnavailable("too many calls in flight to the upstream")
		}
		return nil, upstreamUnavailable("the connection failed")
	}
	if resp.StatusCode() != http.StatusOK {
		return nil, upstreamUnavailable(fmt.Sprintf("the upstream answered HTTP %d", resp.StatusCode()))
	}
	raw := append([]byte(nil), resp.Body()...) // resp goes back to its pool
	res, ok := parseUpstreamReply(raw)
	if !ok {
		return nil, errUpstreamBadReply
	}
	return res, nil
}
