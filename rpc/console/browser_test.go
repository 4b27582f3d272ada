package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The browser tests drive the console in headless Chromium against a real
// server, and check what they did through the API, over plain HTTP.

func TestConsoleBrowser_SignInWithKey(t *testing.T) {
	ts := startServer(t)
	p := openConsole(t, ts)
	p.screenshot("signin")

	t.Run("ErrMalformedKey", func(t *testing.T) {
		p := p.with(t)
		p.do(chromedp.SendKeys(chromedp.CSS("#signin-key-input"), "not-a-key\r"))
		p.waitFor(`!document.querySelector('#signin-key .error').hidden`)
		assert.Contains(t, p.text("#signin-key .error"), "32 lowercase hex digits")
	})
	t.Run("ErrUnknownKey", func(t *testing.T) {
		p := p.with(t)
		p.signInAttempt(strings.Repeat("ab", 16))
		p.waitFor(`document.querySelector('#signin-key .error').textContent.includes('not valid')`)
		assert.True(t, eval[bool](p, `document.querySelector('#who').hidden`), "not signed in")
	})
	t.Run("KeyboardFocusVisible", func(t *testing.T) {
		p := p.with(t)
		p.do(chromedp.Focus(chromedp.CSS("#signin-key-input")), chromedp.KeyEvent(kb.Tab))
		assert.Equal(t, "Sign in with key", eval[string](p, `document.activeElement.textContent`), "Tab reaches the sign-in button")
		assert.NotEqual(t, "none", eval[string](p, `getComputedStyle(document.activeElement).outlineStyle`), "the focused button shows it")
	})
	t.Run("OK", func(t *testing.T) {
		p := p.with(t)
		p.signInWithKey(operatorKey)
		assert.Equal(t, []string{"Keys", "Users", "Service accounts", "Audit trail", "Accounts"}, p.navSections(),
			"an operator key may call every section's method")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 1`)
		assert.Equal(t, "", eval[string](p, `document.querySelector('#signin-key-input').value`), "the field is cleared")
		p.screenshot("keys")
	})
	t.Run("SignOut", func(t *testing.T) {
		p := p.with(t)
		p.click("#signout")
		p.waitFor(`!document.querySelector('#signin').hidden && document.querySelector('#who').hidden`)
		assert.Empty(t, p.navSections())
		assert.NotContains(t, eval[string](p, `document.documentElement.outerHTML`), operatorKey)
	})
	p.nothingStored(operatorKey)
}

func (p *page) signInAttempt(key string) {
	p.t.Helper()
	p.setValue("#signin-key-input", "")
	p.do(chromedp.SendKeys(chromedp.CSS("#signin-key-input"), key+"\r"))
}

func TestConsoleBrowser_SignInWithPassword(t *testing.T) {
	ts := startServer(t)
	var acct struct {
		FirstKey apiKey `json:"first_key"`
	}
	ts.mustCall(operatorKey, "account.create", map[string]any{"name": "acme"}, &acct)
	acme := acct.FirstKey.Key
	ts.mustCall(acme, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)

	p := openConsole(t, ts)
	t.Run("ErrLoginFailed", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#signin-user", "alice@acme")
		p.setValue("#signin-pass", "wrong password")
		p.click("#signin-password button[type=submit]")
		p.waitFor(`!document.querySelector('#signin-password .error').hidden`)
		assert.Contains(t, p.text("#signin-password .error"), "Wrong user name or password")
	})
	t.Run("OK", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#signin-user", "alice@acme")
		p.setValue("#signin-pass", "correct horse")
		p.click("#signin-password button[type=submit]")
		p.waitFor(`!document.querySelector('#who').hidden`)
		assert.Equal(t, "Signed in with alice@acme", p.text("#who-label"))
		// A user's key manages its own keys; users, service accounts and
		// the audit trail take a key of the account itself.
		assert.Equal(t, []string{"Keys"}, p.navSections())
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 1`)
		assert.Contains(t, eval[string](p, `document.querySelector('#key-results').textContent`), "user:alice@acme")
	})
	var held struct {
		Total int `json:"total"`
	}
	ts.mustCall(acme, "apikey.list", map[string]any{"owner": "user:alice@acme"}, &held)
	require.Equal(t, 1, held.Total, "the sign-in made one key held by alice")
	t.Run("SignOutDeletesTheSignInKey", func(t *testing.T) {
		p := p.with(t)
		p.click("#signout")
		p.waitFor(`!document.querySelector('#signin').hidden`)
		require.Eventually(t, func() bool {
			ts.mustCall(acme, "apikey.list", map[string]any{"owner": "user:alice@acme"}, &held)
			return held.Total == 0
		}, 5e9, 5e7, "the key made for the sign-in is deleted at sign-out")
	})
	p.nothingStored(acme)
}

func TestConsoleBrowser_CreateKeySecretOnce(t *testing.T) {
	ts := startServer(t)
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)
	p.click("#create-key")
	p.waitFor(`document.querySelector('dialog[open] #create-key-form') !== null`)
	assert.Equal(t, "new-key-name", eval[string](p, `document.activeElement.id`), "focus moves into the dialog")
	p.setValue("#new-key-name", "deploy-web")
	p.setValue("#new-key-comment", "panel key for web1")
	p.setValue(`input[data-scope=method]`, "apikey.list")
	p.click(`button[data-add-scope=method]`)
	p.setValue(`input[data-scope=method]`, "apikey.info")
	p.click(`button[data-add-scope=method]`)
	p.setValue(`input[data-scope=ip]`, "127.0.0.1")
	p.click(`button[data-add-scope=ip]`)
	p.do(chromedp.Click(chromedp.CSS(`.access input[value=MANAGE]`)))
	p.setValue("#new-key-expires", "2030-01-02T03:04")
	p.screenshot("create-key")
	before := ts.fingerprint()
	// A bad value is refused next to the form, in words, and stores nothing.
	p.setValue(`input[data-scope=name]`, strings.Repeat("n", 51))
	p.click(`button[data-add-scope=name]`)
	p.click("#create-key-submit")
	p.waitFor(`!document.querySelector('#create-key-form .error').hidden`)
	assert.Contains(t, p.text("#create-key-form .error"), "Please correct the input")
	assert.Equal(t, before, ts.fingerprint(), "a refused create stores nothing")
	p.click(`button[aria-label="Remove name ` + strings.Repeat("n", 51) + `"]`)

	p.click("#create-key-submit")
	p.waitFor(`document.querySelector('#new-secret') !== null`)
	secret := p.text("#new-secret")
	require.Regexp(t, `^[0-9a-f]{32}$`, secret)
	p.screenshot("secret-once")

	// The secret is the new key's, and the key is as the form made it.
	var k apiKey
	ts.mustCall(operatorKey, "apikey.info", map[string]any{"id": secret}, &k)
	assert.Equal(t, "deploy-web", k.Name)
	assert.Equal(t, "panel key for web1", k.Comment)
	assert.Equal(t, map[string][]string{"method": {"apikey.info", "apikey.list"}, "ip": {"127.0.0.1/32"}, "access": {"MANAGE"}}, k.Scopes)
	assert.True(t, strings.HasPrefix(k.ExpiresAt, "2030-01-0"), "expires_at %q", k.ExpiresAt)
	ts.mustCall(secret, "apikey.list", map[string]any{"size": 1}, nil)

	// Copy puts it on the clipboard, or, where the browser refuses that
	// (headless, no permission), selects it for Ctrl+C.
	p.click("#copy-secret")
	p.waitFor(`document.querySelector('dialog .copied').textContent !== ''`)
	if eval[string](p, `document.querySelector('dialog .copied').textContent`) != "Copied." {
		assert.Equal(t, secret, eval[string](p, `window.getSelection().toString()`))
	}

	// Exactly once: when the dialog closes the secret leaves the page, and
	// nothing in the console shows it again.
	assert.Equal(t, 1, strings.Count(eval[string](p, `document.documentElement.outerHTML`), secret))
	p.click("#secret-done")
	p.waitFor(`document.querySelector('dialog') === null`)
	assert.Equal(t, "create-key", eval[string](p, `document.activeElement.id`), "focus returns to the button that opened the dialog")
	p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 2`)
	p.click(`.open-key[data-id="` + k.ID + `"]`)
	p.waitFor(`document.querySelector('#key-detail') !== null`)
	html := eval[string](p, `document.documentElement.outerHTML + document.body.innerText`)
	assert.NotContains(t, html, secret)
	assert.Contains(t, p.text(`#key-detail dd[data-field=comment]`), "panel key for web1")
	p.nothingStored(operatorKey, secret)
}

func TestConsoleBrowser_FilterAndPage(t *testing.T) {
	ts := startServer(t)
	for _, n := range []string{"ci-build", "ci-deploy", "web-front"} {
		ts.createKey(operatorKey, map[string]any{"name": n})
	}
	for i := range 12 {
		ts.createKey(operatorKey, map[string]any{"name": "bulk-" + string(rune('a'+i))})
	}
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)
	p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 16`)

	names := func() []string {
		return eval[[]string](p, `[...document.querySelectorAll('#key-results tbody tr td:first-child')].map(td => td.textContent)`)
	}
	t.Run("Name", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#key-filters input[type=search]", "ci-")
		p.setValue("#key-filters select", "startswith")
		p.click("#apply-filters")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 2`)
		assert.Equal(t, []string{"ci-build", "ci-deploy"}, names())
		assert.Contains(t, p.text("#key-results .count"), "2 keys match")
		p.screenshot("filter")
	})
	t.Run("SortAndCursorPages", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#key-filters input[type=search]", "bulk-")
		p.setValue("#key-filters select:nth-of-type(1)", "startswith")
		eval[any](p, `(() => { const s = [...document.querySelectorAll('#key-filters select')];
			s[2].value = 'name'; s[3].value = 'desc'; s[4].value = '10'; return null })()`)
		p.click("#apply-filters")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 10`)
		first := names()
		assert.Equal(t, "bulk-l", first[0], "sorted by name, descending")
		assert.Contains(t, p.text("#key-results .count"), "12 keys match; page 1 of 2")
		p.click("#next-page")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 2`)
		assert.Equal(t, []string{"bulk-b", "bulk-a"}, names())
		assert.Contains(t, p.text("#key-results .count"), "page 2 of 2")
		assert.Equal(t, 0, eval[int](p, `document.querySelectorAll('#next-page').length`), "the last page has no next")
		p.click("#first-page")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 10`)
		assert.Equal(t, first, names())
	})
	t.Run("Active", func(t *testing.T) {
		p := p.with(t)
		ts.mustCall(operatorKey, "apikey.update", map[string]any{"id": "web-front", "active": false}, nil)
		p.setValue("#key-filters input[type=search]", "")
		eval[any](p, `(() => { const s = [...document.querySelectorAll('#key-filters select')];
			s[1].value = 'false'; return null })()`)
		p.click("#apply-filters")
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 1`)
		assert.Equal(t, []string{"web-front"}, names())
	})
	p.nothingStored(operatorKey)
}

func TestConsoleBrowser_KeyDetail(t *testing.T) {
	ts := startServer(t)
	victim := ts.createKey(operatorKey, map[string]any{"name": "victim", "scopes": map[string]any{"method": []string{"apikey.list"}}})
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)
	p.click(`.open-key[data-id="` + victim.ID + `"]`)
	p.waitFor(`document.querySelector('#key-detail') !== null`)
	assert.Equal(t, "H2", eval[string](p, `document.activeElement.tagName`), "focus moves to the key's heading")

	t.Run("AddAndDeleteScope", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#add-scope-value", "apikey.info")
		p.click("#add-scope-form button[type=submit]")
		p.waitFor(`document.querySelector('#key-scopes').textContent.includes('apikey.info')`)
		var k apiKey
		ts.mustCall(operatorKey, "apikey.info", map[string]any{"id": victim.ID}, &k)
		assert.Equal(t, []string{"apikey.info", "apikey.list"}, k.Scopes["method"])
		p.click(`button[aria-label="Remove method apikey.info"]`)
		p.waitFor(`!document.querySelector('#key-scopes').textContent.includes('apikey.info')`)
		ts.mustCall(operatorKey, "apikey.info", map[string]any{"id": victim.ID}, &k)
		assert.Equal(t, []string{"apikey.list"}, k.Scopes["method"])
	})
	t.Run("ErrBadScopeShownBesideTheForm", func(t *testing.T) {
		p := p.with(t)
		before := ts.fingerprint()
		p.setValue("#add-scope-type", "ip")
		p.setValue("#add-scope-value", "not-an-address")
		p.click("#add-scope-form button[type=submit]")
		p.waitFor(`!document.querySelector('#add-scope-form .error').hidden`)
		assert.Contains(t, p.text("#add-scope-form .error"), "Please correct the input")
		assert.Equal(t, before, ts.fingerprint())
	})
	t.Run("SwitchOffAndOn", func(t *testing.T) {
		p := p.with(t)
		p.click("#toggle-active")
		p.waitFor(`document.querySelector('#key-detail dd[data-field=active]').textContent === 'off'`)
		assert.Equal(t, "invalid_key", ts.errorID(victim.Key, "apikey.list", nil))
		p.click("#toggle-active")
		p.waitFor(`document.querySelector('#key-detail dd[data-field=active]').textContent === 'on'`)
		assert.Equal(t, "", ts.errorID(victim.Key, "apikey.list", nil))
	})
	t.Run("Edit", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#edit-name", "victim-2")
		p.setValue("#edit-comment", "moved to web2")
		p.click("#edit-key-form button[type=submit]")
		p.waitFor(`document.querySelector('#key-detail dd[data-field=name]').textContent === 'victim-2'`)
		var k apiKey
		ts.mustCall(operatorKey, "apikey.info", map[string]any{"id": victim.ID}, &k)
		assert.Equal(t, "victim-2", k.Name)
		assert.Equal(t, "moved to web2", k.Comment)
	})
	t.Run("ErrNameTaken", func(t *testing.T) {
		p := p.with(t)
		ts.createKey(operatorKey, map[string]any{"name": "taken"})
		before := ts.fingerprint()
		p.setValue("#edit-name", "taken")
		p.click("#edit-key-form button[type=submit]")
		p.waitFor(`!document.querySelector('#edit-key-form .error').hidden`)
		assert.Equal(t, "Another key of this holder has that name already. Choose another name.", p.text("#edit-key-form .error"))
		assert.Equal(t, before, ts.fingerprint(), "a refused change stores nothing")
	})
	var rotated string
	t.Run("Rotate", func(t *testing.T) {
		p := p.with(t)
		p.setValue("#rotate-grace", "0")
		p.click("#rotate")
		p.waitFor(`document.querySelector('#new-secret') !== null`)
		rotated = p.text("#new-secret")
		require.Regexp(t, `^[0-9a-f]{32}$`, rotated)
		assert.NotEqual(t, victim.Key, rotated)
		assert.Contains(t, eval[string](p, `document.querySelector('dialog').textContent`), "The old secret no longer works")
		p.screenshot("rotate")
		assert.Equal(t, "invalid_key", ts.errorID(victim.Key, "apikey.list", nil), "the old secret stopped at once")
		assert.Equal(t, "", ts.errorID(rotated, "apikey.list", nil), "the new secret works")
		// Escape closes the dialog, as Done does, and takes the secret away.
		p.do(chromedp.KeyEvent(kb.Escape))
		p.waitFor(`document.querySelector('dialog') === null && document.querySelector('#key-detail dd[data-field=last_rotated]') && document.querySelector('#key-detail dd[data-field=last_rotated]').textContent !== 'never'`)
		assert.NotContains(t, eval[string](p, `document.documentElement.outerHTML`), rotated)
	})
	t.Run("DeleteAfterConfirmation", func(t *testing.T) {
		p := p.with(t)
		p.click("#delete-key")
		p.waitFor(`document.querySelector('dialog[open]') !== null`)
		assert.Equal(t, "Cancel", eval[string](p, `document.activeElement.textContent`), "the safe choice has the focus")
		p.screenshot("delete-confirm")
		p.click("dialog[open] button:not(.danger)") // Cancel: nothing happens
		p.waitFor(`document.querySelector('dialog') === null`)
		assert.Equal(t, "", ts.errorID(operatorKey, "apikey.info", map[string]any{"id": victim.ID}))

		p.click("#delete-key")
		p.click("dialog[open] button.danger")
		p.waitFor(`document.querySelector('#key-results') !== null && document.querySelector('dialog') === null`)
		assert.Equal(t, "key_not_found", ts.errorID(operatorKey, "apikey.info", map[string]any{"id": victim.ID}))
		assert.Equal(t, "invalid_key", ts.errorID(rotated, "apikey.list", nil))
	})
	p.nothingStored(operatorKey, victim.Key, rotated)
}

func TestConsoleBrowser_Audit(t *testing.T) {
	ts := startServer(t)
	ts.createKey(operatorKey, map[string]any{"name": "audited"})
	ts.mustCall(operatorKey, "apikey.update", map[string]any{"id": "audited", "comment": "changed"}, nil)
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)
	p.click(`#nav button[data-section=audit]`)
	p.waitFor(`document.querySelectorAll('#audit-results tbody tr').length >= 2`)
	methods := func() []string {
		return eval[[]string](p, `[...document.querySelectorAll('#audit-results tbody td[data-label=Method]')].map(td => td.textContent)`)
	}
	assert.Subset(t, methods(), []string{"apikey.create", "apikey.update"})
	p.screenshot("audit")

	p.setValue("#audit-method", "apikey.update")
	p.click("#apply-audit-filters")
	p.waitFor(`[...document.querySelectorAll('#audit-results tbody td[data-label=Method]')].every(td => td.textContent === 'apikey.update')`)
	assert.Equal(t, []string{"apikey.update"}, methods())
	assert.Equal(t, []string{"ok"}, eval[[]string](p, `[...document.querySelectorAll('#audit-results tbody td[data-label=Outcome]')].map(td => td.textContent)`))

	p.setValue("#audit-method", "account.delete")
	p.click("#apply-audit-filters")
	p.waitFor(`document.querySelector('#audit-results').textContent.includes('No records match')`)
	p.nothingStored(operatorKey)
}

// A narrow key sees only what rpc.discover lists for it: no section, and
// no button, for a method it may not call.
func TestConsoleBrowser_NarrowKeySeesOnlyItsActions(t *testing.T) {
	ts := startServer(t)
	narrow := ts.createKey(operatorKey, map[string]any{"name": "reader", "scopes": map[string]any{"method": []string{"apikey.list", "apikey.info"}}})
	p := openConsole(t, ts)
	p.signInWithKey(narrow.Key)
	assert.Equal(t, []string{"Keys"}, p.navSections())
	p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 2`)
	assert.Equal(t, 0, eval[int](p, `document.querySelectorAll('#create-key').length`), "no create button")
	p.click(`.open-key[data-id="` + narrow.ID + `"]`)
	p.waitFor(`document.querySelector('#key-detail') !== null`)
	for _, sel := range []string{"#toggle-active", "#rotate", "#delete-key", "#add-scope-form", "#key-scopes button"} {
		assert.Equal(t, 0, eval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`), "%s is absent", sel)
	}
	p.screenshot("narrow-key")

	// A key that may call no console method is told so.
	none := ts.createKey(operatorKey, map[string]any{"scopes": map[string]any{"method": []string{"server.reboot"}}})
	p.click("#signout")
	p.waitFor(`!document.querySelector('#signin').hidden`)
	p.signInWithKey(none.Key)
	p.waitFor(`document.querySelector('#view h2') && document.querySelector('#view h2').textContent === 'Nothing to manage'`)
	assert.Empty(t, p.navSections())
	p.nothingStored(narrow.Key, none.Key)
}

// What people typed is shown as text: a comment that is markup stays
// literal, no element is made from it, and its handler never runs.
func TestConsoleBrowser_Injection(t *testing.T) {
	ts := startServer(t)
	const payload = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`
	evil := ts.createKey(operatorKey, map[string]any{"name": "evil", "comment": payload, "description": payload})
	ts.mustCall(operatorKey, "service_account.create", map[string]any{"name": "ci", "description": payload}, nil)
	ts.mustCall(operatorKey, "account.create", map[string]any{"name": "acme", "comment": payload}, nil)
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)

	noMarkup := func(where string) {
		t.Helper()
		assert.Equal(t, 0, eval[int](p, `document.querySelectorAll('img').length`), "%s: no img element", where)
		assert.Equal(t, 1, eval[int](p, `document.querySelectorAll('script').length`), "%s: only the console's own script", where)
		assert.True(t, eval[bool](p, `window.__pwned === undefined`), "%s: the onerror never ran", where)
	}
	p.waitFor(`document.querySelector('#key-results .comment') !== null`)
	assert.Contains(t, eval[[]string](p, `[...document.querySelectorAll('#key-results .comment')].map(s => s.textContent)`), payload)
	assert.Contains(t, eval[string](p, `document.body.innerText`), `<img src=x onerror="window.__pwned=1">`, "shown literally")
	noMarkup("list")

	p.click(`.open-key[data-id="` + evil.ID + `"]`)
	p.waitFor(`document.querySelector('#key-detail') !== null`)
	assert.Equal(t, payload, p.text(`#key-detail dd[data-field=comment]`))
	assert.Equal(t, payload, p.text(`#key-detail dd[data-field=description]`))
	noMarkup("detail")
	p.screenshot("injection")

	p.click(`#nav button[data-section=service-accounts]`)
	p.waitFor(`document.querySelector('#sa-list .comment') !== null`)
	assert.Equal(t, payload, p.text("#sa-list .comment"))
	noMarkup("service accounts")

	p.click(`#nav button[data-section=accounts]`)
	p.waitFor(`document.querySelectorAll('#account-list .comment').length === 2`)
	assert.Contains(t, eval[[]string](p, `[...document.querySelectorAll('#account-list .comment')].map(s => s.textContent)`), payload)
	noMarkup("accounts")

	// Even a script of the page itself cannot turn a string into markup:
	// the CSP requires Trusted Types.
	assert.True(t, eval[bool](p, `(() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return false } catch (e) { return e instanceof TypeError } })()`))
	p.nothingStored(operatorKey)
}

// Users, service accounts and their keys, and accounts for an operator key.
func TestConsoleBrowser_HoldersAndAccounts(t *testing.T) {
	ts := startServer(t)
	p := openConsole(t, ts)
	p.signInWithKey(operatorKey)

	t.Run("Users", func(t *testing.T) {
		p := p.with(t)
		p.click(`#nav button[data-section=users]`)
		p.setValue("#new-user-name", "bob")
		p.setValue("#new-user-password", "a long password")
		p.click("#create-user-form button[type=submit]")
		p.waitFor(`document.querySelector('#user-list').textContent.includes('bob@operator')`)
		var login struct {
			Key string `json:"key"`
			ID  string `json:"id"`
		}
		ts.mustCall("", "user.create_apikey", map[string]any{"username": "bob@operator", "password": "a long password", "access_level": "basic", "comment": "bob's laptop"}, &login)
		p.click(`#user-list button`) // Keys of bob
		p.waitFor(`document.querySelector('#view').textContent.includes("bob's laptop")`)
		p.screenshot("user-keys")
		p.click(`#view td[data-label=Actions] button.danger`)
		p.click("dialog[open] button.danger")
		p.waitFor(`document.querySelector('#view').textContent.includes('This user holds no keys')`)
		assert.Equal(t, "invalid_key", ts.errorID(login.Key, "rpc.discover", nil))
	})
	t.Run("ServiceAccounts", func(t *testing.T) {
		p := p.with(t)
		p.click(`#nav button[data-section=service-accounts]`)
		p.setValue("#new-sa-name", "backup")
		p.click("#create-sa-form button[type=submit]")
		p.waitFor(`document.querySelector('#sa-list td') !== null`)
		sa := ts.createKey(operatorKey, map[string]any{"service_account": "backup", "name": "nightly"})
		p.click(`#nav button[data-section=service-accounts]`)
		p.waitFor(`[...document.querySelectorAll('#sa-list button')].some(b => b.textContent === 'Keys of backup')`)
		eval[any](p, `[...document.querySelectorAll('#sa-list button')].find(b => b.textContent === 'Keys of backup').click(), null`)
		p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 1`)
		assert.Contains(t, p.text("#key-results"), "sa:operator/backup")
		assert.Equal(t, "Keys of service account backup", p.text("#view h2"))
		p.click(`#nav button[data-section=service-accounts]`)
		p.waitFor(`[...document.querySelectorAll('#sa-list button')].some(b => b.textContent === 'Switch off backup')`)
		eval[any](p, `[...document.querySelectorAll('#sa-list button')].find(b => b.textContent === 'Switch off backup').click(), null`)
		p.waitFor(`[...document.querySelectorAll('#sa-list button')].some(b => b.textContent === 'Switch on backup')`)
		assert.Equal(t, "invalid_key", ts.errorID(sa.Key, "rpc.discover", nil), "switching the service account off stops its keys")
	})
	t.Run("Accounts", func(t *testing.T) {
		p := p.with(t)
		p.click(`#nav button[data-section=accounts]`)
		p.setValue("#new-account-name", "acme")
		p.click("#create-account-form button[type=submit]")
		p.waitFor(`document.querySelector('#new-secret') !== null`)
		first := p.text("#new-secret")
		require.Regexp(t, `^[0-9a-f]{32}$`, first)
		assert.Equal(t, "", ts.errorID(first, "apikey.list", nil), "the first key of the new account works")
		p.click("#secret-done")
		p.waitFor(`document.querySelector('#account-list').textContent.includes('acme')`)
		p.screenshot("accounts")
		before := ts.fingerprint()
		p.setValue("#new-account-name", "acme")
		p.click("#create-account-form button[type=submit]")
		p.waitFor(`!document.querySelector('#create-account-form .error').hidden`)
		assert.Contains(t, p.text("#create-account-form .error"), "exists already")
		assert.Equal(t, before, ts.fingerprint())
		p.nothingStored(operatorKey, first)
	})
}

// On a narrow screen the page fits its width: nothing scrolls sideways.
func TestConsoleBrowser_NarrowScreen(t *testing.T) {
	ts := startServer(t)
	ts.createKey(operatorKey, map[string]any{"name": "a-rather-long-key-name-for-a-phone-screen", "comment": strings.Repeat("word ", 40)})
	p := openConsole(t, ts)
	p.do(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))
	p.signInWithKey(operatorKey)
	p.waitFor(`document.querySelectorAll('#key-results .open-key').length === 2`)
	assert.LessOrEqual(t, eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`), "keys list fits")
	eval[any](p, `document.querySelector('#key-results').scrollIntoView(), null`)
	p.screenshot("narrow-screen")
	p.click(`#nav button[data-section=audit]`)
	p.waitFor(`document.querySelectorAll('#audit-results tbody tr').length >= 1`)
	assert.LessOrEqual(t, eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`), "audit fits")
	p.nothingStored(operatorKey)
}
