package rpc

import (
	"errors"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Values nested in params (objects and lists, such as scopes or a rate
// limit) are read with go-json-experiment/json, the encoding/json/v2 API,
// which is strict where encoding/json is lenient: a member name given twice
// is an error, names are matched exactly (never without regard to case),
// a member the Go type does not have is an error, and strings must be
// valid UTF-8. Strings at the top level of params keep their own cheaper
// reading (jsonwire.RawString), which the envelope's jsonwire.Valid has
// already made safe.

// strictUnmarshal decodes the JSON value raw into v with the rules above.
func strictUnmarshal(raw []byte, v any) error {
	return jsonv2.Unmarshal(raw, v, jsonv2.RejectUnknownMembers(true))
}

// strictParamError turns a strictUnmarshal error for param name into an
// invalid-params error naming the member at fault (scopes.method,
// rate_limit.LIMIT), or nil when the error is of another kind (a value of
// the wrong type), which the caller describes itself.
func strictParamError(name string, err error) *Error {
	var at string
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn):
		at = string(syn.JSONPointer)
	case errors.As(err, &sem):
		at = string(sem.JSONPointer)
	}
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		field := name + pointerField(at)
		return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams, Field: name,
			Message: "invalid params: " + field + ": a member name appears twice (names must be unique, compared exactly)"}
	case errors.Is(err, jsonv2.ErrUnknownName):
		field := name + pointerField(at)
		return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams, Field: name,
			Message: "invalid params: " + field + ": no such member (names are matched exactly, in their documented case)"}
	}
	return nil
}

// pointerField writes a JSON pointer (/method/1) as a field path
// (.method.1), for messages; a name too long or odd to show is cut short.
func pointerField(ptr string) string {
	if ptr == "" {
		return ""
	}
	var b strings.Builder
	for tok := range strings.SplitSeq(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if len(tok) > 64 {
			tok = tok[:64] + "..."
		}
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		b.WriteString("." + strconv.Quote(tok)[1:len(strconv.Quote(tok))-1])
	}
	return b.String()
}
