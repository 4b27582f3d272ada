package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc/console"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requestLog is every request line a server saw.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *requestLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// loggedConsole serves the console, with app.js held back by appDelay (a
// slow network), and /rpc answering every call invalid_key; it records
// every request line and /rpc body it sees.
func loggedConsole(t *testing.T, appDelay time.Duration) (string, *requestLog) {
	t.Helper()
	log := &requestLog{}
	ch := console.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.Method + " " + r.RequestURI)
		if r.URL.Path == "/rpc" {
			var body [8192]byte
			n, _ := r.Body.Read(body[:])
			log.add(string(body[:n]))
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32001,"message":"invalid key","data":{"error_id":"invalid_key"}},"id":1}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/app.js") && appDelay > 0 {
			time.Sleep(appDelay)
		}
		ch.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

func freshTab(t *testing.T) context.Context {
	t.Helper()
	b := startBrowser(t)
	tab, cancelTab := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	t.Cleanup(func() { cancel(); cancelTab() })
	return ctx
}

// TestConsoleBrowser_NoNativeSubmit: before app.js has run (scripts off,
// or the script slow to arrive), pressing Enter in a sign-in form sends
// nothing: the forms come disabled, their fields have no names, and the
// CSP forbids form submission. Neither the address bar nor any request
// the server sees holds the secret.
func TestConsoleBrowser_NoNativeSubmit(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	const password = "hunter2hunter2"
	type form struct {
		name  string
		steps func() []chromedp.Action[chromedp.Void]
	}
	forms := []form{
		{"Key", func() []chromedp.Action[chromedp.Void] {
			return []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.CSS("#signin-key-input"), secret+"\r")}
		}},
		{"Password", func() []chromedp.Action[chromedp.Void] {
			return []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.CSS("#signin-user"), "alice@acme"),
				chromedp.SendKeys(chromedp.CSS("#signin-pass"), password+"\r")}
		}},
	}
	// try types into the form and presses Enter, as a person would; a
	// disabled field refuses the focus, which is the point.
	try := func(t *testing.T, ctx context.Context, steps []chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			require.ErrorContains(t, err, "not focusable")
		}
	}
	check := func(t *testing.T, ctx context.Context, base string, log *requestLog) {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		assert.Equal(t, base+"/console/", loc, "the address bar holds nothing")
		for _, s := range []string{secret, password, "key=", "password=", "username="} {
			assert.NotContains(t, loc, s)
			assert.NotContains(t, log.all(), s, "a request reached the server with %q", s)
		}
	}
	for _, f := range forms {
		t.Run("ScriptsOff"+f.name, func(t *testing.T) {
			base, log := loggedConsole(t, 0)
			ctx := freshTab(t)
			require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
				return err
			})))
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/console/")))
			// The fields are disabled and typing reaches nothing; even so,
			// Enter is pressed in each.
			try(t, ctx, f.steps())
			require.NoError(t, chromedp.Do(ctx, chromedp.Sleep(1500*time.Millisecond)))
			check(t, ctx, base, log)
		})
		t.Run("SlowScript"+f.name, func(t *testing.T) {
			base, log := loggedConsole(t, 3*time.Second)
			ctx := freshTab(t)
			// Start the navigation without waiting for the load event,
			// which the module script holds back.
			_, err := chromedp.Run(ctx, chromedp.Evaluate[any](`location.href = `+jsString(base+"/console/")+`; null`))
			require.NoError(t, err)
			_, err = chromedp.Run(ctx, chromedp.Poll[bool](`!!document.querySelector('#signin-pass')`, chromedp.WithPollingTimeout(5*time.Second)))
			require.NoError(t, err)
			require.True(t, eval[bool](&page{t: t, ctx: ctx}, `document.querySelector('#signin-key fieldset').disabled && document.querySelector('#signin-password fieldset').disabled`),
				"the forms are disabled until app.js runs")
			try(t, ctx, f.steps())
			// Once app.js has run, the forms are enabled.
			_, err = chromedp.Run(ctx, chromedp.Poll[bool](`!document.querySelector('#signin-key fieldset').disabled && !document.querySelector('#signin-password fieldset').disabled`,
				chromedp.WithPollingTimeout(8*time.Second)))
			require.NoError(t, err)
			check(t, ctx, base, log)
		})
	}
	t.Run("NoNamesOnSecretFields", func(t *testing.T) {
		base, _ := loggedConsole(t, 0)
		resp, body := get(t, http.MethodGet, base+"/console/", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "form-action 'none';")
		ctx := freshTab(t)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/console/")))
		p := &page{t: t, ctx: ctx}
		named := eval[[]string](p, `[...document.querySelectorAll('#signin [name]')].map(e => e.id)`)
		assert.Empty(t, named, "no sign-in field has a name, so no submission could carry it")
		key := eval[map[string]any](p, `(() => { const e = document.querySelector('#signin-key-input');
			return {type: e.type, autocomplete: e.getAttribute('autocomplete'), onePassword: e.hasAttribute('data-1p-ignore'),
				lastPass: e.getAttribute('data-lpignore'), bitwarden: e.hasAttribute('data-bwignore')} })()`)
		assert.Equal(t, map[string]any{"type": "password", "autocomplete": "off", "onePassword": true, "lastPass": "true", "bitwarden": true}, key)
		assert.NotContains(t, body, `name="key"`)
	})
}
