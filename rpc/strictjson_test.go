package rpc

import (
	"strings"
	"testing"
)

// TestStrictUnmarshal_Rules: what the strict decoder refuses in nested
// params, and the field it names.
func TestStrictUnmarshal_Rules(t *testing.T) {
	type limit struct {
		Limit    int64 `json:"limit"`
		Interval int64 `json:"interval_seconds"`
	}
	for _, tc := range []struct {
		name, in string
		into     any
		wantMsg  string // "" for success
	}{
		{"OK", `{"limit":5,"interval_seconds":60}`, new(limit), ""},
		{"CaseVariant", `{"limit":5,"LIMIT":500}`, new(limit), `rate_limit.LIMIT: no such member`},
		{"Duplicate", `{"limit":5,"limit":500}`, new(limit), `twice`},
		{"EscapedDuplicate", `{"limit":5,"\u006cimit":500}`, new(limit), `twice`},
		{"MapDuplicate", `{"method":["a"],"method":["b"]}`, new(map[string][]string), `twice`},
		{"DeepDuplicate", `[{"a":1},{"b":1,"b":2}]`, new([]map[string]int), `twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictUnmarshal([]byte(tc.in), tc.into)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := strictParamError("rate_limit", err)
			if e == nil || e.Code != CodeInvalidParams || e.Field != "rate_limit" || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("strictParamError(%v) = %+v, want invalid params naming rate_limit and %q", err, e, tc.wantMsg)
			}
		})
	}
}
