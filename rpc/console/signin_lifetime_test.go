package console_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConsoleBrowser_SignInKeyLifetime: the key a password sign-in makes
// expires in 12 hours (so even a basic key, which cannot delete itself,
// does not outlive the session by more), and leaving the page (here a
// reload) deletes it when the key may.
func TestConsoleBrowser_SignInKeyLifetime(t *testing.T) {
	ts := startServer(t)
	var acct struct {
		FirstKey apiKey `json:"first_key"`
	}
	ts.mustCall(operatorKey, "account.create", map[string]any{"name": "acme"}, &acct)
	acme := acct.FirstKey.Key
	ts.mustCall(acme, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	var held struct {
		Total int      `json:"total"`
		Items []apiKey `json:"items"`
	}
	p := openConsole(t, ts)
	signIn := func(level string) {
		p.setValue("#signin-user", "alice@acme")
		p.setValue("#signin-pass", "correct horse")
		p.setValue("#signin-level", level)
		p.click("#signin-password button[type=submit]")
		p.waitFor(`!document.querySelector('#who').hidden`)
	}

	t.Run("BasicExpires", func(t *testing.T) {
		p := p.with(t)
		before := time.Now()
		signIn("basic")
		ts.mustCall(acme, "apikey.list", map[string]any{"owner": "user:alice@acme", "hydrate": true}, &held)
		require.Equal(t, 1, held.Total)
		ea, err := time.Parse(time.RFC3339, held.Items[0].ExpiresAt)
		require.NoError(t, err, "the sign-in key has an expiry: %+v", held.Items[0])
		assert.WithinRange(t, ea, before.Add(12*time.Hour).Add(-2*time.Second), time.Now().Add(12*time.Hour).Add(time.Second))
		p.click("#signout")
		p.waitFor(`!document.querySelector('#signin').hidden`)
		// basic cannot delete its own key: it stays until it expires.
		ts.mustCall(acme, "apikey.delete", map[string]any{"id": held.Items[0].ID}, nil)
	})
	t.Run("ReloadDeletes", func(t *testing.T) {
		p := p.with(t)
		signIn("full")
		ts.mustCall(acme, "apikey.list", map[string]any{"owner": "user:alice@acme"}, &held)
		require.Equal(t, 1, held.Total)
		p.do(chromedp.Reload())
		require.Eventually(t, func() bool {
			ts.mustCall(acme, "apikey.list", map[string]any{"owner": "user:alice@acme"}, &held)
			return held.Total == 0
		}, 5*time.Second, 50*time.Millisecond, "leaving the page deletes the key made for its sign-in")
		assert.False(t, eval[bool](p, `!document.querySelector('#who').hidden`), "the reloaded page is signed out")
	})
	t.Run("PersistedPagehideEndsSession", func(t *testing.T) {
		// What the browser does when it puts the page in the back/forward
		// cache: pagehide with persisted set. The page must not stay
		// signed in, in case it is shown again.
		p := p.with(t)
		p.signInWithKey(acme)
		eval[any](p, `dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true})), null`)
		assert.True(t, eval[bool](p, `document.querySelector('#who').hidden && !document.querySelector('#signin').hidden && document.querySelector('#view').childElementCount === 0`),
			"the session ended: sign-in shown, nothing of the session left in the page")
		assert.Contains(t, p.text("#signin-key .error"), "signed you out")
	})
	p.nothingStored(acme)
}

// TestConsoleBrowser_BackForwardCache: sign in, go to another page in the
// same tab, press Back: the console is not restored signed in, whether
// the browser kept the page in its back/forward cache or not. (Headless
// Chromium 156 here does not restore the console from that cache even
// without no-store; the persisted pagehide case is driven directly in
// TestConsoleBrowser_SignInKeyLifetime.)
func TestConsoleBrowser_BackForwardCache(t *testing.T) {
	startBrowser(t) // skips, or fails in CI, without a browser
	path, err := findBrowser(os.Getenv, exec.LookPath)
	require.NoError(t, err)
	ts := startServer(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0), chromedp.Flag("enable-features", "BackForwardCache"),
		chromedp.Flag("disable-features", "BackForwardCacheMemoryControls"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(cancelB)
	ctx, cancelT := context.WithTimeout(bctx, 30*time.Second)
	t.Cleanup(cancelT)
	p := &page{t: t, ts: ts, ctx: ctx, log: &consoleLog{}}
	p.do(chromedp.Navigate(ts.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#signin-key-input")))
	p.signInWithKey(operatorKey)
	eval[any](p, `window.__heap = 1; addEventListener('pageshow', e => { window.__persisted = e.persisted }); null`)
	// Another page of the same origin (a 404 page).
	p.do(chromedp.Navigate(ts.URL+"/elsewhere"), chromedp.NavigateBack(), chromedp.Sleep(500*time.Millisecond))
	p.waitFor(`!!document.querySelector('#signin')`)
	restored := eval[bool](p, `window.__heap === 1`)
	t.Logf("restored from the back/forward cache: %v", restored)
	assert.True(t, eval[bool](p, `document.querySelector('#who').hidden && !document.querySelector('#signin').hidden`),
		"after Back the console is signed out")
	assert.Equal(t, "", eval[string](p, `document.querySelector('#who-label').textContent`))
}
