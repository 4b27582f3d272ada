// Command apikeyd serves apikeyd's JSON-RPC API over HTTP from one bbolt
// file, or with --etcd from an etcd cluster that many apikeyd nodes share.
//
//	apikeyd serve [flags]   start the server (flags below; each has an APIKEYD_* twin)
//	apikeyd recover-operator [--db FILE | --etcd URLS]
//	                        give a stopped server's file, or etcd, a new operator key
//	apikeyd backup --url URL --out FILE
//	                        copy a running server's file (key in APIKEYD_KEY)
//	apikeyd restore --db FILE --from BACKUP
//	                        with the server stopped, put a checked backup in place
//	apikeyd check --db FILE check a stopped server's file
//	apikeyd migrate --from-db FILE --to-etcd URLS
//	apikeyd migrate --from-etcd URLS --to-db FILE
//	                        copy a store between a file and etcd, and verify it
//	apikeyd version         print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/console"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/rpc/h1"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/apikeyd/apikeyd/rpc/ws"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if code := exitStatus(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// exitStatus is the exit status for run's error: 0 for none and for help
// asked for with -h or --help, else 2 after printing the error.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "apikeyd:", err)
	return 2
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing sub-command")
	}
	switch args[0] {
	case "serve":
		m := NewMain(stderr)
		if err := m.ParseFlags(args[1:], getenv); err != nil {
			return err
		}
		if err := m.Run(); err != nil {
			return err
		}
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return m.Close(shutdown)
	case "recover-operator":
		return recoverOperator(args[1:], getenv, stdout, stderr)
	case "backup":
		return backup(ctx, args[1:], getenv, stderr)
	case "restore":
		return restore(args[1:], getenv, stderr)
	case "check":
		return check(args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "apikeyd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown sub-command %q", args[0])
}

const usage = `usage: apikeyd <command> [flags]

commands:
  serve             serve JSON-RPC 2.0 on POST /rpc (apikeyd serve -h lists flags)
  recover-operator  with the server stopped, add a new operator key to its data
                    file (or, with --etcd, to the store in etcd) and print it
                    once (apikeyd recover-operator -h)
  backup            copy a running server's data file (GET /backup) to a file
  restore           with the server stopped, replace its data file by a checked backup
  check             check a stopped server's data file; exit 0 when clean
  migrate           copy a store between a data file and etcd, and verify the
                    copy (apikeyd migrate -h)
  version           print the version
`

// serveEnvOnly names the variables serve reads that have no flag, since ps
// would show a flag's value.
const serveEnvOnly = `
environment only (no flag, so that ps does not show them):
  APIKEYD_ADMIN_KEY       the operator key to create on a data file with no
                          keys (32 lowercase hex digits); unset, a random one
                          is printed once on stderr; ignored once keys exist
  APIKEYD_UPSTREAM_TOKEN  gateway mode: sent to the upstream as a Bearer token
`

// Config is everything serve reads from flags and the environment.
type Config struct {
	Addr              string
	DB                string
	LogLevel          string
	LogFormat         string
	AdminKey          string // from APIKEYD_ADMIN_KEY only: never a flag, which ps would show
	MaxBodyBytes      int64
	MaxBatch          int
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	LockTimeout       time.Duration
	LogFlush          time.Duration // 0: write each log line at once
	DebugAddr         string        // where to serve /debug/pprof; empty: nowhere
	Metrics           bool          // serve Prometheus metrics at GET /metrics
	MetricsAddr       string        // where to serve /metrics; empty: on Addr
	TrustedProxies    string        // comma-separated CIDR ranges whose X-Forwarded-For is believed
	UsageFlush        time.Duration // how often key usage is written; 0: not tracked
	AuditRetention    time.Duration // how long audit records are kept; 0: forever
	// FastPath serves plain POST /rpc requests off the connection, without
	// net/http's per-request machinery (h1.ServeConn).
	FastPath bool
	// Gateway mode: forward catalogued methods to this JSON-RPC endpoint.
	Upstream        string
	UpstreamCatalog string        // OpenRPC file, used when the upstream's rpc.discover does not answer
	UpstreamTimeout time.Duration // per forwarded call
	UpstreamToken   string        // from APIKEYD_UPSTREAM_TOKEN only; sent upstream as a Bearer token
	// Etcd, when set, keeps the data in etcd instead of the DB file: the
	// comma-separated client URLs of the cluster's members. Every node
	// given the same Etcd and EtcdPrefix serves one store
	// (docs/scale-out.md).
	Etcd       string
	EtcdPrefix string // where the deployment's data lives in etcd
	// EtcdCA, EtcdCert and EtcdKey are PEM files for TLS to etcd: the CA
	// that signed the members' certificates, and this node's client
	// certificate and its key.
	EtcdCA, EtcdCert, EtcdKey string
	// MaxStaleness is how long this node's copy of the etcd data may go
	// unconfirmed before it refuses to authenticate and /readyz fails.
	MaxStaleness time.Duration
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		DB:                "apikeyd.db",
		LogLevel:          "info",
		LogFormat:         "json",
		MaxBodyBytes:      rpc.DefaultMaxBodyBytes,
		MaxBatch:          rpc.DefaultMaxBatch,
		MaxHeaderBytes:    16 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		LockTimeout:       2 * time.Second,
		LogFlush:          100 * time.Millisecond,
		UsageFlush:        5 * time.Second,
		AuditRetention:    store.DefaultAuditRetention,
		UpstreamTimeout:   10 * time.Second,
		FastPath:          true,
		Metrics:           true,
		EtcdPrefix:        etcdkv.DefaultPrefix,
		MaxStaleness:      time.Second,
	}
}

// Main is the wired program: the store, the RPC server and the HTTP listener.
type Main struct {
	Config Config
	// Stderr receives the one-time message with a generated operator key,
	// and the log.
	Stderr io.Writer
	// LogOutput overrides where the log goes (Stderr when nil).
	LogOutput io.Writer

	Store    *store.Store
	RPC      *rpc.Server
	listener net.Listener
	http     *http.Server
	served   chan error
	// base is the context of every request; canceling it at Close ends
	// WebSocket connections, which Shutdown does not track. ws counts them.
	base       context.Context
	cancelBase context.CancelFunc
	ws         sync.WaitGroup
	logFlush   *flushWriter
	log        zerolog.Logger // set by Run, for the line at shutdown
	fast       *h1.Server     // nil when net/http serves every request
	debug      *http.Server
	metrics    *http.Server // serves /metrics on MetricsAddr; nil when on Addr or off
	// metricsListener is metrics' listener.
	metricsListener net.Listener
	probing         atomic.Bool // a /readyz probe of the store is running (ops.go)
	// etcd is the engine with --etcd, for /readyz and the metrics; nil on
	// a file.
	etcd *etcdkv.DB
	// Setup, when set, runs after the built-in methods are registered and
	// before serving: embedders and tests register methods here.
	Setup func(*rpc.Server)
}

// NewMain returns a Main with the default configuration.
func NewMain(stderr io.Writer) *Main {
	return &Main{Config: DefaultConfig(), Stderr: stderr}
}

// ParseFlags reads flags, each defaulting to its APIKEYD_* environment twin
// and then to the built-in default.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("apikeyd serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: apikeyd serve [flags]\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), serveEnvOnly)
	}
	c := &m.Config
	var errs []error
	env := func(name string) (string, bool) {
		v := getenv("APIKEYD_" + name)
		return v, v != ""
	}
	str := func(p *string, name, flagName, help string) {
		if v, ok := env(name); ok {
			*p = v
		}
		fs.StringVar(p, flagName, *p, help+" (env APIKEYD_"+name+")")
	}
	dur := func(p *time.Duration, name, flagName, help string) {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("APIKEYD_%s: %w", name, err))
			}
			*p = d
		}
		fs.DurationVar(p, flagName, *p, help+" (env APIKEYD_"+name+")")
	}
	num := func(p *int64, name, flagName, help string) {
		if v, ok := env(name); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				errs = append(errs, fmt.Errorf("APIKEYD_%s: not a number: %q", name, v))
			}
			*p = n
		}
		fs.Int64Var(p, flagName, *p, help+" (env APIKEYD_"+name+")")
	}
	boolean := func(p *bool, name, flagName, help string) {
		if v, ok := env(name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("APIKEYD_%s: not true or false: %q", name, v))
			}
			*p = b
		}
		fs.BoolVar(p, flagName, *p, help+" (env APIKEYD_"+name+")")
	}
	maxBatch, maxHeader := int64(c.MaxBatch), int64(c.MaxHeaderBytes)
	str(&c.Addr, "ADDR", "addr", "listen address")
	str(&c.DB, "DB", "db", "path of the bbolt data file, created if missing")
	str(&c.LogLevel, "LOG_LEVEL", "log-level", "log level: debug, info, warn, error")
	str(&c.LogFormat, "LOG_FORMAT", "log-format", "log format: json or console")
	str(&c.TrustedProxies, "TRUSTED_PROXIES", "trusted-proxies", "comma-separated CIDR ranges of proxies whose X-Forwarded-For is believed; empty: none")
	str(&c.DebugAddr, "DEBUG_ADDR", "debug-addr", "serve Go's /debug/pprof profiles on this address (keep it private); empty turns it off")
	num(&c.MaxBodyBytes, "MAX_BODY_BYTES", "max-body-bytes", "largest request body accepted, in bytes")
	num(&maxBatch, "MAX_BATCH", "max-batch", "most calls in one batch")
	num(&maxHeader, "MAX_HEADER_BYTES", "max-header-bytes", "largest request header accepted, in bytes")
	dur(&c.ReadHeaderTimeout, "READ_HEADER_TIMEOUT", "read-header-timeout", "time allowed to read request headers")
	dur(&c.ReadTimeout, "READ_TIMEOUT", "read-timeout", "time allowed to read a whole request")
	dur(&c.WriteTimeout, "WRITE_TIMEOUT", "write-timeout", "time allowed to write a reply")
	dur(&c.IdleTimeout, "IDLE_TIMEOUT", "idle-timeout", "how long an idle keep-alive connection stays open")
	dur(&c.LockTimeout, "LOCK_TIMEOUT", "lock-timeout", "how long to wait for another process's lock on the data file")
	dur(&c.UsageFlush, "USAGE_FLUSH", "usage-flush", "how often keys' last_used_at and use_count, gathered in memory, are written; 0 turns tracking off")
	dur(&c.AuditRetention, "AUDIT_RETENTION", "audit-retention", "how long audit records are kept (2160h is 90 days); older ones are deleted in the background; 0 keeps them forever")
	dur(&c.LogFlush, "LOG_FLUSH", "log-flush", "gather log lines and write them out this often; 0 writes each line at once")
	boolean(&c.Metrics, "METRICS", "metrics", "serve Prometheus metrics at GET /metrics (on --metrics-addr when set, else on --addr); false turns them off")
	str(&c.MetricsAddr, "METRICS_ADDR", "metrics-addr", "serve /metrics on this address instead of --addr (keep it private); empty: on --addr")
	boolean(&c.FastPath, "FAST_PATH", "fast-path", "answer plain POST /rpc requests without net/http's per-request machinery; false leaves every request to net/http")
	str(&c.Upstream, "UPSTREAM", "upstream", "gateway mode: forward catalogued methods outside apikeyd's namespaces to this JSON-RPC 2.0 URL")
	str(&c.UpstreamCatalog, "UPSTREAM_CATALOG", "upstream-catalog", "OpenRPC file of the methods to forward, used when the upstream's rpc.discover does not answer")
	dur(&c.UpstreamTimeout, "UPSTREAM_TIMEOUT", "upstream-timeout", "time allowed for each forwarded call")
	str(&c.Etcd, "ETCD", "etcd", "keep the data in etcd instead of --db: comma-separated client URLs of the etcd members, as http://127.0.0.1:2379; nodes given the same --etcd and --etcd-prefix serve one store")
	str(&c.EtcdPrefix, "ETCD_PREFIX", "etcd-prefix", "where this deployment's data lives in etcd; deployments sharing a cluster need prefixes that do not nest")
	str(&c.EtcdCA, "ETCD_CA", "etcd-ca", "PEM file of the CA that signed the etcd members' certificates, for TLS to etcd")
	str(&c.EtcdCert, "ETCD_CERT", "etcd-cert", "PEM file of this node's client certificate for etcd (with --etcd-key)")
	str(&c.EtcdKey, "ETCD_KEY", "etcd-key", "PEM file of the private key of --etcd-cert")
	dur(&c.MaxStaleness, "MAX_STALENESS", "max-staleness", "with --etcd: how long this node's copy of the data may go unconfirmed by etcd before the node refuses to authenticate and /readyz fails")
	c.AdminKey = getenv("APIKEYD_ADMIN_KEY")
	c.UpstreamToken = getenv("APIKEYD_UPSTREAM_TOKEN")
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.MaxBatch, c.MaxHeaderBytes = int(maxBatch), int(maxHeader)
	if c.Etcd != "" && (isSet(fs, "db") || getenv("APIKEYD_DB") != "") {
		return errors.New("--etcd and --db both given: with --etcd the data lives in etcd, not in a file; drop --db (and APIKEYD_DB), or use apikeyd migrate to move a file's data into etcd")
	}
	return c.validate()
}

// isSet reports whether the command line gave the flag name.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (c *Config) validate() error {
	var errs []error
	if c.MaxBodyBytes < 256 {
		errs = append(errs, fmt.Errorf("--max-body-bytes must be at least 256, got %d", c.MaxBodyBytes))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("--max-batch must be at least 1, got %d", c.MaxBatch))
	}
	if c.UsageFlush < 0 {
		errs = append(errs, fmt.Errorf("--usage-flush must not be negative, got %s", c.UsageFlush))
	}
	if c.AuditRetention < 0 {
		errs = append(errs, fmt.Errorf("--audit-retention must not be negative, got %s", c.AuditRetention))
	}
	if c.LogFlush < 0 {
		errs = append(errs, fmt.Errorf("--log-flush must not be negative, got %s", c.LogFlush))
	}
	if c.MaxHeaderBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-header-bytes must be at least 1024, got %d", c.MaxHeaderBytes))
	}
	for name, d := range map[string]time.Duration{
		"--read-header-timeout": c.ReadHeaderTimeout, "--read-timeout": c.ReadTimeout,
		"--write-timeout": c.WriteTimeout, "--idle-timeout": c.IdleTimeout, "--lock-timeout": c.LockTimeout,
		"--upstream-timeout": c.UpstreamTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		errs = append(errs, fmt.Errorf("--log-level must be one of debug, info, warn, error; got %q", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format must be json or console, got %q", c.LogFormat))
	}
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, err)
	}
	if c.Upstream != "" && c.UpstreamTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("--upstream-timeout (%s) must be less than --write-timeout (%s), or replies to forwarded calls would be cut off", c.UpstreamTimeout, c.WriteTimeout))
	}
	if c.Upstream != "" {
		if u, err := url.Parse(c.Upstream); err != nil {
			// The value may hold a password: do not echo it.
			errs = append(errs, errors.New("--upstream must be an http:// or https:// URL; the value does not parse as a URL"))
		} else if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			shown, note := u, ""
			if u.User != nil {
				cp := *u
				cp.User = nil
				shown, note = &cp, " (user info removed)"
			}
			errs = append(errs, fmt.Errorf("--upstream must be an http:// or https:// URL, got %q%s", shown.String(), note))
		}
	} else if c.UpstreamCatalog != "" {
		errs = append(errs, errors.New("--upstream-catalog needs --upstream"))
	}
	errs = append(errs, c.validateEtcd()...)
	if c.AdminKey != "" && !store.IsSecret(c.AdminKey) {
		errs = append(errs, errors.New("APIKEYD_ADMIN_KEY must be 32 lowercase hex digits"))
	}
	return errors.Join(errs...)
}

// validateEtcd checks the etcd flags: well-formed URLs, TLS files that
// exist, and no etcd flag without --etcd.
func (c *Config) validateEtcd() []error {
	var errs []error
	if c.Etcd == "" {
		def := DefaultConfig()
		for _, f := range []struct {
			flag string
			set  bool
		}{
			{"--etcd-prefix", c.EtcdPrefix != def.EtcdPrefix}, {"--etcd-ca", c.EtcdCA != ""}, {"--etcd-cert", c.EtcdCert != ""},
			{"--etcd-key", c.EtcdKey != ""}, {"--max-staleness", c.MaxStaleness != def.MaxStaleness},
		} {
			if f.set {
				errs = append(errs, fmt.Errorf("%s needs --etcd", f.flag))
			}
		}
		return errs
	}
	if _, err := c.etcdEndpoints(); err != nil {
		errs = append(errs, err)
	}
	if c.EtcdPrefix == "" {
		errs = append(errs, errors.New("--etcd-prefix must not be empty"))
	}
	if c.MaxStaleness <= 0 {
		errs = append(errs, fmt.Errorf("--max-staleness must be positive, got %s", c.MaxStaleness))
	}
	return append(errs, checkEtcdTLS(c.EtcdCA, c.EtcdCert, c.EtcdKey)...)
}

// checkEtcdTLS checks the TLS files for etcd: a certificate comes with
// its key, and every file given exists.
func checkEtcdTLS(ca, cert, key string) []error {
	var errs []error
	if (cert == "") != (key == "") {
		errs = append(errs, errors.New("--etcd-cert and --etcd-key go together: give both or neither"))
	}
	for _, f := range []struct{ flag, path string }{{"--etcd-ca", ca}, {"--etcd-cert", cert}, {"--etcd-key", key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
		}
	}
	return errs
}

// etcdEndpoints parses --etcd.
func (c *Config) etcdEndpoints() ([]string, error) { return parseEndpoints("--etcd", c.Etcd) }

// parseEndpoints parses the value of flag: one or more http:// or
// https:// URLs, comma-separated.
func parseEndpoints(flag, urls string) ([]string, error) {
	var eps []string
	for _, v := range strings.Split(urls, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err == nil && u.User != nil {
			// Do not echo it: it may hold a password.
			return nil, fmt.Errorf("%s: a URL holds a user name; apikeyd authenticates to etcd with a client certificate (--etcd-cert, --etcd-key), not a password", flag)
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%s: %q is not the http:// or https:// URL of an etcd member, as http://127.0.0.1:2379", flag, v)
		}
		eps = append(eps, v)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s: no URL given", flag)
	}
	return eps, nil
}

// trustedProxies parses --trusted-proxies.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(c.TrustedProxies, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := scope.ParseIPRange(v)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not an IP address or CIDR range", v)
		}
		out = append(out, p)
	}
	return out, nil
}

// logger builds the logger the configuration asks for.
func (m *Main) logger() zerolog.Logger {
	out := m.LogOutput
	if out == nil {
		out = m.Stderr
	}
	colour := isTerminal(out)
	if m.Config.LogFlush > 0 {
		m.logFlush = newFlushWriter(out, m.Config.LogFlush)
		out = m.logFlush
	}
	if m.Config.LogFormat == "console" {
		// Colour codes only for a person at a terminal, not in a file,
		// a pipe or a journal.
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339, NoColor: !colour}
	}
	lvl, _ := zerolog.ParseLevel(m.Config.LogLevel)
	return zerolog.New(out).Level(lvl).Hook(rpc.NewTimeHook())
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Run opens the store, binds the listeners, loads the upstream catalog,
// then creates the operator key on an empty store, and starts serving in the
// background. Close stops it. The key is created and shown only once start-up
// can no longer fail: a start that fails shows no key and leaves an empty
// store without one.
func (m *Main) Run() (err error) {
	if err := m.Config.validate(); err != nil {
		return err
	}
	log := m.logger()
	m.log = log
	defer func() {
		if err != nil {
			_ = m.Close(context.Background())
		}
	}()
	usageFlush := m.Config.UsageFlush
	if usageFlush == 0 {
		usageFlush = -1 // off
	}
	auditRetention := m.Config.AuditRetention
	if auditRetention == 0 {
		auditRetention = -1 // forever
	}
	m.Store, err = m.openStore(store.Options{LockTimeout: m.Config.LockTimeout, UsageFlush: usageFlush,
		AuditRetention: auditRetention})
	if err != nil {
		return err
	}
	proxies, _ := m.Config.trustedProxies() // validated above
	m.RPC = rpc.New(m.Store, rpc.Options{Logger: log, MaxBodyBytes: m.Config.MaxBodyBytes, MaxBatch: m.Config.MaxBatch,
		TrustedProxies: proxies, Version: version, NoMetrics: !m.Config.Metrics, Collectors: m.collectors(),
		// Leave a second of the write timeout to write the reply.
		RequestTimeout: max(m.Config.WriteTimeout-time.Second, m.Config.WriteTimeout/2)})
	if m.Setup != nil {
		m.Setup(m.RPC)
	}
	if m.Config.Upstream != "" {
		if err := m.forward(log); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return err
	}
	c := &m.Config
	m.listener = h1.WatchListener(l, h1.WatchdogTick(c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout))
	m.base, m.cancelBase = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/rpc", m.RPC)
	mux.Handle(urlstyle.Prefix, urlstyle.Handler(m.RPC)) // Memset's URL style
	wsHandler := ws.New(m.RPC)
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		m.ws.Add(1)
		defer m.ws.Done()
		wsHandler.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", m.readyz)
	mux.HandleFunc("/backup", m.RPC.ServeBackup)
	// The web console (docs/console.md): static files; it calls /rpc.
	consoleHandler := console.Handler()
	mux.Handle("GET /console", consoleHandler)
	mux.Handle("GET /console/", consoleHandler)
	if h := m.RPC.MetricsHandler(); h != nil && m.Config.MetricsAddr == "" {
		mux.Handle("GET /metrics", h)
	}
	rpcHandler := m.RPC
	m.http = &http.Server{
		// /rpc, nearly every request, skips the mux's pattern matching.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/rpc" {
				rpcHandler.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		MaxHeaderBytes:    m.Config.MaxHeaderBytes,
		ReadHeaderTimeout: m.Config.ReadHeaderTimeout,
		ReadTimeout:       m.Config.ReadTimeout,
		WriteTimeout:      m.Config.WriteTimeout,
		IdleTimeout:       m.Config.IdleTimeout,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return m.base },
		// Requests whose framing is ambiguous are refused on the bytes
		// (framingConn); a hijacked connection is watched no more.
		ConnState: h1.StopFramingOnHijack,
	}
	if m.Config.DebugAddr != "" {
		if err := m.serveDebug(log); err != nil {
			_ = m.listener.Close()
			return err
		}
	}
	if h := m.RPC.MetricsHandler(); h != nil && m.Config.MetricsAddr != "" {
		if err := m.serveMetrics(h, log); err != nil {
			_ = m.listener.Close()
			return err
		}
	}
	if err := m.bootstrap(log); err != nil {
		_ = m.listener.Close()
		return err
	}
	m.served = make(chan error, 1)
	if m.Config.FastPath {
		m.fast = h1.NewServer(m.RPC, m.http, m.base, m.listener, log)
		go m.fast.Serve()
		go func() { m.served <- m.http.Serve(m.fast.Handoff()) }()
	} else {
		go func() { m.served <- m.http.Serve(h1.FramingListener{Listener: m.listener}) }()
	}
	m.withData(log.Info()).Str("addr", m.listener.Addr().String()).Str("version", version).Msg("serving")
	return nil
}

// openStore opens the --db file, or with --etcd the deployment's prefix
// in etcd.
func (m *Main) openStore(opts store.Options) (*store.Store, error) {
	c := &m.Config
	if c.Etcd == "" {
		st, err := store.Open(c.DB, opts)
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("%w: is another apikeyd serving %s?", err, c.DB)
		}
		return st, err
	}
	eps, _ := c.etcdEndpoints() // validated by Run
	db, err := openEtcd(etcdkv.Config{Endpoints: eps, Prefix: c.EtcdPrefix, CA: c.EtcdCA, Cert: c.EtcdCert, Key: c.EtcdKey,
		MaxStaleness: c.MaxStaleness})
	if err != nil {
		return nil, err
	}
	st, err := store.OpenDB(db, opts) // closes db when it fails
	if err != nil {
		return nil, fmt.Errorf("the store in etcd at %s: %w", db.Prefix(), err)
	}
	m.etcd = db
	return st, nil
}

// openEtcd opens etcd for serve and the sub-commands, saying which flag
// to look at when it fails.
func openEtcd(cfg etcdkv.Config) (*etcdkv.DB, error) {
	db, err := etcdkv.Open(cfg)
	switch {
	case errors.Is(err, etcdkv.ErrForeignPrefix):
		return nil, fmt.Errorf("--etcd-prefix %s: %w; give this deployment a prefix of its own", cfg.Prefix, err)
	case errors.Is(err, etcdkv.ErrUnreachable):
		return nil, fmt.Errorf("--etcd: %w", err)
	case err != nil:
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return db, nil
}

// collectors are the metrics of the wiring: with --etcd, the age of this
// node's copy and the nodes alive.
func (m *Main) collectors() []prometheus.Collector {
	db := m.etcd
	if db == nil {
		return nil
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "apikeyd_etcd_copy_age_seconds",
			Help: "Time since this node's copy of the etcd data was last confirmed current; past --max-staleness the node refuses to authenticate.",
		}, func() float64 { return db.Status().Age.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "apikeyd_etcd_nodes",
			Help: "Nodes of this deployment alive, this one included, as this node last counted them.",
		}, func() float64 { return float64(db.Nodes()) }),
	}
}

// forward sets up gateway mode: the catalog from the upstream's
// rpc.discover, or else from --upstream-catalog.
func (m *Main) forward(log zerolog.Logger) error {
	u := &gateway.Upstream{URL: m.Config.Upstream, Token: m.Config.UpstreamToken, Timeout: m.Config.UpstreamTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), min(m.Config.UpstreamTimeout, 5*time.Second))
	defer cancel()
	doc, err := u.Discover(ctx)
	from := "rpc.discover"
	if err != nil {
		if m.Config.UpstreamCatalog == "" {
			return fmt.Errorf("--upstream: %s did not answer rpc.discover (%v), and no --upstream-catalog was given", u.RedactedURL(), err)
		}
		log.Warn().Str("upstream", u.RedactedURL()).Err(err).Msg("upstream rpc.discover failed; using --upstream-catalog")
		if doc, err = os.ReadFile(m.Config.UpstreamCatalog); err != nil {
			return fmt.Errorf("--upstream-catalog: %w", err)
		}
		from = m.Config.UpstreamCatalog
	}
	catalog, err := gateway.ParseCatalog(doc)
	if err != nil {
		return fmt.Errorf("--upstream: the catalog from %s: %w", from, err)
	}
	if err := gateway.Forward(m.RPC, u, catalog); err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	log.Info().Str("upstream", u.RedactedURL()).Str("catalog", from).Int("methods", len(catalog)).Msg("forwarding")
	return nil
}

// serveDebug serves net/http/pprof's profiles on their own listener, never
// on the API's address.
func (m *Main) serveDebug(log zerolog.Logger) error {
	l, err := net.Listen("tcp", m.Config.DebugAddr)
	if err != nil {
		return fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: m.Config.ReadHeaderTimeout}
	go func() { _ = m.debug.Serve(l) }()
	log.Info().Str("addr", l.Addr().String()).Msg("serving /debug/pprof")
	return nil
}

// serveMetrics serves h at GET /metrics on its own listener, and nothing
// else there.
func (m *Main) serveMetrics(h http.Handler, log zerolog.Logger) error {
	l, err := net.Listen("tcp", m.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	m.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: m.Config.ReadHeaderTimeout}
	go func() { _ = m.metrics.Serve(l) }()
	m.metricsListener = l
	log.Info().Str("addr", l.Addr().String()).Msg("serving /metrics")
	return nil
}

// MetricsAddr is the address of the /metrics listener of --metrics-addr,
// once Run has returned; empty when there is none.
func (m *Main) MetricsAddr() string {
	if m.metricsListener == nil {
		return ""
	}
	return m.metricsListener.Addr().String()
}

// bootstrap creates the operator's key on a store with no keys.
func (m *Main) bootstrap(log zerolog.Logger) error {
	secret, generated := m.Config.AdminKey, false
	if secret == "" {
		secret, generated = store.NewSecret(), true
	}
	k, created, err := m.Store.Bootstrap(secret)
	if err != nil {
		return err
	}
	if !created {
		// A file from before the operator rule may have no full operator
		// key left; say so where the operator looks, and how to fix it.
		if ok, err := m.Store.HasFullOperatorKey(); err == nil && !ok {
			how := "stop the server and run apikeyd recover-operator"
			if m.etcd != nil {
				how = "run apikeyd recover-operator --etcd (the nodes may keep running)"
			}
			m.withData(log.Warn()).Msg("the operator account has no full operator key (active, no scopes, no expiry, no limits); " + how)
		}
		return nil
	}
	log.Info().Str("key_id", k.ID).Str("account", k.Account).Bool("generated", generated).Msg("created operator key")
	if generated {
		fmt.Fprintf(m.Stderr, "apikeyd: created the operator key %s\napikeyd: it is shown only this once; keep it safe\n", secret)
	}
	return nil
}

// withData adds where the data lives to a log line: the file, or etcd's
// members and the prefix.
func (m *Main) withData(e *zerolog.Event) *zerolog.Event {
	if m.Config.Etcd != "" {
		return e.Str("etcd", m.Config.Etcd).Str("etcd_prefix", m.Config.EtcdPrefix)
	}
	return e.Str("db", m.Config.DB)
}

// Addr is the address the server listens on, once Run has returned.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// Close stops accepting calls, waits for calls in flight up to ctx's
// deadline, and closes the store. Calling it again does nothing.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	defer func() { m.http, m.fast, m.Store, m.logFlush, m.debug = nil, nil, nil, nil, nil }()
	if m.debug != nil {
		_ = m.debug.Close()
	}
	if m.metrics != nil {
		_ = m.metrics.Close()
		m.metrics = nil
	}
	if m.http != nil {
		if m.fast != nil {
			m.fast.Stop()
		}
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if m.served != nil { // nil when start-up failed before serving
			if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
		if m.fast != nil {
			if err := m.fast.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		// Then the WebSocket connections, whose calls end before the store
		// closes.
		m.cancelBase()
		done := make(chan struct{})
		go func() { m.ws.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("websocket connections still open at shutdown: %w", ctx.Err()))
		}
	}
	serving := m.served != nil && m.http != nil
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	if serving {
		m.withData(m.log.Info()).Str("addr", m.listener.Addr().String()).AnErr("error", errors.Join(errs...)).Msg("stopped")
	}
	if m.logFlush != nil {
		errs = append(errs, m.logFlush.Close())
	}
	return errors.Join(errs...)
}

// recoverOperator is the recover-operator sub-command. It adds a new full
// operator key to the store (recreating the operator account if it is
// missing) and prints its secret once on stdout: the way back in when
// every operator key is lost. The secret is APIKEYD_ADMIN_KEY when set
// (then it is not printed), else a new random one. On a file the server
// must be stopped: a file that a running server holds fails fast with
// store.ErrLocked. With --etcd it works while the nodes run, as any write
// of theirs does.
func recoverOperator(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newSubFlags("recover-operator", getenv, stderr)
	db, lock := lockFlags(f)
	var urls, prefix string
	f.str(&urls, "ETCD", "etcd", "work on the store in etcd at these client URLs, comma-separated, instead of --db")
	prefix = etcdkv.DefaultPrefix
	f.str(&prefix, "ETCD_PREFIX", "etcd-prefix", "the deployment's prefix in etcd, with --etcd")
	tls := f.etcdTLS()
	if err := f.parse(args); err != nil {
		return err
	}
	secret, fromEnv := getenv("APIKEYD_ADMIN_KEY"), true
	if secret == "" {
		secret, fromEnv = store.NewSecret(), false
	} else if !store.IsSecret(secret) {
		return errors.New("APIKEYD_ADMIN_KEY must be 32 lowercase hex digits")
	}
	var st *store.Store
	var where string
	if urls != "" {
		if f.isSet("db") || getenv("APIKEYD_DB") != "" {
			return errors.New("--etcd and --db both given: recover-operator works on one store")
		}
		cfg, err := tls.config("--etcd", urls, prefix)
		if err != nil {
			return err
		}
		edb, err := openEtcd(cfg)
		if err != nil {
			return err
		}
		if st, err = store.OpenDB(edb, store.Options{UsageFlush: -1}); err != nil {
			return fmt.Errorf("the store in etcd at %s: %w", edb.Prefix(), err)
		}
		where = "the store in etcd at " + edb.Prefix()
	} else {
		if *lock <= 0 {
			return fmt.Errorf("--lock-timeout must be positive, got %s", *lock)
		}
		// A mistyped path must not become a new, empty data file.
		if _, err := os.Stat(*db); err != nil {
			return fmt.Errorf("--db: %w; recover-operator works on an existing data file", err)
		}
		var err error
		st, err = store.Open(*db, store.Options{LockTimeout: *lock, UsageFlush: -1})
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w: stop the apikeyd serving %s first; recover-operator works on a stopped server's file", err, *db)
		} else if err != nil {
			return err
		}
		where = *db
	}
	k, err := st.RecoverOperator(secret)
	closeErr := st.Close()
	if errors.Is(err, store.ErrConflict) && fromEnv {
		return fmt.Errorf("APIKEYD_ADMIN_KEY is already a key in %s, and it still works if it is a full operator key; unset APIKEYD_ADMIN_KEY to get a new random key", where)
	} else if err != nil {
		return errors.Join(err, closeErr)
	}
	// The key is stored: show it even if closing failed.
	if fromEnv {
		fmt.Fprintf(stderr, "apikeyd: added operator key %s, with the secret in APIKEYD_ADMIN_KEY, to %s\n", k.ID, where)
	} else {
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "apikeyd: added operator key %s to %s; its secret, on stdout, is shown only this once: keep it safe\n", k.ID, where)
	}
	return closeErr
}
