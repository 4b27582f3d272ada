package h1

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A watchedListener hands out connections whose deadlines one watchdog
// goroutine enforces, to within a tick, in place of a runtime timer each.
//
// net/http moves a connection's deadlines four or five times a request when
// its timeouts are set (header, body, write, idle); every move re-sorts a
// runtime timer heap under a lock, and together they cost more than the
// scope check. Here a future deadline is only written down; the watchdog
// looks at every connection once a tick and, when one has passed, sets the
// real deadline in the past, which fails the blocked read or write exactly
// as a timer would have. Clearing a deadline, or setting one already past
// (net/http does, to wake its background read), still goes to the
// connection at once.
//
// A deadline is never enforced early, and at most a tick late.
type watchedListener struct {
	net.Listener
	tick time.Duration
	// Times are kept as nanoseconds since base, on the monotonic clock: a
	// step of the wall clock neither delays nor advances a deadline.
	base time.Time
	now  atomic.Int64 // at the last tick: never ahead of the clock

	mu     sync.Mutex
	conns  map[*watchedConn]struct{}
	closed bool // the listener is closed: the watchdog ends with the last connection
	done   chan struct{}
}

// WatchdogTick is the watchdog's period for timeouts: a tenth of the
// shortest, from 5 ms to one second.
func WatchdogTick(timeouts ...time.Duration) time.Duration {
	tick := time.Second
	for _, d := range timeouts {
		if d > 0 {
			tick = min(tick, d/10)
		}
	}
	return max(tick, 5*time.Millisecond)
}

// WatchListener returns l with the deadlines of its connections kept by
// one watchdog that looks at them every tick (see WatchdogTick), in place
// of a runtime timer each. Close it as l; the watchdog ends after the last
// of its connections.
func WatchListener(l net.Listener, tick time.Duration) net.Listener { return watchListener(l, tick) }

func watchListener(l net.Listener, tick time.Duration) *watchedListener {
	w := &watchedListener{Listener: l, tick: tick, base: time.Now(), conns: map[*watchedConn]struct{}{}, done: make(chan struct{})}
	go w.watch()
	return w
}

func (l *watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	wc := &watchedConn{Conn: c, l: l}
	l.mu.Lock()
	if l.closed { // the watchdog may have ended already
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[wc] = struct{}{}
	l.mu.Unlock()
	return wc, nil
}

// Close closes the listener. The watchdog goes on guarding the connections
// still open, as a graceful shutdown drains them, and ends after the last.
func (l *watchedListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// watch is the watchdog: each tick it advances the clock and expires the
// deadlines that have passed.
func (l *watchedListener) watch() {
	defer close(l.done)
	t := time.NewTicker(l.tick)
	defer t.Stop()
	var conns []*watchedConn
	for range t.C {
		n := int64(time.Since(l.base))
		l.now.Store(n)
		l.mu.Lock()
		conns = conns[:0]
		for c := range l.conns {
			conns = append(conns, c)
		}
		end := l.closed && len(l.conns) == 0
		l.mu.Unlock()
		for i, c := range conns { // outside l.mu: Accept and Close need not wait
			c.expire(n)
			conns[i] = nil
		}
		if end {
			return
		}
	}
}

// A watchedConn's deadlines are kept by its listener's watchdog.
type watchedConn struct {
	net.Conn
	l *watchedListener

	mu          sync.Mutex
	read, write deadline
}

// deadline is one direction's deadline.
type deadline struct {
	at    int64 // nanoseconds since the listener's base
	set   bool  // there is a deadline at at
	fired bool  // the connection's own deadline is set in the past
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rerr := c.set(&c.read, t, true)
	werr := c.set(&c.write, t, false)
	if rerr != nil {
		return rerr
	}
	return werr
}

func (c *watchedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set(&c.read, t, true)
}

func (c *watchedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set(&c.write, t, false)
}

// set moves one deadline; c.mu is held. Only a change between "none" and
// "passed" reaches the connection.
func (c *watchedConn) set(d *deadline, t time.Time, read bool) error {
	d.set = !t.IsZero()
	if d.set {
		d.at = int64(t.Sub(c.l.base)) // monotonic when t is, as time.Now().Add(d) is
		if d.at <= c.l.now.Load() {   // already passed: fail the I/O now
			d.set, d.fired = false, true
			return c.setConn(t, read)
		}
	}
	if d.fired {
		d.fired = false
		return c.setConn(time.Time{}, read)
	}
	return nil
}

func (c *watchedConn) setConn(t time.Time, read bool) error {
	if read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

// expire enforces the deadlines that have passed by now (nanoseconds
// since the listener's base).
func (c *watchedConn) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, read := range [2]bool{true, false} {
		d := &c.write
		if read {
			d = &c.read
		}
		if d.set && d.at <= now {
			d.set, d.fired = false, true
			_ = c.setConn(aLongTimeAgo, read)
		}
	}
}

func (c *watchedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection. net/http uses it to let a client
// read an error reply before the connection closes. (ReadFrom is not passed
// through: net/http would use it only to send files, which apikeyd does
// not.)
func (c *watchedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
