// Package h1 is apikeyd's HTTP/1.1 serving beside net/http. Nearly every
// request is the same shape: POST /rpc over HTTP/1.1 with a Host, a JSON
// Content-Type, a Content-Length and an Authorization. ServeConn reads
// those straight off the connection and answers them as
// rpc.Server.ServeHTTP under net/http would, byte for byte but the Date,
// without net/http's machinery per request; the first request of any other
// kind hands the connection, that request unread, to net/http.
//
// Server is the accept loop that serves a listener so, with graceful
// shutdown. WatchListener keeps connection deadlines with one watchdog in
// place of a runtime timer each. FramingListener refuses requests whose
// body could be framed two ways (request smuggling) on the connections
// net/http reads.
//
// It owns the bytes of HTTP/1.1 only: it reaches the method table, keys
// and the store through rpc.Server's seam (NewPeer, Call and a few limits)
// and nothing else, and keeps the limits of the *http.Server it hands
// connections to rather than a copy of them.
package h1
