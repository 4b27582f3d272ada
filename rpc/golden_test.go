package rpc_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the replies of the golden transcripts in ../testdata/transcripts")

// TestGoldenTranscripts replays each session in ../testdata/transcripts
// against a fresh server and compares every reply with the one recorded.
//
// A transcript is a sequence of exchanges:
//
//	# comment lines
//	--> as admin          (or: as <key:N>, or: as none)
//	{request body}
//	<-- 200
//	{reply body, or nothing for 204}
//
// Replies are normalised before comparison: each key id becomes <id:N> and
// each secret <key:N>, numbered by first appearance, so transcripts are
// stable; a request may use the same placeholders to refer back to them.
// Run with -update to record replies anew, then review the diff.
//
// Every transcript runs over each transport (subtests net/http, fast path,
// websocket), each on a fresh server; -update records over net/http. Over
// the fast path no request may be handed to net/http: the transcripts are
// plain calls, which production answers with h1.ServeConn. Over WebSocket,
// where a transport legitimately differs, only what applies is checked:
//   - a WebSocket has no HTTP status per message: a reply counts as 200;
//   - single calls are answered by jsonrpc2's Conn, which writes the
//     members of a reply in its own order: replies are compared as JSON
//     values, not as text;
//   - the key is presented once, at the upgrade, so a call with a key the
//     server refuses never reaches it: the upgrade is refused (401) with
//     the same error (code, message, data), and id null since no call was
//     read. A call without a key is made over HTTP, as a client must.
func TestGoldenTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/transcripts/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, tr := range transports {
		if *update && tr != overNetHTTP {
			continue
		}
		t.Run(string(tr), func(t *testing.T) {
			for _, file := range files {
				t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
					replayTranscript(t, tr, file)
				})
			}
		})
	}
}

func replayTranscript(t *testing.T, tr transport, file string) {
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	exchanges, err := parseTranscript(string(src))
	require.NoError(t, err)
	ts := newTestServerOver(t, tr, nil)
	names := newPlaceholders(ts.Admin)
	var out strings.Builder
	out.WriteString(exchanges[0].preamble)
	for i, ex := range exchanges {
		key := ""
		switch ex.as {
		case "admin":
			key = ts.Admin
		case "none":
		default:
			key = names.real(ex.as)
		}
		body := names.expand(ex.request)
		status, reply := ts.post(key, body)
		got := ""
		if len(reply) > 0 {
			var buf bytes.Buffer
			require.NoError(t, json.Indent(&buf, reply, "", "  "), "exchange %d: %s", i+1, reply)
			got = names.normalize(buf.String())
		}
		switch {
		case *update:
			ex.status, ex.reply = status, got
		case tr == overWebSocket && key != "" && status != http.StatusOK && status != http.StatusNoContent:
			require.Equal(t, http.StatusUnauthorized, status, "exchange %d: a refused upgrade: %s", i+1, reply)
			assert.JSONEq(t, errorMember(t, ex.reply), errorMember(t, got), "exchange %d (%s): the upgrade's error", i+1, strings.TrimSpace(ex.request))
		case tr == overWebSocket && got != "":
			assert.Equal(t, ex.status, status, "exchange %d: a reply", i+1)
			assert.JSONEq(t, ex.reply, got, "exchange %d (%s)", i+1, strings.TrimSpace(ex.request))
		default:
			assert.Equal(t, ex.status, status, "exchange %d: HTTP status", i+1)
			assert.Equal(t, ex.reply, got, "exchange %d (%s)", i+1, strings.TrimSpace(ex.request))
		}
		out.WriteString(ex.format(i > 0))
	}
	if tr == overFastPath {
		assert.Zero(t, ts.handoffs.Load(), "the fast path handed requests to net/http")
	}
	if *update {
		require.NoError(t, os.WriteFile(file, []byte(out.String()), 0o644))
	}
}

// errorMember returns the error member of a JSON-RPC reply, as JSON.
func errorMember(t *testing.T, reply string) string {
	t.Helper()
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(reply), &r), "reply: %s", reply)
	require.NotNil(t, r.Error, "not an error: %s", reply)
	return string(r.Error)
}

type exchange struct {
	preamble string // comment lines before the first exchange
	comments string // comment lines before this exchange
	as       string
	request  string
	status   int
	reply    string
}

func (e exchange) format(withComments bool) string {
	var b strings.Builder
	if withComments {
		b.WriteString(e.comments)
	}
	fmt.Fprintf(&b, "--> as %s\n%s\n<-- %d\n", e.as, strings.TrimSpace(e.request), e.status)
	if e.reply != "" {
		b.WriteString(e.reply + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func parseTranscript(src string) ([]exchange, error) {
	var exs []exchange
	var cur *exchange
	var comments, preamble strings.Builder
	section := ""
	for line := range strings.Lines(src) {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(trimmed, "--> as "):
			if cur != nil {
				exs = append(exs, *cur)
			}
			cur = &exchange{as: strings.TrimPrefix(trimmed, "--> as "), comments: comments.String()}
			comments.Reset()
			section = "request"
		case strings.HasPrefix(trimmed, "<-- "):
			if cur == nil {
				return nil, fmt.Errorf("reply before any request")
			}
			if _, err := fmt.Sscan(strings.TrimPrefix(trimmed, "<-- "), &cur.status); err != nil {
				return nil, fmt.Errorf("bad status line %q", trimmed)
			}
			section = "reply"
		case strings.HasPrefix(trimmed, "#") && section != "request":
			if cur == nil {
				preamble.WriteString(line)
			} else {
				comments.WriteString(line)
			}
		case section == "request":
			cur.request += line
		case section == "reply":
			if trimmed != "" || cur.reply != "" {
				cur.reply += line
			}
		}
	}
	if cur != nil {
		exs = append(exs, *cur)
	}
	if len(exs) == 0 {
		return nil, fmt.Errorf("no exchanges")
	}
	for i := range exs {
		exs[i].reply = strings.TrimSpace(exs[i].reply)
	}
	exs[0].preamble = preamble.String()
	return exs, nil
}

var (
	reKeyID  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reSecret = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	rePlace  = regexp.MustCompile(`<(id|key):\d+>`)
)

// placeholders maps real ids and secrets to stable names and back.
type placeholders struct {
	toName map[string]string
	toReal map[string]string
	n      map[string]int
}

func newPlaceholders(admin string) *placeholders {
	p := &placeholders{toName: map[string]string{}, toReal: map[string]string{}, n: map[string]int{}}
	p.name("key", admin) // the admin key is <key:1>
	return p
}

func (p *placeholders) name(kind, real string) string {
	if n, ok := p.toName[real]; ok {
		return n
	}
	p.n[kind]++
	n := fmt.Sprintf("<%s:%d>", kind, p.n[kind])
	p.toName[real], p.toReal[n] = n, real
	return n
}

func (p *placeholders) normalize(s string) string {
	s = reKeyID.ReplaceAllStringFunc(s, func(m string) string { return p.name("id", m) })
	return reSecret.ReplaceAllStringFunc(s, func(m string) string { return p.name("key", m) })
}

func (p *placeholders) real(name string) string {
	if r, ok := p.toReal[name]; ok {
		return r
	}
	return name // not a placeholder: sent as written
}

func (p *placeholders) expand(s string) string {
	return rePlace.ReplaceAllStringFunc(s, p.real)
}
