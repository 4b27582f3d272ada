package rpc

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

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
)

// Memset's URL style, for scripts: GET or POST /v1/json/<method>, or
// /v1/json/<method>/<name> to fill the name param, with params as query or
// form fields. Each request becomes one JSON-RPC call and takes the same
// path as any other (authentication, scope check, audit, log); only the
// shape of the reply differs: the result itself on success, and on failure
// {"error_type", "error_code", "error"} with a fitting HTTP status.

// URLPrefix is the path ServeURL serves under.
const URLPrefix = "/v1/json/"

// URLError is the body of a failed URL-style call.
type URLError struct {
	// ErrorType is the stable error id (data.error_id over JSON-RPC).
	ErrorType string `json:"error_type"`
	// ErrorCode is the JSON-RPC error code.
	ErrorCode int64 `json:"error_code"`
	// Error is the message.
	Error string `json:"error"`
}

// ServeURL answers Memset URL-style calls under URLPrefix.
func (s *Server) ServeURL(w http.ResponseWriter, r *http.Request) {
	if crossSite(r) {
		writeURLError(w, Errorf(CodeForbidden, ErrIDCrossSite,
			"requests from other sites are refused: call from a script, or from a page of this host"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeURLError(w, Errorf(CodeInvalidRequest, ErrIDHTTPMethod, "use GET or POST"))
		return
	}
	method, name, hasName := strings.Cut(strings.TrimPrefix(r.URL.Path, URLPrefix), "/")
	if hasName && (name == "" || strings.Contains(name, "/")) {
		// A path not served is 404, as any path under no handler is.
		writeURLErrorStatus(w, http.StatusNotFound, Errorf(CodeInvalidRequest, ErrIDInvalidRequest, "the path must be %s<method> or %s<method>/<name>", URLPrefix, URLPrefix))
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
				writeURLError(w, Errorf(CodeInvalidRequest, ErrIDMediaType, "post params as application/x-www-form-urlencoded or multipart/form-data"))
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		if multipartForm {
			if e := readMultipartFields(r.Body, boundary, values); e != nil {
				writeURLError(w, e)
				return
			}
		} else {
			if err := r.ParseForm(); err != nil {
				writeURLError(w, Errorf(CodeInvalidRequest, ErrIDInvalidRequest, "the form could not be read, or is larger than %d bytes", s.opts.MaxBodyBytes))
				return
			}
			values = r.Form // the query and the body
		}
	}
	if e := urlUTF8(method, name, values); e != nil {
		writeURLError(w, e)
		return
	}
	reply, e := s.CallOne(r.Context(), s.urlRequest(method, name, hasName, values), s.PeerOf(r), nil)
	if e != nil {
		writeURLError(w, e)
		return
	}
	var res struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(reply, &res); err != nil || res.Result == nil {
		writeURLError(w, Errorf(CodeInternalError, ErrIDInternal, "internal error"))
		return
	}
	w.Header()["Content-Type"] = contentTypeJSON
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
func readMultipartFields(body io.Reader, boundary string, values url.Values) *Error {
	bad := func(format string, args ...any) *Error {
		return Errorf(CodeInvalidRequest, ErrIDInvalidRequest, format, args...)
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
func urlUTF8(method, name string, values url.Values) *Error {
	if !utf8.ValidString(method) || !utf8.ValidString(name) {
		return InvalidParam("name", "the path must be valid UTF-8")
	}
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return InvalidParam("(a field name)", "field names must be valid UTF-8")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return InvalidParam(k, "must be valid UTF-8")
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
func (s *Server) urlRequest(method, name string, hasName bool, values url.Values) []byte {
	body := append([]byte(`{"jsonrpc":"2.0","method":`), jsonwire.AppendString(nil, method)...)
	body = append(body, `,"params":{`...)
	var doc MethodDoc
	if m := s.methods[method]; m != nil {
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
// HTTPStatus.
func writeURLError(w http.ResponseWriter, e *Error) { writeURLErrorStatus(w, HTTPStatus(e), e) }

func writeURLErrorStatus(w http.ResponseWriter, status int, e *Error) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	if status == http.StatusUnauthorized {
		// Bearer, not Basic: a Basic challenge makes browsers ask for the
		// key and then send it with every request, cross-site included.
		h.Set("WWW-Authenticate", `Bearer realm="apikeyd"`)
	}
	if e.RetryAfterMs > 0 {
		h.Set("Retry-After", strconv.FormatInt((e.RetryAfterMs+999)/1000, 10))
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(URLError{ErrorType: e.ID, ErrorCode: e.Code, Error: e.Message})
	_, _ = w.Write(append(b, '\n'))
}
