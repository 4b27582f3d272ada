// Command apikeyctl is a command-line client of apikeyd, for people and
// scripts: it calls the server's JSON-RPC 2.0 API over HTTP. It holds no
// server or storage code, so it can be shipped alone to machines that only
// call the API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/cmd/apikeyctl/internal/client"
	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Exit codes, by class of error. Scripts branch on them; docs/cli.md and
// the root command's help list them.
const (
	exitOK          = 0
	exitAPI         = 1 // any other error reply, or a local failure
	exitUsage       = 2 // bad command line
	exitAuth        = 3 // -32001: missing or invalid key, failed login
	exitDenied      = 4 // -32003: scope, escalation, operator-only, held key
	exitNotFound    = 5 // -32004, or an error_id ending in _not_found
	exitParams      = 6 // -32602: invalid params
	exitLimited     = 7 // -32029: rate limit, quota, login throttling
	exitUnreachable = 8 // no JSON-RPC reply: connection, timeout, not apikeyd
)

const exitCodesHelp = `Exit codes:
  0  success
  1  any other error reply of the server, or a local failure
  2  bad usage (unknown command or flag, missing argument, malformed value)
  3  authentication failed (-32001: no key, invalid key, failed login)
  4  denied (-32003: scope_denied, escalation_denied, operator_only, held_key)
  5  not found (-32004, method_not_found, any *_not_found error id)
  6  invalid params (-32602)
  7  rate or quota limited (-32029: rate_limited, quota_exhausted, login_locked, busy)
  8  the server cannot be reached or gave no JSON-RPC reply`

// defaultURL is where make run serves.
const defaultURL = "http://127.0.0.1:8080"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// localError is a failure on this side that is not the command line's
// fault (reading stdin, say): exit code 1.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }

// app is one run of apikeyctl: its environment, streams and global flags.
type app struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	url     string
	key     string // from --key; empty means APIKEYD_KEY
	json    bool
	timeout time.Duration

	insecureHTTP bool // --insecure-http
}

// run executes apikeyctl with args and returns its exit code.
func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	// The message may carry the server's words: show its control
	// characters as escapes, never raw to the terminal.
	fmt.Fprintf(stderr, "apikeyctl: %s\n", clean(err.Error()))
	var rpcErr *client.Error
	if errors.As(err, &rpcErr) {
		if f := rpcErr.Field(); f != "" {
			fmt.Fprintf(stderr, "apikeyctl: the parameter at fault: %s\n", clean(f))
		}
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'apikeyctl --help' or 'apikeyctl COMMAND --help' for usage.")
	}
	return code
}

// exitCode maps an error to the exit code of its class.
func exitCode(err error) int {
	var rpcErr *client.Error
	var tErr *client.TransportError
	var lErr localError
	switch {
	case errors.As(err, &rpcErr):
		return apiExitCode(rpcErr)
	case errors.As(err, &tErr):
		return exitUnreachable
	case errors.As(err, &lErr):
		return exitAPI
	default:
		// cobra's own errors (unknown command or flag, wrong number of
		// arguments) and ours from checking the command line.
		return exitUsage
	}
}

func apiExitCode(e *client.Error) int {
	id := e.ErrorID()
	switch {
	case e.Code == -32001:
		return exitAuth
	case e.Code == -32003:
		return exitDenied
	case e.Code == -32004 || e.Code == -32601 || strings.HasSuffix(id, "_not_found"):
		return exitNotFound
	case e.Code == -32602:
		return exitParams
	case e.Code == -32029:
		return exitLimited
	default:
		return exitAPI
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "apikeyctl",
		Short: "Manage keys, accounts, users and service accounts of an apikeyd server",
		Long: `apikeyctl calls an apikeyd server's JSON-RPC 2.0 API over HTTP.

The server's base URL comes from APIKEYD_URL (default ` + defaultURL + `;
calls go to $APIKEYD_URL/rpc) and the API key from APIKEYD_KEY, sent as
"Authorization: Bearer". --url and --key override them, but a key given
with --key is visible to other users of the machine in ps and in shell
history: prefer the environment. apikeyctl never prints the key it sends;
the only secret it ever prints is the new key of a create, rotate or login
reply, once.

Output is a table for people; --json prints the API's result as it came,
for scripts. Errors go to stderr with the API's message and error id.

` + exitCodesHelp,
		Example: `  export APIKEYD_URL=http://127.0.0.1:8080
  read -rs APIKEYD_KEY && export APIKEYD_KEY
  apikeyctl key create --method 'server.*' --name-scope web1 --comment 'panel key'
  apikeyctl key list --json
  apikeyctl call apikey.list size=2 sort_by=desc:created`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Every command needs a sub-command or is one; a bare word is usage.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("a command is required")
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "base URL of the server (default $APIKEYD_URL, else "+defaultURL+")")
	pf.StringVar(&a.key, "key", "", "API key (default $APIKEYD_KEY; prefer it: a flag is visible in ps)")
	pf.BoolVar(&a.json, "json", false, "print the API's result as JSON, for scripts")
	pf.DurationVar(&a.timeout, "timeout", 60*time.Second, "give up on a call after this long")
	pf.BoolVar(&a.insecureHTTP, "insecure-http", false, "allow an http:// URL to a host that is not loopback: the key crosses the network in clear (default $APIKEYD_INSECURE_HTTP)")

	root.AddCommand(a.keyCommand(), a.accountCommand(), a.userCommand(),
		a.serviceAccountCommand(), a.auditCommand(), a.callCommand())
	return root
}

// client builds the API client from flags and environment.
func (a *app) client() (*client.Client, error) {
	base := a.url
	if base == "" {
		base = a.getenv("APIKEYD_URL")
	}
	if base == "" {
		base = defaultURL
	}
	key := a.key
	if key == "" {
		key = a.getenv("APIKEYD_KEY")
	}
	insecure := a.insecureHTTP
	if v := strings.TrimSpace(a.getenv("APIKEYD_INSECURE_HTTP")); v != "" && !insecure {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usagef("APIKEYD_INSECURE_HTTP=%q is not a boolean (1, true, 0, false); it stands for --insecure-http", v)
		}
		insecure = b
	}
	c, err := client.New(base, strings.TrimSpace(key), &http.Client{Timeout: a.timeout}, insecure)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// hasKey says whether a key is configured.
func (a *app) hasKey() bool {
	return strings.TrimSpace(a.key) != "" || strings.TrimSpace(a.getenv("APIKEYD_KEY")) != ""
}

// call makes one API call.
func (a *app) call(cmd *cobra.Command, method string, params any) (json.RawMessage, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return c.Call(ctx, method, params)
}

// callAndPrint makes one API call and prints its result with show, or as
// JSON with --json.
func (a *app) callAndPrint(cmd *cobra.Command, method string, params any, show func(json.RawMessage) error) error {
	res, err := a.call(cmd, method, params)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(res)
	}
	return show(res)
}

func (a *app) printJSON(res json.RawMessage) error {
	_, err := fmt.Fprintf(a.stdout, "%s\n", res)
	return err
}
