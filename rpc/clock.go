package rpc

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// perSecond keeps a value made from the time, made again only when the
// second changes: formatting a time on every call costs more than reading
// a key from bbolt. Values are shared and must never be modified.
type perSecond[T any] struct {
	format func(time.Time) T
	last   atomic.Pointer[stamped[T]]
}

type stamped[T any] struct {
	unix int64
	v    T
}

func (p *perSecond[T]) at(now time.Time) T {
	sec := now.Unix()
	if s := p.last.Load(); s != nil && s.unix == sec {
		return s.v
	}
	s := &stamped[T]{unix: sec, v: p.format(now)}
	p.last.Store(s)
	return s.v
}

// newDateHeader makes the HTTP Date header's value, which ServeHTTP sets
// itself rather than have net/http format it for every reply.
func newDateHeader() *perSecond[[]string] {
	return &perSecond[[]string]{format: func(t time.Time) []string { return []string{t.UTC().Format(http.TimeFormat)} }}
}

// NewTimeHook returns a zerolog hook that adds "time" to every line, RFC
// 3339 in UTC to the second, as zerolog's Timestamp does, but formatted
// once a second rather than once a line. Use it in place of Timestamp:
// zerolog.New(w).Hook(rpc.NewTimeHook()).
func NewTimeHook() zerolog.Hook {
	return &timeHook{perSecond[[]byte]{format: func(t time.Time) []byte {
		return strconv.AppendQuote(nil, t.UTC().Format(time.RFC3339))
	}}}
}

type timeHook struct{ stamp perSecond[[]byte] }

func (h *timeHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.RawJSON(zerolog.TimestampFieldName, h.stamp.at(time.Now()))
}
