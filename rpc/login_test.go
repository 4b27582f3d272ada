package rpc_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginBody is a user.create_apikey request.
func loginBody(username, password string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "user.create_apikey", "id": 1,
		"params": login(username, password, "basic")})
	return string(b)
}

// loginFrom logs in through client and returns the error id ("" on
// success) and the error's retry_after_ms.
func (ts *testServer) loginFrom(client *http.Client, username, password string) (string, int64) {
	ts.t.Helper()
	r := postFrom(ts.t, client, ts.URL, "", loginBody(username, password))
	if r.Error == nil {
		return "", 0
	}
	return r.Error.Data.ErrorID, r.Error.Data.RetryAfterMs
}

func (ts *testServer) hashRuns() int64 {
	runs, _ := ts.Store.HashStats()
	return runs
}

// newAcmeWithAlice makes account acme and its user alice, and returns
// acme's first key.
func newAcmeWithAlice(ts *testServer) string {
	ts.t.Helper()
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(acme.FirstKey.Key, "user.create", []any{"alice", "correct horse"}, nil)
	return acme.FirstKey.Key
}

// TestLogin_ThrottlePerSource: wrong passwords from one address throttle
// that address only, with growing delays; the user logs in from another
// address all the while. A throttled guess is refused without hashing.
func TestLogin_ThrottlePerSource(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	user, attacker := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")

	for i := range 4 {
		id, _ := ts.loginFrom(attacker, "alice@acme", "wrong horse")
		require.Equal(t, rpc.ErrIDLoginFailed, id, "guess %d", i+1)
	}
	id, retry := ts.loginFrom(attacker, "alice@acme", "wrong horse")
	require.Equal(t, rpc.ErrIDLoginLocked, id, "the fifth failure throttles the address")
	assert.Equal(t, int64(60_000), retry)

	runs := ts.hashRuns()
	id, _ = ts.loginFrom(attacker, "alice@acme", "correct horse")
	assert.Equal(t, rpc.ErrIDLoginLocked, id, "even the right password, from the throttled address")
	assert.Equal(t, runs, ts.hashRuns(), "refused before hashing")

	id, _ = ts.loginFrom(user, "alice@acme", "correct horse")
	assert.Empty(t, id, "the user's own address is not locked out")

	// Each further failure doubles the wait, up to 15 minutes.
	for _, want := range []int64{120_000, 240_000, 480_000, 900_000, 900_000} {
		ts.advance(time.Duration(retry) * time.Millisecond)
		id, retry = ts.loginFrom(attacker, "alice@acme", "wrong horse")
		require.Equal(t, rpc.ErrIDLoginLocked, id)
		assert.Equal(t, want, retry)
	}
	id, _ = ts.loginFrom(user, "alice@acme", "correct horse")
	assert.Empty(t, id)

	// Unknown names are throttled alike, so throttling reveals nothing;
	// they cost the same one hash as a known name.
	for _, name := range []string{"alice@acme", "nobody@acme"} {
		runs := ts.hashRuns()
		ts.loginFrom(user, name, "wrong horse")
		assert.Equal(t, runs+1, ts.hashRuns(), "%s: one hash", name)
	}
	for range 3 {
		id, _ := ts.loginFrom(user, "nobody@acme", "wrong horse")
		assert.Equal(t, rpc.ErrIDLoginFailed, id)
	}
	id, _ = ts.loginFrom(user, "nobody@acme", "wrong horse")
	assert.Equal(t, rpc.ErrIDLoginLocked, id)
}

// TestLogin_ConcurrentGuesses: of many guesses in flight at once from one
// address, no more than the limit are ever hashed, and the right password
// after them is refused.
func TestLogin_ConcurrentGuesses(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	attacker := clientFrom(t, "127.0.0.2")
	runs := ts.hashRuns()

	const guesses = 150
	start := make(chan struct{})
	outcomes := make(chan string, guesses)
	var wg sync.WaitGroup
	for range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := postFrom(t, attacker, ts.URL, "", loginBody("alice@acme", "wrong horse"))
			if r.Error == nil {
				outcomes <- "ok"
				return
			}
			outcomes <- r.Error.Data.ErrorID
		}()
	}
	close(start)
	wg.Wait()
	close(outcomes)
	count := map[string]int{}
	for o := range outcomes {
		count[o]++
	}
	assert.Zero(t, count["ok"])
	assert.LessOrEqual(t, ts.hashRuns()-runs, int64(5), "no more guesses evaluated than the limit: %v", count)
	assert.Equal(t, guesses, count[rpc.ErrIDLoginFailed]+count[rpc.ErrIDLoginLocked]+count[rpc.ErrIDBusy], "%v", count)

	id, _ := ts.loginFrom(attacker, "alice@acme", "correct horse")
	assert.Equal(t, rpc.ErrIDLoginLocked, id, "the right password after them is refused")
}

// TestLogin_Unlock: user.set_password and user.unlock clear a user's
// throttling; user.unlock needs the authority user.set_password needs, and
// reaches only users of the caller's account.
func TestLogin_Unlock(t *testing.T) {
	ts := newTestServer(t)
	tenant := newAcmeWithAlice(ts)
	var beta rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"beta"}, &beta)
	lock := func() {
		t.Helper()
		for range 5 {
			ts.call("", "user.create_apikey", login("alice@acme", "wrong horse", "basic"))
		}
		ts.fail("", "user.create_apikey", login("alice@acme", "correct horse", "basic"), rpc.CodeRateLimited, rpc.ErrIDLoginLocked)
	}

	lock()
	var u rpc.UserInfo
	ts.ok(tenant, "user.unlock", map[string]any{"name": "alice"}, &u)
	assert.Equal(t, rpc.UserInfo{Name: "alice", Login: "alice@acme", Created: fixedNow}, u)
	alice := ts.createUserKey("alice@acme", "correct horse", "full")

	lock()
	ts.ok(tenant, "user.set_password", map[string]any{"name": "alice", "password": "battery staple"}, nil)
	ts.createUserKey("alice@acme", "battery staple", "basic")

	lock()
	ts.unchanged(func() {
		ts.fail(beta.FirstKey.Key, "user.unlock", []any{"alice"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
		ts.fail(tenant, "user.unlock", []any{"nobody"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
		ts.fail(alice.Key, "user.unlock", []any{"alice"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
		e := ts.fail(tenant, "user.unlock", []any{"alice@acme"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		assert.Equal(t, "name", e.Data.Field)
		ts.fail("", "user.unlock", []any{"alice"}, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
	})
	ts.fail("", "user.create_apikey", login("alice@acme", "correct horse", "basic"), rpc.CodeRateLimited, rpc.ErrIDLoginLocked)
	ts.ok(tenant, "user.unlock", []any{"alice"}, nil)
	ts.createUserKey("alice@acme", "battery staple", "basic")
}

// TestLogin_NamesPerAccount: a user's login name is <name>@<account>, so
// two accounts may each have an alice, and creating one tells nothing of
// the other.
func TestLogin_NamesPerAccount(t *testing.T) {
	ts := newTestServer(t)
	acme := newAcmeWithAlice(ts)
	var beta rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"beta"}, &beta)
	var u rpc.UserInfo
	ts.ok(beta.FirstKey.Key, "user.create", []any{"alice", "beta's horse"}, &u)
	assert.Equal(t, "alice@beta", u.Login)

	a := ts.createUserKey("alice@acme", "correct horse", "full")
	b := ts.createUserKey("alice@beta", "beta's horse", "full")
	assert.Equal(t, "user:alice@acme", a.Owner)
	assert.Equal(t, "user:alice@beta", b.Owner)
	ts.fail("", "user.create_apikey", login("alice@beta", "correct horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	ts.fail("", "user.create_apikey", login("alice", "correct horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)

	var users []rpc.UserInfo
	ts.ok(beta.FirstKey.Key, "user.list", nil, &users)
	assert.Equal(t, []rpc.UserInfo{u}, users)
	var listed map[string]map[string]rpc.FilebinKey
	ts.ok(beta.FirstKey.Key, "user.apikeys", []any{"alice"}, &listed)
	assert.Equal(t, []string{b.ID}, keysOf(listed["apikeys"]))
	ts.ok(acme, "user.apikeys", []any{"alice"}, &listed)
	assert.Equal(t, []string{a.ID}, keysOf(listed["apikeys"]))

	// Deleting beta's alice leaves acme's.
	ts.ok(beta.FirstKey.Key, "user.delete", []any{"alice"}, nil)
	ts.fail(b.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(a.Key, "server.list", nil, nil)

	// Malformed login names fail as a wrong password does, unhashed.
	runs := ts.hashRuns()
	for _, name := range []string{"alice@acme@beta", "@acme", "alice@", "al ice@acme"} {
		ts.fail("", "user.create_apikey", login(name, "correct horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	}
	assert.Equal(t, runs, ts.hashRuns())

	// The successful login is in acme's trail, under its login name.
	var page rpc.AuditPage
	ts.ok(acme, "audit.list", map[string]any{"method": "user.create_apikey"}, &page)
	require.Len(t, page.Records, 1)
	assert.Equal(t, "user:alice@acme", page.Records[0].Actor)
	assert.Equal(t, "alice@acme", page.Records[0].Target)
}

func keysOf(m map[string]rpc.FilebinKey) []string {
	out := []string{}
	for id := range m {
		out = append(out, id)
	}
	return out
}

// TestLogin_AbandonedOnFastPath: logins whose clients hang up are given up
// on the fast path: they hash nothing once gone, and the next login is
// served.
func TestLogin_AbandonedOnFastPath(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	h := newH1Server(t, ts, &http.Server{MaxHeaderBytes: 16 << 10})
	runs := ts.hashRuns()

	const abandoned = 40
	for i := range abandoned {
		c, err := net.Dial("tcp", h.addr)
		require.NoError(t, err)
		body := loginBody(fmt.Sprintf("ghost%d@acme", i), "wrong horse")
		_, err = fmt.Fprintf(c, "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	// The next login, over the fast path too, is served.
	r := h1Post(t, h.addr, loginBody("alice@acme", "correct horse"))
	require.Nil(t, r.Error, "%+v", r.Error)
	ts.awaitLogins(abandoned + 1)
	// Logins already hashing when their clients left finish; the rest
	// hash nothing. Without giving up, every one of them is hashed.
	assert.Less(t, ts.hashRuns()-runs, int64(abandoned/4), "hashes run for abandoned logins")
	assert.Zero(t, h.handoffs.Load(), "served on the fast path")
}

// TestLogin_AbandonedOnWebSocket: calls of a WebSocket that closes are
// given up alike.
func TestLogin_AbandonedOnWebSocket(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	_, url := serveWS(t, ts)
	runs := ts.hashRuns()
	const abandoned = 40
	ws, resp, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)
	resp.Body.Close()
	for i := range abandoned {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(loginBody(fmt.Sprintf("ghost%d@acme", i), "wrong horse"))))
	}
	require.NoError(t, ws.Close())
	ts.createUserKey("alice@acme", "correct horse", "basic")
	ts.awaitLogins(abandoned + 1)
	assert.Less(t, ts.hashRuns()-runs, int64(abandoned/4), "hashes run for abandoned logins")
}

// TestLogin_AbandonedBatchOnWebSocket: a batch served on a WebSocket
// whose client closes it is given up as well, although its calls run on
// the connection's reading goroutine.
func TestLogin_AbandonedBatchOnWebSocket(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	_, url := serveWS(t, ts)
	runs := ts.hashRuns()
	const abandoned = 40
	ws, resp, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)
	resp.Body.Close()
	var batch []string
	for i := range abandoned {
		batch = append(batch, loginBody(fmt.Sprintf("ghost%d@acme", i), "wrong horse"))
	}
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("["+strings.Join(batch, ",")+"]")))
	require.NoError(t, ws.Close())
	ts.createUserKey("alice@acme", "correct horse", "basic")
	ts.awaitLogins(abandoned + 1)
	assert.Less(t, ts.hashRuns()-runs, int64(abandoned/4), "hashes run for abandoned logins")
}

// awaitLogins waits until n logins have ended, each with its log line,
// abandoned or not: only then are the hashes they cost all counted.
func (ts *testServer) awaitLogins(n int) {
	ts.t.Helper()
	require.Eventually(ts.t, func() bool {
		return strings.Count(ts.Log.String(), `"method":"user.create_apikey","dur_us"`) >= n
	}, 60*time.Second, 5*time.Millisecond)
}

// h1Post sends one request on a fresh connection to a fast-path server and
// reads the reply.
func h1Post(t *testing.T, addr, body string) wireResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/rpc", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r wireResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// TestLogin_FastPathKeepsConnection: a call that watched its connection
// for the client leaving leaves the connection as it found it: the next
// request on it, sent after the reply or pipelined behind the call, is
// served on the fast path.
func TestLogin_FastPathKeepsConnection(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	h := newH1Server(t, ts, &http.Server{MaxHeaderBytes: 16 << 10, ReadTimeout: 5 * time.Second,
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	br := bufio.NewReader(c)
	request := func(body string) string {
		return fmt.Sprintf("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	read := func() wireResponse {
		t.Helper()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var r wireResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r
	}
	// One after the other.
	_, err = io.WriteString(c, request(loginBody("alice@acme", "correct horse")))
	require.NoError(t, err)
	first := read()
	require.Nil(t, first.Error)
	_, err = io.WriteString(c, request(loginBody("alice@acme", "correct horse")))
	require.NoError(t, err)
	require.Nil(t, read().Error)
	// Pipelined: the second request's bytes arrive while the login runs.
	_, err = io.WriteString(c, request(loginBody("alice@acme", "correct horse"))+request(loginBody("alice@acme", "wrong horse")))
	require.NoError(t, err)
	require.Nil(t, read().Error)
	second := read()
	require.NotNil(t, second.Error)
	assert.Equal(t, rpc.ErrIDLoginFailed, second.Error.Data.ErrorID)
	assert.Zero(t, h.handoffs.Load(), "served on the fast path")
}

// TestLogin_BatchCounts: each call of a batch is a guess of its own: a
// batch of six guesses has four fail, the fifth throttle the address, and
// the sixth, the right password, refused.
func TestLogin_BatchCounts(t *testing.T) {
	ts := newTestServer(t)
	newAcmeWithAlice(ts)
	var batch []string
	for i := range 5 {
		batch = append(batch, fmt.Sprintf(`{"jsonrpc":"2.0","method":"user.create_apikey","params":{"username":"alice@acme","password":"wrong horse","access_level":"basic"},"id":%d}`, i+1))
	}
	batch = append(batch, `{"jsonrpc":"2.0","method":"user.create_apikey","params":{"username":"alice@acme","password":"correct horse","access_level":"basic"},"id":9}`)
	runs := ts.hashRuns()
	_, body := ts.post("", "["+strings.Join(batch, ",")+"]")
	var replies []wireResponse
	require.NoError(t, json.Unmarshal(body, &replies))
	require.Len(t, replies, 6)
	for i, r := range replies {
		require.NotNil(t, r.Error, "call %d", i)
		want := rpc.ErrIDLoginFailed
		if i >= 4 {
			want = rpc.ErrIDLoginLocked
		}
		assert.Equal(t, want, r.Error.Data.ErrorID, "call %d", i)
	}
	assert.Equal(t, runs+5, ts.hashRuns(), "the sixth is refused unhashed")
}
