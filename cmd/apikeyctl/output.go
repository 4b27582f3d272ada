package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"
)

// clean makes text from the server safe to print to a terminal: every
// control character (C0, DEL, C1) and every bidi control (U+202A..U+202E,
// U+2066..U+2069) becomes a visible escape such as \u001b, so that a
// stored comment or an error message cannot move the cursor, set the
// clipboard (OSC 52) or reorder what the admin reads. \n, \t and \r
// become \n, \t and \r.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// field is one member of a JSON object, in the order of the reply.
type field struct {
	name  string
	value json.RawMessage
}

// objectFields reads a JSON object's members in their order.
func objectFields(raw json.RawMessage) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{name, v})
	}
	return out, nil
}

// ordered puts the fields named in order first, then the rest as they came.
func ordered(fs []field, order []string) []field {
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i
	}
	out := append([]field(nil), fs...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, iok := rank[out[i].name]
		rj, jok := rank[out[j].name]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return false
	})
	return out
}

// text renders one JSON value for a table cell.
func text(name string, v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return clean(s)
		}
	case '{':
		if name == "scopes" {
			return scopesText(v)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return clean(buf.String())
	}
	return clean(string(v))
}

// scopesText renders scopes as "method=a,b name=web1", or "unrestricted".
func scopesText(v json.RawMessage) string {
	fs, err := objectFields(v)
	if err != nil {
		return clean(string(v))
	}
	var parts []string
	for _, f := range fs {
		var vals []string
		if json.Unmarshal(f.value, &vals) != nil {
			parts = append(parts, clean(f.name)+"="+text("", f.value))
			continue
		}
		if len(vals) > 0 {
			parts = append(parts, clean(f.name)+"="+clean(strings.Join(vals, ",")))
		}
	}
	if len(parts) == 0 {
		return "unrestricted"
	}
	return strings.Join(parts, " ")
}

// printObject prints a JSON object as a two-column table: one line per
// member, those in order first.
func printObject(w io.Writer, raw json.RawMessage, order []string, skip ...string) error {
	fs, err := objectFields(raw)
	if err != nil {
		return printValue(w, raw)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range ordered(fs, order) {
		if slices.Contains(skip, f.name) {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", clean(f.name), text(f.name, f.value))
	}
	return tw.Flush()
}

// printRows prints a JSON array of objects as a table with the given
// columns (nil: every member any row has, in order of appearance).
func printRows(w io.Writer, raw json.RawMessage, columns []string) error {
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return printValue(w, raw)
	}
	parsed := make([]map[string]json.RawMessage, 0, len(rows))
	var seen []string
	have := map[string]bool{}
	for _, r := range rows {
		fs, err := objectFields(r)
		if err != nil {
			return printValue(w, raw)
		}
		m := map[string]json.RawMessage{}
		for _, f := range fs {
			m[f.name] = f.value
			if !have[f.name] {
				have[f.name] = true
				seen = append(seen, f.name)
			}
		}
		parsed = append(parsed, m)
	}
	if columns == nil {
		columns = seen
	}
	if len(columns) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	heads := make([]string, len(columns))
	for i, c := range columns {
		heads[i] = clean(strings.ToUpper(c))
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, m := range parsed {
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i] = text(c, m[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printValue prints any result for people: an object as a two-column
// table, an array of objects as a table, anything else as JSON.
func printValue(w io.Writer, raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '{' {
		if fs, err := objectFields(t); err == nil {
			if len(fs) == 0 {
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, f := range fs {
				fmt.Fprintf(tw, "%s\t%s\n", clean(f.name), text(f.name, f.value))
			}
			return tw.Flush()
		}
	}
	if len(t) > 0 && t[0] == '[' {
		var rows []json.RawMessage
		if json.Unmarshal(t, &rows) == nil {
			objects := true
			for _, r := range rows {
				r = bytes.TrimSpace(r)
				if len(r) == 0 || r[0] != '{' {
					objects = false
				}
			}
			if objects && len(rows) > 0 {
				return printRows(w, t, nil)
			}
		}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, t, "", "  "); err != nil {
		_, err = fmt.Fprintf(w, "%s\n", clean(string(t)))
		return err
	}
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	_, err := fmt.Fprintf(w, "%s\n", strings.Join(lines, "\n"))
	return err
}
