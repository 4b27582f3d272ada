package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
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

// recoverCmd runs apikeyd recover-operator with args and env.
func recoverCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"recover-operator"}, args...),
		func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// TestRecoverOperator: on a stopped server's file, recover-operator adds a
// full operator key and prints its secret once, on stdout alone; the
// server, started again, accepts it. Keys already there stay as they were.
func TestRecoverOperator(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, _, _ := MustRunMain(t, db, testAdminKey)
	require.NoError(t, m.Close(context.Background()))

	stdout, stderr, err := recoverCmd(t, nil, "--db", db)
	require.NoError(t, err, "stderr: %s", stderr)
	found := secretPattern.FindAllString(stdout, -1)
	require.Len(t, found, 1, "stdout: %q", stdout)
	secret := found[0]
	assert.Equal(t, secret+"\n", stdout, "stdout holds the secret alone, for scripts")
	assert.NotContains(t, stderr, secret, "the secret went to stderr too")
	assert.Contains(t, stderr, "shown only this once")

	m2, stderr2, log := MustRunMain(t, db, "")
	assert.NotRegexp(t, secretPattern, stderr2.String(), "a file with keys gets no new one at start")
	reply := rpcCall(t, m2.Addr(), secret, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	require.Contains(t, reply, "result", "reply: %v", reply)
	assert.Len(t, reply["result"], 2, "the old key and the recovered one")
	reply = rpcCall(t, m2.Addr(), secret, `{"jsonrpc":"2.0","method":"account.create","params":{"name":"acme"},"id":2}`)
	require.Contains(t, reply, "result", "the recovered key is the operator's: %v", reply)
	reply = rpcCall(t, m2.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"account.list","id":3}`)
	require.Contains(t, reply, "result", "the old key goes on working: %v", reply)
	assert.NotContains(t, log.String(), secret)
}

func TestRecoverOperator_AdminKeyFromEnv(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, _, _ := MustRunMain(t, db, testAdminKey)
	require.NoError(t, m.Close(context.Background()))
	const chosen = "fedcba9876543210fedcba9876543210"

	// APIKEYD_DB stands for --db.
	stdout, stderr, err := recoverCmd(t, map[string]string{"APIKEYD_DB": db, "APIKEYD_ADMIN_KEY": chosen})
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Empty(t, stdout, "a secret from the environment is not echoed")
	assert.NotContains(t, stderr, chosen)
	assert.Equal(t, 2, countKeys(t, db))

	m2, _, _ := MustRunMain(t, db, "")
	reply := rpcCall(t, m2.Addr(), chosen, `{"jsonrpc":"2.0","method":"account.list","id":1}`)
	require.Contains(t, reply, "result", "reply: %v", reply)
	require.NoError(t, m2.Close(context.Background()))

	// The same secret again: refused, nothing changed.
	before := fileDigest(t, db)
	_, _, err = recoverCmd(t, map[string]string{"APIKEYD_ADMIN_KEY": chosen}, "--db", db)
	assert.ErrorContains(t, err, "already a key")
	assert.Equal(t, before, fileDigest(t, db))
}

// TestRecoverOperator_Refused: a running server's file fails fast and is
// left as it is; a missing file is not created; bad input is named.
func TestRecoverOperator_Refused(t *testing.T) {
	t.Run("ServerRunning", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "apikeyd.db")
		MustRunMain(t, db, testAdminKey)
		before := fileDigest(t, db)
		start := time.Now()
		stdout, _, err := recoverCmd(t, nil, "--db", db, "--lock-timeout", "300ms")
		require.Error(t, err)
		assert.Less(t, time.Since(start), 3*time.Second)
		assert.ErrorIs(t, err, store.ErrLocked)
		assert.Contains(t, err.Error(), "stop the apikeyd serving "+db)
		assert.Empty(t, stdout)
		assert.Equal(t, before, fileDigest(t, db))
	})
	t.Run("MissingFile", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "typo.db")
		stdout, _, err := recoverCmd(t, nil, "--db", db)
		assert.ErrorContains(t, err, "existing data file")
		assert.Empty(t, stdout)
		assert.NoFileExists(t, db)
	})
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"ErrAdminKeyShape": {env: map[string]string{"APIKEYD_ADMIN_KEY": "0123456789ABCDEF0123456789ABCDEF"}, want: "APIKEYD_ADMIN_KEY"},
		"ErrLockTimeout":   {args: []string{"--lock-timeout", "0s"}, want: "--lock-timeout"},
		"ErrEnvLock":       {env: map[string]string{"APIKEYD_LOCK_TIMEOUT": "soon"}, want: "APIKEYD_LOCK_TIMEOUT"},
		"ErrExtraArgs":     {args: []string{"extra"}, want: "unexpected arguments"},
		"ErrUnknownFlag":   {args: []string{"--addr", "x"}, want: "addr"},
	} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "apikeyd.db")
			stdout, _, err := recoverCmd(t, tc.env, append([]string{"--db", db}, tc.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, stdout)
			assert.NoFileExists(t, db)
		})
	}
	t.Run("Usage", func(t *testing.T) {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"help"}, os.Getenv, &out, &bytes.Buffer{}))
		assert.True(t, strings.Contains(out.String(), "recover-operator"))
	})
}

// TestMain_WarnsWithoutFullOperatorKey: a file whose operator account has
// no full operator key (here: the account record is gone) starts, and the
// log says how to get one back; recover-operator does, and the warning goes.
func TestMain_WarnsWithoutFullOperatorKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, _, log := MustRunMain(t, db, testAdminKey)
	assert.NotContains(t, log.String(), "recover-operator")
	require.NoError(t, m.Close(context.Background()))

	raw, err := bolt.Open(db, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("accounts")).Delete([]byte(store.OperatorAccount))
	}))
	require.NoError(t, raw.Close())

	m, _, log = MustRunMain(t, db, "")
	assert.Contains(t, log.String(), "run apikeyd recover-operator")
	require.NoError(t, m.Close(context.Background()))

	_, stderr, err := recoverCmd(t, nil, "--db", db)
	require.NoError(t, err, "stderr: %s", stderr)
	_, _, log = MustRunMain(t, db, "")
	assert.NotContains(t, log.String(), "recover-operator")
}
