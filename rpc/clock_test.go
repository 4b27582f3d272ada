package rpc

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimeHook(t *testing.T) {
	var out bytes.Buffer
	h := NewTimeHook().(*timeHook)
	log := zerolog.New(&out).Hook(h)
	before := time.Now().Truncate(time.Second)
	log.Info().Str("a", "b").Msg("one")
	log.Info().Msg("two")
	after := time.Now()
	now := time.Now()
	first, again := h.stamp.At(now), h.stamp.At(now)
	assert.Same(t, &first[0], &again[0], "formatted once a second")
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
