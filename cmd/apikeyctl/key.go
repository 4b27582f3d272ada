package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// keyFields is the order of a key's fields in a table.
var keyFields = []string{"id", "name", "owner", "comment", "description", "active", "scopes", "created",
	"not_before", "expires_at", "last_rotated", "last_used_at", "use_count", "rate_limit", "quota", "key"}

// keyColumns are the columns of a key list.
var keyColumns = []string{"id", "name", "owner", "active", "created", "comment"}

const secretNote = "The secret in \"key\" is shown only this once: store it now."

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, list, change, rotate and delete API keys (apikey.*)",
		Long: `Commands for the API keys of the calling key's account (apikey.* methods).

Wherever a command takes ID, it takes the key's public id, its name, or
<owner>/<name> (user:alice@acme/deploy, sa:acme/ci/deploy, account/deploy).`,
		Example: `  apikeyctl key create --name deploy --method 'server.*' --access READ --access UPDATE
  apikeyctl key list --name startswith:ci- --sort-by desc:created --size 10
  apikeyctl key info deploy`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return usagef("key needs a sub-command") },
	}
	cmd.AddCommand(a.keyCreate(), a.keyList(), a.keyInfo(), a.keyUpdate(), a.keyRotate(), a.keyDelete(),
		a.keyScope("add-scope", "apikey.add_scope", "Add one value to one scope type of a key"),
		a.keyScope("delete-scope", "apikey.delete_scope", "Remove one value from one scope type of a key"))
	return cmd
}

// limitFlags are the rate-limit and quota flags of create and update.
type limitFlags struct {
	rate, interval             int
	quota                      int
	quotaRefill                string
	quotaRefillAmount          int
	rateSet, intervalSet       bool
	quotaSet, refillSet, amSet bool
}

func (l *limitFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&l.rate, "rate-limit", 0, "at most this many calls per --rate-interval (0 removes the rate limit on update)")
	fs.IntVar(&l.interval, "rate-interval", 0, "the rate limit's interval in seconds (1 to 86400)")
	fs.IntVar(&l.quota, "quota", 0, "a quota: this many calls left")
	fs.StringVar(&l.quotaRefill, "quota-refill", "", `refill the quota "daily" or "monthly"`)
	fs.IntVar(&l.quotaRefillAmount, "quota-refill-amount", 0, "calls left after each refill")
}

// into puts rate_limit and quota into params, as far as flags were given.
func (l *limitFlags) into(fs *pflag.FlagSet, p map[string]any) error {
	if fs.Changed("rate-limit") || fs.Changed("rate-interval") {
		if !fs.Changed("rate-limit") {
			return usagef("--rate-interval needs --rate-limit")
		}
		rl := map[string]any{"limit": l.rate}
		if fs.Changed("rate-interval") {
			rl["interval_seconds"] = l.interval
		}
		p["rate_limit"] = rl
	}
	if fs.Changed("quota") || fs.Changed("quota-refill") || fs.Changed("quota-refill-amount") {
		if !fs.Changed("quota") {
			return usagef("--quota-refill and --quota-refill-amount need --quota")
		}
		q := map[string]any{"remaining": l.quota}
		if fs.Changed("quota-refill") {
			q["refill"] = l.quotaRefill
		}
		if fs.Changed("quota-refill-amount") {
			q["refill_amount"] = l.quotaRefillAmount
		}
		p["quota"] = q
	}
	return nil
}

// putString puts a string flag into params when it was given.
func putString(fs *pflag.FlagSet, p map[string]any, flag, param string) {
	if fs.Changed(flag) {
		v, _ := fs.GetString(flag)
		p[param] = v
	}
}

// putBool puts a boolean flag into params when it was given.
func putBool(fs *pflag.FlagSet, p map[string]any, flag, param string) {
	if fs.Changed(flag) {
		v, _ := fs.GetBool(flag)
		p[param] = v
	}
}

// putInt puts an integer flag into params when it was given.
func putInt(fs *pflag.FlagSet, p map[string]any, flag, param string) {
	if fs.Changed(flag) {
		v, _ := fs.GetInt(flag)
		p[param] = v
	}
}

// putStrings puts a repeatable flag into params when it was given: one
// value as a string, several as a list.
func putStrings(fs *pflag.FlagSet, p map[string]any, flag, param string) {
	if fs.Changed(flag) {
		v, _ := fs.GetStringArray(flag)
		if len(v) == 1 {
			p[param] = v[0]
		} else {
			p[param] = v
		}
	}
}

func (a *app) keyCreate() *cobra.Command {
	var scopesJSON string
	var methods, names, access, ips []string
	var limits limitFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a key, at most as wide as the calling key (apikey.create)",
		Long: `Create a key in the calling key's account. Its secret is printed once, in
"key": store it then, it cannot be shown again.

Scopes restrict the key: --method, --name-scope, --access and --ip each add
one value and may be repeated, or --scopes gives them all as JSON. Types
AND, values within a type OR; no scopes at all means an unrestricted key,
which only an unrestricted key may create. --name is the key's own name,
not a scope.`,
		Example: `  apikeyctl key create --method 'server.*' --name-scope web1 --comment 'panel key for web1'
  apikeyctl key create --name ci-deploy --access READ --access UPDATE --ip 192.0.2.0/24 \
      --expires-at 2027-01-01T00:00:00Z --rate-limit 100 --rate-interval 60
  apikeyctl key create --scopes '{"method":["server.list"]}' --service-account ci --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			p := map[string]any{}
			byFlag := fs.Changed("method") || fs.Changed("name-scope") || fs.Changed("access") || fs.Changed("ip")
			switch {
			case fs.Changed("scopes") && byFlag:
				return usagef("give scopes either with --scopes or with --method, --name-scope, --access and --ip, not both")
			case fs.Changed("scopes"):
				var s json.RawMessage
				if err := json.Unmarshal([]byte(scopesJSON), &s); err != nil || !strings.HasPrefix(strings.TrimSpace(scopesJSON), "{") {
					return usagef(`--scopes must be a JSON object, such as '{"method":["server.list"]}'`)
				}
				p["scopes"] = s
			case byFlag:
				s := map[string][]string{}
				for t, vs := range map[string][]string{"method": methods, "name": names, "access": access, "ip": ips} {
					if len(vs) > 0 {
						s[t] = vs
					}
				}
				p["scopes"] = s
			}
			for _, f := range [][2]string{{"comment", "comment"}, {"name", "name"}, {"description", "description"},
				{"service-account", "service_account"}, {"not-before", "not_before"}, {"expires-at", "expires_at"}} {
				putString(fs, p, f[0], f[1])
			}
			if err := limits.into(fs, p); err != nil {
				return err
			}
			return a.callAndPrint(cmd, "apikey.create", p, func(res json.RawMessage) error {
				if err := printObject(a.stdout, res, keyFields); err != nil {
					return err
				}
				fmt.Fprintln(a.stderr, secretNote)
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&scopesJSON, "scopes", "", `all scopes as a JSON object, such as '{"method":["server.list"],"access":["READ"]}'`)
	fs.StringArrayVar(&methods, "method", nil, "allow this method or namespace wildcard (server.*); repeatable")
	fs.StringArrayVar(&names, "name-scope", nil, "allow calls with this name parameter only; repeatable")
	fs.StringArrayVar(&access, "access", nil, "allow this access class: READ, CREATE, UPDATE, DELETE or MANAGE; repeatable")
	fs.StringArrayVar(&ips, "ip", nil, "allow calls from this address or CIDR range; repeatable")
	fs.String("name", "", "the key's name, unique in its account and holder")
	fs.String("comment", "", "a comment (at most 255 characters)")
	fs.String("description", "", "a description")
	fs.String("service-account", "", "a service account of this account to hold the key")
	fs.String("not-before", "", "the key works from this RFC 3339 time on")
	fs.String("expires-at", "", "the key stops working at this RFC 3339 time")
	limits.add(fs)
	return cmd
}

func (a *app) keyList() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys of this account, filtered, sorted and paged (apikey.list)",
		Long: `List keys. With no flags, every key of the account, oldest first. With any
filter, sort or paging flag, one page (--size keys, 20 by default) and, when
more follow, the --cursor of the next one; --all follows the cursors to the
end. Time filters take gt:, gte:, lt:, lte: or eq: and an RFC 3339 time,
and may be repeated (all must hold).`,
		Example: `  apikeyctl key list
  apikeyctl key list --name startswith:ci- --active --sort-by desc:created --size 2
  apikeyctl key list --created gte:2026-11-01T00:00:00Z --all --json
  apikeyctl key list --owner sa:acme/ci --hydrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			p := map[string]any{}
			putString(fs, p, "name", "name")
			putBool(fs, p, "active", "active")
			putString(fs, p, "owner", "owner")
			for _, f := range []string{"created", "last-used-at", "last-rotated", "expires-at"} {
				putStrings(fs, p, f, strings.ReplaceAll(f, "-", "_"))
			}
			putString(fs, p, "sort-by", "sort_by")
			putInt(fs, p, "page", "page")
			putInt(fs, p, "size", "size")
			putString(fs, p, "cursor", "cursor")
			putBool(fs, p, "hydrate", "hydrate")
			columns := keyColumns
			if v, _ := fs.GetBool("hydrate"); v {
				columns = []string{"id", "name", "owner", "active", "scopes", "created", "expires_at", "last_used_at", "comment"}
			}
			if !all {
				if len(p) == 0 {
					return a.callAndPrint(cmd, "apikey.list", nil, func(res json.RawMessage) error {
						return printRows(a.stdout, res, columns)
					})
				}
				return a.callAndPrint(cmd, "apikey.list", p, func(res json.RawMessage) error {
					return a.printPage(res, columns)
				})
			}
			if fs.Changed("page") {
				return usagef("--all follows cursors and cannot start at a --page")
			}
			if !fs.Changed("size") {
				p["size"] = 1000
			}
			var items []json.RawMessage
			for {
				res, err := a.call(cmd, "apikey.list", p)
				if err != nil {
					return err
				}
				var pg struct {
					Items      []json.RawMessage `json:"items"`
					NextCursor string            `json:"next_cursor"`
				}
				if err := json.Unmarshal(res, &pg); err != nil {
					return localError{fmt.Errorf("apikey.list answered with no page: %v", err)}
				}
				items = append(items, pg.Items...)
				if pg.NextCursor == "" {
					break
				}
				p["cursor"] = pg.NextCursor
			}
			if items == nil {
				items = []json.RawMessage{}
			}
			all, err := json.Marshal(items)
			if err != nil {
				return localError{err}
			}
			if a.json {
				return a.printJSON(all)
			}
			return printRows(a.stdout, all, columns)
		},
	}
	fs := cmd.Flags()
	fs.String("name", "", "a key name, or contains:, startswith: or endswith: and part of one")
	fs.Bool("active", false, "only active keys (--active=false: only inactive ones)")
	fs.String("owner", "", `only keys of this holder: "account", "user:alice@acme", "sa:acme/ci"`)
	fs.StringArray("created", nil, "a condition on the creation time, such as gte:2026-11-01T00:00:00Z; repeatable")
	fs.StringArray("last-used-at", nil, "a condition on the time of last use; repeatable")
	fs.StringArray("last-rotated", nil, "a condition on the time of last rotation; repeatable")
	fs.StringArray("expires-at", nil, "a condition on the expiry; repeatable")
	fs.String("sort-by", "", "created (default), name, last_used_at, last_rotated or expires_at, after asc: or desc:")
	fs.Int("page", 0, "page number, from 1 (not with --cursor)")
	fs.Int("size", 0, "keys per page, 1 to 10000 (default 20)")
	fs.String("cursor", "", "the next_cursor of an earlier page, with the same --sort-by")
	fs.Bool("hydrate", false, "list every field of each key, as key info shows it")
	fs.BoolVar(&all, "all", false, "follow next_cursor and list every matching key")
	return cmd
}

// printPage prints one page of apikey.list: the keys, then where it is.
func (a *app) printPage(res json.RawMessage, columns []string) error {
	var pg struct {
		Items      json.RawMessage `json:"items"`
		Total      int             `json:"total"`
		Page       int             `json:"page"`
		TotalPages int             `json:"total_pages"`
		NextCursor string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(res, &pg); err != nil || pg.Items == nil {
		return printValue(a.stdout, res)
	}
	if pg.Total == 0 {
		_, err := fmt.Fprintln(a.stdout, "no keys match")
		return err
	}
	if err := printRows(a.stdout, pg.Items, columns); err != nil {
		return err
	}
	where := fmt.Sprintf("%d matching", pg.Total)
	if pg.Page > 0 {
		where = fmt.Sprintf("page %d of %d, %s", pg.Page, pg.TotalPages, where)
	}
	fmt.Fprintln(a.stdout, where)
	if pg.NextCursor != "" {
		fmt.Fprintf(a.stdout, "next page: --cursor %s\n", clean(pg.NextCursor))
	}
	return nil
}

func (a *app) keyInfo() *cobra.Command {
	return &cobra.Command{
		Use:   "info ID",
		Short: "Describe a key (apikey.info)",
		Long:  "Describe a key: its scopes, validity, limits and use. Never its secret.",
		Example: `  apikeyctl key info deploy
  apikeyctl key info 01a206e5-740b-7604-8209-7c48d77d06bd --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.callAndPrint(cmd, "apikey.info", map[string]any{"id": args[0]}, func(res json.RawMessage) error {
				return printObject(a.stdout, res, keyFields)
			})
		},
	}
}

func (a *app) keyUpdate() *cobra.Command {
	var limits limitFlags
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a key's name, comment, description, active flag, validity or limits (apikey.update)",
		Long: `Change what the flags give and leave the rest. --active=false switches
the key off; --not-before "" and --expires-at "" clear those bounds;
--rate-limit 0 removes the rate limit and --remove-quota the quota.`,
		Example: `  apikeyctl key update deploy --comment 'deploys web1' --expires-at 2027-06-01T00:00:00Z
  apikeyctl key update deploy --active=false
  apikeyctl key update deploy --rate-limit 10 --rate-interval 60 --remove-quota`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			p := map[string]any{"id": args[0]}
			for _, f := range [][2]string{{"name", "name"}, {"comment", "comment"}, {"description", "description"},
				{"not-before", "not_before"}, {"expires-at", "expires_at"}} {
				putString(fs, p, f[0], f[1])
			}
			putBool(fs, p, "active", "active")
			putBool(fs, p, "remove-quota", "remove_quota")
			if err := limits.into(fs, p); err != nil {
				return err
			}
			if len(p) == 1 {
				return usagef("nothing to change: give at least one flag (see --help)")
			}
			return a.callAndPrint(cmd, "apikey.update", p, func(res json.RawMessage) error {
				return printObject(a.stdout, res, keyFields)
			})
		},
	}
	fs := cmd.Flags()
	fs.String("name", "", "a new name for the key")
	fs.String("comment", "", "a new comment")
	fs.String("description", "", "a new description")
	fs.Bool("active", true, "switch the key on (--active) or off (--active=false)")
	fs.String("not-before", "", `the key works from this RFC 3339 time on ("" clears it)`)
	fs.String("expires-at", "", `the key stops working at this RFC 3339 time ("" clears it)`)
	fs.Bool("remove-quota", false, "remove the key's quota")
	limits.add(fs)
	return cmd
}

func (a *app) keyRotate() *cobra.Command {
	var retain int
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Give a key a new secret (apikey.rotate)",
		Long: `Give the key a new secret, printed once in "key". The old secret keeps
working for --retain minutes (0 to 10080; default 0: it stops at once).`,
		Example: `  apikeyctl key rotate deploy --retain 60
  apikeyctl key rotate deploy --json | jq -r .key`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := map[string]any{"id": args[0]}
			if cmd.Flags().Changed("retain") {
				p["retain_period_minutes"] = retain
			}
			return a.callAndPrint(cmd, "apikey.rotate", p, func(res json.RawMessage) error {
				if err := printObject(a.stdout, res, keyFields); err != nil {
					return err
				}
				fmt.Fprintln(a.stderr, secretNote)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&retain, "retain", 0, "minutes the old secret keeps working (0 to 10080)")
	return cmd
}

func (a *app) keyDelete() *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a key; it stops working at once (apikey.delete)",
		Example: `  apikeyctl key delete deploy`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// ID may be the secret itself, which the server accepts as a
			// key ref: ask for the key's public id, delete by it and
			// print it, never the argument.
			id := args[0]
			info, err := a.call(cmd, "apikey.info", map[string]any{"id": args[0]})
			var known struct {
				ID string `json:"id"`
			}
			switch {
			case err == nil && json.Unmarshal(info, &known) == nil && known.ID != "":
				id = known.ID
			case err != nil && exitCode(err) != exitDenied:
				return err
			default:
				// A key that may delete but not read: delete by the
				// argument, and name no key.
				known.ID = ""
			}
			return a.callAndPrint(cmd, "apikey.delete", map[string]any{"id": id}, func(json.RawMessage) error {
				if known.ID == "" {
					_, err := fmt.Fprintln(a.stdout, "deleted the key")
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "deleted key %s\n", clean(known.ID))
				return err
			})
		},
	}
}

func (a *app) keyScope(use, method, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ID TYPE VALUE",
		Short: short + " (" + method + ")",
		Long: short + `. TYPE is method, name, access or ip.
Adding the first value of a type narrows the key; adding to a type that has
values widens it. Removing the last value of a type makes it unrestricted.`,
		Example: "  apikeyctl key " + use + " deploy name web2\n  apikeyctl key " + use + " deploy access UPDATE",
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := map[string]any{"id": args[0], "scope_name": args[1], "value": args[2]}
			return a.callAndPrint(cmd, method, p, func(res json.RawMessage) error {
				return printObject(a.stdout, res, keyFields)
			})
		},
	}
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s argument%s (%s), got %d", cmd.CommandPath(), strconv.Itoa(n), plural(n), strings.Join(strings.Fields(cmd.Use)[1:], " "), len(args))
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
