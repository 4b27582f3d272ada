package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDateHeader(t *testing.T) {
	d := newDateHeader()
	at := time.Date(2026, 11, 23, 14, 5, 9, 100, time.FixedZone("CET", 3600))
	v := d.at(at)
	require.Equal(t, []string{"Mon, 23 Nov 2026 13:05:09 GMT"}, v, "HTTP's format, in GMT")
	same := d.at(at.Add(800 * time.Millisecond))
	assert.Same(t, &v[0], &same[0], "formatted once a second")
	next := d.at(at.Add(time.Second))
	assert.Equal(t, []string{"Mon, 23 Nov 2026 13:05:10 GMT"}, next)
	assert.Equal(t, []string{"Mon, 23 Nov 2026 13:05:09 GMT"}, v, "an earlier value is never changed")
	_, err := http.ParseTime(next[0])
	assert.NoError(t, err)
}

func TestTimeHook(t *testing.T) {
	var out bytes.Buffer
	h := NewTimeHook().(*timeHook)
	log := zerolog.New(&out).Hook(h)
	before := time.Now().Truncate(time.Second)
	log.Info().Str("a", "b").Msg("one")
	first := h.stamp.last.Load()
	log.Info().Msg("two")
	after := time.Now()
	if h.stamp.last.Load().unix == first.unix {
		assert.Same(t, first, h.stamp.last.Load(), "formatted once a second")
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
