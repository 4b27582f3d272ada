package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// nameCommand is a command NAME that calls method with {"name": NAME} and
// the string and boolean flags that were given.
func (a *app) nameCommand(use, method, short, example string, show func(json.RawMessage) error, params func(*cobra.Command, map[string]any) error) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short + " (" + method + ")",
		Example: example,
		Args:    exactArgs(len(strings.Fields(use)) - 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := map[string]any{}
			if len(args) == 1 {
				p["name"] = args[0]
			}
			if params != nil {
				if err := params(cmd, p); err != nil {
					return err
				}
			}
			var send any = p
			if len(p) == 0 {
				send = nil
			}
			return a.callAndPrint(cmd, method, send, show)
		},
	}
}

func (a *app) showObject(order ...string) func(json.RawMessage) error {
	return func(res json.RawMessage) error { return printObject(a.stdout, res, order) }
}

func (a *app) showRows(columns ...string) func(json.RawMessage) error {
	return func(res json.RawMessage) error { return printRows(a.stdout, res, columns) }
}

func (a *app) showDone(what string) func(json.RawMessage) error {
	return func(json.RawMessage) error {
		_, err := fmt.Fprintln(a.stdout, what)
		return err
	}
}

func (a *app) accountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Manage accounts, the tenants (account.*; operator keys only)",
		Long: `Commands for accounts (account.* methods). They take a key of the operator
account, not one held by a user or service account.`,
		Example: `  apikeyctl account create acme --comment 'Acme Ltd'
  apikeyctl account list`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return usagef("account needs a sub-command") },
	}
	accountFields := []string{"name", "comment", "created", "keys"}
	comment := func(cmd *cobra.Command, p map[string]any) error {
		putString(cmd.Flags(), p, "comment", "comment")
		return nil
	}
	create := a.nameCommand("create NAME", "account.create", "Create an account and its first key",
		`  apikeyctl account create acme --comment 'Acme Ltd'
  apikeyctl account create acme --json | jq -r .first_key.key`,
		func(res json.RawMessage) error {
			// first_key is shown apart, below the account.
			if err := printObject(a.stdout, res, accountFields, "first_key"); err != nil {
				return err
			}
			var r struct {
				FirstKey json.RawMessage `json:"first_key"`
			}
			if json.Unmarshal(res, &r) == nil && r.FirstKey != nil {
				fmt.Fprintln(a.stdout)
				fmt.Fprintln(a.stdout, "first key:")
				if err := printObject(a.stdout, r.FirstKey, keyFields); err != nil {
					return err
				}
				fmt.Fprintln(a.stderr, secretNote)
			}
			return nil
		}, comment)
	create.Long = `Create an account and its first key, unrestricted within the account. The
first key's secret is printed once: hand it to the tenant.`
	create.Flags().String("comment", "", "a comment (at most 255 characters)")
	update := a.nameCommand("update NAME", "account.update", "Set an account's comment",
		`  apikeyctl account update acme --comment 'Acme Ltd, EU'`, a.showObject(accountFields...), comment)
	update.Flags().String("comment", "", "the new comment (absent: empty)")
	cmd.AddCommand(create,
		a.nameCommand("info NAME", "account.info", "Describe an account", `  apikeyctl account info acme`, a.showObject(accountFields...), nil),
		a.nameCommand("list", "account.list", "List every account", `  apikeyctl account list
  apikeyctl account list --json`, a.showRows(accountFields...), nil),
		update,
		a.nameCommand("delete NAME", "account.delete", "Delete an account and every key in it",
			`  apikeyctl account delete acme`, a.showDone("deleted"), nil),
	)
	return cmd
}

// password reads a password from the first line of stdin (--password-stdin)
// or from APIKEYD_PASSWORD; never from a flag, which ps would show.
func (a *app) password(cmd *cobra.Command) (string, error) {
	if fromStdin, _ := cmd.Flags().GetBool("password-stdin"); fromStdin {
		line, err := bufio.NewReader(a.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", localError{fmt.Errorf("reading the password from stdin: %v", err)}
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", usagef("--password-stdin: stdin held no password")
		}
		return line, nil
	}
	if pw := a.getenv("APIKEYD_PASSWORD"); pw != "" {
		return pw, nil
	}
	return "", usagef("give the password on stdin with --password-stdin, or in APIKEYD_PASSWORD")
}

func (a *app) withPassword(param string) func(*cobra.Command, map[string]any) error {
	return func(cmd *cobra.Command, p map[string]any) error {
		pw, err := a.password(cmd)
		if err != nil {
			return err
		}
		p[param] = pw
		return nil
	}
}

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users, who log in with a password to get keys (user.*)",
		Long: `Commands for the users of this account (user.* methods). NAME is the user's
name within the account; a user logs in as NAME@ACCOUNT. Passwords are read
from stdin (--password-stdin) or APIKEYD_PASSWORD, never from a flag.`,
		Example: `  printf '%s\n' "$PASSWORD" | apikeyctl user create alice --password-stdin
  apikeyctl user list
  printf '%s\n' "$PASSWORD" | apikeyctl user login alice@acme --access-level apikey --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return usagef("user needs a sub-command") },
	}
	userFields := []string{"name", "login", "created"}
	create := a.nameCommand("create NAME", "user.create", "Create a user in this account",
		`  printf '%s\n' "$PASSWORD" | apikeyctl user create alice --password-stdin`, a.showObject(userFields...), a.withPassword("password"))
	setPassword := a.nameCommand("set-password NAME", "user.set_password", "Set a user's password",
		`  APIKEYD_PASSWORD="$NEW" apikeyctl user set-password alice`, a.showDone("password set"), a.withPassword("password"))
	for _, c := range []*cobra.Command{create, setPassword} {
		c.Flags().Bool("password-stdin", false, "read the password from the first line of stdin")
	}

	login := &cobra.Command{
		Use:   "login USERNAME",
		Short: "Log in as a user and get a new key held by it (user.create_apikey)",
		Long: `Log in with a login name (NAME@ACCOUNT) and password, and get a new key held
by the user, printed once. Needs no key. --access-level is basic (CREATE),
apikey (READ, CREATE, UPDATE, DELETE) or full (all five).`,
		Example: `  printf '%s\n' "$PASSWORD" | apikeyctl user login alice@acme --access-level apikey --password-stdin`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("access-level") {
				return usagef("--access-level is required: basic, apikey or full")
			}
			pw, err := a.password(cmd)
			if err != nil {
				return err
			}
			p := map[string]any{"username": args[0], "password": pw}
			putString(fs, p, "access-level", "access_level")
			putString(fs, p, "comment", "comment")
			return a.callAndPrint(cmd, "user.create_apikey", p, func(res json.RawMessage) error {
				if err := printObject(a.stdout, res, keyFields); err != nil {
					return err
				}
				fmt.Fprintln(a.stderr, secretNote)
				return nil
			})
		},
	}
	login.Flags().String("access-level", "", "basic, apikey or full")
	login.Flags().String("comment", "", "a comment for the new key")
	login.Flags().Bool("password-stdin", false, "read the password from the first line of stdin")

	apikeys := &cobra.Command{
		Use:   "apikeys [USERNAME]",
		Short: "List the keys a user holds (user.apikeys)",
		Long: `List the keys a user holds. A key of the account itself names the user; a
user's own key may leave USERNAME out.`,
		Example: `  apikeyctl user apikeys alice`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p any
			if len(args) == 1 {
				p = map[string]any{"username": args[0]}
			}
			return a.callAndPrint(cmd, "user.apikeys", p, func(res json.RawMessage) error {
				return a.printKeyMap(res, "apikeys")
			})
		},
	}
	deleteAPIKey := &cobra.Command{
		Use:     "delete-apikey ID",
		Short:   "Delete a key a user holds (user.delete_apikey)",
		Example: `  apikeyctl user delete-apikey 01a206e5-740b-7604-8209-7c48d77d06bd`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.callAndPrint(cmd, "user.delete_apikey", map[string]any{"delete_key": args[0]}, func(res json.RawMessage) error {
				return a.printKeyMap(res, "deleted_keys")
			})
		},
	}
	cmd.AddCommand(create,
		a.nameCommand("list", "user.list", "List the users of this account", `  apikeyctl user list`, a.showRows(userFields...), nil),
		setPassword,
		a.nameCommand("delete NAME", "user.delete", "Delete a user and the keys it holds", `  apikeyctl user delete alice`, a.showDone("deleted"), nil),
		a.nameCommand("unlock NAME", "user.unlock", "Clear a user's login throttling", `  apikeyctl user unlock alice`, a.showObject(userFields...), nil),
		login, apikeys, deleteAPIKey,
	)
	return cmd
}

// printKeyMap prints filebin's {"<member>": {<id>: {...}}} as a table.
func (a *app) printKeyMap(res json.RawMessage, member string) error {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(res, &r); err != nil || r[member] == nil {
		return printValue(a.stdout, res)
	}
	fs, err := objectFields(r[member])
	if err != nil {
		return printValue(a.stdout, res)
	}
	rows := make([]json.RawMessage, 0, len(fs))
	for _, f := range fs {
		row, err := objectFields(f.value)
		if err != nil {
			return printValue(a.stdout, res)
		}
		m := map[string]json.RawMessage{"id": json.RawMessage(fmt.Sprintf("%q", f.name))}
		for _, x := range row {
			m[x.name] = x.value
		}
		b, _ := json.Marshal(m)
		rows = append(rows, b)
	}
	all, _ := json.Marshal(rows)
	return printRows(a.stdout, all, []string{"id", "access_level", "created", "comment"})
}

func (a *app) serviceAccountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service-account",
		Aliases: []string{"sa"},
		Short:   "Manage service accounts, non-human holders of keys (service_account.*)",
		Long: `Commands for the service accounts of this account (service_account.*
methods). Give a key to one with: apikeyctl key create --service-account NAME.`,
		Example: `  apikeyctl service-account create ci --description 'CI pipeline'
  apikeyctl service-account update ci --active=false`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return usagef("service-account needs a sub-command") },
	}
	saFields := []string{"name", "description", "active", "created", "keys"}
	flags := func(cmd *cobra.Command, p map[string]any) error {
		putString(cmd.Flags(), p, "description", "description")
		putBool(cmd.Flags(), p, "active", "active")
		return nil
	}
	create := a.nameCommand("create NAME", "service_account.create", "Create a service account",
		`  apikeyctl service-account create ci --description 'CI pipeline'`, a.showObject(saFields...), flags)
	update := a.nameCommand("update NAME", "service_account.update", "Change a service account's description or active flag",
		`  apikeyctl service-account update ci --active=false`, a.showObject(saFields...), flags)
	for _, c := range []*cobra.Command{create, update} {
		c.Flags().String("description", "", "a description")
		c.Flags().Bool("active", true, "switch it and its keys on (--active) or off (--active=false)")
	}
	cmd.AddCommand(create,
		a.nameCommand("info NAME", "service_account.info", "Describe a service account", `  apikeyctl service-account info ci`, a.showObject(saFields...), nil),
		a.nameCommand("list", "service_account.list", "List the service accounts of this account", `  apikeyctl service-account list`, a.showRows(saFields...), nil),
		update,
		a.nameCommand("delete NAME", "service_account.delete", "Delete a service account and the keys it holds",
			`  apikeyctl service-account delete ci`, a.showDone("deleted"), nil),
	)
	return cmd
}

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "audit",
		Short:   "Read the audit trail (audit.*)",
		Example: `  apikeyctl audit list --outcome invalid_key --limit 10`,
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return usagef("audit needs a sub-command") },
	}
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit records, oldest first (audit.list)",
		Long: `List audit records of this account (every account, for an operator key),
oldest first, one page of --limit records (100 by default). When more
follow, the --after of the next page is printed; --all follows to the end.`,
		Example: `  apikeyctl audit list --since 2026-11-23T00:00:00Z --method apikey.delete
  apikeyctl audit list --outcome invalid_key --all --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			p := map[string]any{}
			for _, f := range []string{"since", "until", "method", "outcome"} {
				putString(fs, p, f, f)
			}
			putInt(fs, p, "after", "after")
			putInt(fs, p, "limit", "limit")
			columns := []string{"seq", "time", "account", "actor", "source_ip", "method", "target", "outcome", "count"}
			var records []json.RawMessage
			for {
				var send any = p
				if len(p) == 0 {
					send = nil
				}
				res, err := a.call(cmd, "audit.list", send)
				if err != nil {
					return err
				}
				var pg struct {
					Records []json.RawMessage `json:"records"`
					Next    *int64            `json:"next"`
				}
				if err := json.Unmarshal(res, &pg); err != nil {
					return localError{fmt.Errorf("audit.list answered with no page: %v", err)}
				}
				if !all {
					if a.json {
						return a.printJSON(res)
					}
					if err := printRows(a.stdout, mustJSON(pg.Records), columns); err != nil {
						return err
					}
					if pg.Next != nil {
						fmt.Fprintf(a.stdout, "next page: --after %d\n", *pg.Next)
					}
					return nil
				}
				records = append(records, pg.Records...)
				if pg.Next == nil {
					break
				}
				p["after"] = *pg.Next
			}
			if a.json {
				return a.printJSON(mustJSON(records))
			}
			return printRows(a.stdout, mustJSON(records), columns)
		},
	}
	fs := list.Flags()
	fs.String("since", "", "records at or after this RFC 3339 time")
	fs.String("until", "", "records before this RFC 3339 time")
	fs.String("method", "", "records of this method only")
	fs.String("outcome", "", `records of this outcome only: "ok" or an error id`)
	fs.Int("after", 0, "the cursor: the next of the previous page")
	fs.Int("limit", 0, "records per page, 1 to 1000 (default 100)")
	fs.BoolVar(&all, "all", false, "follow the cursor and list every matching record")
	cmd.AddCommand(list)
	return cmd
}

// mustJSON encodes a list of raw values, never null.
func mustJSON(items []json.RawMessage) json.RawMessage {
	if items == nil {
		items = []json.RawMessage{}
	}
	b, err := json.Marshal(items)
	if err != nil {
		return json.RawMessage("[]")
	}
	return b
}
