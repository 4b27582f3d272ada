package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile is a fake server that answers every call with reply and keeps
// the last body it got.
func hostile(t *testing.T, reply string) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var body atomic.Value
	body.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, &body
}

func runCtl(env map[string]string, args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// TestSecurity_PlainHTTPOnlyToLoopback: the key goes over http:// only to
// a loopback host unless --insecure-http (or APIKEYD_INSECURE_HTTP) says
// otherwise; a refusal is a usage error that names the override and
// connects nowhere.
func TestSecurity_PlainHTTPOnlyToLoopback(t *testing.T) {
	for _, tc := range []struct {
		url  string
		env  string
		flag bool
		code int
	}{
		{"http://apikeyd.invalid:8080", "", false, exitUsage},
		{"http://10.0.0.1:1", "", false, exitUsage},
		{"http://localhost.apikeyd.invalid:1", "", false, exitUsage},
		{"http://127.0.0.1.apikeyd.invalid:1", "", false, exitUsage},
		{"http://apikeyd.invalid:8080", "maybe", false, exitUsage},
		{"http://apikeyd.invalid:8080", "", true, exitUnreachable},
		{"http://apikeyd.invalid:8080", "1", false, exitUnreachable},
		{"https://apikeyd.invalid:8080", "", false, exitUnreachable},
		{"http://127.0.0.1:1", "", false, exitUnreachable},
		{"http://127.9.9.9:1", "", false, exitUnreachable},
		{"http://LOCALHOST:1", "", false, exitUnreachable},
		{"http://[::1]:1", "", false, exitUnreachable},
	} {
		t.Run(tc.url+"/"+tc.env+fmt.Sprint(tc.flag), func(t *testing.T) {
			args := []string{"key", "list", "--timeout", "3s"}
			if tc.flag {
				args = append(args, "--insecure-http")
			}
			r := runCtl(map[string]string{"APIKEYD_URL": tc.url, "APIKEYD_KEY": operatorKey, "APIKEYD_INSECURE_HTTP": tc.env}, args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			if tc.code == exitUsage {
				assert.Contains(t, r.stderr, "--insecure-http")
			}
			assert.NotContains(t, r.stdout+r.stderr, operatorKey)
		})
	}
}

// TestSecurity_NoProxyFromEnvironment: HTTP_PROXY in the environment does
// not see the key. Go reads the proxy variables once per process, so the
// call runs in a child process of this test binary.
func TestSecurity_NoProxyFromEnvironment(t *testing.T) {
	if url := os.Getenv("APIKEYCTL_TEST_PROXY_CHILD"); url != "" {
		r := runCtl(map[string]string{"APIKEYD_URL": url, "APIKEYD_KEY": operatorKey}, "key", "list", "--insecure-http", "--timeout", "3s")
		fmt.Printf("exit %d\n", r.code)
		return
	}
	var seen atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		fmt.Fprint(w, `{"jsonrpc":"2.0","result":[],"id":1}`)
	}))
	t.Cleanup(proxy.Close)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSecurity_NoProxyFromEnvironment$", "-test.count=1")
	cmd.Env = append(os.Environ(), "APIKEYCTL_TEST_PROXY_CHILD=http://apikeyd.invalid:8080",
		"HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), fmt.Sprintf("exit %d", exitUnreachable))
	assert.Zero(t, seen.Load(), "the proxy from the environment got the call")
}

// TestSecurity_TerminalEscapes: control characters and bidi controls from
// the server are shown as escapes in tables and error messages; --json
// keeps the reply exact.
func TestSecurity_TerminalEscapes(t *testing.T) {
	comment := `\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[1A\u009b2Kfake\u202erow\u2066\u007f`
	srv, _ := hostile(t, `{"jsonrpc":"2.0","result":[{"id":"01","name":"ci\u001b[31m","active":true,"comment":"`+comment+`","scopes":{"name":["w\u001b[0m"]}}],"id":1}`)
	env := map[string]string{"APIKEYD_URL": srv.URL, "APIKEYD_KEY": operatorKey}
	bad := func(t *testing.T, s string) {
		t.Helper()
		for _, r := range s {
			if r == '\n' || r == '\t' {
				continue
			}
			assert.False(t, r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069),
				"raw %U printed in %q", r, s)
		}
	}
	for _, args := range [][]string{{"key", "list"}, {"call", "apikey.list"}, {"call", "x", "a:=1"}} {
		r := runCtl(env, args...)
		require.Equal(t, exitOK, r.code, r.stderr)
		bad(t, r.stdout)
		assert.Contains(t, r.stdout, `\u001b]52;c;`)
		assert.Contains(t, r.stdout, `\u202erow`)
	}
	r := runCtl(env, "call", "apikey.list", "--json")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, comment, "--json is the reply as it came")

	srv, _ = hostile(t, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"\u001b[2J\u001b[Hall good\u009b","data":{"error_id":"x\u001b[8m","field":"f\u001b]0;t\u0007"}},"id":1}`)
	r = runCtl(map[string]string{"APIKEYD_URL": srv.URL}, "call", "vm.list")
	assert.Equal(t, exitParams, r.code)
	bad(t, r.stderr)
	assert.Contains(t, r.stderr, `\u001b[2J\u001b[Hall good\u009b`)
	assert.Contains(t, r.stderr, `f\u001b]0;t\u0007`)
}

// TestSecurity_URLUserInfoRefused: a key in the URL's user info is refused
// before any call, and never printed.
func TestSecurity_URLUserInfoRefused(t *testing.T) {
	srv, body := hostile(t, `{"jsonrpc":"2.0","result":[],"id":1}`)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, u := range []string{
		"http://" + operatorKey + ":x@" + host,
		"http://" + operatorKey + "@" + host,
		"http://" + operatorKey + ":x@" + host + "/?a=b",
		"http://" + operatorKey + ":x@" + host + "/%zz",
	} {
		r := runCtl(map[string]string{"APIKEYD_URL": u}, "key", "list")
		assert.Equal(t, exitUsage, r.code, r.stderr)
		assert.NotContains(t, r.stdout+r.stderr, operatorKey)
		assert.Contains(t, r.stderr, "APIKEYD_KEY")
		r = runCtl(nil, "key", "list", "--url", u)
		assert.Equal(t, exitUsage, r.code, r.stderr)
		assert.NotContains(t, r.stdout+r.stderr, operatorKey)
	}
	assert.Equal(t, "", body.Load(), "nothing was sent")

	// A redirect's Location with user info is named without it.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+operatorKey+"@elsewhere.invalid/rpc", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	r := runCtl(map[string]string{"APIKEYD_URL": redirect.URL}, "key", "list")
	assert.Equal(t, exitUnreachable, r.code)
	assert.Contains(t, r.stderr, "elsewhere.invalid")
	assert.NotContains(t, r.stderr, operatorKey)
}

// TestSecurity_DeleteBySecretPrintsID: key delete names the key by the id
// the server gives, not by the argument, which may be the secret.
func TestSecurity_DeleteBySecretPrintsID(t *testing.T) {
	ts := startServer(t)
	var k apiKey
	ts.okJSON(&k, "key", "create", "--comment", "doomed")
	r := ts.ok("key", "delete", *k.Key)
	assert.Equal(t, "deleted key "+k.ID+"\n", r.stdout)
	assert.NotContains(t, r.stdout+r.stderr, *k.Key)
	r = ts.run(nil, "key", "info", k.ID)
	assert.Equal(t, exitNotFound, r.code)

	before := ts.fingerprint()
	r = ts.run(nil, "key", "delete", "no-such-key")
	assert.Equal(t, exitNotFound, r.code)
	assert.NotContains(t, r.stdout, "deleted")
	assert.Equal(t, before, ts.fingerprint())
}

// TestCall_UntypedValuesAreStrings: without a type from discovery, every
// PARAM=VALUE is a string; := sends JSON.
func TestCall_UntypedValuesAreStrings(t *testing.T) {
	srv, body := hostile(t, `{"jsonrpc":"2.0","result":{},"id":1}`)
	r := runCtl(map[string]string{"APIKEYD_URL": srv.URL}, "call", "user.create_apikey",
		"password=12345678", "comment=null", "live=true", `x={"a":1}`, "n:=5")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, body.Load(), `"params":{"comment":"null","live":"true","n":5,"password":"12345678","x":"{\"a\":1}"}`)
}
