package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/console"
	"github.com/apikeyd/apikeyd/store"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// operatorKey is the operator key of every test server.
const operatorKey = "0123456789abcdef0123456789abcdef"

// testServer is a real apikeyd server on 127.0.0.1 over a bbolt file in
// t.TempDir(), with /rpc served by the rpc server and /console by the
// console's handler, as cmd/apikeyd mounts them.
type testServer struct {
	t     *testing.T
	URL   string
	Store *store.Store
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	_, _, err = st.Bootstrap(operatorKey)
	require.NoError(t, err)
	srv := rpc.New(st, rpc.Options{NoMetrics: true})
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	h := console.Handler()
	mux.Handle("GET /console", h)
	mux.Handle("GET /console/", h)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &testServer{t: t, URL: hs.URL, Store: st}
}

// rpcError is a JSON-RPC error reply.
type rpcError struct {
	Code    int64          `json:"code"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// call makes one JSON-RPC call over HTTP with key and returns the raw
// result, or the error.
func (ts *testServer) call(key, method string, params any) (json.RawMessage, *rpcError) {
	ts.t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
	require.NoError(ts.t, err)
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/rpc", bytes.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	require.NoError(ts.t, json.NewDecoder(resp.Body).Decode(&reply))
	return reply.Result, reply.Error
}

// mustCall calls and decodes the result into v (when v is not nil),
// requiring success.
func (ts *testServer) mustCall(key, method string, params, v any) {
	ts.t.Helper()
	res, e := ts.call(key, method, params)
	require.Nil(ts.t, e, "%s: %+v", method, e)
	if v != nil {
		require.NoError(ts.t, json.Unmarshal(res, v))
	}
}

// errorID is the data.error_id of a call's error, or "" on success.
func (ts *testServer) errorID(key, method string, params any) string {
	ts.t.Helper()
	_, e := ts.call(key, method, params)
	if e == nil {
		return ""
	}
	id, _ := e.Data["error_id"].(string)
	return id
}

// apiKey is the part of a key reply the tests read.
type apiKey struct {
	ID        string              `json:"id"`
	Key       string              `json:"key"`
	Name      string              `json:"name"`
	Comment   string              `json:"comment"`
	Active    bool                `json:"active"`
	Scopes    map[string][]string `json:"scopes"`
	ExpiresAt string              `json:"expires_at"`
	Owner     string              `json:"owner"`
}

func (ts *testServer) createKey(key string, params map[string]any) apiKey {
	ts.t.Helper()
	var k apiKey
	ts.mustCall(key, "apikey.create", params, &k)
	require.Regexp(ts.t, `^[0-9a-f]{32}$`, k.Key)
	return k
}

func (ts *testServer) fingerprint() [32]byte {
	ts.t.Helper()
	d, err := ts.Store.Fingerprint()
	require.NoError(ts.t, err)
	return d
}

// ---------- the browser ----------

// inCI reports whether the CI environment variable marks a CI run: set to
// anything but a false value ("", "0", "false").
func inCI(value string) bool {
	if value == "" {
		return false
	}
	b, err := strconv.ParseBool(value)
	return err != nil || b
}

// browserNames are the programs tried, in order, when APIKEYD_CHROME does
// not name one: Debian's chromium-headless-shell package first.
var browserNames = []string{"chromium-headless-shell", "headless_shell", "chromium", "chromium-browser", "google-chrome"}

// findBrowser returns the browser to drive: APIKEYD_CHROME when set,
// otherwise the first of browserNames on PATH.
func findBrowser(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv("APIKEYD_CHROME"); p != "" {
		return lookPath(p)
	}
	for _, n := range browserNames {
		if p, err := lookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no browser found (tried %s)", strings.Join(browserNames, ", "))
}

// browserVerdict says what a browser test does when no browser was found
// (err): outside CI it skips with a message that says what to install; in
// CI it fails, so the browser tests can never silently stop running there.
// skip is false and msg empty when the browser is there.
func browserVerdict(ci bool, err error) (skip, fail bool, msg string) {
	if err == nil {
		return false, false, ""
	}
	msg = err.Error() + "; the console's browser tests need headless Chromium: `apt-get install chromium-headless-shell` (Debian), or set APIKEYD_CHROME to a Chrome or Chromium binary"
	if ci {
		return false, true, msg + "; CI is set, so this is a failure, not a skip"
	}
	return true, false, msg + "; skipping outside CI (in CI this fails)"
}

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc = func() {}
	browserErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// startBrowser starts, once for the whole test binary, headless Chromium.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := findBrowser(os.Getenv, exec.LookPath)
	if skip, fail, msg := browserVerdict(inCI(os.Getenv("CI")), err); skip {
		t.Skip(msg)
	} else if fail {
		t.Fatal(msg)
	}
	browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
			chromedp.Flag("disable-gpu", true), chromedp.Flag("no-sandbox", os.Geteuid() == 0),
			chromedp.WindowSize(1200, 900))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		browserCtx = ctx
		browserCancel = func() { cancelCtx(); cancelAlloc() }
		browserErr = chromedp.Do(ctx) // starts the browser
	})
	require.NoError(t, browserErr, "starting %s", path)
	return browserCtx
}

// page is one browser tab, in a browser context of its own (no storage or
// cookies shared with other tests), on a test server.
type page struct {
	t   *testing.T
	ts  *testServer
	ctx context.Context
	log *consoleLog
}

// consoleLog is what the page wrote to the browser's console.
type consoleLog struct {
	mu    sync.Mutex
	lines []string
}

// with is the same tab, reporting to t (a subtest's).
func (p *page) with(t *testing.T) *page {
	return &page{t: t, ts: p.ts, ctx: p.ctx, log: p.log}
}

// openConsole opens the console of ts in a fresh tab, with a deadline that
// keeps the test bounded, and records what the page writes to the console.
func openConsole(t *testing.T, ts *testServer) *page {
	t.Helper()
	b := startBrowser(t)
	tab, cancelTab := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	t.Cleanup(func() { cancel(); cancelTab() })
	p := &page{t: t, ts: ts, ctx: ctx, log: &consoleLog{}}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := string(m.Type) + " " + m.Text
			for _, a := range m.Args {
				line += " " + a.Description + " " + string(a.Value)
			}
			p.log.mu.Lock()
			p.log.lines = append(p.log.lines, line)
			p.log.mu.Unlock()
		}
	}()
	p.do(chromedp.Navigate(ts.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#signin-key-input")))
	return p
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, "evaluating %s", expr)
	return v
}

// waitFor waits until a JavaScript expression is true.
func (p *page) waitFor(expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(p.t, err, "waiting for %s", expr)
}

func (p *page) text(css string) string {
	p.t.Helper()
	return eval[string](p, `document.querySelector(`+jsString(css)+`).textContent`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// signInWithKey signs in with key from the keyboard: the key typed into
// its field, Enter to submit.
func (p *page) signInWithKey(key string) {
	p.t.Helper()
	p.do(chromedp.Focus(chromedp.CSS("#signin-key-input")), chromedp.SendKeys(chromedp.CSS("#signin-key-input"), key+"\r"))
	p.waitFor(`!document.querySelector('#who').hidden`)
}

// navSections is the text of the navigation's buttons, in order.
func (p *page) navSections() []string {
	return eval[[]string](p, `[...document.querySelectorAll('#nav button')].map(b => b.textContent)`)
}

// click clicks the element css selects, waiting for it to be visible.
func (p *page) click(css string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
}

// setValue sets a form control's value as a person would by typing.
func (p *page) setValue(css, value string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(css)))
	eval[any](p, `(() => { const el = document.querySelector(`+jsString(css)+`); el.value = `+jsString(value)+`;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return null })()`)
}

// nothingStored checks, after a test, that none of the secrets is kept
// anywhere in the browser: localStorage and sessionStorage are empty,
// there is no cookie (read through DevTools as well as document.cookie),
// the URL does not hold it, and nothing written to the console does.
func (p *page) nothingStored(secrets ...string) {
	p.t.Helper()
	st := eval[map[string]any](p, `({local: localStorage.length, session: sessionStorage.length,
		localItems: JSON.stringify(Object.entries(localStorage)), sessionItems: JSON.stringify(Object.entries(sessionStorage)),
		cookie: document.cookie, href: location.href, history: history.length})`)
	assert.EqualValues(p.t, 0, st["local"], "localStorage holds %v", st["localItems"])
	assert.EqualValues(p.t, 0, st["session"], "sessionStorage holds %v", st["sessionItems"])
	assert.Equal(p.t, "", st["cookie"], "document.cookie")
	cookies, err := chromedp.Run(p.ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{p.ts.URL + "/", p.ts.URL + "/console/", p.ts.URL + "/rpc"}})
		return r.Cookies, err
	}))
	require.NoError(p.t, err)
	assert.Empty(p.t, cookies, "cookies")
	href, _ := st["href"].(string)
	assert.Equal(p.t, p.ts.URL+"/console/", href, "the URL never changes, so it holds nothing")
	// The console is watched: a line the page logs now is seen.
	canary := fmt.Sprintf("canary-%d", time.Now().UnixNano())
	eval[any](p, `console.log(`+jsString(canary)+`), null`)
	require.Eventually(p.t, func() bool {
		p.log.mu.Lock()
		defer p.log.mu.Unlock()
		return strings.Contains(strings.Join(p.log.lines, "\n"), canary)
	}, 5*time.Second, 20*time.Millisecond, "the page's console is not being read")
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	for _, s := range secrets {
		require.Len(p.t, s, 32)
		for _, c := range p.log.lines {
			assert.NotContains(p.t, c, s, "a secret reached the browser's console or log")
		}
	}
}

// screenshot saves the viewport to docs/console/<name>.png when
// APIKEYD_SCREENSHOTS=1, so that ordinary runs leave tracked files alone.
func (p *page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("APIKEYD_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	require.NoError(p.t, err)
	dir := filepath.Join("..", "..", "docs", "console")
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	require.NoError(p.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}
