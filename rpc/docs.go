package rpc

import (
	"fmt"
	"strings"
)

// MethodIndex writes the method table as the Markdown table that
// docs/api.md carries between its method-index markers; `make docs`
// rewrites it there, and a test fails when the two differ, so the docs
// cannot drift from the code.
func MethodIndex(methods []Method) string {
	var b strings.Builder
	b.WriteString("| method | params (`?` optional) | access | key | summary |\n|---|---|---|---|---|\n")
	for _, m := range methods {
		params := make([]string, len(m.Params))
		for i, p := range m.Params {
			params[i] = p.Name
			if !p.Required {
				params[i] += "?"
			}
		}
		key := "yes"
		switch {
		case m.Open:
			key = "none"
		case m.OperatorOnly && m.AccountKeysOnly:
			key = "operator, unheld"
		case m.OperatorOnly:
			key = "operator"
		case m.AccountKeysOnly:
			key = "unheld"
		case m.AnyKey:
			key = "any"
		}
		access := m.Access
		if m.HeldAccess != "" {
			access += " (" + m.HeldAccess + " for a held key)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", m.Name, strings.Join(params, ", "), access, key, m.Summary)
	}
	return b.String()
}
