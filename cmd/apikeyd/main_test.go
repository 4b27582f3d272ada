package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testAdminKey = "0123456789abcdef0123456789abcdef"

// MustRunMain starts the real wiring on 127.0.0.1:0 over db and stops it at
// the end of the test.
func MustRunMain(tb testing.TB, db, adminKey string) (*Main, *lockedBuffer, *lockedBuffer) {
	tb.Helper()
	var stderr, log lockedBuffer
	m := NewMain(&stderr)
	m.LogOutput = &log
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = db
	m.Config.AdminKey = adminKey
	m.Config.LogFlush = 0
	require.NoError(tb, m.Run())
	tb.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, &stderr, &log
}

// lockedBuffer is a buffer the log may write from many goroutines at once,
// as it does to os.Stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func rpcCall(tb testing.TB, addr, key, body string) map[string]any {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/rpc", strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func TestMain_AdminKeyFromEnv(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, stderr, log := MustRunMain(t, db, testAdminKey)
	reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	require.Contains(t, reply, "result")
	keys := reply["result"].([]any)
	require.Len(t, keys, 1)
	assert.NotContains(t, stderr.String(), testAdminKey, "a key from the environment is not echoed")
	assert.NotContains(t, log.String(), testAdminKey)
	assert.Contains(t, log.String(), "created operator key")

	resp, err := http.Get("http://" + m.Addr() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestMain_GeneratedAdminKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, stderr, log := MustRunMain(t, db, "")
	found := regexp.MustCompile(`\b[0-9a-f]{32}\b`).FindAllString(stderr.String(), -1)
	require.Len(t, found, 1, "stderr: %s", stderr)
	key := found[0]
	assert.NotContains(t, log.String(), key, "the generated key reached the log")
	reply := rpcCall(t, m.Addr(), key, `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"kept"},"id":1}`)
	require.Contains(t, reply, "result", "reply: %v", reply)
	require.NoError(t, m.Close(context.Background()))

	// Restarted on the same file: no new key, the old one still works, and
	// so does the key created before.
	m2, stderr2, _ := MustRunMain(t, db, "")
	assert.NotRegexp(t, `[0-9a-f]{32}`, stderr2.String())
	reply = rpcCall(t, m2.Addr(), key, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	require.Contains(t, reply, "result", "reply: %v", reply)
	assert.Len(t, reply["result"], 2)
}

// TestMain_SecondServerOnSameFile: a second serve on a file in use fails fast
// with a clear message and leaves the file untouched.
func TestMain_SecondServerOnSameFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, _, _ := MustRunMain(t, db, testAdminKey)
	rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{},"id":1}`)
	before := fileDigest(t, db)

	second := NewMain(&bytes.Buffer{})
	second.LogOutput = &bytes.Buffer{}
	second.Config.Addr = "127.0.0.1:0"
	second.Config.DB = db
	second.Config.LockTimeout = 500 * time.Millisecond
	second.Config.LogFlush = 0
	start := time.Now()
	err := second.Run()
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.ErrorIs(t, err, store.ErrLocked)
	assert.Contains(t, err.Error(), "in use by another process")
	assert.Contains(t, err.Error(), db)
	assert.Equal(t, before, fileDigest(t, db), "the second server changed the file")

	// The first goes on serving.
	reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	assert.Len(t, reply["result"], 2)
}

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestMain_Setup(t *testing.T) {
	var stderr bytes.Buffer
	m := NewMain(&stderr)
	m.LogOutput = &bytes.Buffer{}
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Setup = func(s *rpc.Server) {
		rpc.Handle(s, "server.list", scope.Read, "", func(context.Context, struct{}) ([]string, error) { return []string{"web1"}, nil })
	}
	require.NoError(t, m.Run())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"server.list","id":1}`)
	assert.Equal(t, []any{"web1"}, reply["result"])
}

func TestParseFlags(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	t.Run("Defaults", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(nil)))
		assert.Equal(t, DefaultConfig(), m.Config)
		assert.Equal(t, "127.0.0.1:8080", m.Config.Addr)
		assert.Equal(t, "apikeyd.db", m.Config.DB)
		assert.Equal(t, 100*time.Millisecond, m.Config.LogFlush)
		assert.Equal(t, 5*time.Second, m.Config.UsageFlush)
	})
	t.Run("EnvTwins", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(map[string]string{
			"APIKEYD_ADDR": "127.0.0.1:9999", "APIKEYD_DB": "/tmp/x.db", "APIKEYD_LOG_LEVEL": "debug",
			"APIKEYD_LOG_FORMAT": "console", "APIKEYD_MAX_BODY_BYTES": "2048", "APIKEYD_MAX_BATCH": "7",
			"APIKEYD_READ_TIMEOUT": "3s", "APIKEYD_IDLE_TIMEOUT": "1m", "APIKEYD_ADMIN_KEY": testAdminKey,
		})))
		c := m.Config
		assert.Equal(t, "127.0.0.1:9999", c.Addr)
		assert.Equal(t, "/tmp/x.db", c.DB)
		assert.Equal(t, "debug", c.LogLevel)
		assert.Equal(t, "console", c.LogFormat)
		assert.Equal(t, int64(2048), c.MaxBodyBytes)
		assert.Equal(t, 7, c.MaxBatch)
		assert.Equal(t, 3*time.Second, c.ReadTimeout)
		assert.Equal(t, time.Minute, c.IdleTimeout)
		assert.Equal(t, testAdminKey, c.AdminKey)
	})
	t.Run("FastPath", func(t *testing.T) {
		assert.True(t, DefaultConfig().FastPath)
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(map[string]string{"APIKEYD_FAST_PATH": "false"})))
		assert.False(t, m.Config.FastPath)
		m = NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags([]string{"--fast-path=false"}, env(nil)))
		assert.False(t, m.Config.FastPath)
		m = NewMain(&bytes.Buffer{})
		assert.ErrorContains(t, m.ParseFlags(nil, env(map[string]string{"APIKEYD_FAST_PATH": "maybe"})), "APIKEYD_FAST_PATH")
	})
	t.Run("TrustedProxies", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(map[string]string{"APIKEYD_TRUSTED_PROXIES": "10.0.0.0/8, ::1"})))
		got, err := m.Config.trustedProxies()
		require.NoError(t, err)
		assert.Equal(t, "[10.0.0.0/8 ::1/128]", fmt.Sprint(got))
	})
	t.Run("FlagBeatsEnv", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags([]string{"--addr", "127.0.0.1:7777", "--max-batch=9"},
			env(map[string]string{"APIKEYD_ADDR": "127.0.0.1:9999", "APIKEYD_MAX_BATCH": "7"})))
		assert.Equal(t, "127.0.0.1:7777", m.Config.Addr)
		assert.Equal(t, 9, m.Config.MaxBatch)
	})
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"ErrLogLevel":       {args: []string{"--log-level", "loud"}, want: "--log-level"},
		"ErrLogFormat":      {args: []string{"--log-format", "xml"}, want: "--log-format"},
		"ErrMaxBatch":       {args: []string{"--max-batch", "0"}, want: "--max-batch"},
		"ErrMaxBody":        {args: []string{"--max-body-bytes", "-1"}, want: "--max-body-bytes"},
		"ErrTimeout":        {args: []string{"--read-timeout", "0s"}, want: "--read-timeout"},
		"ErrEnvDuration":    {env: map[string]string{"APIKEYD_WRITE_TIMEOUT": "soon"}, want: "APIKEYD_WRITE_TIMEOUT"},
		"ErrEnvNumber":      {env: map[string]string{"APIKEYD_MAX_BATCH": "many"}, want: "APIKEYD_MAX_BATCH"},
		"ErrAdminKeyShape":  {env: map[string]string{"APIKEYD_ADMIN_KEY": "0123456789ABCDEF0123456789ABCDEF"}, want: "APIKEYD_ADMIN_KEY"},
		"ErrExtraArgs":      {args: []string{"extra"}, want: "unexpected arguments"},
		"ErrTrustedProxies": {args: []string{"--trusted-proxies", "10.0.0.0/8,nope"}, want: "--trusted-proxies"},
		"ErrUnknownFlag":    {args: []string{"--nope"}, want: "nope"},
		"ErrUpstreamURL":    {args: []string{"--upstream", "ftp://x/rpc"}, want: "--upstream"},
		"ErrUpstreamNoHost": {args: []string{"--upstream", "http:///rpc"}, want: "--upstream"},
		"ErrCatalogAlone":   {args: []string{"--upstream-catalog", "c.json"}, want: "--upstream-catalog needs --upstream"},
		"ErrUpstreamTime":   {args: []string{"--upstream", "http://127.0.0.1:1/rpc", "--upstream-timeout", "0s"}, want: "--upstream-timeout"},
		"ErrUpstreamSlow":   {args: []string{"--upstream", "http://127.0.0.1:1/rpc", "--upstream-timeout", "30s"}, want: "must be less than --write-timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMain(&bytes.Buffer{})
			err := m.ParseFlags(tc.args, env(tc.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRun_Commands(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, os.Getenv, &out, &errOut))
	assert.Contains(t, out.String(), "apikeyd ")
	err := run(context.Background(), []string{"bogus"}, os.Getenv, &out, &errOut)
	assert.ErrorContains(t, err, `unknown sub-command "bogus"`)
	assert.Error(t, run(context.Background(), nil, os.Getenv, &out, &errOut))
}

// TestRun_Serve runs the serve sub-command until its context ends.
func TestRun_Serve(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--log-level", "error"},
			func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(db)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when its context ended")
	}
	// The store was closed: it opens again at once.
	st, err := store.Open(db, store.Options{LockTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	n, err := st.CountKeys()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, st.Close())
}

// TestFlushWriter: lines arrive whole, not before an interval has passed
// and at its end, and all of them by Close. It runs on synctest's clock:
// the interval passes exactly, and no sooner, whatever the machine's load.
func TestFlushWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var out bytes.Buffer
		const interval = 20 * time.Millisecond
		w := newFlushWriter(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}), interval)
		read := func() string {
			mu.Lock()
			defer mu.Unlock()
			return out.String()
		}
		_, err := w.Write([]byte("one\n"))
		require.NoError(t, err)
		time.Sleep(interval - time.Nanosecond)
		synctest.Wait()
		assert.Empty(t, read(), "written before the interval ended")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, "one\n", read(), "not written when the interval ended")

		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 500; j++ {
					_, _ = w.Write([]byte(strings.Repeat("x", 99) + "\n"))
				}
			}()
		}
		wg.Wait()
		require.NoError(t, w.Close())
		require.NoError(t, w.Close(), "Close twice")
		lines := strings.Split(strings.TrimSuffix(read(), "\n"), "\n")
		require.Len(t, lines, 1+8*500)
		for _, l := range lines[1:] {
			require.Equal(t, strings.Repeat("x", 99), l)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestLogTime: every line a running server logs carries "time", RFC 3339
// in UTC to the second, the current time, whether it is a call line or not.
func TestLogTime(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	m, _, log := MustRunMain(t, filepath.Join(t.TempDir(), "apikeyd.db"), testAdminKey)
	for range 3 {
		rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	}
	after := time.Now()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	require.Greater(t, len(lines), 3, "the start-up lines and one line per call")
	calls := 0
	for _, l := range lines {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line), "not a JSON line: %s", l)
		s, ok := line["time"].(string)
		require.True(t, ok, "no time in %s", l)
		require.True(t, strings.HasSuffix(s, "Z"), "time %q is not UTC", s)
		ts, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		assert.True(t, !ts.Before(before) && !ts.After(after), "time %s is not between %s and %s", ts, before, after)
		if line["method"] == "apikey.list" {
			calls++
		}
	}
	assert.Equal(t, 3, calls)
}
