package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestTransport_RedirectNotFollowed: a redirect is not followed, so the key
// goes only to the URL the user gave; the target gets nothing.
func TestTransport_RedirectNotFollowed(t *testing.T) {
	ts := startServer(t)
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/rpc", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)

	r := ts.run(map[string]string{"APIKEYD_URL": redirect.URL}, "key", "list")
	assert.Equal(t, exitUnreachable, r.code)
	assert.Contains(t, r.stderr, "HTTP 307 Temporary Redirect")
	assert.Contains(t, r.stderr, "redirects are not followed")
	assert.Zero(t, reached.Load(), "the redirect's target was called")
}

// TestTransport_Timeout: a server that does not answer within --timeout
// is exit code 8.
func TestTransport_Timeout(t *testing.T) {
	ts := startServer(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	r := ts.run(map[string]string{"APIKEYD_URL": slow.URL}, "key", "list", "--timeout", "200ms")
	assert.Equal(t, exitUnreachable, r.code)
	assert.Contains(t, r.stderr, "Timeout exceeded")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestTransport_KeyUnfitForAHeader: a key with a line break (a pasted key,
// say) is a usage error that names the problem, not the key.
func TestTransport_KeyUnfitForAHeader(t *testing.T) {
	ts := startServer(t)
	before := ts.fingerprint()
	r := ts.run(map[string]string{"APIKEYD_KEY": "0123456789abcdef\n0123456789abcdef"}, "key", "list")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "the API key holds characters an HTTP header cannot carry")
	assert.NotContains(t, r.stderr, "0123456789abcdef")
	assert.Equal(t, before, ts.fingerprint())
}
