package rpc

import (
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/httpio"
	"github.com/rs/zerolog"
)

// NewTimeHook returns a zerolog hook that adds "time" to every line, RFC
// 3339 in UTC to the second, as zerolog's Timestamp does, but formatted
// once a second rather than once a line. Use it in place of Timestamp:
// zerolog.New(w).Hook(rpc.NewTimeHook()).
func NewTimeHook() zerolog.Hook {
	return &timeHook{httpio.NewPerSecond(func(t time.Time) []byte {
		return strconv.AppendQuote(nil, t.UTC().Format(time.RFC3339))
	})}
}

type timeHook struct{ stamp *httpio.PerSecond[[]byte] }

func (h *timeHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.RawJSON(zerolog.TimestampFieldName, h.stamp.At(time.Now()))
}
