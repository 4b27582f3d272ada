package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// readyTimeout bounds /readyz's read and write of the store.
var readyTimeout = time.Second

// readyz answers 200 "ready" when the store answers a read and a write
// within readyTimeout, else 503 with a short reason. On etcd a node whose
// copy of the data is stale is not ready, whatever etcd answers now: it
// refuses to authenticate until the copy is confirmed current. That
// reason beats the others, which a lost etcd causes too.
func (m *Main) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	notReady := func(reason string) {
		if r := m.staleness(); r != "" {
			reason = r
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+reason+"\n")
	}
	st := m.Store
	if st == nil {
		notReady("store closed")
		return
	}
	if r := m.staleness(); r != "" {
		notReady(r)
		return
	}
	if !m.probing.CompareAndSwap(false, true) {
		notReady("the previous probe of the store has not returned")
		return
	}
	done := make(chan error, 1)
	go func() {
		err := st.Ready()
		m.probing.Store(false) // before the answer: the next probe may follow at once
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			notReady("store does not answer")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	case <-time.After(readyTimeout):
		notReady(fmt.Sprintf("store did not answer within %s", readyTimeout))
	}
}

// staleness says why this node's copy of the etcd data may not be
// trusted, or "" when it may (and on a file).
func (m *Main) staleness() string {
	if m.etcd == nil {
		return ""
	}
	s := m.etcd.Status()
	if s.Fresh == nil {
		return ""
	}
	return fmt.Sprintf("this node's copy of the data is stale: last confirmed current %s ago (limit %s)",
		s.Age.Round(time.Millisecond), m.Config.MaxStaleness)
}

// subFlags is the flag set of a sub-command, each flag with its APIKEYD_*
// environment twin.
type subFlags struct {
	fs   *flag.FlagSet
	env  func(string) string
	errs []error
}

func newSubFlags(name string, getenv func(string) string, stderr io.Writer) *subFlags {
	fs := flag.NewFlagSet("apikeyd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &subFlags{fs: fs, env: getenv}
}

func (f *subFlags) str(p *string, name, flagName, help string) {
	if v := f.env("APIKEYD_" + name); v != "" {
		*p = v
	}
	f.fs.StringVar(p, flagName, *p, help+" (env APIKEYD_"+name+")")
}

func (f *subFlags) dur(p *time.Duration, name, flagName, help string) {
	if v := f.env("APIKEYD_" + name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("APIKEYD_%s: %w", name, err))
		}
		*p = d
	}
	f.fs.DurationVar(p, flagName, *p, help+" (env APIKEYD_"+name+")")
}

// isSet reports whether the command line gave the flag name.
func (f *subFlags) isSet(name string) bool { return isSet(f.fs, name) }

// etcdTLS are the TLS files for etcd of a sub-command.
type etcdTLS struct{ ca, cert, key string }

// etcdTLS reads --etcd-ca, --etcd-cert and --etcd-key, as serve does.
func (f *subFlags) etcdTLS() *etcdTLS {
	t := &etcdTLS{}
	f.str(&t.ca, "ETCD_CA", "etcd-ca", "PEM file of the CA that signed the etcd members' certificates, for TLS to etcd")
	f.str(&t.cert, "ETCD_CERT", "etcd-cert", "PEM file of the client certificate for etcd (with --etcd-key)")
	f.str(&t.key, "ETCD_KEY", "etcd-key", "PEM file of the private key of --etcd-cert")
	return t
}

// config is the etcd engine's configuration for the URLs of flag at
// prefix, checked as serve checks its own.
func (t *etcdTLS) config(flag, urls, prefix string) (etcdkv.Config, error) {
	eps, err := parseEndpoints(flag, urls)
	if err != nil {
		return etcdkv.Config{}, err
	}
	if prefix == "" {
		return etcdkv.Config{}, fmt.Errorf("the prefix of %s must not be empty", flag)
	}
	if err := errors.Join(checkEtcdTLS(t.ca, t.cert, t.key)...); err != nil {
		return etcdkv.Config{}, err
	}
	return etcdkv.Config{Endpoints: eps, Prefix: prefix, CA: t.ca, Cert: t.cert, Key: t.key}, nil
}

func (f *subFlags) parse(args []string) error {
	if err := errors.Join(f.errs...); err != nil {
		return err
	}
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.fs.Args(), " "))
	}
	return nil
}

// backup is the backup sub-command: it pulls a consistent copy of a running
// server's data file from GET /backup, with the operator key in
// APIKEYD_KEY, into a temporary file beside --out, checks that the copy
// opens and is consistent (store.CheckFile), and only then renames it to
// --out. A refused or broken copy leaves nothing behind.
func backup(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newSubFlags("backup", getenv, stderr)
	var base, out string
	timeout := 10 * time.Minute
	f.str(&base, "URL", "url", "the server's base URL, as http://127.0.0.1:8080")
	f.str(&out, "BACKUP_OUT", "out", "file to write the backup to; replaced only by a checked copy")
	f.dur(&timeout, "BACKUP_TIMEOUT", "timeout", "time allowed for the whole copy")
	if err := f.parse(args); err != nil {
		return err
	}
	key := getenv("APIKEYD_KEY")
	switch {
	case key == "":
		return errors.New("APIKEYD_KEY is not set: it must hold an operator key")
	case out == "":
		return errors.New("--out is missing")
	case timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %s", timeout)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url must be an http:// or https:// URL, got %q", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/backup"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var reply struct {
			Error struct {
				Message string `json:"message"`
				Data    struct {
					ErrorID string `json:"error_id"`
				} `json:"data"`
			} `json:"error"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(body, &reply) == nil && reply.Error.Message != "" {
			return fmt.Errorf("backup refused: %s (%s, HTTP %d)", reply.Error.Message, reply.Error.Data.ErrorID, resp.StatusCode)
		}
		return fmt.Errorf("backup refused: HTTP %s", resp.Status)
	}
	n, err := replaceFile(out, func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) })
	if err != nil {
		return fmt.Errorf("backup: %w; %s is unchanged", err, out)
	}
	fmt.Fprintf(stderr, "apikeyd: backup of %d bytes written to %s and checked\n", n, out)
	return nil
}

// replaceFile writes path through a temporary file beside it: fill writes
// it, it is synced, checked with store.CheckFile, renamed over path, and
// the directory synced. On any failure the temporary file is removed and
// path is untouched.
func replaceFile(path string, fill func(io.Writer) (int64, error)) (n int64, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if n, err = fill(tmp); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	if err = store.CheckFile(tmp.Name(), time.Second); err != nil {
		return n, fmt.Errorf("the copy does not check clean: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}

// fileOnly refuses etcd to the sub-command name, which works on a data
// file only, saying what does the job on etcd instead of failing on a flag
// it does not know or on a file that is not there. It refuses args that
// give --etcd, and APIKEYD_ETCD without a --db (flag or APIKEYD_DB).
func fileOnly(name string, args []string, getenv func(string) string, instead string) error {
	var etcd, db bool
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		flagName, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		etcd = etcd || flagName == "etcd"
		db = db || flagName == "db"
	}
	if etcd || (getenv("APIKEYD_ETCD") != "" && !db && getenv("APIKEYD_DB") == "") {
		return fmt.Errorf("%s works on a bbolt data file (--db), not on etcd; %s", name, instead)
	}
	return nil
}

// lockFlags reads --db and --lock-timeout.
func lockFlags(f *subFlags) (db *string, lock *time.Duration) {
	def := DefaultConfig()
	db, lock = new(string), new(time.Duration)
	*db, *lock = def.DB, def.LockTimeout
	f.str(db, "DB", "db", "path of the data file of the stopped server")
	f.dur(lock, "LOCK_TIMEOUT", "lock-timeout", "how long to wait for another process's lock on the data file")
	return db, lock
}

// restore is the restore sub-command: with the server stopped, it checks
// the backup (store.CheckFile: bbolt's check, buckets and schema version,
// the store's invariants) and only then replaces --db with a copy of it,
// written beside --db, synced and renamed. It holds --db's lock throughout,
// so a running server fails it fast with store.ErrLocked, and no server
// starts on the file meanwhile. A bad backup leaves --db untouched.
func restore(args []string, getenv func(string) string, stderr io.Writer) error {
	if err := fileOnly("restore", args, getenv, "to put a backup into etcd, run apikeyd migrate --from-db BACKUP --to-etcd URLS, into an empty prefix"); err != nil {
		return err
	}
	f := newSubFlags("restore", getenv, stderr)
	db, lock := lockFlags(f)
	var from string
	f.str(&from, "RESTORE_FROM", "from", "the backup file to restore")
	if err := f.parse(args); err != nil {
		return err
	}
	if from == "" {
		return errors.New("--from is missing")
	}
	if *lock <= 0 {
		return fmt.Errorf("--lock-timeout must be positive, got %s", *lock)
	}
	// Take the target's lock first: a running server is the first thing to
	// refuse. A missing target is a new file, locked by nobody.
	if _, err := os.Stat(*db); err == nil {
		held, err := bolt.Open(*db, 0o600, &bolt.Options{ReadOnly: true, Timeout: *lock})
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("%w: stop the apikeyd serving %s first; restore works on a stopped server's file", store.ErrLocked, *db)
		}
		if err == nil {
			defer held.Close()
		}
		// A target bbolt cannot open is replaced: that is what restore is for.
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--db: %w", err)
	}
	if err := store.CheckFile(from, *lock); err != nil {
		return fmt.Errorf("--from: %w; %s is unchanged", err, *db)
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	n, err := replaceFile(*db, func(w io.Writer) (int64, error) { return io.Copy(w, src) })
	if err != nil {
		return fmt.Errorf("restore: %w; %s is unchanged", err, *db)
	}
	fmt.Fprintf(stderr, "apikeyd: restored %s (%d bytes) from %s\n", *db, n, from)
	return nil
}

// check is the check sub-command: store.CheckFile on a stopped server's
// file. It prints "ok" and returns nil when the file is clean, and an
// error naming the faults otherwise.
func check(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := fileOnly("check", args, getenv, "to check a deployment on etcd, stop its nodes, copy it with apikeyd migrate --from-etcd URLS --to-db FILE, and check FILE"); err != nil {
		return err
	}
	f := newSubFlags("check", getenv, stderr)
	db, lock := lockFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if *lock <= 0 {
		return fmt.Errorf("--lock-timeout must be positive, got %s", *lock)
	}
	err := store.CheckFile(*db, *lock)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: stop the apikeyd serving %s first; check works on a stopped server's file", err, *db)
	} else if err != nil {
		return fmt.Errorf("check %s: %w", *db, err)
	}
	fmt.Fprintf(stdout, "ok: %s is consistent\n", *db)
	return nil
}
