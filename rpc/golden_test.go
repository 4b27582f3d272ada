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
func TestGoldenTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/transcripts/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			exchanges, err := parseTranscript(string(src))
			require.NoError(t, err)
			ts := newTestServer(t)
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
				if *update {
					ex.status, ex.reply = status, got
				} else {
					assert.Equal(t, ex.status, status, "exchange %d: HTTP status", i+1)
					assert.Equal(t, ex.reply, got, "exchange %d (%s)", i+1, strings.TrimSpace(ex.request))
				}
				out.WriteString(ex.format(i > 0))
			}
			if *update {
				require.NoError(t, os.WriteFile(file, []byte(out.String()), 0o644))
			}
		})
	}
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

var _ = http.StatusOK
