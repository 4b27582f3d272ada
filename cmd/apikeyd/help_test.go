package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestServe_Help: apikeyd serve --help is a request, not a mistake: it
// exits 0, lists the flags and names the variables that have no flag.
func TestServe_Help(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"serve", arg}, noEnv, &stdout, &stderr)
		assert.Equal(t, 0, exitStatus(err, &stderr), "%s: %v", arg, err)
		help := stdout.String() + stderr.String()
		assert.Contains(t, help, "-addr")
		assert.Contains(t, help, "APIKEYD_ADMIN_KEY")
		assert.Contains(t, help, "APIKEYD_UPSTREAM_TOKEN")
		assert.NotContains(t, help, "help requested")
	}
	// A wrong flag is still a failure, and says so.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--no-such-flag"}, noEnv, &bytes.Buffer{}, &stderr)
	assert.Equal(t, 2, exitStatus(err, &stderr))
	assert.Contains(t, stderr.String(), "no-such-flag")
}
