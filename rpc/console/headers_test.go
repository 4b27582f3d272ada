package console_test

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/console"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func assertSecurityHeaders(t *testing.T, h http.Header, what string) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'"} {
		assert.Contains(t, csp, d+";", "%s: CSP %q lacks %s", what, csp, d)
	}
	assert.NotContains(t, csp, "unsafe-inline", what)
	assert.NotContains(t, csp, "unsafe-eval", what)
	assert.NotContains(t, csp, "http", what, "the CSP names no other origin")
	assert.Equal(t, "DENY", h.Get("X-Frame-Options"), what)
	assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), what)
	assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"), what)
	assert.NotEmpty(t, h.Get("Cache-Control"), what)
	assert.Empty(t, h.Values("Set-Cookie"), what)
}

func TestConsole_Headers(t *testing.T) {
	ts := startServer(t)

	t.Run("Page", func(t *testing.T) {
		resp, body := get(t, http.MethodGet, ts.URL+"/console/", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the page is never stored, nor kept in the back/forward cache")
		assertSecurityHeaders(t, resp.Header, "/console/")
		assert.Contains(t, body, `<script type="module" src="app.js"></script>`)
	})
	t.Run("Files", func(t *testing.T) {
		for file, ct := range map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
			resp, body := get(t, http.MethodGet, ts.URL+"/console/"+file, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, file)
			assert.Equal(t, ct, resp.Header.Get("Content-Type"), file)
			assert.NotEmpty(t, body, file)
			assertSecurityHeaders(t, resp.Header, file)
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag, file)
			again, _ := get(t, http.MethodGet, ts.URL+"/console/"+file, map[string]string{"If-None-Match": etag})
			assert.Equal(t, http.StatusNotModified, again.StatusCode, "%s revalidates by ETag", file)
		}
	})
	t.Run("RedirectToSlash", func(t *testing.T) {
		resp, _ := get(t, http.MethodGet, ts.URL+"/console", nil)
		assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
		assert.Equal(t, "/console/", resp.Header.Get("Location"))
		assertSecurityHeaders(t, resp.Header, "/console")
	})
	t.Run("NotFound", func(t *testing.T) {
		for _, p := range []string{"/console/nope.js", "/console/index.html", "/console/static/app.js", "/console/app.js/x", "/console/.%2e/rpc"} {
			resp, _ := get(t, http.MethodGet, ts.URL+p, nil)
			assert.Contains(t, []int{http.StatusNotFound, http.StatusMovedPermanently}, resp.StatusCode, p)
			if resp.StatusCode == http.StatusNotFound {
				assertSecurityHeaders(t, resp.Header, p)
			}
		}
	})
	t.Run("HeadAllowed", func(t *testing.T) {
		resp, body := get(t, http.MethodHead, ts.URL+"/console/", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Empty(t, body)
	})
}

// TestConsole_HandlerMethods: the handler itself refuses every method but
// GET and HEAD, with the security headers, whatever mux it is mounted in.
func TestConsole_HandlerMethods(t *testing.T) {
	h := console.Handler()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		rec := newRecorder()
		req, err := http.NewRequest(m, "/console/", nil)
		require.NoError(t, err)
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusMethodNotAllowed, rec.code, m)
		assert.Equal(t, "GET, HEAD", rec.header.Get("Allow"), m)
		assertSecurityHeaders(t, rec.header, m)
	}
}

// TestConsole_StaticFiles holds the page's files to the rules the CSP
// enforces in the browser, so that a change that breaks them fails here
// too: no inline script or style, no event-handler attributes, nothing
// loaded from another origin, and no API that parses strings as markup or
// code, nor any browser storage, in the script.
func TestConsole_StaticFiles(t *testing.T) {
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir("static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[filepath.Base(p)] = string(b)
		return err
	}))
	require.Contains(t, files, "index.html")
	require.Contains(t, files, "app.js")
	require.Contains(t, files, "style.css")

	html := files["index.html"]
	for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(html, -1) {
		assert.Contains(t, m, `src="`, "inline script: %s", m)
	}
	assert.NotRegexp(t, `(?is)<style\b`, html, "inline style element")
	assert.NotRegexp(t, `(?i)\sstyle=`, html, "style attribute")
	assert.NotRegexp(t, `(?i)\son[a-z]+=`, html, "event-handler attribute")
	for name, body := range files {
		assert.NotRegexp(t, `(?i)(src|href)=["']?(https?:)?//`, body, "%s loads from another origin", name)
		assert.NotRegexp(t, `(?i)@import|url\(\s*["']?(https?:)?//`, body, "%s loads from another origin", name)
	}
	js := files["app.js"]
	code := stripComments(js)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"localStorage", "sessionStorage", "document.cookie", "indexedDB", "console.log", "console.info", "console.error",
		"console.warn", "console.debug", "location.hash", "pushState", "replaceState", "setAttribute('style'", ".style."} {
		assert.NotContains(t, code, bad, "app.js uses %s", bad)
	}
	assert.Contains(t, code, "credentials: 'omit'", "calls carry no cookies")
	assert.Contains(t, code, "Authorization = `Bearer ${session.key}`", "calls carry the key in the Authorization header")
}

// stripComments drops // and /* */ comments from JavaScript source (the
// file keeps no "//" inside strings other than in comments' reach), so the
// rule check reads code only.
func stripComments(src string) string {
	src = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(src, "")
	var out []string
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "// "); i >= 0 && !strings.Contains(line[:i], "'") && !strings.Contains(line[:i], "`") {
			line = line[:i]
		} else if strings.HasPrefix(strings.TrimSpace(line), "//") {
			line = ""
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// recorder is a minimal http.ResponseWriter for calling the handler
// directly.
type recorder struct {
	code   int
	header http.Header
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(code int) { r.code = code }

func TestFindBrowser(t *testing.T) {
	found := func(name string) func(string) (string, error) {
		return func(n string) (string, error) {
			if n == name {
				return "/usr/bin/" + n, nil
			}
			return "", errors.New("not found")
		}
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	p, err := findBrowser(env(nil), found("chromium-headless-shell"))
	require.NoError(t, err)
	assert.Equal(t, "/usr/bin/chromium-headless-shell", p)
	p, err = findBrowser(env(nil), found("chromium"))
	require.NoError(t, err)
	assert.Equal(t, "/usr/bin/chromium", p)
	p, err = findBrowser(env(map[string]string{"APIKEYD_CHROME": "mychrome"}), found("mychrome"))
	require.NoError(t, err)
	assert.Equal(t, "/usr/bin/mychrome", p)
	_, err = findBrowser(env(map[string]string{"APIKEYD_CHROME": "absent"}), found("chromium"))
	assert.Error(t, err, "APIKEYD_CHROME names the browser; no fallback when it is wrong")
	_, err = findBrowser(env(nil), found("nothing"))
	assert.ErrorContains(t, err, "no browser found")
}

func TestBrowserVerdict(t *testing.T) {
	skip, fail, msg := browserVerdict(false, nil)
	assert.False(t, skip)
	assert.False(t, fail)
	assert.Empty(t, msg)
	skip, fail, _ = browserVerdict(true, nil)
	assert.False(t, skip || fail)

	skip, fail, msg = browserVerdict(false, errors.New("no browser found"))
	assert.True(t, skip)
	assert.False(t, fail)
	assert.Contains(t, msg, "chromium-headless-shell")
	assert.Contains(t, msg, "skipping outside CI")

	skip, fail, msg = browserVerdict(true, errors.New("no browser found"))
	assert.False(t, skip)
	assert.True(t, fail)
	assert.Contains(t, msg, "CI is set")

	assert.True(t, inCI("true"))
	assert.True(t, inCI("yes"))
	assert.False(t, inCI(""))
	assert.False(t, inCI("false"))
	assert.False(t, inCI("0"))
}

// TestConsoleBrowserWithoutBrowser runs a browser test in a copy of this
// test binary on a PATH without any browser: outside CI it must skip and
// say what to install, in CI fail.
func TestConsoleBrowserWithoutBrowser(t *testing.T) {
	if os.Getenv("APIKEYD_CONSOLE_CHILD") != "" {
		t.Skip("already the child run")
	}
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestConsoleBrowser_SignInWithKey$", "-test.v", "-test.count=1")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "APIKEYD_CHROME=") {
					env = append(env, kv)
				}
			}
			env = append(env, "PATH="+t.TempDir(), "APIKEYD_CONSOLE_CHILD=1")
			if ci != "" {
				env = append(env, "CI="+ci)
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			assert.Contains(t, string(out), "chromium-headless-shell")
			if ci == "" {
				assert.NoError(t, err, "outside CI the test skips:\n%s", out)
				assert.Contains(t, string(out), "--- SKIP: TestConsoleBrowser_SignInWithKey")
			} else {
				assert.Error(t, err, "in CI the test fails:\n%s", out)
				assert.Contains(t, string(out), "--- FAIL: TestConsoleBrowser_SignInWithKey")
			}
		})
	}
}
