package rpc

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/sourcegraph/jsonrpc2"
)

// request is one call as read off the wire.
type request struct {
	// id is the raw id as sent (string, number or null); nil when absent,
	// which makes the call a notification.
	id json.RawMessage
	// method is the method name, unescaped; it may alias the body.
	method []byte
	// params is the raw params value, nil when absent or null.
	params json.RawMessage
	// err is set when the object is not a valid request; the call is
	// answered with it (and id, when one could be read) and not run.
	err *Error
}

func (r *request) notification() bool { return r.id == nil && r.err == nil }

var (
	keyJSONRPC = []byte("jsonrpc")
	keyMethod  = []byte("method")
	keyParams  = []byte("params")
	keyID      = []byte("id")
)

// parseRequest reads one request object. Member names must match exactly;
// any other member makes the request invalid, so that "METHOD" or a second
// "method" can never be read one way here and another way elsewhere.
// maxRequestMembers bounds the members read from a request object.
const maxRequestMembers = 8

func parseRequest(raw []byte, scratch []jsonwire.Member) request {
	return parseRequestFrom(raw, scratch, nil)
}

// parseRequestFrom is parseRequest given, when read is not nil, the
// members of raw as validObject found them.
func parseRequestFrom(raw []byte, scratch []jsonwire.Member, read *jsonwire.Spans) request {
	var r request
	if jsonwire.Kind(raw) != '{' {
		r.err = invalidRequest(ErrIDInvalidRequest, "a request must be a JSON object")
		return r
	}
	// A request has at most four members; a few unknown ones still get
	// an error that echoes the id, a heap of them is refused at once.
	var members []jsonwire.Member
	var err error
	if read != nil {
		members = read.AppendTo(scratch[:0], raw)
		if jsonwire.Duplicate(members) {
			err = jsonwire.ErrDuplicateKey
		}
	} else {
		members, err = jsonwire.MembersLimit(scratch[:0], raw, maxRequestMembers)
	}
	if err == jsonwire.ErrDuplicateKey {
		r.err = invalidRequest(ErrIDInvalidRequest, "a request member appears twice")
		return r
	} else if err == jsonwire.ErrTooManyMembers {
		r.err = invalidRequest(ErrIDInvalidRequest, "a request has at most the members jsonrpc, method, params and id")
		return r
	} else if err != nil {
		r.err = invalidRequest(ErrIDInvalidRequest, "a request must be a JSON object")
		return r
	}
	// Read the id first, so that errors about other members can echo it.
	for _, m := range members {
		if bytes.Equal(m.Key, keyID) {
			switch jsonwire.Kind(m.Value) {
			case '"', '0', 'n':
				r.id = json.RawMessage(m.Value)
			default:
				r.err = invalidRequest(ErrIDInvalidRequest, `member "id" must be a string, a number or null`)
				return r
			}
		}
	}
	var version, method bool
	for _, m := range members {
		switch {
		case bytes.Equal(m.Key, keyJSONRPC):
			version = string(m.Value) == `"2.0"`
		case bytes.Equal(m.Key, keyMethod):
			r.method, method = jsonwire.RawBytes(m.Value)
		case bytes.Equal(m.Key, keyParams):
			switch jsonwire.Kind(m.Value) {
			case '{', '[':
				r.params = json.RawMessage(m.Value)
			case 'n':
			default:
				r.err = invalidRequest(ErrIDInvalidRequest, `member "params" must be an object or an array`)
				return r
			}
		case bytes.Equal(m.Key, keyID):
		default:
			r.err = invalidRequest(ErrIDInvalidRequest, "unknown request member %s", strconv.Quote(string(m.Key)))
			return r
		}
	}
	switch {
	case !version:
		r.err = invalidRequest(ErrIDInvalidRequest, `member "jsonrpc" must be exactly "2.0"`)
	case !method:
		r.err = invalidRequest(ErrIDInvalidRequest, `member "method" must be a string`)
	}
	return r
}

// appendResponse appends the JSON-RPC response for id to dst: the result when
// rerr is nil, else the error.
func appendResponse(dst []byte, id json.RawMessage, result []byte, rerr *Error) []byte {
	if rerr != nil {
		dst = append(dst, `{"jsonrpc":"2.0","error":`...)
		dst = appendErrorObject(dst, rerr.wire())
	} else {
		dst = append(dst, resultPrefix...)
		dst = append(dst, result...)
	}
	return appendResponseEnd(dst, id)
}

// resultPrefix opens a successful response; the result follows it, then
// appendResponseEnd.
const resultPrefix = `{"jsonrpc":"2.0","result":`

func appendResponseEnd(dst []byte, id json.RawMessage) []byte {
	dst = append(dst, `,"id":`...)
	if id == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, id...)
	}
	return append(dst, '}')
}

func appendErrorObject(dst []byte, e *jsonrpc2.Error) []byte {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: every member is a plain value
		return append(dst, `{"code":-32603,"message":"internal error"}`...)
	}
	return append(dst, b...)
}
