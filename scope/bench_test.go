package scope_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/scope"
)

// BenchmarkCheck: the scope check of one call, for an unrestricted key and
// for a key with method and name scopes.
func BenchmarkCheck(b *testing.B) {
	call := scope.Call{Method: "server.reboot", TakesName: true, Name: "web7", HasName: true}
	for _, bc := range []struct {
		name   string
		scopes scope.Scopes
	}{
		{"unrestricted", scope.Scopes{}},
		{"restricted", scope.Scopes{
			Method: []string{"apikey.info", "dns.*", "server.*"},
			Name:   []string{"web1", "web2", "web3", "web4", "web5", "web6", "web7"},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := scope.Check(bc.scopes, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
