// Package console serves the web console: a page, embedded in the binary,
// from which people who manage keys sign in with an API key (or a user
// name and password) and call apikeyd's JSON-RPC API with it.
//
// It owns the console's static files (static/, plain ES modules and CSS,
// no build step, nothing fetched from elsewhere) and the HTTP handler that
// serves them under /console with a strict Content-Security-Policy and
// headers that forbid framing. It does not own the API: the page calls
// POST /rpc like any other client, with the key in an Authorization
// header, so the console can do exactly what its key can and no more.
// The key lives in the page's memory only. cmd/apikeyd mounts the handler.
package console
