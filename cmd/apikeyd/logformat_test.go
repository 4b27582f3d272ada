package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain_ConsoleLogWithoutColour: the console format writes no colour
// codes to a log that is not a terminal (a file, a pipe, a journal).
func TestMain_ConsoleLogWithoutColour(t *testing.T) {
	var stderr, log lockedBuffer
	m := NewMain(&stderr)
	m.LogOutput = &log
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Config.LogFormat = "console"
	require.NoError(t, m.Run())
	require.NoError(t, m.Close(context.Background()))
	assert.Contains(t, log.String(), "serving")
	assert.NotContains(t, log.String(), "\x1b[", "colour codes in a log that is not a terminal")
}

// TestIsTerminal: a file and a pipe are not terminals.
func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, isTerminal(w))
}
