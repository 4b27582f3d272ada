// apikeyd console: plain ES module, no build step, no dependencies.
//
// Rules this file keeps:
// - The key lives in `session` (module memory) only: never in
//   localStorage, sessionStorage, a cookie, the URL, or the console log.
// - Every call is a POST to the JSON-RPC endpoint with the key in the
//   Authorization header and credentials "omit" (no cookies).
// - Anything that came from the API or from a person is put in the page
//   as text (text nodes, textContent, value), never as markup. The page's
//   CSP requires Trusted Types, so innerHTML with a string would throw.
// - Only actions rpc.discover lists for the key are shown.

const RPC_URL = new URL('../rpc', document.baseURI).href;

/** @type {null | {key: string, keyId: string, methods: Set<string>, methodList: string[], account: string, label: string, madeForSignIn: boolean}} */
let session = null;
let callId = 0;

// ---------- DOM helpers (text only, never markup) ----------

/**
 * h builds an element. attrs: "class", "for", "text" (textContent),
 * "on<event>" (listener), booleans as properties, anything else as an
 * attribute. Children: nodes, or strings (become text nodes), or
 * null/false (skipped), or arrays of these.
 */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'for') el.htmlFor = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

const $ = (sel, root = document) => root.querySelector(sel);

function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function field(label, input, hint) {
  if (!input.id) input.id = nextId('f');
  const hintEl = hint ? h('small', { id: input.id + '-hint', text: hint }) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input, hintEl);
}

function errorBox() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

function showError(box, err) {
  box.textContent = describeError(err);
  box.hidden = false;
}

function hideError(box) {
  box.textContent = '';
  box.hidden = true;
}

function announce(msg) {
  const s = $('#status');
  s.textContent = '';
  setTimeout(() => { s.textContent = msg; }, 50);
}

function fmtTime(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:00Z$/, 'Z');
}

// A datetime-local value (local time) as RFC 3339 in UTC, or "".
function rfc3339(local) {
  if (!local) return '';
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data || {};
    this.errorId = this.data.error_id || '';
  }
}

// Sentences for the error ids of docs/api.md, in words a person can act
// on. An id not listed here shows the server's own message.
const ERROR_TEXT = {
  missing_key: 'No key was sent. Sign in again.',
  invalid_key: 'This key is not valid any more: it was deleted, switched off, rotated or has expired. Sign in again with a current key.',
  scope_denied: 'This key is not allowed to do that: its scopes do not cover this action.',
  escalation_denied: 'Not allowed: the result would reach beyond what your own key may do (its scopes, validity, limits or holder). Narrow the change, or use a wider key.',
  operator_only: 'Only keys of the operator account may do this.',
  held_key: 'This needs a key of the account itself; a key held by a user or service account may not do it.',
  key_not_found: 'No such key in this account. It may have been deleted; reload the list.',
  account_not_found: 'No such account. It may have been deleted; reload the list.',
  account_exists: 'An account of that name exists already. Choose another name.',
  operator_account: 'The operator account cannot be deleted.',
  last_operator_key: 'This would leave the operator account without a full operator key. Create another unrestricted operator key first.',
  login_failed: 'Wrong user name or password. The user name is name@account.',
  login_locked: 'Too many failed sign-ins for this name. Wait before trying again.',
  busy: 'The server is busy with other sign-ins. Try again in a moment.',
  user_not_found: 'No such user in this account.',
  user_exists: 'A user of that name exists already in this account. Choose another name.',
  service_account_not_found: 'No such service account in this account.',
  service_account_exists: 'A service account of that name exists already. Choose another name.',
  key_name_taken: 'Another key of this holder has that name already. Choose another name.',
  conflict: 'The change clashes with data stored meanwhile. Reload and try again.',
  rate_limited: 'This key is over its rate limit. Wait a little and try again.',
  quota_exhausted: 'This key has used up its quota of calls.',
  internal_error: 'The server failed to do this. Its log has the details; try again later.',
  network: 'The server could not be reached. Check that apikeyd is running, then try again.',
};

function describeError(err) {
  if (err instanceof ApiError) {
    if (err.errorId === 'invalid_params') {
      // The server's message names the field and what is wrong with it.
      return `Please correct the input: ${err.message.replace(/^invalid params: /, '')}`;
    }
    const wait = err.data.retry_after_ms ? ` (about ${Math.ceil(err.data.retry_after_ms / 1000)} s)` : '';
    if (ERROR_TEXT[err.errorId]) return ERROR_TEXT[err.errorId] + wait;
    return err.message || `The call failed (code ${err.code}).`;
  }
  return err && err.message ? err.message : String(err);
}

/** rpc calls method with params, with the session's key unless noKey. */
async function rpc(method, params, { noKey = false } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (!noKey) {
    if (!session) throw new ApiError(-32001, 'not signed in', { error_id: 'missing_key' });
    headers.Authorization = `Bearer ${session.key}`;
  }
  const body = { jsonrpc: '2.0', method, id: ++callId };
  if (params !== undefined) body.params = params;
  let resp;
  try {
    resp = await fetch(RPC_URL, {
      method: 'POST', headers, body: JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer', mode: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'network error', { error_id: 'network' });
  }
  let reply;
  try {
    reply = await resp.json();
  } catch {
    throw new ApiError(0, `the server answered HTTP ${resp.status} without a JSON-RPC reply`, {});
  }
  if (reply.error) {
    const e = new ApiError(reply.error.code, reply.error.message, reply.error.data);
    if (e.errorId === 'invalid_key' && !noKey && session && session.ready) onKeyInvalid();
    throw e;
  }
  return reply.result;
}

const can = (m) => !!session && session.methods.has(m);

// ---------- sign-in ----------

function setupSignIn() {
  const keyForm = $('#signin-key');
  const passForm = $('#signin-password');
  keyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('#signin-key-input');
    const box = $('.error', keyForm);
    hideError(box);
    const key = input.value.trim();
    input.value = '';
    if (!/^[0-9a-f]{32}$/.test(key)) {
      showError(box, new Error('A key is 32 lowercase hex digits (0-9, a-f).'));
      input.focus();
      return;
    }
    await startSession(key, { label: 'API key', madeForSignIn: false }, box, input);
  });
  passForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const box = $('.error', passForm);
    hideError(box);
    const username = $('#signin-user').value.trim();
    const pass = $('#signin-pass');
    const password = pass.value;
    pass.value = '';
    if (!username.includes('@')) {
      showError(box, new Error('The user name is name@account, for example alice@acme.'));
      $('#signin-user').focus();
      return;
    }
    let res;
    try {
      res = await rpc('user.create_apikey', {
        username, password, access_level: $('#signin-level').value, comment: 'console sign-in',
        expires_at: new Date(Date.now() + SIGN_IN_KEY_HOURS * 3600e3).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      }, { noKey: true });
    } catch (err) {
      showError(box, err);
      pass.focus();
      return;
    }
    const account = username.slice(username.lastIndexOf('@') + 1);
    await startSession(res.key, { label: username, madeForSignIn: true, keyId: res.id, account }, box, pass);
  });
  $('#signout').addEventListener('click', signOut);
  addEventListener('pagehide', onPageHide);
  // The forms come disabled, so that nothing can be submitted before
  // this script has taken them over (a native submission would put the
  // fields in the URL; the CSP's form-action 'none' blocks it too).
  for (const fs of document.querySelectorAll('#signin fieldset')) fs.disabled = false;
}

// A key made by a password sign-in expires after this many hours, so it
// does not outlive the session even where it cannot delete itself.
const SIGN_IN_KEY_HOURS = 12;

// deleteSignInKey is the call that deletes the key made for this
// sign-in, or null when discovery lists none the key may make.
function deleteSignInKey() {
  if (!session || !session.madeForSignIn || !session.keyId) return null;
  if (can('user.delete_apikey')) return { method: 'user.delete_apikey', params: { delete_key: session.keyId } };
  if (can('apikey.delete')) return { method: 'apikey.delete', params: { id: session.keyId } };
  return null;
}

// onPageHide ends the session when the page is left: closed, reloaded,
// navigated away from, or put in the back/forward cache (persisted), so
// that a restored page never comes back signed in. The key made for the
// sign-in is deleted with a keepalive request, which outlives the page.
function onPageHide() {
  if (!session) return;
  const del = deleteSignInKey();
  if (del) {
    try {
      fetch(RPC_URL, {
        method: 'POST', keepalive: true,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.key}` },
        body: JSON.stringify({ jsonrpc: '2.0', method: del.method, params: del.params, id: ++callId }),
        credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer', mode: 'same-origin',
      }).catch(() => { /* the key expires anyway */ });
    } catch { /* the key expires anyway */ }
  }
  endSession('You left the page, so the console signed you out. Sign in again.');
}

async function startSession(key, info, box, focusOnError) {
  session = {
    key, keyId: info.keyId || '', methods: new Set(), methodList: [],
    account: info.account || '', label: info.label, madeForSignIn: info.madeForSignIn, ready: false,
  };
  let doc;
  try {
    doc = await rpc('rpc.discover');
  } catch (err) {
    session = null;
    showError(box, err);
    focusOnError.focus();
    return;
  }
  session.ready = true;
  session.methodList = (doc.methods || []).map((m) => m.name).sort();
  session.methods = new Set(session.methodList);
  if (!session.account && can('account.list')) session.account = 'operator';
  $('#signin').hidden = true;
  $('#who').hidden = false;
  $('#who-label').textContent = `Signed in with ${session.label}`;
  buildNav();
  const first = SECTIONS.find((s) => can(s.method));
  if (first) show(first.id);
  else showEmpty();
}

async function signOut() {
  const del = deleteSignInKey();
  if (del) {
    // The key made for this sign-in is dropped with the session.
    try {
      await rpc(del.method, del.params);
    } catch { /* the key may be gone already */ }
  }
  endSession('Signed out.');
}

function onKeyInvalid() {
  // The key no longer works: forget it and ask for a new sign-in.
  setTimeout(() => endSession('The key stopped working (deleted, switched off, rotated or expired). Sign in again.'), 0);
}

function endSession(msg) {
  session = null;
  for (const d of document.querySelectorAll('dialog')) { d.close(); d.remove(); }
  clear($('#view'));
  clear($('#nav'));
  $('#view').hidden = true;
  $('#nav').hidden = true;
  $('#who').hidden = true;
  $('#who-label').textContent = '';
  $('#signin').hidden = false;
  const box = $('#signin-key .error');
  if (msg && msg !== 'Signed out.') showError(box, new Error(msg));
  announce(msg || 'Signed out.');
  $('#signin-title').focus();
}

// ---------- navigation ----------

const SECTIONS = [
  { id: 'keys', title: 'Keys', method: 'apikey.list', render: renderKeys },
  { id: 'users', title: 'Users', method: 'user.list', render: renderUsers },
  { id: 'service-accounts', title: 'Service accounts', method: 'service_account.list', render: renderServiceAccounts },
  { id: 'audit', title: 'Audit trail', method: 'audit.list', render: renderAudit },
  { id: 'accounts', title: 'Accounts', method: 'account.list', render: renderAccounts },
];

function buildNav() {
  const nav = $('#nav');
  clear(nav);
  const ul = h('ul');
  for (const s of SECTIONS) {
    if (!can(s.method)) continue;
    ul.append(h('li', {}, h('button', { type: 'button', 'data-section': s.id, onclick: () => show(s.id) }, s.title)));
  }
  nav.append(ul);
  nav.hidden = false;
}

function show(id, arg) {
  const s = SECTIONS.find((x) => x.id === id);
  for (const b of document.querySelectorAll('#nav button')) {
    if (b.dataset.section === id) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  const view = $('#view');
  clear(view);
  view.hidden = false;
  s.render(view, arg);
}

function showEmpty() {
  const view = $('#view');
  clear(view);
  view.hidden = false;
  view.append(heading('Nothing to manage'),
    h('p', { text: 'This key may call none of the console\'s methods (keys, users, service accounts, audit trail, accounts).' }));
  focusHeading(view);
}

function heading(text) {
  return h('h2', { tabindex: '-1', text });
}

function focusHeading(view) {
  const hd = $('h2', view);
  if (hd) hd.focus();
}

function table(columns, rows, caption) {
  const t = h('table', {},
    caption ? h('caption', { text: caption }) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c.label })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => {
      const v = c.cell(r);
      return h('td', { 'data-label': c.label }, v instanceof Node ? v : (v === undefined || v === null ? '' : String(v)));
    })))));
  return h('div', { class: 'table-wrap' }, t);
}

// A button that runs action, shows its error beside it, and is disabled
// while it runs.
function actionButton(label, action, attrs = {}) {
  const box = errorBox();
  const btn = h('button', { type: 'button', ...attrs }, label);
  btn.addEventListener('click', async () => {
    hideError(box);
    btn.disabled = true;
    try {
      await action(btn);
    } catch (err) {
      showError(box, err);
    } finally {
      btn.disabled = false;
    }
  });
  return h('span', { class: 'action' }, btn, box);
}

// ---------- dialogs ----------

function openDialog(title, build, opener) {
  const d = h('dialog', { 'aria-labelledby': nextId('dlg') });
  const hd = h('h2', { id: d.getAttribute('aria-labelledby'), text: title });
  d.append(hd);
  const closeDialog = () => d.close();
  build(d, closeDialog);
  d.addEventListener('close', () => {
    d.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(d);
  d.showModal();
  return d;
}

// confirmAction asks before a destructive action; run is called on yes.
function confirmAction(opener, title, text, yesLabel, run) {
  openDialog(title, (d, close) => {
    const box = errorBox();
    const yes = h('button', { type: 'button', class: 'danger' }, yesLabel);
    const no = h('button', { type: 'button', onclick: close }, 'Cancel');
    yes.addEventListener('click', async () => {
      hideError(box);
      yes.disabled = true;
      try {
        await run();
        close();
      } catch (err) {
        showError(box, err);
        yes.disabled = false;
      }
    });
    d.append(h('p', { text }), h('div', { class: 'buttons' }, no, yes), box);
    setTimeout(() => no.focus(), 0);
  });
}

// showSecret shows a new secret once. It is in the page only while the
// dialog is open; closing the dialog removes it.
function showSecret(opener, title, intro, secret, after) {
  openDialog(title, (d, close) => {
    const code = h('code', { class: 'secret', id: 'new-secret', text: secret });
    const copied = h('span', { class: 'copied', role: 'status' });
    const copy = h('button', { type: 'button', id: 'copy-secret' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(code.textContent);
        copied.textContent = 'Copied.';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copied.textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
      }
    });
    const done = h('button', { type: 'button', id: 'secret-done', onclick: close }, 'Done: I have saved it');
    d.append(
      h('p', { text: intro }),
      h('p', { class: 'warn', text: 'This is the only time the secret is shown. Copy it now; apikeyd keeps only its hash.' }),
      h('div', { class: 'secret-row' }, code, copy, copied),
      h('div', { class: 'buttons' }, done));
    d.addEventListener('close', () => { code.textContent = ''; if (after) after(); });
    setTimeout(() => copy.focus(), 0);
  }, opener);
}

// ---------- keys ----------

const SORT_FIELDS = [['created', 'Created'], ['name', 'Name'], ['last_used_at', 'Last used'], ['last_rotated', 'Last rotated'], ['expires_at', 'Expires']];

function renderKeys(view, preset = {}) {
  const state = { cursors: [], filters: null };
  const nameMode = h('select', {}, ['equals', 'contains', 'startswith', 'endswith'].map((m) => h('option', { value: m, text: m === 'equals' ? 'is' : m === 'startswith' ? 'starts with' : m === 'endswith' ? 'ends with' : m })));
  nameMode.value = 'contains';
  const name = h('input', { type: 'search', spellcheck: 'false' });
  const active = h('select', {}, h('option', { value: '', text: 'any' }), h('option', { value: 'true', text: 'on' }), h('option', { value: 'false', text: 'off' }));
  const owner = h('input', { type: 'search', spellcheck: 'false', placeholder: 'account, user:alice@acme, sa:acme/ci' });
  if (preset.owner) owner.value = preset.owner;
  const createdAfter = h('input', { type: 'datetime-local' });
  const sortBy = h('select', {}, SORT_FIELDS.map(([v, l]) => h('option', { value: v, text: l })));
  const dir = h('select', {}, h('option', { value: 'asc', text: 'ascending' }), h('option', { value: 'desc', text: 'descending' }));
  const size = h('select', {}, [10, 20, 50, 100].map((n) => h('option', { value: String(n), text: String(n) })));
  size.value = '20';
  const box = errorBox();
  const form = h('form', { class: 'filters', id: 'key-filters', 'aria-label': 'Filter keys' },
    field('Name', name), field('Name match', nameMode), field('Active', active), field('Owner', owner),
    field('Created after', createdAfter), field('Sort by', sortBy), field('Order', dir), field('Per page', size),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', id: 'apply-filters' }, 'Apply filters')), box);
  const results = h('div', { id: 'key-results', 'aria-live': 'polite' });

  const createBtn = can('apikey.create') ? h('button', { type: 'button', id: 'create-key', class: 'primary' }, 'Create key') : null;
  if (createBtn) createBtn.addEventListener('click', () => createKeyDialog(createBtn, () => load(state.cursors.at(-1))));
  view.append(h('div', { class: 'titlebar' }, heading(preset.title || 'Keys'), createBtn), form, results);

  function params(cursor) {
    const p = { size: Number(size.value), sort_by: `${dir.value}:${sortBy.value}` };
    if (name.value.trim()) p.name = `${nameMode.value}:${name.value.trim()}`;
    if (active.value) p.active = active.value === 'true';
    if (owner.value.trim()) p.owner = owner.value.trim();
    if (createdAfter.value) p.created = `gt:${rfc3339(createdAfter.value)}`;
    if (cursor) p.cursor = cursor;
    return p;
  }

  async function load(cursor) {
    hideError(box);
    let res;
    try {
      res = await rpc('apikey.list', params(cursor));
    } catch (err) {
      showError(box, err);
      return;
    }
    learnAccountFromOwners(res.items);
    clear(results);
    const pageNo = state.cursors.length + 1;
    results.append(
      h('p', { class: 'count', text: `${res.total} key${res.total === 1 ? '' : 's'} match; page ${pageNo} of ${Math.max(res.total_pages || 1, 1)}.` }),
      res.items.length === 0 ? h('p', { text: 'No keys match these filters.' }) :
        table([
          { label: 'Name', cell: (k) => k.name || '(no name)' },
          { label: 'Comment', cell: (k) => h('span', { class: 'comment', text: k.comment }) },
          { label: 'Owner', cell: (k) => k.owner || 'account' },
          { label: 'Active', cell: (k) => (k.active ? 'on' : 'off') },
          { label: 'Created', cell: (k) => fmtTime(k.created) },
          { label: 'Key', cell: (k) => (can('apikey.info')
            ? h('button', { type: 'button', class: 'open-key', 'data-id': k.id, onclick: (ev) => showKey(k.id, ev.currentTarget) }, `Open ${k.name || k.id.slice(0, 8)}`)
            : h('code', { text: k.id })) },
        ], res.items, 'Keys'));
    const pager = h('div', { class: 'pager' });
    if (state.cursors.length > 0) {
      pager.append(h('button', { type: 'button', id: 'first-page', onclick: () => { state.cursors = []; load(); } }, 'First page'));
    }
    if (res.next_cursor) {
      pager.append(h('button', { type: 'button', id: 'next-page', onclick: () => { state.cursors.push(res.next_cursor); load(res.next_cursor); } }, 'Next page'));
    }
    results.append(pager);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.cursors = [];
    load();
  });
  focusHeading(view);
  load();
}

function learnAccountFromOwners(items) {
  if (!session || session.account) return;
  for (const k of items || []) {
    const o = k.owner || '';
    if (o.startsWith('user:') && o.includes('@')) { session.account = o.slice(o.lastIndexOf('@') + 1); return; }
    if (o.startsWith('sa:') && o.includes('/')) { session.account = o.slice(3, o.indexOf('/')); return; }
  }
}

function scopesEditor(initial = {}) {
  // The scopes being built: type -> values. access uses checkboxes.
  const scopes = { method: [...(initial.method || [])], name: [...(initial.name || [])], ip: [...(initial.ip || [])] };
  const wrap = h('fieldset', { class: 'scopes' }, h('legend', { text: 'Scopes (empty types do not restrict)' }));
  const listId = nextId('methods');
  wrap.append(h('datalist', { id: listId }, session.methodList.map((m) => h('option', { value: m })),
    [...new Set(session.methodList.map((m) => m.split('.')[0]))].map((ns) => h('option', { value: `${ns}.*` }))));
  const hints = {
    method: 'A method (apikey.list) or a namespace wildcard (server.*).',
    name: 'A name the key may pass as its name parameter.',
    ip: 'An address or CIDR range (192.0.2.0/24, 2001:db8::/32).',
  };
  for (const type of ['method', 'name', 'ip']) {
    const ul = h('ul', { class: 'chips', 'aria-label': `${type} values` });
    const input = h('input', { spellcheck: 'false', 'data-scope': type, list: type === 'method' ? listId : null });
    const redraw = () => {
      clear(ul);
      for (const v of scopes[type]) {
        ul.append(h('li', {}, h('span', { text: v }),
          h('button', { type: 'button', 'aria-label': `Remove ${type} ${v}`, onclick: () => { scopes[type] = scopes[type].filter((x) => x !== v); redraw(); input.focus(); } }, '×')));
      }
    };
    const add = () => {
      const v = input.value.trim();
      if (v && !scopes[type].includes(v)) scopes[type].push(v);
      input.value = '';
      redraw();
      input.focus();
    };
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); add(); } });
    wrap.append(h('div', { class: 'scope-type' },
      field(`${type} scope`, input, hints[type]),
      h('button', { type: 'button', 'data-add-scope': type, onclick: add }, `Add ${type}`), ul));
    redraw();
  }
  const access = h('fieldset', { class: 'access' }, h('legend', { text: 'access scope' }));
  const boxes = {};
  for (const cls of ['READ', 'CREATE', 'UPDATE', 'DELETE', 'MANAGE']) {
    const cb = h('input', { type: 'checkbox', id: nextId('acc'), value: cls });
    if ((initial.access || []).includes(cls)) cb.checked = true;
    boxes[cls] = cb;
    access.append(h('span', { class: 'check' }, cb, h('label', { for: cb.id, text: cls })));
  }
  wrap.append(access);
  return {
    el: wrap,
    value() {
      const out = {};
      for (const t of ['method', 'name', 'ip']) if (scopes[t].length) out[t] = [...scopes[t]];
      const acc = Object.keys(boxes).filter((c) => boxes[c].checked);
      if (acc.length) out.access = acc;
      return out;
    },
  };
}

function createKeyDialog(opener, done) {
  openDialog('Create a key', (d, close) => {
    const name = h('input', { name: 'name', spellcheck: 'false', id: 'new-key-name' });
    const comment = h('input', { name: 'comment', maxlength: '255', id: 'new-key-comment' });
    const description = h('textarea', { name: 'description', rows: '2' });
    const sa = h('input', { name: 'service_account', spellcheck: 'false' });
    const scopes = scopesEditor();
    const notBefore = h('input', { type: 'datetime-local' });
    const expires = h('input', { type: 'datetime-local', id: 'new-key-expires' });
    const rlLimit = h('input', { type: 'number', min: '0', max: '1000000', inputmode: 'numeric' });
    const rlInterval = h('input', { type: 'number', min: '1', max: '86400', value: '60', inputmode: 'numeric' });
    const qRemaining = h('input', { type: 'number', min: '0', inputmode: 'numeric' });
    const qRefill = h('select', {}, h('option', { value: '', text: 'never' }), h('option', { value: 'daily', text: 'daily' }), h('option', { value: 'monthly', text: 'monthly' }));
    const qAmount = h('input', { type: 'number', min: '1', inputmode: 'numeric' });
    const box = errorBox();
    const submit = h('button', { type: 'submit', class: 'primary', id: 'create-key-submit' }, 'Create key');
    const form = h('form', { id: 'create-key-form' },
      h('div', { class: 'grid' },
        field('Name (optional)', name, '1 to 64 of A-Z a-z 0-9 . _ -'),
        field('Comment', comment),
        field('Description', description),
        can('service_account.list') ? field('Service account to hold it (optional)', sa) : null),
      scopes.el,
      h('fieldset', {}, h('legend', { text: 'Validity (your local time)' }),
        h('div', { class: 'grid' }, field('Not before', notBefore), field('Expires at', expires))),
      h('fieldset', {}, h('legend', { text: 'Limits' }),
        h('div', { class: 'grid' },
          field('Rate limit: calls', rlLimit, 'Empty or 0: no rate limit'),
          field('per seconds', rlInterval),
          field('Quota: calls left', qRemaining, 'Empty: no quota'),
          field('Quota refill', qRefill),
          field('Refill amount', qAmount))),
      box,
      h('div', { class: 'buttons' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(box);
      const p = { scopes: scopes.value(), comment: comment.value };
      if (name.value.trim()) p.name = name.value.trim();
      if (description.value) p.description = description.value;
      if (sa.value.trim()) p.service_account = sa.value.trim();
      if (notBefore.value) p.not_before = rfc3339(notBefore.value);
      if (expires.value) p.expires_at = rfc3339(expires.value);
      if (rlLimit.value && Number(rlLimit.value) > 0) p.rate_limit = { limit: Number(rlLimit.value), interval_seconds: Number(rlInterval.value) };
      if (qRemaining.value !== '') {
        p.quota = { remaining: Number(qRemaining.value), refill: qRefill.value };
        if (qRefill.value) p.quota.refill_amount = Number(qAmount.value);
      }
      submit.disabled = true;
      let res;
      try {
        res = await rpc('apikey.create', p);
      } catch (err) {
        showError(box, err);
        submit.disabled = false;
        return;
      }
      close();
      showSecret(opener, 'Key created', `The key ${res.name || res.id} was created. Its secret:`, res.key, done);
    });
    d.append(form);
    setTimeout(() => name.focus(), 0);
  }, opener);
}

async function showKey(id, opener) {
  let k;
  try {
    k = await rpc('apikey.info', { id });
  } catch (err) {
    if (opener) {
      const box = opener.parentElement.querySelector('.error') || opener.parentElement.appendChild(errorBox());
      showError(box, err);
    }
    return;
  }
  const view = $('#view');
  clear(view);
  renderKeyDetail(view, k);
}

function renderKeyDetail(view, k) {
  learnAccountFromOwners([k]);
  const back = can('apikey.list') ? h('button', { type: 'button', id: 'back-to-keys', onclick: () => show('keys') }, 'Back to keys') : null;
  const rows = [
    ['Id', k.id], ['Name', k.name || '(no name)'], ['Comment', k.comment], ['Description', k.description || ''],
    ['Owner', k.owner || 'account'], ['Active', k.active ? 'on' : 'off'], ['Created', fmtTime(k.created)],
    ['Not before', fmtTime(k.not_before) || 'none'], ['Expires at', fmtTime(k.expires_at) || 'never'],
    ['Last rotated', fmtTime(k.last_rotated) || 'never'], ['Last used', fmtTime(k.last_used_at) || 'never'],
    ['Calls', String(k.use_count || 0)],
    ['Rate limit', k.rate_limit ? `${k.rate_limit.limit} calls per ${k.rate_limit.interval_seconds} s` : 'none'],
    ['Quota', k.quota ? `${k.quota.remaining} calls left${k.quota.refill ? `, refilled ${k.quota.refill} to ${k.quota.refill_amount}` : ''}` : 'none'],
  ];
  const dl = h('dl', { class: 'detail', id: 'key-detail' }, rows.map(([dt, dd]) => [h('dt', { text: dt }), h('dd', { text: dd, 'data-field': dt.toLowerCase().replace(/ /g, '_') })]));
  view.append(back, heading(`Key ${k.name || k.id}`), dl);

  // Scopes: each value with a remove button, and an add form.
  const scopeSection = h('section', { 'aria-label': 'Scopes', id: 'key-scopes' }, h('h3', { text: 'Scopes' }));
  const types = ['method', 'name', 'access', 'ip'];
  const anyScope = types.some((t) => (k.scopes[t] || []).length);
  if (!anyScope) scopeSection.append(h('p', { text: 'None: this key is unrestricted within its account.' }));
  for (const t of types) {
    const vals = k.scopes[t] || [];
    if (!vals.length) continue;
    scopeSection.append(h('h4', { text: t }), h('ul', { class: 'chips' }, vals.map((v) => h('li', {}, h('span', { text: v }),
      can('apikey.delete_scope') ? actionButton('Remove', async () => {
        const nk = await rpc('apikey.delete_scope', { id: k.id, scope_name: t, value: v });
        announce(`Removed ${t} ${v}.`);
        rerender(nk);
      }, { 'aria-label': `Remove ${t} ${v}` }) : null))));
  }
  if (can('apikey.add_scope')) {
    const type = h('select', { id: 'add-scope-type' }, types.map((t) => h('option', { value: t, text: t })));
    const value = h('input', { id: 'add-scope-value', spellcheck: 'false', required: true });
    const box = errorBox();
    const form = h('form', { class: 'inline', id: 'add-scope-form' }, field('Scope type', type), field('Value', value),
      h('button', { type: 'submit' }, 'Add scope'), box);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(box);
      try {
        const nk = await rpc('apikey.add_scope', { id: k.id, scope_name: type.value, value: value.value.trim() });
        announce(`Added ${type.value} ${value.value.trim()}.`);
        rerender(nk);
      } catch (err) {
        showError(box, err);
      }
    });
    scopeSection.append(form);
  }
  view.append(scopeSection);

  const actions = h('section', { 'aria-label': 'Actions', id: 'key-actions' }, h('h3', { text: 'Actions' }));
  if (can('apikey.update')) {
    // Edit what a person names and describes; expiry as for create.
    const name = h('input', { id: 'edit-name', spellcheck: 'false', value: k.name || '' });
    const comment = h('input', { id: 'edit-comment', maxlength: '255', value: k.comment || '' });
    const expires = h('input', { id: 'edit-expires', type: 'datetime-local' });
    const box = errorBox();
    const form = h('form', { class: 'inline', id: 'edit-key-form' }, h('h3', { text: 'Edit' }),
      field('Name', name), field('Comment', comment),
      field('Expires at (your local time; empty leaves it)', expires),
      h('button', { type: 'submit' }, 'Save changes'), box);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(box);
      const p = { id: k.id };
      if (name.value.trim() !== (k.name || '') && name.value.trim() !== '') p.name = name.value.trim();
      if (comment.value !== k.comment) p.comment = comment.value;
      if (expires.value) p.expires_at = rfc3339(expires.value);
      try {
        const nk = await rpc('apikey.update', p);
        announce('Saved.');
        rerender(nk);
      } catch (err) {
        showError(box, err);
      }
    });
    view.append(form);

    actions.append(actionButton(k.active ? 'Switch off' : 'Switch on', async () => {
      const nk = await rpc('apikey.update', { id: k.id, active: !k.active });
      announce(nk.active ? 'Switched on.' : 'Switched off.');
      rerender(nk);
    }, { id: 'toggle-active' }));
  }
  if (can('apikey.rotate')) {
    const grace = h('input', { type: 'number', min: '0', max: '10080', value: '0', id: 'rotate-grace', inputmode: 'numeric' });
    const box = errorBox();
    const btn = h('button', { type: 'submit', id: 'rotate' }, 'Rotate');
    const form = h('form', { class: 'inline', id: 'rotate-form' },
      field('Grace period for the old secret (minutes, 0 to 10080)', grace), btn, box);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(box);
      let nk;
      try {
        nk = await rpc('apikey.rotate', { id: k.id, retain_period_minutes: Number(grace.value || 0) });
      } catch (err) {
        showError(box, err);
        return;
      }
      const mins = Number(grace.value || 0);
      showSecret(btn, 'Key rotated',
        mins ? `The old secret keeps working for ${mins} minutes. The new secret:` : 'The old secret no longer works. The new secret:',
        nk.key, () => { if (session && $('#key-detail')) showKey(k.id); });
    });
    actions.append(form);
  }
  if (can('apikey.delete')) {
    const del = h('button', { type: 'button', class: 'danger', id: 'delete-key' }, 'Delete key');
    del.addEventListener('click', () => confirmAction(del, 'Delete this key?',
      `The key ${k.name || k.id} stops working at once, and this cannot be undone.`, 'Delete key', async () => {
        await rpc('apikey.delete', { id: k.id });
        announce('Key deleted.');
        if (session && k.id === session.keyId) { endSession('This key was deleted.'); return; }
        if (can('apikey.list')) show('keys'); else showEmpty();
      }));
    actions.append(del);
  }
  view.append(actions);
  focusHeading(view);

  function rerender(nk) {
    clear(view);
    renderKeyDetail(view, nk);
  }
}

// ---------- users ----------

async function renderUsers(view) {
  const box = errorBox();
  const list = h('div', { id: 'user-list' });
  view.append(heading('Users'), box, list);
  if (can('user.create')) {
    const name = h('input', { spellcheck: 'false', required: true, id: 'new-user-name' });
    const pass = h('input', { type: 'password', required: true, minlength: '8', autocomplete: 'new-password', id: 'new-user-password' });
    const fbox = errorBox();
    const form = h('form', { class: 'inline', id: 'create-user-form' }, h('h3', { text: 'Create a user' }),
      field('Name', name), field('Password (8 to 256 characters)', pass), h('button', { type: 'submit' }, 'Create user'), fbox);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(fbox);
      try {
        const u = await rpc('user.create', { name: name.value.trim(), password: pass.value });
        pass.value = '';
        name.value = '';
        announce(`User ${u.login} created.`);
        await load();
      } catch (err) {
        showError(fbox, err);
      }
    });
    view.append(form);
  }
  async function load() {
    hideError(box);
    let users;
    try {
      users = await rpc('user.list');
    } catch (err) {
      showError(box, err);
      return;
    }
    if (!session.account && users.length) session.account = users[0].login.slice(users[0].login.lastIndexOf('@') + 1);
    clear(list);
    list.append(users.length === 0 ? h('p', { text: 'No users yet.' }) : table([
      { label: 'Name', cell: (u) => u.name },
      { label: 'Login', cell: (u) => u.login },
      { label: 'Created', cell: (u) => fmtTime(u.created) },
      { label: 'Actions', cell: (u) => h('span', { class: 'row-actions' },
        can('user.apikeys') ? h('button', { type: 'button', onclick: (ev) => userKeys(u, ev.currentTarget) }, `Keys of ${u.name}`) : null,
        can('user.delete') ? h('button', { type: 'button', class: 'danger', onclick: (ev) => confirmAction(ev.currentTarget, 'Delete this user?',
          `The user ${u.login} and every key it holds are deleted. This cannot be undone.`, 'Delete user',
          async () => { await rpc('user.delete', { name: u.name }); announce('User deleted.'); await load(); }) }, `Delete ${u.name}`) : null) },
    ], users, 'Users'));
  }
  focusHeading(view);
  await load();
}

async function userKeys(u, opener) {
  const view = $('#view');
  clear(view);
  const back = h('button', { type: 'button', onclick: () => show('users') }, 'Back to users');
  const box = errorBox();
  const list = h('div');
  view.append(back, heading(`Keys of ${u.login}`), box, list);
  focusHeading(view);
  async function load() {
    let res;
    try {
      res = await rpc('user.apikeys', { username: u.name });
    } catch (err) {
      showError(box, err);
      return;
    }
    const keys = Object.entries(res.apikeys || {}).map(([id, v]) => ({ id, ...v }));
    clear(list);
    list.append(keys.length === 0 ? h('p', { text: 'This user holds no keys.' }) : table([
      { label: 'Id', cell: (k) => h('code', { text: k.id }) },
      { label: 'Comment', cell: (k) => h('span', { class: 'comment', text: k.comment }) },
      { label: 'Access level', cell: (k) => k.access_level },
      { label: 'Created', cell: (k) => fmtTime(k.created) },
      { label: 'Actions', cell: (k) => h('span', { class: 'row-actions' },
        can('apikey.info') ? h('button', { type: 'button', onclick: (ev) => showKey(k.id, ev.currentTarget) }, 'Open') : null,
        can('user.delete_apikey') ? h('button', { type: 'button', class: 'danger', onclick: (ev) => confirmAction(ev.currentTarget, 'Delete this key?',
          `The key ${k.id} stops working at once. This cannot be undone.`, 'Delete key',
          async () => { await rpc('user.delete_apikey', { delete_key: k.id }); announce('Key deleted.'); await load(); }) }, 'Delete') : null) },
    ], keys, `Keys of ${u.login}`));
  }
  await load();
  void opener;
}

// ---------- service accounts ----------

async function renderServiceAccounts(view) {
  const box = errorBox();
  const list = h('div', { id: 'sa-list' });
  view.append(heading('Service accounts'), box, list);
  if (can('service_account.create')) {
    const name = h('input', { spellcheck: 'false', required: true, id: 'new-sa-name' });
    const desc = h('input', { id: 'new-sa-description' });
    const fbox = errorBox();
    const form = h('form', { class: 'inline', id: 'create-sa-form' }, h('h3', { text: 'Create a service account' }),
      field('Name', name), field('Description', desc), h('button', { type: 'submit' }, 'Create service account'), fbox);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(fbox);
      try {
        await rpc('service_account.create', { name: name.value.trim(), description: desc.value });
        name.value = '';
        desc.value = '';
        announce('Service account created.');
        await load();
      } catch (err) {
        showError(fbox, err);
      }
    });
    view.append(form);
  }
  async function load() {
    hideError(box);
    let sas;
    try {
      sas = await rpc('service_account.list');
    } catch (err) {
      showError(box, err);
      return;
    }
    clear(list);
    list.append(sas.length === 0 ? h('p', { text: 'No service accounts yet.' }) : table([
      { label: 'Name', cell: (s) => s.name },
      { label: 'Description', cell: (s) => h('span', { class: 'comment', text: s.description || '' }) },
      { label: 'Active', cell: (s) => (s.active ? 'on' : 'off') },
      { label: 'Keys', cell: (s) => String(s.keys) },
      { label: 'Actions', cell: (s) => h('span', { class: 'row-actions' },
        can('apikey.list') ? actionButton(`Keys of ${s.name}`, async () => {
          const acct = await accountName();
          show('keys', { owner: `sa:${acct}/${s.name}`, title: `Keys of service account ${s.name}` });
        }) : null,
        can('service_account.update') ? actionButton(s.active ? `Switch off ${s.name}` : `Switch on ${s.name}`, async () => {
          await rpc('service_account.update', { name: s.name, active: !s.active });
          announce(s.active ? 'Switched off.' : 'Switched on.');
          await load();
        }) : null,
        can('service_account.delete') ? h('button', { type: 'button', class: 'danger', onclick: (ev) => confirmAction(ev.currentTarget, 'Delete this service account?',
          `The service account ${s.name} and every key it holds are deleted. This cannot be undone.`, 'Delete service account',
          async () => { await rpc('service_account.delete', { name: s.name }); announce('Service account deleted.'); await load(); }) }, `Delete ${s.name}`) : null) },
    ], sas, 'Service accounts'));
  }
  focusHeading(view);
  await load();
}

// accountName finds the name of the session's account, which owner
// filters need: from the sign-in, the operator methods, a user's login
// name, or the owner of a held key in the account's key list.
async function accountName() {
  if (session.account) return session.account;
  if (can('user.list')) {
    const users = await rpc('user.list');
    if (users.length) session.account = users[0].login.slice(users[0].login.lastIndexOf('@') + 1);
  }
  if (!session.account && can('apikey.list')) {
    let cursor;
    for (let i = 0; i < 10 && !session.account; i++) {
      const res = await rpc('apikey.list', { size: 1000, ...(cursor ? { cursor } : {}) });
      learnAccountFromOwners(res.items);
      cursor = res.next_cursor;
      if (!cursor) break;
    }
  }
  if (!session.account) throw new Error('This service account holds no keys.');
  return session.account;
}

// ---------- audit ----------

function renderAudit(view) {
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const listId = nextId('audit-methods');
  const method = h('input', { spellcheck: 'false', list: listId, id: 'audit-method' });
  const outcome = h('input', { spellcheck: 'false', placeholder: 'ok, invalid_key, ...', id: 'audit-outcome' });
  const limit = h('select', {}, [20, 100, 500].map((n) => h('option', { value: String(n), text: String(n) })));
  const box = errorBox();
  const form = h('form', { class: 'filters', id: 'audit-filters', 'aria-label': 'Filter the audit trail' },
    h('datalist', { id: listId }, session.methodList.map((m) => h('option', { value: m }))),
    field('Since', since), field('Until', until), field('Method', method), field('Outcome', outcome), field('Per page', limit),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', id: 'apply-audit-filters' }, 'Apply filters')), box);
  const results = h('div', { id: 'audit-results', 'aria-live': 'polite' });
  view.append(heading('Audit trail'), form, results);
  const state = { afters: [] };

  async function load(after) {
    hideError(box);
    const p = { limit: Number(limit.value) };
    if (since.value) p.since = rfc3339(since.value);
    if (until.value) p.until = rfc3339(until.value);
    if (method.value.trim()) p.method = method.value.trim();
    if (outcome.value.trim()) p.outcome = outcome.value.trim();
    if (after) p.after = after;
    let res;
    try {
      res = await rpc('audit.list', p);
    } catch (err) {
      showError(box, err);
      return;
    }
    clear(results);
    const recs = res.records || [];
    results.append(recs.length === 0 ? h('p', { text: 'No records match these filters.' }) : table([
      { label: 'Seq', cell: (r) => String(r.seq) },
      { label: 'Time', cell: (r) => fmtTime(r.time) },
      { label: 'Account', cell: (r) => r.account },
      { label: 'Actor', cell: (r) => r.actor },
      { label: 'Source', cell: (r) => r.source_ip },
      { label: 'Method', cell: (r) => r.method },
      { label: 'Target', cell: (r) => r.target },
      { label: 'Outcome', cell: (r) => r.outcome },
      { label: 'Count', cell: (r) => String(r.count) },
    ], recs, 'Audit records, oldest first'));
    const pager = h('div', { class: 'pager' });
    if (state.afters.length) pager.append(h('button', { type: 'button', onclick: () => { state.afters = []; load(); } }, 'First page'));
    if (res.next) pager.append(h('button', { type: 'button', id: 'audit-next', onclick: () => { state.afters.push(res.next); load(res.next); } }, 'Next page'));
    results.append(pager);
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); state.afters = []; load(); });
  focusHeading(view);
  load();
}

// ---------- accounts (operator keys) ----------

async function renderAccounts(view) {
  const box = errorBox();
  const list = h('div', { id: 'account-list' });
  view.append(heading('Accounts'), box, list);
  if (can('account.create')) {
    const name = h('input', { spellcheck: 'false', required: true, id: 'new-account-name' });
    const comment = h('input', { maxlength: '255', id: 'new-account-comment' });
    const fbox = errorBox();
    const btn = h('button', { type: 'submit' }, 'Create account');
    const form = h('form', { class: 'inline', id: 'create-account-form' }, h('h3', { text: 'Create an account' }),
      field('Name', name), field('Comment', comment), btn, fbox);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError(fbox);
      let a;
      try {
        a = await rpc('account.create', { name: name.value.trim(), comment: comment.value });
      } catch (err) {
        showError(fbox, err);
        return;
      }
      name.value = '';
      comment.value = '';
      showSecret(btn, 'Account created', `The account ${a.name} was created with a first, unrestricted key. Hand it to the tenant. Its secret:`,
        a.first_key.key, () => load());
    });
    view.append(form);
  }
  async function load() {
    hideError(box);
    let accts;
    try {
      accts = await rpc('account.list');
    } catch (err) {
      showError(box, err);
      return;
    }
    clear(list);
    list.append(table([
      { label: 'Name', cell: (a) => a.name },
      { label: 'Comment', cell: (a) => h('span', { class: 'comment', text: a.comment }) },
      { label: 'Keys', cell: (a) => String(a.keys) },
      { label: 'Created', cell: (a) => fmtTime(a.created) },
      { label: 'Actions', cell: (a) => (can('account.delete') && a.name !== 'operator'
        ? h('button', { type: 'button', class: 'danger', onclick: (ev) => confirmAction(ev.currentTarget, 'Delete this account?',
          `The account ${a.name} and every key in it are deleted. This cannot be undone.`, 'Delete account',
          async () => { await rpc('account.delete', { name: a.name }); announce('Account deleted.'); await load(); }) }, `Delete ${a.name}`)
        : '') },
    ], accts, 'Accounts'));
  }
  focusHeading(view);
  await load();
}

setupSignIn();
