package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var secretPattern = regexp.MustCompile(`\b[0-9a-f]{32}\b`)

// countKeys opens the stopped server's file and counts its keys.
func countKeys(t *testing.T, db string) int {
	t.Helper()
	st, err := store.Open(db, store.Options{LockTimeout: time.Second, UsageFlush: -1})
	require.NoError(t, err)
	defer st.Close()
	n, err := st.CountKeys()
	require.NoError(t, err)
	return n
}

// TestMain_FirstStartFails: a first start that fails after the store is
// open shows no operator key and leaves the file without keys; the next
// good start creates one and shows it once.
func TestMain_FirstStartFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	for name, setup := range map[string]func(t *testing.T, c *Config){
		"AddrInUse":      func(t *testing.T, c *Config) { c.Addr = busy.Addr().String() },
		"DebugAddrInUse": func(t *testing.T, c *Config) { c.DebugAddr = busy.Addr().String() },
		"BadCatalog": func(t *testing.T, c *Config) {
			url, _ := panel(t, false)
			file := filepath.Join(t.TempDir(), "catalog.json")
			require.NoError(t, os.WriteFile(file, []byte(`{"methods":[{"name":"apikey.create","params":[]}]}`), 0o600))
			c.Upstream, c.UpstreamCatalog = url, file
		},
		"NoCatalog": func(t *testing.T, c *Config) {
			url, _ := panel(t, false)
			c.Upstream = url
		},
	} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "apikeyd.db")
			var stderr, log lockedBuffer
			m := NewMain(&stderr)
			m.LogOutput = &log
			m.Config.Addr = "127.0.0.1:0"
			m.Config.DB = db
			m.Config.LogFlush = 0
			setup(t, &m.Config)
			done := make(chan error, 1)
			go func() { done <- m.Run() }()
			select {
			case err := <-done:
				require.Error(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("a failed start did not return")
			}
			assert.NotRegexp(t, secretPattern, stderr.String(), "a failed start showed a key")
			assert.NotContains(t, log.String(), "created operator key")
			assert.Equal(t, 0, countKeys(t, db), "a failed start left a key no one has seen")

			m2, stderr2, _ := MustRunMain(t, db, "")
			found := secretPattern.FindAllString(stderr2.String(), -1)
			require.Len(t, found, 1, "stderr: %s", stderr2)
			reply := rpcCall(t, m2.Addr(), found[0], `{"jsonrpc":"2.0","method":"account.list","id":1}`)
			require.Contains(t, reply, "result", "reply: %v", reply)
		})
	}
}
