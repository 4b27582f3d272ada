package rpc_test

import (
	"net/http"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
)

// TestHTTPStatus: the one table from errors to HTTP statuses, which every
// way in that answers a refusal with a status of its own uses (a request
// refused before any call, the URL style, a WebSocket upgrade, a backup).
func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		err  *rpc.Error
		want int
	}{
		{rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDHTTPMethod, "use HTTP POST"), http.StatusMethodNotAllowed},
		{rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDMediaType, "json"), http.StatusUnsupportedMediaType},
		{rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDBodyTooLarge, "big"), http.StatusRequestEntityTooLarge},
		{rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDInvalidRequest, "unreadable"), http.StatusBadRequest},
		{rpc.Errorf(rpc.CodeParseError, rpc.ErrIDParse, "not JSON"), http.StatusBadRequest},
		{rpc.InvalidParam("name", "must be valid UTF-8"), http.StatusBadRequest},
		{rpc.Errorf(rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound, "no"), http.StatusNotFound},
		{rpc.Errorf(rpc.CodeNotFound, rpc.ErrIDKeyNotFound, "no"), http.StatusNotFound},
		{rpc.Errorf(rpc.CodeUnauthenticated, rpc.ErrIDMissingKey, "no key"), http.StatusUnauthorized},
		{rpc.Errorf(rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey, "bad key"), http.StatusUnauthorized},
		{rpc.Errorf(rpc.CodeForbidden, rpc.ErrIDScopeDenied, "denied"), http.StatusForbidden},
		{rpc.Errorf(rpc.CodeForbidden, rpc.ErrIDCrossSite, "cross site"), http.StatusForbidden},
		{rpc.Errorf(rpc.CodeConflict, rpc.ErrIDConflict, "clash"), http.StatusConflict},
		{rpc.Errorf(rpc.CodeRateLimited, rpc.ErrIDRateLimited, "slow down"), http.StatusTooManyRequests},
		{rpc.Errorf(rpc.CodeRateLimited, rpc.ErrIDTooManyConnections, "close one"), http.StatusTooManyRequests},
		{rpc.Errorf(rpc.CodeInternalError, rpc.ErrIDInternal, "internal error"), http.StatusInternalServerError},
		{rpc.Errorf(rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable, "down"), http.StatusBadGateway},
		{rpc.Errorf(rpc.CodeUpstreamBadReply, rpc.ErrIDUpstreamBadReply, "garbled"), http.StatusBadGateway},
		{rpc.Errorf(rpc.CodeUpstreamTimeout, rpc.ErrIDUpstreamTimeout, "slow"), http.StatusGatewayTimeout},
		{rpc.Errorf(rpc.CodeUnavailable, rpc.ErrIDStale, "behind"), http.StatusServiceUnavailable},
		// An upstream's own error: its codes are its own, whatever they are.
		{&rpc.Error{Code: rpc.CodeNotFound, ID: rpc.ErrIDUpstreamError, Message: "theirs", PassThrough: true}, http.StatusBadRequest},
		{&rpc.Error{Code: 7, ID: rpc.ErrIDUpstreamError, Message: "theirs", PassThrough: true}, http.StatusBadRequest},
	} {
		t.Run(tc.err.ID, func(t *testing.T) {
			assert.Equal(t, tc.want, rpc.HTTPStatus(tc.err), "%s (%d)", tc.err.ID, tc.err.Code)
		})
	}
}
