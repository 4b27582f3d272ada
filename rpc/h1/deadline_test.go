package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testTick = 20 * time.Millisecond

// watchedPair returns a watched server-side connection and its client,
// the watchdog ticking every tick.
func watchedPair(t *testing.T, tick time.Duration) (*watchedListener, *watchedConn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := watchListener(raw, tick)
	t.Cleanup(func() { _ = l.Close() })
	client, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	c, err := l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return l, c.(*watchedConn), client
}

// syncPair is watchedPair over an in-memory connection (net.Pipe), for
// tests inside synctest.Test: the watchdog ticks on the bubble's clock,
// so a deadline is seen to pass exactly when it should, whatever the
// machine's load.
func syncPair(t *testing.T, tick time.Duration) (*watchedListener, *watchedConn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	l := watchListener(&pipeListener{conn: server}, tick)
	t.Cleanup(func() { <-l.done }) // last: the bubble ends with no goroutine left
	t.Cleanup(func() { _ = l.Close() })
	t.Cleanup(func() { _ = client.Close() })
	c, err := l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return l, c.(*watchedConn), client
}

// pipeListener accepts its one connection.
type pipeListener struct{ conn net.Conn }

func (p *pipeListener) Accept() (net.Conn, error) { return p.conn, nil }
func (p *pipeListener) Close() error              { return nil }
func (p *pipeListener) Addr() net.Addr            { return p.conn.LocalAddr() }

// blockedFor runs op on c, which should block until a deadline fails it,
// and returns how long it blocked. If no deadline does within ten seconds,
// closing c ends op, with an error that fails the test.
func blockedFor(t *testing.T, c net.Conn, op func() error) time.Duration {
	t.Helper()
	backstop := time.AfterFunc(10*time.Second, func() { _ = c.Close() })
	defer backstop.Stop()
	start := time.Now()
	err := op()
	took := time.Since(start)
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want a deadline error, got %v", err)
	return took
}

func TestWatchdogTick(t *testing.T) {
	assert.Equal(t, time.Second, WatchdogTick(10*time.Second, 0, 30*time.Second, 2*time.Minute))
	assert.Equal(t, 30*time.Millisecond, WatchdogTick(300*time.Millisecond, 600*time.Millisecond))
	assert.Equal(t, 5*time.Millisecond, WatchdogTick(time.Millisecond))
	assert.Equal(t, time.Second, WatchdogTick(0, 0))
}

// A deadline is never enforced early, and at most a tick late.
func TestWatchedConn_ReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, _ := syncPair(t, testTick)
		const d = 150 * time.Millisecond
		require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
		took := blockedFor(t, c, func() error { _, err := c.Read(make([]byte, 1)); return err })
		assert.GreaterOrEqual(t, took, d, "enforced early")
		assert.LessOrEqual(t, took, d+testTick, "enforced more than a tick late")
	})
}

// A client that stops reading cannot hold a write, and so its connection,
// forever: the write deadline fails the blocked write.
func TestWatchedConn_WriteDeadline(t *testing.T) {
	_, c, _ := watchedPair(t, testTick)
	const d = 150 * time.Millisecond
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(d)))
	chunk := make([]byte, 1<<20)
	took := blockedFor(t, c, func() error {
		for { // until the socket buffers are full and the write blocks
			if _, err := c.Write(chunk); err != nil {
				return err
			}
		}
	})
	assert.GreaterOrEqual(t, took, d, "enforced early")
	assert.Less(t, took, d+5*time.Second, "enforced far too late")
}

// A deadline moved later, or cleared, before it passes is not enforced.
func TestWatchedConn_MovedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, client := syncPair(t, testTick)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Millisecond)))
		require.NoError(t, c.SetDeadline(time.Time{}))
		time.Sleep(10 * testTick)
		go func() { _, _ = client.Write([]byte("x")) }()
		buf := make([]byte, 1)
		_, err := c.Read(buf)
		require.NoError(t, err, "a cleared deadline failed the read")
		go func() { _, _ = client.Read(make([]byte, 1)) }()
		_, err = c.Write(buf)
		require.NoError(t, err, "a cleared deadline failed the write")
	})
}

// A deadline already past fails the blocked read at once, not a tick
// later: net/http relies on it to stop its background read.
func TestWatchedConn_PastDeadline(t *testing.T) {
	_, conn, client := watchedPair(t, time.Hour) // the watchdog never runs
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = conn.SetReadDeadline(aLongTimeAgo)
	}()
	took := blockedFor(t, conn, func() error { _, err := conn.Read(make([]byte, 1)); return err })
	assert.Less(t, took, 5*time.Second)

	// Cleared, the connection reads again.
	require.NoError(t, conn.SetReadDeadline(time.Time{}))
	_, err := client.Write([]byte("y"))
	require.NoError(t, err)
	_, err = conn.Read(make([]byte, 1))
	require.NoError(t, err)
}

// After a deadline fires, a new one in the future lets I/O go on until it
// too passes, as with the connection's own deadlines.
func TestWatchedConn_DeadlineAfterFiring(t *testing.T) {
	_, c, client := watchedPair(t, testTick)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	blockedFor(t, c, func() error { _, err := c.Read(make([]byte, 1)); return err })

	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := client.Write([]byte("z"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	require.NoError(t, err, "the fired deadline outlived the new one")
}

// CloseWrite reaches the TCP connection: the peer reads the end of the
// stream while the connection stays open the other way.
func TestWatchedConn_CloseWrite(t *testing.T) {
	_, c, client := watchedPair(t, testTick)
	require.NoError(t, c.CloseWrite())
	require.NoError(t, client.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := client.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
	_, err = client.Write([]byte("still open"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 10))
	require.NoError(t, err)
}

// The watchdog outlives its listener while connections drain, and ends
// after the last one closes.
func TestWatchedListener_WatchdogEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, c, _ := syncPair(t, testTick)
		require.NoError(t, l.Close())
		time.Sleep(5 * testTick)
		synctest.Wait()
		select {
		case <-l.done:
			t.Fatal("the watchdog ended with a connection still open")
		default:
		}
		require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
		blockedFor(t, c, func() error { _, err := c.Read(make([]byte, 1)); return err })
		require.NoError(t, c.Close())
		time.Sleep(testTick)
		synctest.Wait()
		select {
		case <-l.done:
		default:
			t.Fatal("the watchdog did not end within a tick of the last connection closing")
		}
	})
}

// gateListener hands out one connection from Accept when told to, even
// after Close: the order of a close racing an accept.
type gateListener struct {
	net.Listener
	conn chan net.Conn
}

func (g *gateListener) Accept() (net.Conn, error) { return <-g.conn, nil }
func (g *gateListener) Close() error              { return nil }

// A connection accepted as the listener closes is closed, not served
// without a watchdog: the watchdog may already have ended.
func TestWatchedListener_AcceptAfterClose(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer raw.Close()
	gate := &gateListener{Listener: raw, conn: make(chan net.Conn, 1)}
	l := watchListener(gate, testTick)
	require.NoError(t, l.Close())
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog of a closed listener with no connections did not end")
	}

	server, client := net.Pipe()
	defer client.Close()
	gate.conn <- server
	c, err := l.Accept()
	assert.Nil(t, c)
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = client.Write([]byte("x"))
	assert.Error(t, err, "the accepted connection was left open")
}
