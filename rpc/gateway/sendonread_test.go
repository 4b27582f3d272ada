package gateway

import (
	"bytes"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoOnce accepts one connection on l, waits, reads n bytes, and answers
// them with the same bytes reversed in case, so the reply shows it saw the
// request whole.
func echoOnce(t *testing.T, l net.Listener, n int, wait time.Duration) {
	t.Helper()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(wait)
		req := make([]byte, n)
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		_, _ = c.Write(bytes.ToUpper(req))
	}()
}

// listen listens on 127.0.0.1, with connections that buffer rcvBuf
// bytes of what they are sent (0: the system's default).
func listen(t *testing.T, rcvBuf int) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if rcvBuf == 0 {
			return nil
		}
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestSendOnRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		bufs    int           // both ends' socket buffers; 0: the system's
		wait    time.Duration // before the peer reads
		written []int         // the sizes of the writes that make the request
	}{
		{"small", 300, 0, 0, []int{300}},
		{"in parts", 3000, 0, 0, []int{1000, 1000, 1000}},
		{"more than is kept", maxPending + 1000, 0, 0, []int{maxPending - 1000, 2000}},
		// The socket takes only part of what was kept; the rest goes as it
		// drains.
		{"more than the socket takes", maxPending, 4096, 50 * time.Millisecond, []int{maxPending}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, tc.bufs)
			echoOnce(t, l, tc.size, tc.wait)

			c, err := dialSendOnRead(l.Addr().String(), time.Second)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			require.IsType(t, &sendOnRead{}, c)
			if tc.bufs > 0 {
				require.NoError(t, c.(*sendOnRead).SetWriteBuffer(tc.bufs))
			}
			require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))

			req := []byte(strings.Repeat("abcdefgh", tc.size/8+1)[:tc.size])
			off := 0
			for _, n := range tc.written {
				w, err := c.Write(req[off : off+n])
				require.NoError(t, err)
				require.Equal(t, n, w)
				off += n
			}
			reply := make([]byte, tc.size)
			_, err = io.ReadFull(c, reply)
			require.NoError(t, err)
			assert.Equal(t, bytes.ToUpper(req), reply)
		})
	}

	t.Run("the read deadline passes", func(t *testing.T) {
		l := listen(t, 0)
		echoOnce(t, l, 1000, time.Second) // reads too late
		c, err := dialSendOnRead(l.Addr().String(), time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, err = c.Write(make([]byte, 10))
		require.NoError(t, err)
		_, err = c.Read(make([]byte, 10))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
	})

	t.Run("the peer has closed", func(t *testing.T) {
		l := listen(t, 0)
		go func() {
			if c, err := l.Accept(); err == nil {
				_ = c.Close()
			}
		}()
		c, err := dialSendOnRead(l.Addr().String(), time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		time.Sleep(50 * time.Millisecond) // the peer's close arrives
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write(make([]byte, 10))
		require.NoError(t, err)
		start := time.Now()
		_, err = c.Read(make([]byte, 10))
		require.Error(t, err)
		assert.Less(t, time.Since(start), time.Second, "failed at once, not at the deadline")
	})
}
