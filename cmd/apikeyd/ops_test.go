package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// runCmd runs an apikeyd sub-command with env as its whole environment.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// fileSum is the SHA-256 of a file's bytes, to prove it did not change.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// onlyFiles lists a directory's entries: a refused command leaves no
// temporary file behind.
func onlyFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestReadyz: /readyz answers ready while the store reads and writes, on
// either transport, and 503 with a reason once the store is gone; /healthz
// still says the process is alive.
func TestReadyz(t *testing.T) {
	eachTransport(t, func(t *testing.T, m *Main) {
		status, body := get(t, "http://"+m.Addr()+"/readyz", "")
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, "ready\n", body)
		require.NoError(t, m.Store.Close())
		status, body = get(t, "http://"+m.Addr()+"/readyz", "")
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Contains(t, body, "not ready: ")
		status, body = get(t, "http://"+m.Addr()+"/healthz", "")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, "ok\n", body)
	})
}

// TestReadyz_KeepsKeys: the probe's write leaves every key working and
// the keys unchanged.
func TestReadyz_KeepsKeys(t *testing.T) {
	m, _, _ := MustRunMain(t, filepath.Join(t.TempDir(), "apikeyd.db"), testAdminKey)
	before, err := m.Store.CountKeys()
	require.NoError(t, err)
	for range 3 {
		status, _ := get(t, "http://"+m.Addr()+"/readyz", "")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`), "result")
	}
	after, err := m.Store.CountKeys()
	require.NoError(t, err)
	assert.Equal(t, before, after)
	require.NoError(t, m.Store.CheckKeys())
}

// TestBackup_UnderWrites takes a backup with apikeyd backup while keys are
// being created, restores it into a new file, checks it, and finds in it
// every key whose creation was acknowledged before the backup began.
func TestBackup_UnderWrites(t *testing.T) {
	dir := t.TempDir()
	m, _, _ := MustRunMain(t, filepath.Join(dir, "live.db"), testAdminKey)
	create := func(i int) string {
		reply := rpcCall(t, m.Addr(), testAdminKey,
			fmt.Sprintf(`{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"w%d"},"id":1}`, i))
		res, ok := reply["result"].(map[string]any)
		require.True(t, ok, "reply: %v", reply)
		return res["id"].(string)
	}
	var acked []string
	for i := range 20 {
		acked = append(acked, create(i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	during := 0
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				select {
				case <-stop:
					return
				default:
				}
				create(1000*(w+1) + i)
				mu.Lock()
				during++
				mu.Unlock()
			}
		}()
	}
	// The backup starts once the writers are under way.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return during >= 5
	}, 20*time.Second, time.Millisecond)
	out := filepath.Join(dir, "backup.db")
	env := map[string]string{"APIKEYD_KEY": testAdminKey}
	_, stderr, err := runCmd(t, env, "backup", "--url", "http://"+m.Addr(), "--out", out)
	close(stop)
	wg.Wait()
	require.NoError(t, err, stderr)
	assert.NotContains(t, stderr, testAdminKey)
	t.Logf("%d keys created by the writers", during)

	restored := filepath.Join(dir, "restored.db")
	_, stderr, err = runCmd(t, nil, "restore", "--db", restored, "--from", out)
	require.NoError(t, err, stderr)
	stdout, _, err := runCmd(t, nil, "check", "--db", restored)
	require.NoError(t, err)
	assert.Contains(t, stdout, "ok")

	st, err := store.Open(restored, store.Options{UsageFlush: -1})
	require.NoError(t, err)
	defer st.Close()
	for _, id := range acked {
		_, err := st.Key(store.OperatorAccount, id)
		assert.NoError(t, err, "key %s was acknowledged before the backup", id)
	}
	_, err = st.KeyBySecret(testAdminKey)
	assert.NoError(t, err, "the operator key works in the restored file")
}

// TestBackup_Refused: without an operator key of the account itself, with
// MANAGE, the backup is refused with 401 or 403 and nothing is written.
func TestBackup_Refused(t *testing.T) {
	dir := t.TempDir()
	m, _, _ := MustRunMain(t, filepath.Join(dir, "live.db"), testAdminKey)
	acme := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"account.create","params":{"name":"acme"},"id":1}`)
	acmeKey := acme["result"].(map[string]any)["first_key"].(map[string]any)["key"].(string)
	require.Contains(t, rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"service_account.create","params":{"name":"ci"},"id":1}`), "result")
	held := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"service_account":"ci"},"id":1}`)
	heldKey := held["result"].(map[string]any)["key"].(string)
	scoped := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["apikey.list"]}},"id":1}`)
	scopedKey := scoped["result"].(map[string]any)["key"].(string)
	readOnly := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"access":["READ"]}},"id":1}`)
	readKey := readOnly["result"].(map[string]any)["key"].(string)

	for name, c := range map[string]struct {
		key     string
		status  int
		errorID string
	}{
		"NoKey":        {"", http.StatusUnauthorized, "missing_key"},
		"WrongKey":     {"fedcba9876543210fedcba9876543210", http.StatusUnauthorized, "invalid_key"},
		"OtherAccount": {acmeKey, http.StatusForbidden, "operator_only"},
		"HeldKey":      {heldKey, http.StatusForbidden, "held_key"},
		"MethodScoped": {scopedKey, http.StatusForbidden, "scope_denied"},
		"ReadOnly":     {readKey, http.StatusForbidden, "scope_denied"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := get(t, "http://"+m.Addr()+"/backup", c.key)
			require.Equal(t, c.status, status, "a refused backup sends no data")
			assert.Contains(t, body, `"error_id":"`+c.errorID+`"`)
			if c.key == "" {
				return
			}
			out := filepath.Join(t.TempDir(), "backup.db")
			_, _, err := runCmd(t, map[string]string{"APIKEYD_KEY": c.key}, "backup", "--url", "http://"+m.Addr(), "--out", out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.errorID)
			assert.NotContains(t, err.Error(), c.key, "the key is never shown")
			assert.Empty(t, onlyFiles(t, filepath.Dir(out)), "a refused backup writes nothing")
		})
	}
	t.Run("NoKeyInEnv", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "backup.db")
		_, _, err := runCmd(t, nil, "backup", "--url", "http://"+m.Addr(), "--out", out)
		require.ErrorContains(t, err, "APIKEYD_KEY")
		assert.Empty(t, onlyFiles(t, filepath.Dir(out)))
	})
	t.Run("KeyFlagRefused", func(t *testing.T) {
		_, _, err := runCmd(t, nil, "backup", "--key", testAdminKey, "--url", "http://"+m.Addr(), "--out", filepath.Join(t.TempDir(), "b.db"))
		require.Error(t, err, "the key is never a flag")
	})
	t.Run("Post", func(t *testing.T) {
		resp, err := http.Post("http://"+m.Addr()+"/backup", "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
	t.Run("ExistingOutKeptOnRefusal", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "backup.db")
		require.NoError(t, os.WriteFile(out, []byte("older backup"), 0o600))
		_, _, err := runCmd(t, map[string]string{"APIKEYD_KEY": acmeKey}, "backup", "--url", "http://"+m.Addr(), "--out", out)
		require.Error(t, err)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, "older backup", string(b))
	})
}

// goodBackup takes a backup of a new server with one key more than the
// operator's, stops the server, and returns the backup and its data file.
func goodBackup(t *testing.T, dir string) (backupFile, db string) {
	t.Helper()
	db = filepath.Join(dir, "live.db")
	m, _, _ := MustRunMain(t, db, testAdminKey)
	rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"in backup"},"id":1}`)
	backupFile = filepath.Join(dir, "backup.db")
	_, stderr, err := runCmd(t, map[string]string{"APIKEYD_KEY": testAdminKey}, "backup", "--url", "http://"+m.Addr(), "--out", backupFile)
	require.NoError(t, err, stderr)
	require.NoError(t, m.Close(context.Background()))
	return backupFile, db
}

// TestRestore_Refused: restore refuses a running server's file, a missing
// or corrupt backup, and leaves the target as it was.
func TestRestore_Refused(t *testing.T) {
	dir := t.TempDir()
	good, _ := goodBackup(t, dir)

	t.Run("ServerRunning", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "running.db")
		m, _, _ := MustRunMain(t, db, testAdminKey)
		before, err := m.Store.Fingerprint()
		require.NoError(t, err)
		_, _, err = runCmd(t, map[string]string{"APIKEYD_LOCK_TIMEOUT": "200ms"}, "restore", "--db", db, "--from", good)
		require.ErrorIs(t, err, store.ErrLocked)
		assert.Contains(t, err.Error(), "stop the apikeyd")
		after, err := m.Store.Fingerprint()
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})

	corrupt := map[string]func(t *testing.T) string{
		"Missing": func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.db") },
		"NotBbolt": func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "junk.db")
			require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("junk"), 4096), 0o600))
			return p
		},
		"Truncated": func(t *testing.T) string {
			b, err := os.ReadFile(good)
			require.NoError(t, err)
			p := filepath.Join(t.TempDir(), "short.db")
			require.NoError(t, os.WriteFile(p, b[:len(b)/2], 0o600))
			return p
		},
		"PagesOverwritten": func(t *testing.T) string {
			b, err := os.ReadFile(good)
			require.NoError(t, err)
			b = bytes.Clone(b)
			for i := 2 * 4096; i < len(b); i++ { // keep the two meta pages, spoil the rest
				b[i] = 0xff
			}
			p := filepath.Join(t.TempDir(), "spoiled.db")
			require.NoError(t, os.WriteFile(p, b, 0o600))
			return p
		},
		"KeysInconsistent": func(t *testing.T) string {
			b, err := os.ReadFile(good)
			require.NoError(t, err)
			p := filepath.Join(t.TempDir(), "orphan.db")
			require.NoError(t, os.WriteFile(p, b, 0o600))
			db, err := bolt.Open(p, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("digests")).Put(bytes.Repeat([]byte{7}, 32), []byte("no-such-key"))
			}))
			require.NoError(t, db.Close())
			return p
		},
	}
	for name, make := range corrupt {
		t.Run(name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "apikeyd.db")
			_, db := goodBackup(t, filepath.Dir(target))
			sum := fileSum(t, db)
			files := onlyFiles(t, filepath.Dir(db))
			from := make(t)
			_, _, err := runCmd(t, nil, "restore", "--db", db, "--from", from)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "unchanged")
			assert.Equal(t, sum, fileSum(t, db), "a refused restore leaves the file as it was")
			assert.Equal(t, files, onlyFiles(t, filepath.Dir(db)), "and no temporary file")
		})
	}
	t.Run("NoFrom", func(t *testing.T) {
		_, _, err := runCmd(t, nil, "restore", "--db", filepath.Join(t.TempDir(), "x.db"))
		require.ErrorContains(t, err, "--from")
	})
}

// TestCheck: check passes a clean file, fails a running server's, a
// missing one and one whose keys and indexes disagree, with a report.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good, db := goodBackup(t, dir)
	stdout, _, err := runCmd(t, nil, "check", "--db", db)
	require.NoError(t, err)
	assert.Contains(t, stdout, "is consistent")
	stdout, _, err = runCmd(t, map[string]string{"APIKEYD_DB": good}, "check")
	require.NoError(t, err, "APIKEYD_DB is --db's twin")
	assert.Contains(t, stdout, good)

	t.Run("Missing", func(t *testing.T) {
		_, _, err := runCmd(t, nil, "check", "--db", filepath.Join(t.TempDir(), "nope.db"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("ServerRunning", func(t *testing.T) {
		m, _, _ := MustRunMain(t, filepath.Join(t.TempDir(), "running.db"), testAdminKey)
		_, _, err := runCmd(t, nil, "check", "--db", m.Config.DB, "--lock-timeout", "200ms")
		require.ErrorIs(t, err, store.ErrLocked)
	})
	t.Run("Inconsistent", func(t *testing.T) {
		bdb, err := bolt.Open(db, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("digests")).Put(bytes.Repeat([]byte{7}, 32), []byte("no-such-key"))
		}))
		require.NoError(t, bdb.Close())
		sum := fileSum(t, db)
		_, _, err = runCmd(t, nil, "check", "--db", db)
		require.ErrorIs(t, err, store.ErrInconsistent)
		assert.Contains(t, err.Error(), "lead nowhere")
		assert.Equal(t, sum, fileSum(t, db), "check changes nothing")
	})
	t.Run("AuditIndexLeadsNowhere", func(t *testing.T) {
		_, db := goodBackup(t, t.TempDir())
		bdb, err := bolt.Open(db, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("audit_account")).Put([]byte("acme\x00\x00\x00\x00\x00\x00\x00\xff\xff"), nil)
		}))
		require.NoError(t, bdb.Close())
		_, _, err = runCmd(t, nil, "check", "--db", db)
		require.ErrorIs(t, err, store.ErrInconsistent)
		assert.Contains(t, err.Error(), "leads to no audit record")
	})
	t.Run("NoFlagsUsage", func(t *testing.T) {
		_, _, err := runCmd(t, nil, "check", "extra")
		require.ErrorContains(t, err, "unexpected arguments")
	})
}

// TestBackup_CLIErrors: flags that cannot work are refused before any
// request.
func TestBackup_CLIErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"NoOut":  {"backup", "--url", "http://127.0.0.1:1"},
		"BadURL": {"backup", "--url", "ftp://x", "--out", "x.db"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runCmd(t, map[string]string{"APIKEYD_KEY": testAdminKey}, args...)
			require.Error(t, err)
		})
	}
}

// TestBackup_ManageScopedKey: an operator key restricted to MANAGE calls
// may take a backup: the access decision, not a rule of its own, says so.
func TestBackup_ManageScopedKey(t *testing.T) {
	m, _, _ := MustRunMain(t, filepath.Join(t.TempDir(), "live.db"), testAdminKey)
	reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"access":["MANAGE"]}},"id":1}`)
	key := reply["result"].(map[string]any)["key"].(string)
	out := filepath.Join(t.TempDir(), "backup.db")
	_, stderr, err := runCmd(t, map[string]string{"APIKEYD_KEY": key}, "backup", "--url", "http://"+m.Addr()+"/", "--out", out)
	require.NoError(t, err, stderr)
	_, _, err = runCmd(t, nil, "check", "--db", out)
	require.NoError(t, err)
}

// TestBackup_CutCopyRefused: a copy that arrives with 200 but cut short,
// or that is not a data file at all, is not renamed into place: the older
// backup stays, and no temporary file is left.
func TestBackup_CutCopyRefused(t *testing.T) {
	good, _ := goodBackup(t, t.TempDir())
	whole, err := os.ReadFile(good)
	require.NoError(t, err)
	for name, body := range map[string][]byte{
		"Cut":      whole[:len(whole)/2],
		"NotAFile": []byte("<html>a proxy's error page</html>"),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			dir := t.TempDir()
			out := filepath.Join(dir, "backup.db")
			require.NoError(t, os.WriteFile(out, whole, 0o600))
			_, _, err := runCmd(t, map[string]string{"APIKEYD_KEY": testAdminKey}, "backup", "--url", srv.URL, "--out", out)
			require.ErrorIs(t, err, store.ErrInconsistent)
			assert.Equal(t, sha256.Sum256(whole), fileSum(t, out), "the older backup stays")
			assert.Equal(t, []string{"backup.db"}, onlyFiles(t, dir))
		})
	}
}
