package rpc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFuzzFind_EmptyParamName: a param named "" (found by
// FuzzParamsDecode) is refused as invalid_params that names the field at
// fault, as every other unknown param is, and changes nothing.
func TestFuzzFind_EmptyParamName(t *testing.T) {
	ts := newTestServer(t)
	before, err := ts.Store.Fingerprint()
	assert.NoError(t, err)
	e := ts.fail(ts.Admin, "apikey.create", map[string]any{"": ""}, -32602, "invalid_params")
	assert.NotEmpty(t, e.Data.Field, "the refusal names no field: %+v", e)
	after, err := ts.Store.Fingerprint()
	assert.NoError(t, err)
	assert.Equal(t, before, after)
}
