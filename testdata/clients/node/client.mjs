// Drives a live apikeyd with two JSON-RPC client libraries written
// elsewhere, jayson and json-rpc-2.0, and prints one JSON object of what
// each got back. rpc/clients_test.go runs it and judges the values; this
// script fails (exit 1) only when a library could not complete an exchange
// at all, or an outcome is of the wrong kind (a call that must fail
// succeeded, a batch reply is missing or unexpected).
//
// Environment: APIKEYD_URL (the .../rpc URL), APIKEYD_KEY (the key to call
// with) and APIKEYD_KEY_ID (that key's id, for apikey.info). The key travels
// in the environment, not argv, so it does not show in process listings.

import { readFileSync } from "node:fs";
import jayson from "jayson";
import { JSONRPCClient, JSONRPCErrorException } from "json-rpc-2.0";

// A key no server issued: calls with it must fail authentication.
const BOGUS_KEY = "ffffffffffffffffffffffffffffffff";
// Per-exchange limit, well inside the Go test's own timeout, so a hang is
// reported here with the library's name rather than as a killed process.
const TIMEOUT_MS = 10_000;

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("APIKEYD_URL");
const key = env("APIKEYD_KEY");
const keyID = env("APIKEYD_KEY_ID");

// The batch both libraries send. The Go test expects its outcomes in this
// order; ids are given per library so each shows its own id type (jayson
// strings, json-rpc-2.0 numbers). The last entry has no id: a notification,
// which the server runs but must not answer.
const batchCalls = [
  { method: "server.list", params: {} },
  { method: "apikey.info", params: { id: keyID } },
  { method: "no.such.method", params: {} }, // -32601 method_not_found
  { method: "server.reboot", params: { name: "web1" } }, // -32003 scope_denied
  { method: "apikey.info", params: {} }, // -32602 invalid_params, field id
  { method: "server.list", params: {}, notification: true },
];

function fail(msg) {
  throw new Error(msg);
}

// withTimeout bounds p, naming what hung.
function withTimeout(p, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// checkBatch fails unless replies answer exactly the sent calls that have ids.
function checkBatch(lib, sent, replies) {
  const want = sent.filter((c) => c.id !== undefined).map((c) => JSON.stringify(c.id));
  const got = replies.map((r) => JSON.stringify(r.id));
  if (new Set(got).size !== got.length) fail(`${lib}: batch reply ids repeat: ${got}`);
  if (got.length !== want.length || !want.every((id) => got.includes(id))) {
    fail(`${lib}: batch replies ${got} do not answer calls ${want}`);
  }
  for (const r of replies) {
    if ((r.result === undefined) === (r.error === undefined)) {
      fail(`${lib}: batch reply ${JSON.stringify(r.id)} has not exactly one of result and error`);
    }
  }
}

// errorSummary is the part of an error the test judges.
const errorSummary = (kind, e) => ({ kind, code: e.code, message: e.message, data: e.data });

// --- jayson ---------------------------------------------------------------

function jaysonClient(withKey) {
  const u = new URL(url);
  return jayson.client.http({
    protocol: u.protocol,
    hostname: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    headers: { Authorization: `Bearer ${withKey}` },
    timeout: TIMEOUT_MS,
  });
}

// jaysonCall uses jayson's three-argument callback, with which the library
// itself separates a reply's error from its result (for a batch: the error
// replies from the successful ones).
// A batch is request(array, callback), a single call request(method,
// params, id, callback).
function jaysonCall(client, method, params, id) {
  return new Promise((resolve, reject) => {
    const done = (err, error, result) => {
      if (err) reject(new Error(`jayson ${Array.isArray(method) ? "batch" : method}: transport: ${err.message}`));
      else resolve({ error, result });
    };
    if (Array.isArray(method)) client.request(method, done);
    else client.request(method, params, id, done);
  });
}

async function runJayson() {
  const client = jaysonClient(key);
  const out = {};

  const single = await jaysonCall(client, "apikey.info", { id: keyID }, "single");
  if (single.error !== undefined) fail(`jayson apikey.info failed: ${JSON.stringify(single.error)}`);
  out.single = single.result;

  // Without a callback, request builds a request object without sending it.
  const sent = batchCalls.map((c, i) =>
    client.request(c.method, c.params, c.notification ? null : `j${i + 1}`),
  );
  const batch = await jaysonCall(client, sent);
  const errors = batch.error ?? [];
  const successes = batch.result ?? [];
  const replies = [...errors, ...successes];
  checkBatch("jayson", sent, replies);
  out.batch = {
    sent: sent.map(({ id, method }) => ({ id, method })),
    replies,
    // Which of jayson's two lists each id landed in.
    error_ids: errors.map((r) => r.id),
    success_ids: successes.map((r) => r.id),
  };

  const missing = await jaysonCall(client, "apikey.info", { id: "no-such-key" }, "error");
  if (missing.error === undefined) fail(`jayson: apikey.info of an unknown key succeeded: ${JSON.stringify(missing.result)}`);
  out.error = errorSummary("reply.error", missing.error);

  const denied = await jaysonCall(jaysonClient(BOGUS_KEY), "server.list", {}, "unauthenticated");
  if (denied.error === undefined) fail(`jayson: a call with a bogus key succeeded: ${JSON.stringify(denied.result)}`);
  out.unauthenticated = errorSummary("reply.error", denied.error);
  return out;
}

// --- json-rpc-2.0 -----------------------------------------------------------

function jsonrpc2Client(withKey) {
  // The library leaves transport to the caller: this is the fetch-based send
  // function of its README, with the key added.
  const client = new JSONRPCClient(async (payload) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${withKey}` },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (res.status === 200) {
      client.receive(await res.json());
    } else if (res.status !== 204) {
      // Rejecting makes the library answer every pending id with its own
      // error (code 0), which checkTransport below turns into a failure.
      throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    }
  });
  return client;
}

// checkTransport fails on the library's stand-in error for a send that
// failed, so it is never mistaken for the server's answer.
function checkTransport(e, what) {
  if (e && e.code === 0) fail(`json-rpc-2.0 ${what}: transport: ${e.message}`);
}

// jsonrpc2Error runs a call that must fail and returns what the library
// rejected with; a rejection with anything but its JSONRPCErrorException
// means the reply's error object was not surfaced.
async function jsonrpc2Error(client, method, params) {
  let result;
  try {
    result = await withTimeout(client.request(method, params), `json-rpc-2.0 ${method}`);
  } catch (e) {
    checkTransport(e, method);
    if (!(e instanceof JSONRPCErrorException)) throw e;
    return errorSummary(e.constructor.name, e);
  }
  fail(`json-rpc-2.0 ${method} succeeded: ${JSON.stringify(result)}`);
}

async function runJSONRPC2() {
  const client = jsonrpc2Client(key);
  const out = {};

  out.single = await withTimeout(client.request("apikey.info", { id: keyID }), "json-rpc-2.0 apikey.info");

  const sent = batchCalls.map((c, i) => {
    const r = { jsonrpc: "2.0", method: c.method, params: c.params };
    if (!c.notification) r.id = 101 + i;
    return r;
  });
  // requestAdvanced resolves once every call with an id has its reply,
  // matched by id; a notification is sent but not waited for.
  const replies = await withTimeout(client.requestAdvanced(sent), "json-rpc-2.0 batch");
  for (const r of replies) checkTransport(r.error, "batch");
  checkBatch("json-rpc-2.0", sent, replies);
  out.batch = { sent: sent.map(({ id, method }) => ({ id, method })), replies };

  out.error = await jsonrpc2Error(client, "apikey.info", { id: "no-such-key" });
  out.unauthenticated = await jsonrpc2Error(jsonrpc2Client(BOGUS_KEY), "server.list", {});
  return out;
}

// installedVersion is the version node actually loaded, so the test can
// tell a stale node_modules from the versions package.json pins.
const installedVersion = (pkg) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;

try {
  const report = {
    versions: { jayson: installedVersion("jayson"), "json-rpc-2.0": installedVersion("json-rpc-2.0") },
    jayson: await withTimeout(runJayson(), "jayson"),
    "json-rpc-2.0": await withTimeout(runJSONRPC2(), "json-rpc-2.0"),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
} catch (e) {
  process.stderr.write(`client.mjs: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}
