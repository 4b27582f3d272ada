package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// migrateCmd runs apikeyd migrate with args.
func migrateCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"migrate"}, args...), func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// result returns the result member of a reply, failing the test on an
// error reply.
func result(t *testing.T, reply map[string]any) map[string]any {
	t.Helper()
	require.Contains(t, reply, "result", "%v", reply)
	r, _ := reply["result"].(map[string]any)
	return r
}

// fillStore serves db and gives it an account with a key, a user with a
// key, a service account with a key and the audit records of those calls.
// It returns the secrets of the keys.
func fillStore(t *testing.T, db string) []string {
	t.Helper()
	m, _, _ := MustRunMain(t, db, testAdminKey)
	acme := result(t, rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"account.create","params":{"name":"acme"},"id":1}`))
	acmeKey := acme["first_key"].(map[string]any)["key"].(string)
	result(t, rpcCall(t, m.Addr(), acmeKey, `{"jsonrpc":"2.0","method":"user.create","params":{"name":"alice","password":"correct horse"},"id":2}`))
	userKey := result(t, rpcCall(t, m.Addr(), "", `{"jsonrpc":"2.0","method":"user.create_apikey","params":{"username":"alice@acme","password":"correct horse","access_level":"apikey"},"id":3}`))["key"].(string)
	result(t, rpcCall(t, m.Addr(), acmeKey, `{"jsonrpc":"2.0","method":"service_account.create","params":{"name":"ci"},"id":4}`))
	ciKey := result(t, rpcCall(t, m.Addr(), acmeKey, `{"jsonrpc":"2.0","method":"apikey.create","params":{"service_account":"ci","name":"deploy"},"id":5}`))["key"].(string)
	require.NoError(t, m.Close(context.Background()))
	return []string{testAdminKey, acmeKey, userKey, ciKey}
}

// TestMigrate_RoundTrip: a store copied from a file into etcd and back is
// the same, bucket by bucket, and every key authenticates on a node
// serving the etcd copy and on a server of the file copied back.
func TestMigrate_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	orig, back := filepath.Join(dir, "orig.db"), filepath.Join(dir, "back.db")
	secrets := fillStore(t, orig)
	e := startEtcd(t)

	toEtcd, stderr, err := migrateCmd(t, "--from-db", orig, "--to-etcd", e.URL(), "--to-prefix", "/shop/")
	require.NoError(t, err, "stderr: %s", stderr)
	for _, bucket := range []string{"keys", "accounts", "users", "service_accounts", "audit"} {
		assert.Regexp(t, `(?m)^ *`+bucket+` +[1-9][0-9]* +[0-9]+ +[0-9a-f]{16}$`, toEtcd, "a line for %s", bucket)
	}
	assert.Contains(t, toEtcd, "ok: the copy matches the source in every bucket\n")
	assert.Contains(t, stderr, "copied "+orig+" to etcd "+e.URL()+" at /shop/")

	fromEtcd, stderr, err := migrateCmd(t, "--from-etcd", e.URL(), "--from-prefix", "/shop/", "--to-db", back)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Equal(t, toEtcd, fromEtcd, "the same counts and digests both ways")

	node := runOnEtcd(t, e.URL(), "/shop/")
	file, _, _ := MustRunMain(t, back, "")
	for _, secret := range secrets {
		for _, m := range []*Main{node, file} {
			reply := rpcCall(t, m.Addr(), secret, `{"jsonrpc":"2.0","method":"system.list_methods","id":1}`)
			assert.Contains(t, reply, "result", "%v", reply)
		}
	}
	audit := result(t, rpcCall(t, file.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"audit.list","params":{"method":"account.create"},"id":2}`))
	assert.NotEmpty(t, audit["records"], "the audit trail came back")
}

// TestMigrate_Refusals: migrate changes nothing when the target holds
// data, the source is not a current store or is in use, or the flags do
// not name one source and one target.
func TestMigrate_Refusals(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	fillStore(t, orig)
	e := startEtcd(t)
	_, _, err := migrateCmd(t, "--from-db", orig, "--to-etcd", e.URL())
	require.NoError(t, err)

	t.Run("ErrPrefixNotEmpty", func(t *testing.T) {
		before := prefixRevisions(t, e.URL(), "/apikeyd/")
		_, _, err := migrateCmd(t, "--from-db", orig, "--to-etcd", e.URL())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "etcd "+e.URL()+" at /apikeyd/ holds ")
		assert.Contains(t, err.Error(), "migrate writes only into an empty prefix")
		assert.Equal(t, before, prefixRevisions(t, e.URL(), "/apikeyd/"), "the prefix is untouched")
	})
	t.Run("ErrFileHasData", func(t *testing.T) {
		before := fileDigest(t, orig)
		_, _, err := migrateCmd(t, "--from-etcd", e.URL(), "--to-db", orig)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "holds data; migrate writes only a new file or one without data")
		assert.Equal(t, before, fileDigest(t, orig), "the file is untouched")
	})
	t.Run("EmptyFileIsATarget", func(t *testing.T) {
		empty := filepath.Join(dir, "empty.db")
		b, err := bolt.Open(empty, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, b.Close())
		_, stderr, err := migrateCmd(t, "--from-etcd", e.URL(), "--to-db", empty)
		require.NoError(t, err, "stderr: %s", stderr)
		_, _, err = migrateCmd(t, "--from-db", empty, "--to-etcd", e.URL(), "--to-prefix", "/again/")
		require.NoError(t, err, "the copy is a store")
	})
	t.Run("ErrSourceNotAStore", func(t *testing.T) {
		notStore := filepath.Join(dir, "other.db")
		b, err := bolt.Open(notStore, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("invoices")); return err }))
		require.NoError(t, b.Close())
		_, _, err = migrateCmd(t, "--from-db", notStore, "--to-etcd", e.URL(), "--to-prefix", "/other/")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the source, "+notStore+", is not a store this build can copy")
	})
	t.Run("ErrSourceOlderSchema", func(t *testing.T) {
		old := filepath.Join(dir, "old.db")
		fillStore(t, old)
		b, err := bolt.Open(old, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, b.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("2")) }))
		require.NoError(t, b.Close())
		_, _, err = migrateCmd(t, "--from-db", old, "--to-etcd", e.URL(), "--to-prefix", "/old/")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is upgraded by serving it once with this build")
	})
	t.Run("ErrSourceInUse", func(t *testing.T) {
		busy := filepath.Join(dir, "busy.db")
		MustRunMain(t, busy, testAdminKey)
		_, _, err := migrateCmd(t, "--from-db", busy, "--to-etcd", e.URL(), "--to-prefix", "/busy/", "--lock-timeout", "100ms")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "database file is in use")
		assert.Contains(t, err.Error(), "stop the apikeyd serving it first")
	})
	t.Run("ErrMissingSourceFile", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.db")
		_, _, err := migrateCmd(t, "--from-db", missing, "--to-etcd", e.URL(), "--to-prefix", "/missing/")
		require.Error(t, err)
		_, statErr := os.Stat(missing)
		assert.ErrorIs(t, statErr, os.ErrNotExist, "no file made up")
	})
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"ErrNoSource":         {args: []string{"--to-db", "x.db"}, want: "give one source"},
		"ErrTwoSources":       {args: []string{"--from-db", "a.db", "--from-etcd", "http://127.0.0.1:2379", "--to-db", "x.db"}, want: "give one source"},
		"ErrNoTarget":         {args: []string{"--from-db", "a.db"}, want: "give one target"},
		"ErrPrefixWithoutURL": {args: []string{"--from-db", "a.db", "--to-db", "x.db", "--to-prefix", "/p/"}, want: "--to-prefix needs --to-etcd"},
		"ErrBadURL":           {args: []string{"--from-etcd", "127.0.0.1:2379", "--to-db", filepath.Join(dir, "x.db")}, want: `--from-etcd: "127.0.0.1:2379" is not`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := migrateCmd(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// prefixRevisions maps every key under prefix of the etcd at url to the
// revision that last wrote it: equal maps mean nothing there was written.
func prefixRevisions(t *testing.T, url, prefix string) map[string]int64 {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cli.Close()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	revs := map[string]int64{}
	for _, kv := range resp.Kvs {
		revs[string(kv.Key)] = kv.ModRevision
	}
	return revs
}
