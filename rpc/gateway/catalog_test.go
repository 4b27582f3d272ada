package gateway_test

import (
	"os"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseCatalog: the sample catalog of docs/gateway.md parses as it
// says, and what a catalog may not hold is refused with a reason. (What a
// parsed catalog does once forwarded is in rpc's TestGateway_* tests,
// which run over every transport.)
func TestParseCatalog(t *testing.T) {
	sample, err := os.ReadFile("../../testdata/gateway/panel/catalog.json")
	require.NoError(t, err)
	sampleCatalog, err := gateway.ParseCatalog(sample)
	require.NoError(t, err)
	require.Len(t, sampleCatalog, 3)
	assert.Equal(t, []string{"READ", "READ", "UPDATE"}, []string{sampleCatalog[0].Access, sampleCatalog[1].Access, sampleCatalog[2].Access})

	for _, tt := range []struct{ name, doc, want string }{
		{"NotJSON", `{`, "not an OpenRPC document"},
		{"Builtin", `{"methods":[{"name":"apikey.create","params":[]}]}`, "apikeyd's own"},
		{"BuiltinRPC", `{"methods":[{"name":"rpc.discover","params":[]}]}`, "apikeyd's own"},
		{"BadName", `{"methods":[{"name":"Server.Reboot","params":[]}]}`, "malformed name"},
		{"NoNamespace", `{"methods":[{"name":"reboot","params":[]}]}`, "malformed name"},
		{"BadAccess", `{"methods":[{"name":"vm.x","params":[],"x-access":"ADMIN"}]}`, "x-access"},
		{"Twice", `{"methods":[{"name":"vm.x","params":[]},{"name":"vm.x","params":[]}]}`, "twice"},
		{"RefMethod", `{"methods":[{"$ref":"#/components/x"}]}`, "$ref"},
		{"RefParam", `{"methods":[{"name":"vm.x","params":[{"$ref":"#/components/p"}]}]}`, "$ref"},
		{"DupParam", `{"methods":[{"name":"vm.x","params":[{"name":"a"},{"name":"a"}]}]}`, "repeated"},
		{"BadStructure", `{"methods":[{"name":"vm.x","paramStructure":"sideways","params":[]}]}`, "paramStructure"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.ParseCatalog([]byte(tt.doc))
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// TestStrict_Catalog: an upstream's catalog decides each forwarded
// method's access class, so it is read as strictly: a member twice, or
// in another case, cannot give one method two classes.
func TestStrict_Catalog(t *testing.T) {
	_, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.list","params":[],"x-access":"READ"}]}`))
	require.NoError(t, err)
	for _, doc := range []string{
		`{"methods":[{"name":"vm.delete","params":[],"x-access":"READ","x-access":"DELETE"}]}`,
		`{"methods":[{"name":"vm.delete","params":[],"x-access":"DELETE"}],"methods":[{"name":"vm.delete","params":[],"x-access":"READ"}]}`,
		"{\"methods\":[{\"name\":\"vm.l\xffist\",\"params\":[],\"x-access\":\"READ\"}]}",
	} {
		_, err := gateway.ParseCatalog([]byte(doc))
		assert.Error(t, err, "%s", doc)
	}
	// A name in another case is not the member: the method has no
	// access class of its own, so it gets the default, MANAGE, not READ.
	catalog, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.delete","params":[],"X-ACCESS":"READ"}]}`))
	require.NoError(t, err)
	require.Len(t, catalog, 1)
	assert.Equal(t, "MANAGE", catalog[0].Access)
}
