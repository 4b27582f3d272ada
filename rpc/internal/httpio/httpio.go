// Package httpio holds what both HTTP servers of JSON-RPC need alike:
// net/http's handler (rpc.Server.ServeHTTP) and the HTTP/1.1 fast path
// (package rpc/h1). Both read a body within a limit the same way, accept
// the same JSON media types, date their replies from one clock and
// recycle their buffers. It knows nothing of JSON-RPC.
package httpio

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTooLarge is ReadBody's error for a body over its limit.
var ErrTooLarge = errors.New("body too large")

// ReadBody reads body into buf, failing with ErrTooLarge as soon as it
// holds more than limit bytes: an oversized body is never read whole. buf
// grows as the body arrives, not by a length the client declared.
func ReadBody(buf *bytes.Buffer, body io.Reader, limit int64) error {
	for {
		buf.Grow(512)
		b := buf.AvailableBuffer()
		if room := limit + 1 - int64(buf.Len()); int64(cap(b)) > room {
			b = b[:room]
		} else {
			b = b[:cap(b)]
		}
		n, err := body.Read(b)
		buf.Write(b[:n])
		if int64(buf.Len()) > limit {
			return ErrTooLarge
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// JSONContentType accepts application/json (with parameters) and the two
// older JSON-RPC media types some clients send.
func JSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "application/json") || strings.EqualFold(mt, "application/json-rpc") ||
		strings.EqualFold(mt, "application/jsonrequest")
}

// Buffers recycles the buffers of request and reply bodies. The zero
// value is ready to use.
type Buffers struct{ pool sync.Pool }

// Get returns an empty buffer.
func (p *Buffers) Get() *bytes.Buffer {
	if b, ok := p.pool.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// Put gives b back, unless it grew past 64 KiB: one large body must not
// keep its memory for good.
func (p *Buffers) Put(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		p.pool.Put(b)
	}
}

// PerSecond keeps a value made from the time, made again only when the
// second changes: formatting a time on every call costs more than reading
// a key from bbolt. Values are shared and must never be modified.
type PerSecond[T any] struct {
	format func(time.Time) T
	last   atomic.Pointer[stamped[T]]
}

type stamped[T any] struct {
	unix int64
	v    T
}

// NewPerSecond returns a PerSecond that makes its value with format.
func NewPerSecond[T any](format func(time.Time) T) *PerSecond[T] {
	return &PerSecond[T]{format: format}
}

// At returns the value for the second of now.
func (p *PerSecond[T]) At(now time.Time) T {
	sec := now.Unix()
	if s := p.last.Load(); s != nil && s.unix == sec {
		return s.v
	}
	s := &stamped[T]{unix: sec, v: p.format(now)}
	p.last.Store(s)
	return s.v
}

// Date is the HTTP Date header's value, which the servers set themselves
// rather than have net/http format it for every reply.
var Date = NewPerSecond(func(t time.Time) []string { return []string{t.UTC().Format(http.TimeFormat)} })
