package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// h1Server serves ts's RPC server with ServeConn on 127.0.0.1, handing what
// it does not serve to net/http, as apikeyd does.
type h1Server struct {
	addr     string
	handoffs atomic.Int64
}

func newH1Server(t *testing.T, ts *testServer, hs *http.Server) *h1Server {
	t.Helper()
	mux := http.NewServeMux() // as newTestServer's
	mux.Handle("/rpc", ts.RPC)
	h := &h1Server{}
	h.addr = serveFast(t, ts.RPC, mux, &h.handoffs, hs)
	return h
}

// exchangeRaw writes raw to a new connection to addr and reads up to n
// replies, fewer if the server closes the connection first.
func exchangeRaw(t *testing.T, addr, raw string, n int) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("no reply within 5s")
			}
			break
		}
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

// summary is what a client sees of a reply, but for its Date.
func summary(t *testing.T, resp *http.Response) string {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	h := resp.Header.Clone()
	date := h.Get("Date") != ""
	h.Del("Date")
	return fmt.Sprintf("%s close=%v date=%v %v\n%s", resp.Status, resp.Close, date, h, body)
}

// TestServeH1_AnswersAsNetHTTP sends each request, raw, both to ServeConn
// and to the same server under net/http, and requires the same replies:
// the requests ServeConn serves itself and those it hands over alike.
func TestServeH1_AnswersAsNetHTTP(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) { o.MaxBodyBytes = 1024 })
	h := newH1Server(t, ts, &http.Server{MaxHeaderBytes: 1 << 20})
	plain := strings.TrimPrefix(ts.URL, "http://")
	plain = strings.TrimSuffix(plain, "/rpc")

	// A call whose reply is the same every time: apikey.list would show
	// the key's use count going up.
	info := `{"jsonrpc":"2.0","method":"server.list","id":7}`
	post := func(headers, body string) string {
		return "POST /rpc HTTP/1.1\r\nHost: x\r\n" + headers + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	}
	auth := "Authorization: Bearer " + adminKey + "\r\n"
	ctJSON := "Content-Type: application/json\r\n"
	big := strings.Repeat("a", 5000)
	for _, tc := range []struct {
		name    string
		raw     string
		replies int
		handoff bool
	}{
		{"call", post(ctJSON+auth, info), 1, false},
		{"lower case names, spaces and tabs", "POST /rpc HTTP/1.1\r\nhost:  x \r\ncontent-type:\tapplication/json; charset=utf-8\r\nAUTHORIZATION: Bearer " + adminKey + " \r\nX-Other: y\r\ncontent-length: 47 \r\n\r\n" + info, 1, false},
		{"basic auth", post(ctJSON+"Authorization: Basic "+basic(adminKey)+"\r\n", info), 1, false},
		{"no key", post(ctJSON, info), 1, false},
		{"wrong key", post(ctJSON+"Authorization: Bearer ffffffffffffffffffffffffffffffff\r\n", info), 1, false},
		{"notification", post(ctJSON+auth, `{"jsonrpc":"2.0","method":"apikey.list"}`), 1, false},
		{"batch", post(ctJSON+auth, `[`+info+`,{"jsonrpc":"2.0","method":"nope","id":"x"}]`), 1, false},
		{"empty body", post(ctJSON+auth, ""), 1, false},
		{"broken JSON", post(ctJSON+auth, `{"jsonrpc":`), 1, false},
		{"pipelined", post(ctJSON+auth, info) + post(ctJSON+auth, info), 2, false},
		{"CRLF after a body", post(ctJSON+auth, info) + "\r\n" + post(ctJSON+auth, info), 2, false},
		{"Connection: keep-alive", post(ctJSON+auth+"Connection: Keep-Alive\r\n", info), 1, false},
		{"leading empty X-Forwarded-For", post(ctJSON+auth+"X-Forwarded-For:\r\nX-Forwarded-For: 1.2.3.4\r\n", info), 1, false},
		{"then a GET on the same connection", post(ctJSON+auth, info) + "GET /rpc HTTP/1.1\r\nHost: x\r\n\r\n", 2, true},
		{"GET", "GET /rpc HTTP/1.1\r\nHost: x\r\n\r\n", 1, true},
		{"text/plain", post("Content-Type: text/plain\r\n"+auth, info), 1, true},
		{"no Content-Type", post(auth, info), 1, true},
		{"body over the limit", "POST /rpc HTTP/1.1\r\nHost: x\r\n" + ctJSON + auth + "Content-Length: 1025\r\n\r\n" + strings.Repeat(" ", 1025), 1, true},
		{"chunked", "POST /rpc HTTP/1.1\r\nHost: x\r\n" + ctJSON + auth + "Transfer-Encoding: chunked\r\n\r\n2f\r\n" + info + "\r\n0\r\n\r\n", 1, true},
		{"length and chunked", "POST /rpc HTTP/1.1\r\nHost: x\r\n" + ctJSON + auth + "Content-Length: 47\r\nTransfer-Encoding: chunked\r\n\r\n2f\r\n" + info + "\r\n0\r\n\r\n", 1, true},
		{"two lengths", "POST /rpc HTTP/1.1\r\nHost: x\r\n" + ctJSON + auth + "Content-Length: 47\r\nContent-Length: 4\r\n\r\n" + info, 1, true},
		{"signed length", "POST /rpc HTTP/1.1\r\nHost: x\r\n" + ctJSON + auth + "Content-Length: +47\r\n\r\n" + info, 1, true},
		{"Connection: close", post(ctJSON+auth+"Connection: close\r\n", info), 1, true},
		{"Expect", post(ctJSON+auth+"Expect: 100-continue\r\n", info), 2, true},
		{"no Host", "POST /rpc HTTP/1.1\r\n" + ctJSON + auth + "Content-Length: 47\r\n\r\n" + info, 1, true},
		{"two Hosts", post("Host: y\r\n"+ctJSON+auth, info), 1, true},
		{"odd Host", "POST /rpc HTTP/1.1\r\nHost: x/y\r\n" + ctJSON + auth + "Content-Length: 47\r\n\r\n" + info, 1, true},
		{"two Authorizations", post(ctJSON+auth+"Authorization: Bearer ffffffffffffffffffffffffffffffff\r\n", info), 1, true},
		{"two Content-Types", post(ctJSON+ctJSON+auth, info), 1, true},
		{"folded header", post(ctJSON+auth+"X-A: b\r\n c\r\n", info), 1, true},
		{"space before colon", post(ctJSON+auth+"X-A : b\r\n", info), 1, true},
		{"NUL in a value", post(ctJSON+auth+"X-A: b\x00c\r\n", info), 1, true},
		{"bare LF", "POST /rpc HTTP/1.1\nHost: x\n" + "Content-Type: application/json\nAuthorization: Bearer " + adminKey + "\nContent-Length: 47\n\n" + info, 1, true},
		{"HTTP/1.0", strings.Replace(post(ctJSON+auth, info), "HTTP/1.1", "HTTP/1.0", 1), 1, true},
		{"query", strings.Replace(post(ctJSON+auth, info), "/rpc", "/rpc?a=b", 1), 1, true},
		{"other path", strings.Replace(post(ctJSON+auth, info), "/rpc", "/rpcx", 1), 1, true},
		{"head past the buffer", post(ctJSON+auth+"X-Big: "+big+"\r\n", info), 1, true},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.handoffs.Load()
			want := exchangeRaw(t, plain, tc.raw, tc.replies)
			got := exchangeRaw(t, h.addr, tc.raw, tc.replies)
			require.Len(t, got, len(want))
			require.NotEmpty(t, got)
			for i := range want {
				assert.Equal(t, summary(t, want[i]), summary(t, got[i]), "reply %d", i)
			}
			assert.Equal(t, tc.handoff, h.handoffs.Load() > before, "handed to net/http")
		})
	}
}

// TestServeH1_BodyInLaterSegment: a body that arrives after its head, and
// lands where the head was in the read buffer, does not change what the
// head said (here, the key).
func TestServeH1_BodyInLaterSegment(t *testing.T) {
	ts := newTestServer(t)
	h := newH1Server(t, ts, &http.Server{MaxHeaderBytes: 1 << 20})
	body := `{"jsonrpc":"2.0","method":"server.list","id":7}` + strings.Repeat(" ", 300)
	conn, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
		adminKey, len(body))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // the head is read and parsed alone
	_, err = io.WriteString(conn, body)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(got), `"result":`)
	assert.NotContains(t, string(got), `"error"`)
	assert.Zero(t, h.handoffs.Load())
}

func basic(user string) string {
	req, _ := http.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth(user, "")
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// FuzzH1Head holds ServeConn's reading of a request head to net/http's:
// whatever head ServeConn serves itself, net/http reads as the same POST /rpc
// over HTTP/1.1, with the same length, Content-Type, Authorization and
// X-Forwarded-For, and nothing that would make it read the body otherwise.
func FuzzH1Head(f *testing.F) {
	for _, seed := range []string{
		"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
		"POST /rpc HTTP/1.1\r\nhost: a.b:80\r\ncontent-type: application/json;charset=utf-8\r\nauthorization: Bearer k\r\ncontent-length: 10\r\nx-forwarded-for: 1.2.3.4\r\nX-Forwarded-For:5.6.7.8 \r\n\r\n",
		"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n X: folded\r\n\r\n",
		"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 02\r\n\r\n",
	} {
		f.Add(seed)
	}
	ts := newTestServer(f)
	f.Fuzz(func(t *testing.T, raw string) {
		i := strings.Index(raw, "\r\n\r\n")
		if i < 0 {
			return
		}
		head := raw[:i+4] // as ServeConn cuts it
		ok, n, auth, xff := parseH1Head(ts.RPC, []byte(head), 1<<20)
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		require.NoError(t, err, "net/http refuses a head ServeConn serves: %q", head)
		assert.Equal(t, "POST", req.Method)
		assert.Equal(t, "/rpc", req.RequestURI)
		assert.True(t, req.ProtoMajor == 1 && req.ProtoMinor == 1)
		assert.Equal(t, n, req.ContentLength)
		assert.Empty(t, req.TransferEncoding)
		assert.False(t, req.Close)
		assert.Len(t, req.Header.Values("Host"), 0) // net/http moves it to req.Host
		assert.Len(t, req.Header.Values("Content-Type"), 1)
		assert.LessOrEqual(t, len(req.Header.Values("Authorization")), 1)
		assert.Equal(t, req.Header.Get("Authorization"), auth)
		assert.Equal(t, strings.Join(req.Header.Values("X-Forwarded-For"), ","), xff)
		assert.Empty(t, req.Header.Get("Expect"))
		assert.Empty(t, req.Header.Get("Upgrade"))
	})
}
