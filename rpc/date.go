package rpc

import (
	"net/http"
	"sync/atomic"
	"time"
)

// dateHeader is the HTTP Date header, formatted once a second rather than
// once a reply, as net/http otherwise does: formatting it costs more than
// reading a key from bbolt.
type dateHeader struct {
	last atomic.Pointer[dateValue]
}

type dateValue struct {
	unix  int64
	value []string // shared by every reply of that second: never modified
}

// get returns the header's value for now.
func (d *dateHeader) get(now time.Time) []string {
	sec := now.Unix()
	if v := d.last.Load(); v != nil && v.unix == sec {
		return v.value
	}
	v := &dateValue{unix: sec, value: []string{now.UTC().Format(http.TimeFormat)}}
	d.last.Store(v)
	return v.value
}
