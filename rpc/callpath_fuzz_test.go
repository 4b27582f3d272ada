package rpc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
)

// probeParams and probeRan are the probe methods' params and result: each
// probe answers with the method that ran and the name it ran with, so a
// test can compare what was dispatched with what the call asked for.
type probeParams struct {
	Name string `json:"name"`
}

type probeRan struct {
	Ran  string `json:"ran"`
	Name string `json:"name"`
}

// probes records every probe run, with the key it ran under.
type probes struct {
	mu   sync.Mutex
	runs []string // "method key-id name"
}

func (p *probes) register(srv *rpc.Server) {
	for _, name := range []string{"probe.allowed", "probe.denied"} {
		rpc.Handle(srv, name, scope.Read, "A probe for the fuzz tests.", func(ctx context.Context, in probeParams) (probeRan, error) {
			k, ok := rpc.KeyFromContext(ctx)
			if !ok {
				panic(name + " ran without a key")
			}
			p.mu.Lock()
			p.runs = append(p.runs, name+" "+k.ID+" "+in.Name)
			p.mu.Unlock()
			return probeRan{Ran: name, Name: in.Name}, nil
		})
	}
}

// take returns and forgets the runs so far.
func (p *probes) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.runs
	p.runs = nil
	return r
}

// transcriptRequests returns the request bodies of the golden transcripts.
func transcriptRequests(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "transcripts", "*.txt"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no transcripts: %v", err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "--> ") && i+1 < len(lines) {
				out = append(out, lines[i+1])
			}
		}
	}
	return out
}

// sharedSeeds returns the bodies in the top-level testdata/fuzzseeds.
func sharedSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "fuzzseeds", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no seeds: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fastClient sends requests over one kept-alive connection to the fast
// path, dialling again when the server closed it.
type fastClient struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *fastClient) post(t *testing.T, key string, body []byte) (int, []byte) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.conn, c.br = conn, bufio.NewReader(conn)
		}
		_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		head := fmt.Sprintf("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", key, len(body))
		_, err := c.conn.Write(append([]byte(head), body...))
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(c.br, nil)
		}
		if err != nil {
			// A connection the server closed after the last reply.
			_ = c.conn.Close()
			c.conn = nil
			if attempt == 0 {
				continue
			}
			t.Fatalf("fast path: %v", err)
		}
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("fast path body: %v", err)
		}
		if resp.Close {
			_ = c.conn.Close()
			c.conn = nil
		}
		return resp.StatusCode, got
	}
}

func (c *fastClient) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// FuzzCallPath sends arbitrary bodies down the whole request path, body to
// reply, over ServeHTTP and over h1.ServeConn (the fast path), under a key that
// may read and call probe.allowed for names web*, and under the admin key.
// Invariants:
//   - every reply is 204 with no body or 200 with valid JSON-RPC 2.0 in
//     valid UTF-8 (see checkReply);
//   - for the read-only key both paths give the same status and the same
//     bytes;
//   - the method authorised is the method dispatched: a probe's result names
//     the method of the request with its id, and no probe ever ran under
//     the read-only key outside what its scopes allow;
//   - a refused call changes nothing: the read-only key never changes the
//     store, and the admin key does not when every reply is an error.
func FuzzCallPath(f *testing.F) {
	for _, s := range transcriptRequests(f) {
		f.Add([]byte(s))
	}
	for _, s := range sharedSeeds(f) {
		f.Add(s)
	}
	pr := &probes{}
	ts := newTestServerOver(f, overFastPath, pr.register)
	reader := ts.createKey(ts.Admin, map[string][]string{
		"method": {"apikey.info", "apikey.list", "probe.allowed"},
		"name":   {"web*"},
	}, "reader")
	fc := &fastClient{addr: strings.TrimPrefix(strings.TrimSuffix(ts.URL, "/rpc"), "http://")}
	f.Cleanup(fc.close)
	fingerprint := func(t *testing.T) [32]byte {
		d, err := ts.Store.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	overHTTP := func(key string, body []byte) (int, []byte) {
		req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		ts.RPC.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pr.take()
		before := fingerprint(t)
		code, got := overHTTP(reader.Key, body)
		checkReply(t, body, code, got)
		fcode, fgot := fc.post(t, reader.Key, body)
		if fcode != code || !bytes.Equal(fgot, got) {
			t.Fatalf("the fast path answers %d %q, net/http %d %q, for %q", fcode, fgot, code, got, body)
		}
		for _, run := range pr.take() {
			method, rest, _ := strings.Cut(run, " ")
			id, name, _ := strings.Cut(rest, " ")
			if id == reader.ID && (method != "probe.allowed" || !strings.HasPrefix(name, "web")) {
				t.Fatalf("%s ran under the read-only key with name %q, for %q", method, name, body)
			}
		}
		if fingerprint(t) != before {
			t.Fatalf("a read-only key changed the store with %q", body)
		}
		for _, post := range []func(string, []byte) (int, []byte){overHTTP, func(k string, b []byte) (int, []byte) { return fc.post(t, k, b) }} {
			before := fingerprint(t)
			code, got := post(ts.Admin, body)
			refused := checkReply(t, body, code, got)
			if refused && fingerprint(t) != before {
				t.Fatalf("a refused call changed the store: %q answered %q", body, got)
			}
		}
	})
}

// checkReply holds one HTTP reply to a body to JSON-RPC 2.0 and reports
// whether every response in it is an error (a 204 counts as not refused).
func checkReply(t *testing.T, body []byte, code int, reply []byte) (refused bool) {
	t.Helper()
	switch code {
	case http.StatusNoContent:
		if len(reply) != 0 {
			t.Fatalf("204 with a body %q for %q", reply, body)
		}
		return false
	case http.StatusOK:
	default:
		t.Fatalf("status %d (%q) for %q", code, reply, body)
	}
	if !utf8.Valid(reply) {
		t.Fatalf("reply is not UTF-8: %q for %q", reply, body)
	}
	// The strict decoder: a member twice or invalid UTF-8 is an error.
	var top jsontext.Value
	if err := jsonv2.Unmarshal(reply, &top); err != nil {
		t.Fatalf("reply is not JSON (%v): %q for %q", err, reply, body)
	}
	var replies []map[string]jsontext.Value
	if top.Kind() == '[' {
		if err := jsonv2.Unmarshal(top, &replies); err != nil || len(replies) == 0 {
			t.Fatalf("batch reply is not a non-empty array of objects (%v): %q", err, reply)
		}
	} else {
		var one map[string]jsontext.Value
		if err := jsonv2.Unmarshal(top, &one); err != nil {
			t.Fatalf("reply is not an object (%v): %q", err, reply)
		}
		replies = append(replies, one)
	}
	methods := requestMethods(body)
	refused = true
	for _, r := range replies {
		for k := range r {
			if k != "jsonrpc" && k != "result" && k != "error" && k != "id" {
				t.Fatalf("reply has member %q: %q", k, reply)
			}
		}
		if string(r["jsonrpc"]) != `"2.0"` {
			t.Fatalf("reply without jsonrpc 2.0: %q", reply)
		}
		id, hasID := r["id"]
		if !hasID || (id.Kind() != 'n' && id.Kind() != '"' && id.Kind() != '0') {
			t.Fatalf("reply id missing or of the wrong kind: %q", reply)
		}
		res, hasResult := r["result"]
		e, hasError := r["error"]
		if hasResult == hasError {
			t.Fatalf("reply needs exactly one of result and error: %q", reply)
		}
		if hasResult {
			refused = false
			var ran probeRan
			if jsonv2.Unmarshal(res, &ran, jsonv2.RejectUnknownMembers(true)) == nil && ran.Ran != "" {
				if m, ok := methods[string(id)]; ok && m != ran.Ran {
					t.Fatalf("call %s asked for %s and ran %s: %q", id, m, ran.Ran, body)
				}
			}
			continue
		}
		var ev struct {
			Code    *int64                    `json:"code"`
			Message *string                   `json:"message"`
			Data    map[string]jsontext.Value `json:"data"`
		}
		if err := jsonv2.Unmarshal(e, &ev, jsonv2.RejectUnknownMembers(true)); err != nil || ev.Code == nil || ev.Message == nil {
			t.Fatalf("malformed error object (%v): %q", err, reply)
		}
		var errID string
		if jsonv2.Unmarshal(ev.Data["error_id"], &errID) != nil || errID == "" {
			t.Fatalf("error without data.error_id: %q", reply)
		}
	}
	return refused
}

// requestMethods maps the ids of a body's calls to their methods, when the
// body reads strictly and its ids are unique; otherwise it is empty.
func requestMethods(body []byte) map[string]string {
	type call struct {
		Method string         `json:"method"`
		ID     jsontext.Value `json:"id"`
	}
	var calls []call
	var one call
	if jsonv2.Unmarshal(body, &calls) != nil {
		if jsonv2.Unmarshal(body, &one) != nil {
			return nil
		}
		calls = []call{one}
	}
	out := map[string]string{}
	for _, c := range calls {
		if len(c.ID) == 0 {
			continue
		}
		id := string(c.ID)
		if _, dup := out[id]; dup {
			return nil
		}
		out[id] = c.Method
	}
	return out
}
