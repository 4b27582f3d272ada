// Package h1 is apikeyd's HTTP/1.1 fast path. Nearly every request is the
// same shape: POST /rpc over HTTP/1.1 with a Host, a JSON Content-Type, a
// Content-Length and an Authorization. ServeConn reads those straight off
// the connection and answers them as rpc.Server.ServeHTTP under net/http
// would, byte for byte but the Date, without net/http's machinery per
// request; the first request of any other kind hands the connection, that
// request unread, to net/http.
//
// It owns the bytes of HTTP/1.1 on the fast path only: it reaches the
// method table, keys and the store through rpc.Server's seam (NewPeer,
// Call) and nothing else, and keeps the limits of the *http.Server it
// hands connections to.
package h1
