package httpio

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDateHeader(t *testing.T) {
	d := Date
	at := time.Date(2026, 11, 23, 14, 5, 9, 100, time.FixedZone("CET", 3600))
	v := d.At(at)
	require.Equal(t, []string{"Mon, 23 Nov 2026 13:05:09 GMT"}, v, "HTTP's format, in GMT")
	same := d.At(at.Add(800 * time.Millisecond))
	assert.Same(t, &v[0], &same[0], "formatted once a second")
	next := d.At(at.Add(time.Second))
	assert.Equal(t, []string{"Mon, 23 Nov 2026 13:05:10 GMT"}, next)
	assert.Equal(t, []string{"Mon, 23 Nov 2026 13:05:09 GMT"}, v, "an earlier value is never changed")
	_, err := http.ParseTime(next[0])
	assert.NoError(t, err)
}
