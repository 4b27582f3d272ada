package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseFlags_UpstreamErrorRedacted: a malformed --upstream is refused
// with a message that shows no user info (it may hold a password), and
// does not echo a value that does not parse at all.
func TestParseFlags_UpstreamErrorRedacted(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"BadScheme":       {args: []string{"--upstream", "htps://svc:SECRET@panel/rpc"}, want: `got "htps://panel/rpc" (user info removed)`},
		"UserOnly":        {args: []string{"--upstream", "ftp://SECRET@panel/rpc"}, want: `got "ftp://panel/rpc" (user info removed)`},
		"Unparsable":      {args: []string{"--upstream", "http://svc:SECRET@pa nel/%zz"}, want: "the value does not parse as a URL"},
		"FromEnvironment": {env: map[string]string{"APIKEYD_UPSTREAM": "htps://svc:SECRET@panel/rpc"}, want: `got "htps://panel/rpc"`},
		"NoUserInfo":      {args: []string{"--upstream", "panel/rpc"}, want: `got "panel/rpc"`},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			m := NewMain(&out)
			err := m.ParseFlags(tc.args, env(tc.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--upstream must be an http:// or https:// URL")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error()+out.String(), "SECRET")
		})
	}
}
