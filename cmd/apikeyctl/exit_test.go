package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExitCodes: each class of failure has its exit code, says the API's
// message and error id on stderr, prints nothing on stdout, and changes
// nothing stored.
func TestExitCodes(t *testing.T) {
	ts := startServer(t)
	var narrow, limited apiKey
	ts.okJSON(&narrow, "key", "create", "--method", "apikey.info", "--comment", "narrow")
	ts.okJSON(&limited, "key", "create", "--method", "apikey.info", "--rate-limit", "1", "--rate-interval", "3600")
	require.Equal(t, exitOK, ts.run(map[string]string{"APIKEYD_KEY": *limited.Key}, "key", "info", limited.ID).code)
	var acme struct {
		FirstKey apiKey `json:"first_key"`
	}
	ts.okJSON(&acme, "account", "create", "acme")
	tenant := *acme.FirstKey.Key

	notAPIKeyd := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notAPIKeyd.Close)
	closed := closedURL(t)

	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		message string
	}{
		{"WrongKey", map[string]string{"APIKEYD_KEY": "ffffffffffffffffffffffffffffffff"}, []string{"key", "list"},
			exitAuth, "the API key is not valid: it is unknown, switched off or expired [invalid_key]"},
		{"WrongKeyByFlag", nil, []string{"key", "list", "--key", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"},
			exitAuth, "[invalid_key]"},
		{"NoKey", map[string]string{"APIKEYD_KEY": ""}, []string{"key", "list"}, exitAuth, "[missing_key]"},
		{"NarrowKeyRefused", map[string]string{"APIKEYD_KEY": *narrow.Key}, []string{"key", "list"},
			exitDenied, "this key's method scope does not allow this call [scope_denied]"},
		{"NarrowKeyAllowed", map[string]string{"APIKEYD_KEY": *narrow.Key}, []string{"call", "apikey.info", "id=" + narrow.ID},
			exitOK, ""},
		{"OperatorOnly", map[string]string{"APIKEYD_KEY": tenant}, []string{"account", "list"}, exitDenied, "[operator_only]"},
		{"UnknownID", nil, []string{"key", "info", "01a206e5-740b-7604-8209-7c48d77d06bd"}, exitNotFound, "[key_not_found]"},
		{"UnknownAccount", nil, []string{"account", "info", "nosuch"}, exitNotFound, "[account_not_found]"},
		{"UnknownMethod", nil, []string{"call", "vm.nosuch"}, exitNotFound, "[method_not_found]"},
		{"BadParams", nil, []string{"key", "create", "--comment", strings.Repeat("x", 300)},
			exitParams, "invalid params: comment: must be at most 255 characters, got 300 [invalid_params]"},
		{"BadScope", nil, []string{"key", "create", "--access", "SOMETIMES"}, exitParams, "[invalid_params]"},
		{"RateLimited", map[string]string{"APIKEYD_KEY": *limited.Key}, []string{"key", "info", limited.ID},
			exitLimited, "[rate_limited]"},
		{"NoServer", map[string]string{"APIKEYD_URL": closed}, []string{"key", "list"},
			exitUnreachable, "cannot call " + closed + "/rpc"},
		{"NoServerKeyByFlag", nil, []string{"key", "list", "--url", closed, "--key", "dddddddddddddddddddddddddddddddd"},
			exitUnreachable, "connection refused"},
		{"NotAPIKeyd", map[string]string{"APIKEYD_URL": notAPIKeyd.URL}, []string{"key", "list"},
			exitUnreachable, "HTTP 404 Not Found without a JSON-RPC reply"},
		{"UnknownFlag", nil, []string{"key", "list", "--colour"}, exitUsage, "unknown flag: --colour"},
		{"UnknownCommand", nil, []string{"keys"}, exitUsage, `unknown command "keys"`},
		{"MissingArgument", nil, []string{"key", "info"}, exitUsage, "apikeyctl key info takes 1 argument (ID), got 0"},
		{"TooManyArguments", nil, []string{"key", "delete", "a", "b"}, exitUsage, "takes 1 argument"},
		{"NoCommand", nil, []string{}, exitUsage, "a command is required"},
		{"NoSubCommand", nil, []string{"key"}, exitUsage, "key needs a sub-command"},
		{"BadURL", map[string]string{"APIKEYD_URL": "ftp://127.0.0.1"}, []string{"key", "list"}, exitUsage, "is not an http:// or https:// URL"},
		{"BadCallArgument", nil, []string{"call", "apikey.list", "size"}, exitUsage, `"size" is not PARAM=VALUE`},
		{"CallValueNotOfItsType", nil, []string{"call", "apikey.list", "size=ten"}, exitUsage, `param size takes JSON (integer), and "ten" is not`},
		{"NothingToUpdate", nil, []string{"key", "update", "x"}, exitUsage, "nothing to change"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.fingerprint()
			r := ts.run(tc.env, tc.args...)
			assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			if tc.code != exitOK {
				assert.True(t, strings.HasPrefix(r.stderr, "apikeyctl: "), r.stderr)
				assert.Contains(t, r.stderr, tc.message)
				assert.Empty(t, r.stdout)
			}
			for _, secret := range []string{operatorKey, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "dddddddddddddddddddddddddddddddd", *narrow.Key, *limited.Key, tenant} {
				assert.NotContains(t, r.stdout+r.stderr, secret, "the key sent is never printed")
			}
			assert.Equal(t, before, ts.fingerprint(), "a failed command changes nothing stored")
		})
	}
}
