package rpc

import (
	"time"
)

// WSMaxPerKey is wsMaxPerKey, for tests.
const WSMaxPerKey = wsMaxPerKey

// SetWSIdle sets how long s keeps a quiet WebSocket open. Call it before
// serving.
func (s *Server) SetWSIdle(d time.Duration) { s.wsIdle = d }
