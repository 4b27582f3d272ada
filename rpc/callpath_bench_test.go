package rpc

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
)

// The call path in parts; BenchmarkServeHTTP_Info (bench_test.go) is the whole.

var benchRequest = []byte(`{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"01a206e5-740b-7604-8209-7c48d77d06bd"},"id":1}`)

// BenchmarkDecode: validate the body, read the envelope, read the params.
func BenchmarkDecode(b *testing.B) {
	m := &Method{Name: "apikey.info", Params: []Param{{Name: "id", Required: true}}, paramKeys: [][]byte{[]byte("id")}}
	var scratch [4]jsonwire.Member
	b.ReportAllocs()
	for b.Loop() {
		if !jsonwire.Valid(benchRequest) {
			b.Fatal("invalid")
		}
		req := parseRequest(benchRequest, scratch[:])
		if req.err != nil {
			b.Fatal(req.err)
		}
		var p Params
		err := readParams(&p, m, req.params, scratch[:0])
		if err != nil || p.Get("id") == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode: a key's info as a complete response.
func BenchmarkEncode(b *testing.B) {
	info := KeyInfo{
		ID:      "01a206e5-740b-7604-8209-7c48d77d06bd",
		Scopes:  scope.Scopes{Method: []string{"server.*"}, Name: []string{"web1", "web2"}},
		Comment: "panel key",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	dst := make([]byte, 0, 1024)
	res := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		res = info.AppendJSON(res[:0])
		dst = appendResponse(dst[:0], []byte("1"), res, nil)
	}
}
