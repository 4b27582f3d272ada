// Package client calls an apikeyd server: JSON-RPC 2.0 over HTTP POST to
// <base URL>/rpc, with the API key as a Bearer credential. It uses only
// net/http and encoding/json, so apikeyctl needs none of the server's code.
//
// Call returns an *Error for an error reply of the server, and a
// *TransportError when no JSON-RPC reply came back (no connection, a
// timeout, an HTTP error without a JSON-RPC body, a reply that is not
// JSON-RPC 2.0). The key is sent only in the Authorization header and
// appears in no error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxReply caps the reply body read into memory.
const maxReply = 64 << 20

// Client calls one apikeyd server.
type Client struct {
	endpoint string // <base>/rpc
	redacted string // endpoint without user info, for messages
	key      string
	http     *http.Client
}

// ErrInsecureHTTP is returned by New for an http:// URL whose host is not
// loopback when insecureHTTP is false.
var ErrInsecureHTTP = errors.New("plain http:// would send the key in clear")

// New returns a client for the server at base (http://host:port, with or
// without a trailing /rpc). key may be empty: the call then carries no
// credential; it must be visible ASCII (an HTTP header carries it). hc
// gives the timeout and transport (nil transport: one that, unlike Go's
// default, takes no proxy from the environment); redirects are never
// followed, whatever hc says. base may not carry user info (a key there
// would end up in messages); an http:// base must name a loopback host
// (127.0.0.0/8, ::1, localhost) unless insecureHTTP.
func New(base, key string, hc *http.Client, insecureHTTP bool) (*Client, error) {
	if strings.Contains(base, "@") {
		return nil, errors.New("the server URL may not carry user info; give the key in APIKEYD_KEY")
	}
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the server URL %q is not an http:// or https:// URL with a host", base)
	}
	if u.User != nil {
		return nil, errors.New("the server URL may not carry user info; give the key in APIKEYD_KEY")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the server URL %s may not have a query or fragment", u.Redacted())
	}
	if u.Scheme == "http" && !insecureHTTP && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("%w to %s, which is not this machine: use https://, or --insecure-http (APIKEYD_INSECURE_HTTP=1) if the network between is trusted", ErrInsecureHTTP, u.Host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/rpc") {
		u.Path += "/rpc"
	}
	u.RawPath = ""
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return nil, errors.New("the API key holds characters an HTTP header cannot carry (a line break or space from pasting?)")
		}
	}
	own := http.Client{}
	if hc != nil {
		own = *hc
	}
	if own.Transport == nil {
		// The key goes straight to the server, never through a proxy
		// that HTTP_PROXY or HTTPS_PROXY happen to name.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		own.Transport = t
	}
	// The key goes only to the URL the user gave: a redirect, to another
	// host or from https to http, is answered as it is, never followed.
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{endpoint: u.String(), redacted: u.Redacted(), key: key, http: &own}, nil
}

// loopback says whether host (no port, no brackets) is this machine:
// localhost, 127.0.0.0/8 or ::1.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Endpoint is the URL calls go to, without user info.
func (c *Client) Endpoint() string { return c.redacted }

// Error is a JSON-RPC error reply.
type Error struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// ErrorID is data.error_id, or "" when the reply has none.
func (e *Error) ErrorID() string {
	var d struct {
		ErrorID string `json:"error_id"`
	}
	if len(e.Data) > 0 && json.Unmarshal(e.Data, &d) == nil {
		return d.ErrorID
	}
	return ""
}

// Field is data.field (the parameter an invalid_params error names), or "".
func (e *Error) Field() string {
	var d struct {
		Field string `json:"field"`
	}
	if len(e.Data) > 0 && json.Unmarshal(e.Data, &d) == nil {
		return d.Field
	}
	return ""
}

func (e *Error) Error() string {
	if id := e.ErrorID(); id != "" {
		return fmt.Sprintf("%s [%s]", e.Message, id)
	}
	return fmt.Sprintf("%s [code %d]", e.Message, e.Code)
}

// TransportError says that no JSON-RPC reply came back.
type TransportError struct {
	Endpoint string
	Err      error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cannot call %s: %v", e.Endpoint, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

type request struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
	ID      int    `json:"id"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// Call calls method with params (nil for none; anything encoding/json
// encodes to an object or array) and returns the raw result.
func (c *Client) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	body, err := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: params, ID: 1})
	if err != nil {
		return nil, fmt.Errorf("encoding the params of %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &TransportError{Endpoint: c.redacted, Err: errors.New("cannot build the request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Endpoint: c.redacted, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, &TransportError{Endpoint: c.redacted, Err: fmt.Errorf("reading the reply: %w", unwrapURLError(err))}
	}
	if len(raw) > maxReply {
		return nil, &TransportError{Endpoint: c.redacted, Err: fmt.Errorf("the reply is larger than %d bytes", maxReply)}
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil || r.JSONRPC != "2.0" || (r.Error == nil && r.Result == nil) {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, &TransportError{Endpoint: c.redacted, Err: fmt.Errorf("HTTP %s to %s: redirects are not followed, so that the key goes only where it was meant to; give that URL instead if it is the server", resp.Status, redactLocation(resp.Header.Get("Location")))}
		}
		if resp.StatusCode != http.StatusOK {
			return nil, &TransportError{Endpoint: c.redacted, Err: fmt.Errorf("HTTP %s without a JSON-RPC reply (is this an apikeyd server?)", resp.Status)}
		}
		return nil, &TransportError{Endpoint: c.redacted, Err: errors.New("the reply is not a JSON-RPC 2.0 response (is this an apikeyd server?)")}
	}
	if r.Error != nil {
		return nil, r.Error
	}
	return r.Result, nil
}

// redactLocation is a Location header without user info or query.
func redactLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "(no usable Location)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// unwrapURLError drops *url.Error's "Post URL:" prefix, which repeats the
// endpoint the TransportError names already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
