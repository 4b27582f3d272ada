package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags_Etcd(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not checked here"), 0o600))

	t.Run("Off", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(nil)))
		assert.Empty(t, m.Config.Etcd)
		assert.Equal(t, "apikeyd.db", m.Config.DB)
	})
	t.Run("Defaults", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags([]string{"--etcd", "http://127.0.0.1:2379,https://10.0.0.2:2379"}, env(nil)))
		assert.Equal(t, "/apikeyd/", m.Config.EtcdPrefix)
		assert.Equal(t, time.Second, m.Config.MaxStaleness)
		eps, err := m.Config.etcdEndpoints()
		require.NoError(t, err)
		assert.Equal(t, []string{"http://127.0.0.1:2379", "https://10.0.0.2:2379"}, eps)
	})
	t.Run("FromEnvironment", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, env(map[string]string{
			"APIKEYD_ETCD": "http://127.0.0.1:2379", "APIKEYD_ETCD_PREFIX": "/shop/", "APIKEYD_ETCD_CA": ca,
			"APIKEYD_MAX_STALENESS": "250ms",
		})))
		assert.Equal(t, "http://127.0.0.1:2379", m.Config.Etcd)
		assert.Equal(t, "/shop/", m.Config.EtcdPrefix)
		assert.Equal(t, ca, m.Config.EtcdCA)
		assert.Equal(t, 250*time.Millisecond, m.Config.MaxStaleness)
	})
	t.Run("FlagBeatsEnvironment", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags([]string{"--etcd", "http://10.0.0.9:2379"}, env(map[string]string{"APIKEYD_ETCD": "http://127.0.0.1:2379"})))
		assert.Equal(t, "http://10.0.0.9:2379", m.Config.Etcd)
	})

	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"ErrEtcdAndDB":            {args: []string{"--etcd", "http://127.0.0.1:2379", "--db", "x.db"}, want: "--etcd and --db both given"},
		"ErrEtcdAndDBFromEnv":     {env: map[string]string{"APIKEYD_ETCD": "http://127.0.0.1:2379", "APIKEYD_DB": "x.db"}, want: "--etcd and --db both given"},
		"ErrNoScheme":             {args: []string{"--etcd", "127.0.0.1:2379"}, want: `--etcd: "127.0.0.1:2379" is not the http:// or https:// URL`},
		"ErrPath":                 {args: []string{"--etcd", "http://127.0.0.1:2379/v3"}, want: `"http://127.0.0.1:2379/v3" is not`},
		"ErrEmpty":                {args: []string{"--etcd", " , "}, want: "--etcd: no URL given"},
		"ErrPrefixWithoutEtcd":    {args: []string{"--etcd-prefix", "/x/"}, want: "--etcd-prefix needs --etcd"},
		"ErrCAWithoutEtcd":        {args: []string{"--etcd-ca", ca}, want: "--etcd-ca needs --etcd"},
		"ErrStalenessWithoutEtcd": {args: []string{"--max-staleness", "2s"}, want: "--max-staleness needs --etcd"},
		"ErrEmptyPrefix":          {args: []string{"--etcd", "http://127.0.0.1:2379", "--etcd-prefix", ""}, want: "--etcd-prefix must not be empty"},
		"ErrStalenessNotPositive": {args: []string{"--etcd", "http://127.0.0.1:2379", "--max-staleness", "0s"}, want: "--max-staleness must be positive"},
		"ErrCertWithoutKey":       {args: []string{"--etcd", "https://127.0.0.1:2379", "--etcd-cert", ca}, want: "--etcd-cert and --etcd-key go together"},
		"ErrMissingCA":            {args: []string{"--etcd", "https://127.0.0.1:2379", "--etcd-ca", "/no/such/ca.pem"}, want: "--etcd-ca: stat /no/such/ca.pem: no such file"},
		"ErrMissingKey": {args: []string{"--etcd", "https://127.0.0.1:2379", "--etcd-cert", ca, "--etcd-key", "/no/such/key.pem"},
			want: "--etcd-key: stat /no/such/key.pem: no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMain(&bytes.Buffer{})
			err := m.ParseFlags(tc.args, env(tc.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	t.Run("ErrPasswordNotEchoed", func(t *testing.T) {
		m := NewMain(&bytes.Buffer{})
		err := m.ParseFlags([]string{"--etcd", "http://root:SECRET@127.0.0.1:2379"}, env(nil))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "client certificate")
		assert.NotContains(t, err.Error(), "SECRET")
	})
}
