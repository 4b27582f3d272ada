package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runOnEtcd starts the real wiring on 127.0.0.1:0 over the etcd at url,
// under prefix, and stops it at the end of the test.
func runOnEtcd(t *testing.T, url, prefix string) *Main {
	t.Helper()
	return runMain(t, func(c *Config) { c.DB, c.Etcd, c.EtcdPrefix = "", url, prefix })
}

// serveCmd runs apikeyd serve with args through the command's entry point,
// as the binary does, and returns its error and how long it took.
func serveCmd(t *testing.T, args ...string) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a start that succeeded would stop at once
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, &stdout, &stderr)
	return err, time.Since(start)
}

// TestServe_EtcdNodesShareOneStore: a key created on one node
// authenticates on another at once, and one deleted on the other is
// refused by the first.
func TestServe_EtcdNodesShareOneStore(t *testing.T) {
	e := startEtcd(t)
	a := runOnEtcd(t, e.URL(), "/apikeyd/")
	b := runOnEtcd(t, e.URL(), "/apikeyd/")
	created := rpcCall(t, a.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"name":"web"},"id":1}`)
	require.Contains(t, created, "result", "%v", created)
	key := created["result"].(map[string]any)["key"].(string)

	info := rpcCall(t, b.Addr(), key, `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"web"},"id":2}`)
	require.Contains(t, info, "result", "the other node: %v", info)
	assert.Equal(t, "web", info["result"].(map[string]any)["name"])

	del := rpcCall(t, b.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.delete","params":{"id":"web"},"id":3}`)
	require.Contains(t, del, "result", "%v", del)
	refused := rpcCall(t, a.Addr(), key, `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"web"},"id":4}`)
	require.Contains(t, refused, "error", "%v", refused)
	assert.Equal(t, "invalid_key", refused["error"].(map[string]any)["data"].(map[string]any)["error_id"])

	// A backup of a node on etcd is a data file all the same: it checks
	// clean and holds what the deployment holds.
	out := filepath.Join(t.TempDir(), "backup.db")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"backup", "--url", "http://" + a.Addr(), "--out", out},
		func(k string) string { return map[string]string{"APIKEYD_KEY": testAdminKey}[k] }, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	require.NoError(t, store.CheckFile(out, time.Second))
	backup, err := store.Open(out, store.Options{})
	require.NoError(t, err)
	defer backup.Close()
	_, err = backup.KeyBySecret(key)
	assert.ErrorIs(t, err, store.ErrNotFound, "the key deleted on the other node is gone from the backup too")
}

// TestServe_EtcdBadStart: what cannot work stops start-up with an error
// that says what is wrong, through the command's entry point.
func TestServe_EtcdBadStart(t *testing.T) {
	t.Run("ErrUnreachable", func(t *testing.T) {
		url := "http://" + freeAddr(t) // nobody listens there
		err, took := serveCmd(t, "--etcd", url)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "etcd unreachable")
		assert.Contains(t, err.Error(), url, "the message names the endpoint")
		assert.Less(t, took, 10*time.Second)
	})
	t.Run("ErrForeignPrefix", func(t *testing.T) {
		e := startEtcd(t)
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL()}, DialTimeout: 5 * time.Second})
		require.NoError(t, err)
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, "/billing/invoices/1", "not apikeyd's")
		require.NoError(t, err)
		err, _ = serveCmd(t, "--etcd", e.URL(), "--etcd-prefix", "/billing/")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--etcd-prefix /billing/")
		assert.Contains(t, err.Error(), "holds data that is not this deployment's")
		resp, err := cli.Get(ctx, "/billing/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		assert.EqualValues(t, 1, resp.Count, "the other data is left alone")
	})
	t.Run("ErrMissingTLSFile", func(t *testing.T) {
		err, _ := serveCmd(t, "--etcd", "https://127.0.0.1:2379", "--etcd-ca", "/no/such/ca.pem")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--etcd-ca: stat /no/such/ca.pem: no such file or directory")
	})
	t.Run("ErrWithDB", func(t *testing.T) {
		err, _ := serveCmd(t, "--etcd", "http://127.0.0.1:2379", "--db", "apikeyd.db")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--etcd and --db both given")
	})
}

// TestServe_EtcdReadyz: a node whose etcd goes away reports not ready
// within --max-staleness (and a little), refuses to authenticate, and is
// ready again by itself once etcd is back.
func TestServe_EtcdReadyz(t *testing.T) {
	e := startEtcd(t)
	m := runOnEtcd(t, e.URL(), "/apikeyd/")
	readyz := "http://" + m.Addr() + "/readyz"
	status, body := get(t, readyz, "")
	require.Equal(t, http.StatusOK, status, body)

	stopped := time.Now()
	e.Kill()
	for {
		status, body = get(t, readyz, "")
		if status != http.StatusOK {
			break
		}
		require.Less(t, time.Since(stopped), 1500*time.Millisecond, "still ready with etcd gone")
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("not ready %s after etcd was killed", time.Since(stopped).Round(time.Millisecond))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "not ready: this node's copy of the data is stale: last confirmed current ")
	assert.Contains(t, body, "(limit 1s)")
	refused := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	require.Contains(t, refused, "error", "%v", refused)
	assert.Equal(t, "stale", refused["error"].(map[string]any)["data"].(map[string]any)["error_id"])
	_, metrics := getMetrics(t, m.Addr())
	assert.Regexp(t, `(?m)^apikeyd_etcd_copy_age_seconds [1-9]`, metrics, "the age shows past the limit")

	e.Start(t)
	restarted := time.Now()
	for {
		status, body = get(t, readyz, "")
		if status == http.StatusOK {
			break
		}
		require.Less(t, time.Since(restarted), 15*time.Second, "not ready again with etcd back: %s", body)
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready %s after etcd restarted", time.Since(restarted).Round(time.Millisecond))
	assert.Equal(t, "ready\n", body)
	out := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":2}`)
	assert.Contains(t, out, "result", "authenticates again: %v", out)
	_, metrics = getMetrics(t, m.Addr())
	assert.Regexp(t, `(?m)^apikeyd_etcd_copy_age_seconds 0\.`, metrics)
	assert.Contains(t, metrics, "\napikeyd_etcd_nodes 1\n")
}

// TestRecoverOperator_Etcd: recover-operator works on the store in etcd
// while a node serves it, and the node accepts the new key at once.
func TestRecoverOperator_Etcd(t *testing.T) {
	e := startEtcd(t)
	m := runOnEtcd(t, e.URL(), "/apikeyd/")
	stdout, stderr, err := recoverCmd(t, nil, "--etcd", e.URL())
	require.NoError(t, err, "stderr: %s", stderr)
	secret := strings.TrimSpace(stdout)
	require.Regexp(t, `^[0-9a-f]{32}$`, secret)
	assert.Contains(t, stderr, "to the store in etcd at /apikeyd/")
	out := rpcCall(t, m.Addr(), secret, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	assert.Contains(t, out, "result", "%v", out)

	_, _, err = recoverCmd(t, nil, "--etcd", e.URL(), "--db", "apikeyd.db")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--etcd and --db both given")
}

// TestFileOnlyCommands: check and restore, which work on files, say so
// when asked to work on etcd, and what does the job there.
func TestFileOnlyCommands(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"CheckFlag":   {args: []string{"check", "--etcd", "http://127.0.0.1:2379"}, want: "check works on a bbolt data file (--db), not on etcd; to check a deployment on etcd"},
		"CheckEnv":    {args: []string{"check"}, env: map[string]string{"APIKEYD_ETCD": "http://127.0.0.1:2379"}, want: "apikeyd migrate --from-etcd URLS --to-db FILE"},
		"RestoreFlag": {args: []string{"restore", "--etcd=http://127.0.0.1:2379", "--from", "b.db"}, want: "restore works on a bbolt data file (--db), not on etcd; to put a backup into etcd"},
		"RestoreEnv":  {args: []string{"restore", "--from", "b.db"}, env: map[string]string{"APIKEYD_ETCD": "http://127.0.0.1:2379"}, want: "apikeyd migrate --from-db BACKUP --to-etcd URLS"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("FileGivenBesideEnv", func(t *testing.T) {
		// APIKEYD_ETCD set for the nodes does not stop a check of a file
		// named on purpose.
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"check", "--db", "/no/such/file.db"},
			func(k string) string { return map[string]string{"APIKEYD_ETCD": "http://127.0.0.1:2379"}[k] }, &stdout, &stderr)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "not on etcd")
	})
}
