package scope_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheck walks the scope matrix: method scope × name scope × call.
func TestCheck(t *testing.T) {
	methodScopes := map[string][]string{
		"none":     nil,
		"exact":    {"server.reboot"},
		"wildcard": {"server.*"},
		"several":  {"dns.list", "server.reboot"},
		"apikey":   {"apikey.*"},
	}
	nameScopes := map[string][]string{
		"none": nil,
		"web1": {"web1"},
		"both": {"web1", "web2"},
	}
	reboot := func(name string) scope.Call {
		return scope.Call{Method: "server.reboot", TakesName: true, Name: name, HasName: true}
	}
	calls := map[string]scope.Call{
		"reboot web1":     reboot("web1"),
		"reboot web2":     reboot("web2"),
		"reboot web3":     reboot("web3"),
		"reboot no name":  {Method: "server.reboot", TakesName: true},
		"server.list":     {Method: "server.list"},
		"apikey.create":   {Method: "apikey.create"},
		"sibling ns":      {Method: "servers.reboot", TakesName: true, Name: "web1", HasName: true},
		"nested":          {Method: "server.disk.resize", TakesName: true, Name: "web1", HasName: true},
		"dns.list":        {Method: "dns.list"},
		"prefix no dot":   {Method: "serverreboot"},
		"namespace alone": {Method: "server"},
	}
	// allowed[method scope][name scope] lists the calls allowed; every
	// other call must be denied.
	allowed := map[string]map[string][]string{
		"none": {
			"none": keys(calls),
			"web1": {"reboot web1", "sibling ns", "nested"},
			"both": {"reboot web1", "reboot web2", "sibling ns", "nested"},
		},
		"exact": {
			"none": {"reboot web1", "reboot web2", "reboot web3", "reboot no name"},
			"web1": {"reboot web1"},
			"both": {"reboot web1", "reboot web2"},
		},
		"wildcard": {
			"none": {"reboot web1", "reboot web2", "reboot web3", "reboot no name", "server.list", "nested"},
			"web1": {"reboot web1", "nested"},
			"both": {"reboot web1", "reboot web2", "nested"},
		},
		"several": {
			"none": {"reboot web1", "reboot web2", "reboot web3", "reboot no name", "dns.list"},
			"web1": {"reboot web1"},
			"both": {"reboot web1", "reboot web2"},
		},
		"apikey": {
			"none": {"apikey.create"},
			"web1": nil,
			"both": nil,
		},
	}
	for mName, mVals := range methodScopes {
		for nName, nVals := range nameScopes {
			s := scope.Scopes{Method: mVals, Name: nVals}
			for cName, call := range calls {
				want := contains(allowed[mName][nName], cName)
				t.Run(fmt.Sprintf("method=%s/name=%s/%s", mName, nName, cName), func(t *testing.T) {
					err := scope.Check(s, call)
					if want {
						assert.NoError(t, err)
						return
					}
					var d *scope.Denial
					require.ErrorAs(t, err, &d)
					assert.NotEmpty(t, d.Reason)
				})
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestMatchMethod(t *testing.T) {
	for _, tt := range []struct {
		pattern, method string
		want            bool
	}{
		{"server.reboot", "server.reboot", true},
		{"server.reboot", "server.rebootx", false},
		{"server.*", "server.reboot", true},
		{"server.*", "server.disk.resize", true},
		{"server.*", "server", false},
		{"server.*", "server.", false},
		{"server.*", "servers.reboot", false},
		{"server.disk.*", "server.disk.resize", true},
		{"server.disk.*", "server.reboot", false},
	} {
		assert.Equal(t, tt.want, scope.MatchMethod(tt.pattern, tt.method), "%s vs %s", tt.pattern, tt.method)
	}
}

// TestCovers is the no-escalation test: outer covers inner when every call
// inner allows, outer allows too.
func TestCovers(t *testing.T) {
	S := func(method, name []string) scope.Scopes { return scope.Scopes{Method: method, Name: name} }
	l := func(v ...string) []string { return v }
	for _, tt := range []struct {
		name         string
		outer, inner scope.Scopes
		want         bool
	}{
		{"unrestricted covers unrestricted", S(nil, nil), S(nil, nil), true},
		{"unrestricted covers anything", S(nil, nil), S(l("a.*"), l("x")), true},
		{"restricted method never covers unrestricted method", S(l("a.*"), nil), S(nil, nil), false},
		{"restricted name never covers unrestricted name", S(nil, l("x")), S(l("a.b"), nil), false},
		{"exact covers exact", S(l("a.b"), nil), S(l("a.b"), nil), true},
		{"exact covers fewer", S(l("a.b", "a.c"), nil), S(l("a.c"), nil), true},
		{"exact does not cover more", S(l("a.b"), nil), S(l("a.b", "a.c"), nil), false},
		{"exact does not cover wildcard", S(l("a.b"), nil), S(l("a.*"), nil), false},
		{"wildcard covers exact", S(l("a.*"), nil), S(l("a.b"), nil), true},
		{"wildcard covers nested wildcard", S(l("a.*"), nil), S(l("a.b.*"), nil), true},
		{"wildcard covers itself", S(l("a.*"), nil), S(l("a.*"), nil), true},
		{"wildcard does not cover sibling", S(l("a.*"), nil), S(l("ab.c"), nil), false},
		{"wildcard does not cover bare namespace", S(l("a.*"), nil), S(l("a"), nil), false},
		{"nested wildcard does not cover parent", S(l("a.b.*"), nil), S(l("a.*"), nil), false},
		{"name exact", S(nil, l("x", "y")), S(nil, l("y")), true},
		{"name beyond", S(nil, l("x")), S(nil, l("x", "y")), false},
		{"both types", S(l("a.*"), l("x")), S(l("a.b"), l("x")), true},
		{"both types, name unrestricted", S(l("a.*"), l("x")), S(l("a.b"), nil), false},
		{"outer unrestricted in name", S(l("a.*"), nil), S(l("a.b"), l("anything")), true},
		{"removing the last value widens", S(l("a.b"), nil), S(nil, nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scope.Covers(tt.outer, tt.inner))
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		got, err := scope.Normalize("scopes", scope.Scopes{
			Method: []string{"server.reboot", "dns.*", "server.reboot"},
			Name:   []string{"web2", "web1", "web2", strings.Repeat("é", 50)},
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"dns.*", "server.reboot"}, got.Method)
		assert.Equal(t, []string{"web1", "web2", strings.Repeat("é", 50)}, got.Name)
		empty, err := scope.Normalize("scopes", scope.Scopes{Method: []string{}})
		require.NoError(t, err)
		assert.Nil(t, empty.Method, "an empty list is no restriction")
		assert.True(t, empty.IsUnrestricted())
	})
	for _, tt := range []struct {
		name  string
		in    scope.Scopes
		field string
	}{
		{"ErrEmptyValue", scope.Scopes{Name: []string{"a", ""}}, "scopes.name[1]"},
		{"ErrValueTooLong", scope.Scopes{Name: []string{strings.Repeat("n", 51)}}, "scopes.name[0]"},
		{"ErrValueTooManyRunes", scope.Scopes{Name: []string{strings.Repeat("é", 51)}}, "scopes.name[0]"},
		{"ErrControlCharacter", scope.Scopes{Name: []string{"a\x00b"}}, "scopes.name[0]"},
		{"ErrInvalidUTF8", scope.Scopes{Name: []string{"a\xffb"}}, "scopes.name[0]"},
		{"ErrTooManyValues", scope.Scopes{Name: make([]string, scope.MaxValues+1)}, "scopes.name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scope.Normalize("scopes", tt.in)
			var se *scope.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.field, se.Field)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
	for _, bad := range []string{"Server.reboot", "server.", ".x", "server.**", "*", "server.*.x", "a b", "server", "a..b", "ü.x", "server.re-boot"} {
		t.Run("ErrMethodPattern/"+bad, func(t *testing.T) {
			_, err := scope.Normalize("scopes", scope.Scopes{Method: []string{"dns.list", bad}})
			var se *scope.Error
			require.ErrorAs(t, err, &se, "%q accepted", bad)
			assert.Equal(t, "scopes.method[1]", se.Field)
		})
	}
}

func TestFromMap(t *testing.T) {
	got, err := scope.FromMap("scopes", map[string][]string{"method": {"b.c", "a.*"}, "name": {"x"}})
	require.NoError(t, err)
	assert.Equal(t, scope.Scopes{Method: []string{"a.*", "b.c"}, Name: []string{"x"}}, got)
	for _, typ := range []string{"Method", "NAME", "Access", "IP", "cidr", ""} {
		_, err := scope.FromMap("scopes", map[string][]string{"method": {"a.b"}, typ: {"x"}})
		var se *scope.Error
		require.ErrorAs(t, err, &se, "type %q accepted", typ)
		assert.Equal(t, "scopes."+typ, se.Field)
	}
}

func TestValidType(t *testing.T) {
	assert.NoError(t, scope.ValidType("scope_name", "method"))
	assert.NoError(t, scope.ValidType("scope_name", "name"))
	err := scope.ValidType("scope_name", "Method")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "scope_name")
	assert.Contains(t, err.Error(), "method, name")
}

// TestCheck_Access: the access type ANDs with method and name.
func TestCheck_Access(t *testing.T) {
	for _, class := range scope.AccessClasses {
		for _, keyClasses := range [][]string{nil, {class}, {scope.Read}, {scope.Read, scope.Update}, scope.AccessClasses} {
			s := scope.Scopes{Access: keyClasses}
			err := scope.Check(s, scope.Call{Method: "server.reboot", Access: class})
			want := len(keyClasses) == 0 || contains(keyClasses, class)
			assert.Equal(t, want, err == nil, "class %s, key %v", class, keyClasses)
		}
	}
	// All three types together.
	s := scope.Scopes{Method: []string{"server.*"}, Name: []string{"web1"}, Access: []string{scope.Update}}
	assert.NoError(t, scope.Check(s, scope.Call{Method: "server.reboot", TakesName: true, Name: "web1", HasName: true, Access: scope.Update}))
	assert.Error(t, scope.Check(s, scope.Call{Method: "server.delete", TakesName: true, Name: "web1", HasName: true, Access: scope.Delete}))
	assert.Error(t, scope.Check(s, scope.Call{Method: "server.reboot", TakesName: true, Name: "web2", HasName: true, Access: scope.Update}))
}

func TestAccessValues(t *testing.T) {
	got, err := scope.FromMap("scopes", map[string][]string{"access": {"UPDATE", "READ", "READ"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"READ", "UPDATE"}, got.Access)
	for _, bad := range []string{"read", "Read", "WRITE", "", "ALL"} {
		_, err := scope.FromMap("scopes", map[string][]string{"access": {bad}})
		var se *scope.Error
		require.ErrorAs(t, err, &se, "%q accepted", bad)
		assert.Equal(t, "scopes.access[0]", se.Field)
	}
	assert.Equal(t, []string{"CREATE"}, scope.AccessLevels["basic"])
	assert.Equal(t, []string{"READ", "CREATE", "UPDATE", "DELETE"}, scope.AccessLevels["apikey"])
	assert.Equal(t, scope.AccessClasses, scope.AccessLevels["full"])
	assert.True(t, scope.Covers(scope.Scopes{Access: []string{"READ", "UPDATE"}}, scope.Scopes{Access: []string{"READ"}}))
	assert.False(t, scope.Covers(scope.Scopes{Access: []string{"READ"}}, scope.Scopes{Access: []string{"READ", "MANAGE"}}))
	assert.False(t, scope.Covers(scope.Scopes{Access: []string{"READ"}}, scope.Scopes{}))
}

func TestIPScope(t *testing.T) {
	got, err := scope.FromMap("scopes", map[string][]string{"ip": {"10.1.2.3/8", "192.0.2.7", "2001:db8::1/32", "::ffff:198.51.100.0/120", "10.0.0.0/8"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32"}, got.IP, "masked, unmapped, sorted, unique")
	for _, bad := range []string{"10.0.0.0/33", "300.1.1.1", "localhost", "fe80::1%eth0", "::ffff:1.2.3.4/8", ""} {
		_, err := scope.FromMap("scopes", map[string][]string{"ip": {bad}})
		assert.Error(t, err, "%q accepted", bad)
	}
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for _, tt := range []struct {
		addr netip.Addr
		want bool
	}{
		{ip("10.9.8.7"), true},
		{ip("11.0.0.1"), false},
		{ip("192.0.2.7"), true},
		{ip("192.0.2.8"), false},
		{ip("::ffff:10.1.1.1"), true},
		{ip("2001:db8:ffff::1"), true},
		{ip("2001:db9::1"), false},
		{netip.Addr{}, false},
	} {
		err := scope.Check(got, scope.Call{Method: "server.list", ClientIP: tt.addr})
		assert.Equal(t, tt.want, err == nil, "%s", tt.addr)
	}
	assert.NoError(t, scope.Check(scope.Scopes{}, scope.Call{Method: "server.list"}), "no ip scope: any address, even none")

	outer := scope.Scopes{IP: []string{"10.0.0.0/8"}}
	assert.True(t, scope.Covers(outer, scope.Scopes{IP: []string{"10.1.0.0/16", "10.2.3.4/32"}}))
	assert.False(t, scope.Covers(outer, scope.Scopes{IP: []string{"0.0.0.0/0"}}))
	assert.False(t, scope.Covers(outer, scope.Scopes{IP: []string{"11.0.0.0/16"}}))
	assert.False(t, scope.Covers(outer, scope.Scopes{}))
}
