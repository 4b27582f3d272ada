// Package urlstyle serves Memset's URL style, for scripts: GET or POST
// /v1/json/<method>, or /v1/json/<method>/<name> to fill the name param,
// with params as query or form fields. Each request becomes one JSON-RPC
// call, handed to the core through its seam (rpc.Server.CallOne), and takes
// the same path as any other (authentication, scope check, audit, log);
// only the shape of the reply differs: the result itself on success, and on
// failure {"error_type", "error_code", "error"} with a fitting HTTP status
// (rpc.HTTPStatus).
package urlstyle

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
)

// Prefix is the path a Handler serves under.
const Prefix = "/v1/json/"

// Error is the body of a failed URL-style call.
type Error struct {
	// ErrorType is the stable error id (data.error_id over JSON-RPC).
	ErrorType string `json:"error_type"`
	// ErrorCode is the JSON-RPC error code.
	ErrorCode int64 `json:"error_code"`
	// Error is the message.
	Error string `json:"error"`
}

// Handler answers Memset URL-style calls under Prefix with the methods of
// s.
func Handler(s *rpc.Server) http.Handler { return handler{s} }

type handler struct{ s *rpc.Server }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if crossSite(r) {
		writeURLError(w, rpc.Errorf(rpc.CodeForbidden, rpc.ErrIDCrossSite,
			"requests from other sites are refused: call from a script, or from a page of this host"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeURLError(w, rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDHTTPMethod, "use GET or POST"))
		return
	}
	method, name, hasName := strings.Cut(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	if hasName && (name == "" || strings.Contains(name, "/")) {
		// A path not served is 404, as any path under no handler is.
		writeURLErrorStatus(w, http.StatusNotFound, rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDInvalidRequest, "the path must be %s<method> or %s<method>/<name>", Prefix, Prefix))
		return
	}
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		multipartForm := false
		var boundary string
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, ps, _ := mime.ParseMediaType(ct)
			switch mt {
			case "application/x-www-form-urlencoded":
			case "multipart/form-data":
				multipartForm, boundary = true, ps["boundary"]
			default:
				writeURLError(w, rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDMediaType, "post params as application/x-www-form-urlencoded or multipart/form-data"))
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes())
		if multipartForm {
			if e := readMultipartFields(r.Body, boundary, values); e != nil {
				writeURLError(w, e)
				return
			}
		} else {
			if err := r.ParseForm(); err != nil {
				writeURLError(w, rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDInvalidRequest, "the form could not be read, or is larger than %d bytes", s.MaxBodyBytes()))
				return
			}
			values = r.Form // the query and the body
		}
	}
	if e := urlUTF8(method, name, values); e != nil {
		writeURLError(w, e)
		return
	}
	reply, e := s.CallOne(r.Context(), urlRequest(s, method, name, hasName, values), s.PeerOf(r), nil)
	if e != nil {
		writeURLError(w, e)
		return
	}
	var res struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(reply, &res); err != nil || res.Result == nil {
		writeURLError(w, rpc.Errorf(rpc.CodeInternalError, rpc.ErrIDInternal, "internal error"))
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(append(res.Result, '\n'))
}

// maxMultipartParts bounds the fields of a multipart form, as net/http's
// own ParseMultipartForm does by default.
const maxMultipartParts = 1000

// readMultipartFields reads the fields of a multipart/form-data body into
// values, beside those of the query, as ParseForm does for a plain form: a
// field given twice, or in both, is a list, which a scalar param refuses.
// It keeps everything in memory, bounded by the body limit that body
// enforces: no temporary files. Only plain fields are accepted; a part
// that is a file (it has a filename), has a Content-Type other than
// text/plain in UTF-8, or a Content-Transfer-Encoding, is refused rather
// than read one way here and another way by the client.
func readMultipartFields(body io.Reader, boundary string, values url.Values) *rpc.Error {
	bad := func(format string, args ...any) *rpc.Error {
		return rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDInvalidRequest, format, args...)
	}
	if boundary == "" {
		return bad("a multipart/form-data body needs a boundary parameter in its Content-Type")
	}
	mr := multipart.NewReader(body, boundary)
	for n := 0; ; n++ {
		// NextRawPart: a part's bytes exactly as sent, with no decoding
		// of a Content-Transfer-Encoding behind the caller's back.
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bad("the form is larger than %d bytes", tooLarge.Limit)
		} else if err != nil {
			return bad("the multipart form could not be read")
		}
		if n == maxMultipartParts {
			return bad("a form may hold at most %d fields", maxMultipartParts)
		}
		disp, dps, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name, hasName := dps["name"]
		switch {
		case err != nil || disp != "form-data" || !hasName || len(p.Header.Values("Content-Disposition")) != 1:
			return bad("each part of a multipart form must have one Content-Disposition: form-data with a name")
		case p.FileName() != "" || dps["filename"] != "" || dps["filename*"] != "":
			return bad("field %s is a file; files are not accepted, send params as plain fields", strconv.Quote(name))
		case p.Header.Get("Content-Transfer-Encoding") != "":
			return bad("field %s has a Content-Transfer-Encoding; send it as it is", strconv.Quote(name))
		}
		if ct := p.Header.Get("Content-Type"); ct != "" {
			mt, cps, err := mime.ParseMediaType(ct)
			if cs := strings.ToLower(cps["charset"]); err != nil || mt != "text/plain" || cs != "" && cs != "utf-8" && cs != "us-ascii" {
				return bad("field %s must be text/plain in UTF-8", strconv.Quote(name))
			}
		}
		v, err := io.ReadAll(p)
		if errors.As(err, &tooLarge) {
			return bad("the form is larger than %d bytes", tooLarge.Limit)
		} else if err != nil {
			return bad("the multipart form could not be read")
		}
		values[name] = append(values[name], string(v))
	}
}

// urlUTF8 refuses a URL-style call whose method, name, field names or
// values are not valid UTF-8: percent-encoding can carry any bytes, and
// writing them as JSON would store U+FFFD in their place.
func urlUTF8(method, name string, values url.Values) *rpc.Error {
	if !utf8.ValidString(method) || !utf8.ValidString(name) {
		return rpc.InvalidParam("name", "the path must be valid UTF-8")
	}
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return rpc.InvalidParam("(a field name)", "field names must be valid UTF-8")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return rpc.InvalidParam(k, "must be valid UTF-8")
			}
		}
	}
	return nil
}

// crossSite reports whether a browser sent r on behalf of another site.
// URL-style calls change state on GET and on plain form posts, which any
// page can make a browser send; scripts send neither header.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// urlRequest builds the JSON-RPC request of a URL-style call, typing each
// field by the method's param schema. It never fails: a field that does not
// convert goes as a string, an unknown method or param as it is, so that
// the call path refuses it with its usual error, after authentication, and
// logs and audits it like any other call.
func urlRequest(s *rpc.Server, method, name string, hasName bool, values url.Values) []byte {
	body := append([]byte(`{"jsonrpc":"2.0","method":`), jsonwire.AppendString(nil, method)...)
	body = append(body, `,"params":{`...)
	var doc rpc.MethodDoc
	if m, ok := s.Method(method); ok {
		doc = m.Doc
	}
	first := true
	member := func(k string, v []byte) {
		if !first {
			body = append(body, ',')
		}
		first = false
		body = jsonwire.AppendString(body, k)
		body = append(body, ':')
		body = append(body, v...)
	}
	if hasName { // a name in the fields too makes the name appear twice: refused
		member("name", jsonwire.AppendString(nil, name))
	}
	for k, vs := range values {
		member(k, urlValue(vs, doc.Params[k]))
	}
	return append(body, `},"id":1}`...)
}

// urlValue turns the field values of a param into JSON, by its schema:
// strings as they are, booleans as 0/1 (or true/false), numbers checked,
// arrays from repeated fields (or JSON text), objects as JSON text. A value
// that does not fit goes as a string, for the method to refuse; a field
// given twice for a scalar goes as a list, likewise.
func urlValue(vs []string, schema json.RawMessage) []byte {
	var sch struct {
		Type  string `json:"type"`
		Items *struct {
			Type string `json:"type"`
		} `json:"items"`
	}
	_ = json.Unmarshal(schema, &sch)
	if sch.Type == "array" && len(vs) == 1 && strings.HasPrefix(strings.TrimSpace(vs[0]), "[") && jsonwire.Valid([]byte(vs[0])) {
		return []byte(vs[0])
	}
	if sch.Type != "array" && len(vs) == 1 {
		return scalar(sch.Type, vs[0])
	}
	itemType := ""
	if sch.Items != nil {
		itemType = sch.Items.Type
	}
	out := []byte{'['}
	for i, v := range vs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, scalar(itemType, v)...)
	}
	return append(out, ']')
}

func scalar(typ, v string) []byte {
	switch typ {
	case "string":
	case "boolean":
		switch v {
		case "1", "true":
			return []byte("true")
		case "0", "false":
			return []byte("false")
		}
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return []byte(v)
		}
	case "number":
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return strconv.AppendFloat(nil, f, 'g', -1, 64)
		}
	default: // objects, and params of no known type: JSON text when it is some
		if strings.TrimSpace(v) != "" && jsonwire.Valid([]byte(v)) {
			return []byte(v)
		}
	}
	return jsonwire.AppendString(nil, v)
}

// writeURLError answers a failed URL-style call with e, under its
// rpc.HTTPStatus.
func writeURLError(w http.ResponseWriter, e *rpc.Error) { writeURLErrorStatus(w, rpc.HTTPStatus(e), e) }

func writeURLErrorStatus(w http.ResponseWriter, status int, e *rpc.Error) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if status == http.StatusUnauthorized {
		// Bearer, not Basic: a Basic challenge makes browsers ask for the
		// key and then send it with every request, cross-site included.
		h.Set("WWW-Authenticate", `Bearer realm="apikeyd"`)
	}
	if e.RetryAfterMs > 0 {
		h.Set("Retry-After", strconv.FormatInt((e.RetryAfterMs+999)/1000, 10))
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(Error{ErrorType: e.ID, ErrorCode: e.Code, Error: e.Message})
	_, _ = w.Write(append(b, '\n'))
}

var jsonContentType = []string{"application/json"}
