package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFraming_Scan: the watch itself, on heads and bodies split at every
// byte: the same verdict however the bytes arrive.
func TestFraming_Scan(t *testing.T) {
	for _, tc := range []struct {
		raw string
		bad bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", true},
		{"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", true},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		// The Content-Length body hides what looks like a bad head: it is data.
		{"POST / HTTP/1.1\r\nContent-Length: 38\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", true},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("X-Long: "+strings.Repeat("a", 100)+"\r\n", 200) + "\r\n", false},
		{"GET / HTTP/1.1\r\nX-Long: " + strings.Repeat("a", 20000) + "\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nContent-Length: " + strings.Repeat("0", 20000) + "\r\n\r\n", true},
	} {
		for split := 0; split <= len(tc.raw); split += 1 + len(tc.raw)/200 {
			var f framing
			_, bad1 := f.scan([]byte(tc.raw[:split]))
			bad := bad1
			if !bad1 {
				_, bad = f.scan([]byte(tc.raw[split:]))
			}
			require.Equal(t, tc.bad, bad, "split at %d: %.80q", split, tc.raw)
		}
	}
}

// goHeadEnds reads raw as net/http's server would, request after request,
// and returns the offset just past each head it reads, up to the first
// error.
func goHeadEnds(raw []byte) []int {
	cr := &countingReader{r: bytes.NewReader(raw)}
	br := bufio.NewReader(cr)
	var ends []int
	lastPOST := false
	for {
		if lastPOST { // as net/http: up to four CR or LF after a POST's body
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = br.Discard(n)
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return ends
		}
		ends = append(ends, cr.n-br.Buffered())
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return ends
		}
		lastPOST = req.Method == http.MethodPost
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// watchHeadEnds feeds raw to the watch one byte at a time and returns the
// offset just past each head it judged, and the offset it cut the input
// at, or -1.
func watchHeadEnds(raw []byte) (ends []int, cut int) {
	var f framing
	for i := range raw {
		before := f.state
		if _, bad := f.scan(raw[i : i+1]); bad {
			return ends, i
		}
		if before == fsHeader && f.state != fsHeader {
			ends = append(ends, i+1)
		}
	}
	return ends, -1
}

// FuzzFraming holds the watch to net/http's reading of the same bytes:
// every head net/http could read before the watch cuts the connection
// ends where the watch saw a head end, so no request reaches a handler
// that the watch did not judge. The watch's verdict does not depend on
// how the bytes are split into reads.
//
//	go test ./rpc/h1 -run '^$' -fuzz FuzzFraming -fuzztime 3m
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\nHost: x\nTransfer-Encoding:\n chunked\n\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(7))
	}
	f.Fuzz(func(t *testing.T, raw []byte, split uint16) {
		if len(raw) > 4<<10 {
			return
		}
		ends, cut := watchHeadEnds(raw)
		seen := map[int]bool{}
		for _, e := range ends {
			seen[e] = true
		}
		for _, e := range goHeadEnds(raw) {
			if cut >= 0 && e > cut {
				break // the read fails before net/http has this head
			}
			if !seen[e] {
				t.Fatalf("net/http reads a head ending at %d that the watch did not judge (it saw %v, cut at %d): %q", e, ends, cut, raw)
			}
		}
		// The same verdict in two reads, split anywhere.
		at := int(split) % (len(raw) + 1)
		var f2 framing
		c1, bad := f2.scan(raw[:at])
		if !bad {
			c1, bad = f2.scan(raw[at:])
			c1 += at
		}
		if bad != (cut >= 0) || bad && c1 != cut {
			t.Fatalf("split at %d: bad %v at %d; byte by byte: cut at %d: %q", at, bad, c1, cut, raw)
		}
	})
}
