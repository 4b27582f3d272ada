package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStampHook(t *testing.T) {
	var out bytes.Buffer
	h := &stampHook{}
	log := zerolog.New(&out).Hook(h)
	before := time.Now().Truncate(time.Second)
	log.Info().Str("a", "b").Msg("one")
	first := h.last.Load()
	log.Info().Msg("two")
	after := time.Now()
	if h.last.Load().unix == first.unix {
		assert.Same(t, first, h.last.Load(), "formatted once a second")
	}
	dec := json.NewDecoder(&out)
	for range 2 {
		var line map[string]any
		require.NoError(t, dec.Decode(&line))
		ts, err := time.Parse(time.RFC3339, line["time"].(string))
		require.NoError(t, err)
		assert.Equal(t, time.UTC, ts.Location())
		assert.True(t, !ts.Before(before) && !ts.After(after))
	}
}
