package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/sourcegraph/jsonrpc2"
)

// Error codes. The first five are the JSON-RPC 2.0 specification's; the
// rest are apikeyd's. Codes are append-only: a code once published keeps its
// meaning.
const (
	CodeParseError      = jsonrpc2.CodeParseError     // -32700: the body is not JSON
	CodeInvalidRequest  = jsonrpc2.CodeInvalidRequest // -32600: not a valid request object
	CodeMethodNotFound  = jsonrpc2.CodeMethodNotFound // -32601: no such method
	CodeInvalidParams   = jsonrpc2.CodeInvalidParams  // -32602: a parameter is missing, mistyped or out of range
	CodeInternalError   = jsonrpc2.CodeInternalError  // -32603: the server failed; nothing about it is disclosed
	CodeUnauthenticated = -32001                      // no key, or an unknown key
	CodeForbidden       = -32003                      // the key's scopes deny the call
	CodeNotFound        = -32004                      // no such object in the caller's account
	CodeConflict        = -32009                      // the change clashes with stored data
	CodeRateLimited     = -32029                      // too many calls; retry later
	// Gateway mode: the upstream failed the call.
	CodeUpstreamUnavailable = -32050 // the upstream could not be reached, or refused the request
	CodeUpstreamTimeout     = -32051 // the upstream did not answer in time
	CodeUpstreamBadReply    = -32052 // the upstream's answer is not a JSON-RPC 2.0 response
	// This node cannot serve the call now; another node may.
	CodeUnavailable = -32053
)

// Error ids: stable strings in data.error_id, one per distinct failure, listed
// in docs/api.md. Clients should branch on these, not on messages.
const (
	ErrIDParse                  = "parse_error"
	ErrIDInvalidRequest         = "invalid_request"
	ErrIDBodyTooLarge           = "body_too_large"
	ErrIDBatchTooLarge          = "batch_too_large"
	ErrIDMediaType              = "unsupported_media_type"
	ErrIDHTTPMethod             = "http_method_not_allowed"
	ErrIDMethodNotFound         = "method_not_found"
	ErrIDInvalidParams          = "invalid_params"
	ErrIDInternal               = "internal_error"
	ErrIDMissingKey             = "missing_key"
	ErrIDInvalidKey             = "invalid_key"
	ErrIDScopeDenied            = "scope_denied"
	ErrIDEscalation             = "escalation_denied"
	ErrIDKeyNotFound            = "key_not_found"
	ErrIDConflict               = "conflict"
	ErrIDOperatorOnly           = "operator_only"
	ErrIDAccountNotFound        = "account_not_found"
	ErrIDAccountExists          = "account_exists"
	ErrIDOperatorAccount        = "operator_account"
	ErrIDLoginFailed            = "login_failed"
	ErrIDLoginLocked            = "login_locked"
	ErrIDBusy                   = "busy"
	ErrIDUserNotFound           = "user_not_found"
	ErrIDUserExists             = "user_exists"
	ErrIDServiceAccountNotFound = "service_account_not_found"
	ErrIDServiceAccountExists   = "service_account_exists"
	ErrIDKeyNameTaken           = "key_name_taken"
	ErrIDRateLimited            = "rate_limited"
	ErrIDQuotaExhausted         = "quota_exhausted"
	ErrIDUpstreamUnavailable    = "upstream_unavailable"
	ErrIDCrossSite              = "cross_site"
	ErrIDTooManyConnections     = "too_many_connections"
	ErrIDUpstreamTimeout        = "upstream_timeout"
	ErrIDUpstreamBadReply       = "upstream_bad_reply"
	// ErrIDUpstreamError marks an error the upstream answered with, which
	// goes to the client as the upstream gave it.
	ErrIDUpstreamError = "upstream_error"
)

// Error ids of bounded lists.
const (
	// ErrIDListTooBroad refuses an apikey.list whose filters would make it
	// read more than store.MaxListScan keys one by one.
	ErrIDListTooBroad = "list_too_broad"
)

// Error ids of the operator rule (docs/operations.md): the server never loses
// its last full operator key.
const (
	// ErrIDLastOperatorKey refuses a change that would leave the operator
	// account without a full operator key.
	ErrIDLastOperatorKey = "last_operator_key"
)

// Error ids of a store shared by many nodes.
const (
	// ErrIDStale refuses to authenticate on a node that cannot vouch that
	// its copy of the data is current (store.ErrStale).
	ErrIDStale = "stale"
)

// Error ids of the method table's rules beyond scopes.
const (
	// ErrIDHeldKey refuses a key held by a user or service account a
	// method only keys of the account itself may call (AccountKeysOnly).
	ErrIDHeldKey = "held_key"
)

// Error is an error a client may see: a JSON-RPC code, a stable error id, a
// message a person can act on and, for invalid params, the field at fault.
// Handlers return *Error for every failure they mean to report; anything else
// becomes an internal error whose text goes to the log only.
type Error struct {
	Code    int64
	ID      string
	Message string
	Field   string
	// Detail adds to a fixed message, such as the specification's
	// "Invalid Request", what exactly was wrong. It goes out as data.detail.
	Detail string
	// RetryAfterMs, when set, tells a limited client when to try again.
	RetryAfterMs int64
	// PassThrough marks an upstream's own error, which goes to the client
	// as the upstream gave it: RawData is its data (nil: none), instead of
	// apikeyd's error_id.
	PassThrough bool
	RawData     json.RawMessage
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.ID, e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(code int64, id, format string, args ...any) *Error {
	return &Error{Code: code, ID: id, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam returns the -32602 error for one parameter; the message names it.
func InvalidParam(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams, Field: field,
		Message: "invalid params: " + field + ": " + fmt.Sprintf(format, args...)}
}

// errorData is the data member of every error apikeyd sends.
type errorData struct {
	ErrorID string `json:"error_id"`
	Field   string `json:"field,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// RetryAfterMs tells a rate-limited client how long to wait.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty"`
}

// scopeDenied is the error for each kind of scope.Denial: the message and
// data.detail name the restriction that refused the call, never its values.
var scopeDenied = func() map[string]*Error {
	m := map[string]*Error{}
	for _, t := range []string{"method", "name", "access", "ip"} {
		e := Errorf(CodeForbidden, ErrIDScopeDenied, "this key's %s scope does not allow this call", t)
		e.Detail = t
		m[t] = e
	}
	return m
}()

// toError maps any error to the *Error a client sees. It is the one place
// where errors of package store and scope get their codes.
func toError(err error) *Error {
	var e *Error
	var se *scope.Error
	var denial *scope.Denial
	var limited *store.LimitError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &se):
		return InvalidParam(se.Field, "%s", se.Reason)
	case errors.As(err, &denial):
		if e, ok := scopeDenied[denial.Type]; ok {
			return e
		}
		return Errorf(CodeForbidden, ErrIDScopeDenied, "this key's scopes do not allow this call")
	case errors.As(err, &limited):
		if limited.Quota {
			e := Errorf(CodeRateLimited, ErrIDQuotaExhausted, "this key has no calls left in its quota")
			e.RetryAfterMs = limited.RetryAfter.Milliseconds()
			return e
		}
		e := Errorf(CodeRateLimited, ErrIDRateLimited, "this key is over its rate limit; retry after %d ms", max(limited.RetryAfter.Milliseconds(), 1))
		e.RetryAfterMs = max(limited.RetryAfter.Milliseconds(), 1)
		return e
	case errors.Is(err, store.ErrStale):
		return Errorf(CodeUnavailable, ErrIDStale, "this node cannot vouch that its data is current, so it authenticates nothing: retry on another node, or here shortly")
	case errors.Is(err, store.ErrListTooBroad):
		return Errorf(CodeInvalidParams, ErrIDListTooBroad, "these filters would read more than %d keys one by one: narrow the list by owner, active, an exact or startswith name, or a created, expires_at or last_rotated condition; or sort by created", store.MaxListScan)
	case errors.Is(err, store.ErrKeyNameTaken):
		return Errorf(CodeConflict, ErrIDKeyNameTaken, "another key of this holder has that name")
	case errors.Is(err, store.ErrServiceAccountNotFound):
		return Errorf(CodeNotFound, ErrIDServiceAccountNotFound, "no such service account in this account")
	case errors.Is(err, store.ErrServiceAccountExists):
		return Errorf(CodeConflict, ErrIDServiceAccountExists, "a service account of that name exists in this account")
	case errors.Is(err, store.ErrUserNotFound):
		return Errorf(CodeNotFound, ErrIDUserNotFound, "no such user in this account")
	case errors.Is(err, store.ErrUserExists):
		return Errorf(CodeConflict, ErrIDUserExists, "that user name is taken")
	case errors.Is(err, store.ErrAccountNotFound):
		return Errorf(CodeNotFound, ErrIDAccountNotFound, "no such account")
	case errors.Is(err, store.ErrAccountExists):
		return Errorf(CodeConflict, ErrIDAccountExists, "an account of that name exists")
	case errors.Is(err, store.ErrOperatorAccount):
		return Errorf(CodeConflict, ErrIDOperatorAccount, "the operator account cannot be deleted")
	case errors.Is(err, store.ErrLastOperatorKey):
		return Errorf(CodeConflict, ErrIDLastOperatorKey, "this change would leave the operator account without a full operator key (active, no scopes, no expiry, no rate limit or quota, holder active): create another one first")
	case errors.Is(err, store.ErrNotFound):
		return Errorf(CodeNotFound, ErrIDKeyNotFound, "no such key in this account")
	case errors.Is(err, store.ErrConflict):
		return Errorf(CodeConflict, ErrIDConflict, "the change conflicts with stored data")
	}
	return Errorf(CodeInternalError, ErrIDInternal, "internal error")
}

// HTTPStatus is the HTTP status of a request refused with e, wherever a
// way in answers a refusal with a status of its own: a request refused
// before any call ran (ServeHTTP, the fast path of package h1), a URL-style call, a WebSocket
// upgrade, a backup. It is the one table from errors to HTTP statuses, as
// toError is the one from Go errors to JSON-RPC codes. A call answered
// inside a JSON-RPC reply goes out with 200, whatever its error.
func HTTPStatus(e *Error) int {
	switch e.ID {
	case ErrIDHTTPMethod:
		return http.StatusMethodNotAllowed
	case ErrIDMediaType:
		return http.StatusUnsupportedMediaType
	case ErrIDBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	if e.PassThrough { // an upstream's own error: its codes are its own
		return http.StatusBadRequest
	}
	switch e.Code {
	case CodeParseError, CodeInvalidRequest, CodeInvalidParams:
		return http.StatusBadRequest
	case CodeMethodNotFound, CodeNotFound:
		return http.StatusNotFound
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeConflict:
		return http.StatusConflict
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeInternalError:
		return http.StatusInternalServerError
	case CodeUpstreamUnavailable, CodeUpstreamBadReply:
		return http.StatusBadGateway
	case CodeUpstreamTimeout:
		return http.StatusGatewayTimeout
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// wire returns err as a JSON-RPC error object.
func (e *Error) wire() *jsonrpc2.Error {
	if e.PassThrough {
		we := &jsonrpc2.Error{Code: e.Code, Message: e.Message}
		if e.RawData != nil {
			raw := e.RawData
			we.Data = &raw
		}
		return we
	}
	data, _ := json.Marshal(errorData{ErrorID: e.ID, Field: e.Field, Detail: e.Detail, RetryAfterMs: e.RetryAfterMs})
	raw := json.RawMessage(data)
	return &jsonrpc2.Error{Code: e.Code, Message: e.Message, Data: &raw}
}

// The specification's messages, sent unchanged so that its examples hold.
const (
	msgParseError     = "Parse error"
	msgInvalidRequest = "Invalid Request"
	msgMethodNotFound = "Method not found"
)

func invalidRequest(id, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, ID: id, Message: msgInvalidRequest, Detail: fmt.Sprintf(format, args...)}
}
