package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// stampHook adds "time" to every log line, RFC 3339 in UTC to the second,
// as zerolog's Timestamp would, but formats it once a second rather than
// once a line: on a server logging every call, formatting the time cost
// as much as the rest of the line.
type stampHook struct {
	last atomic.Pointer[stamp]
}

type stamp struct {
	unix int64
	json []byte // the quoted time; shared, never modified
}

func (h *stampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	now := time.Now()
	st := h.last.Load()
	if st == nil || st.unix != now.Unix() {
		st = &stamp{unix: now.Unix(), json: strconv.AppendQuote(nil, now.UTC().Format(time.RFC3339))}
		h.last.Store(st)
	}
	e.RawJSON(zerolog.TimestampFieldName, st.json)
}
