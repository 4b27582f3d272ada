package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
)

// migrate is the migrate sub-command: it copies a store whole from a bbolt
// file or an etcd prefix into a new file or an empty prefix (kv.Copy, every
// bucket of store.Buckets), then proves the copy by reading both sides
// again and comparing them bucket by bucket (kv.Digest), and prints the
// comparison. It refuses a source that is not a store of this build's
// schema, a source file a server holds, and a target that holds data.
func migrate(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newSubFlags("migrate", getenv, stderr)
	var fromDB, fromEtcd, toDB, toEtcd string
	fromPrefix, toPrefix := etcdkv.DefaultPrefix, etcdkv.DefaultPrefix
	f.fs.StringVar(&fromDB, "from-db", "", "the bbolt data file to copy; the server on it must be stopped")
	f.fs.StringVar(&fromEtcd, "from-etcd", "", "the etcd to copy from: client URLs, comma-separated")
	f.fs.StringVar(&fromPrefix, "from-prefix", fromPrefix, "the prefix to copy, with --from-etcd")
	f.fs.StringVar(&toDB, "to-db", "", "the bbolt data file to write: a new file, or one without data")
	f.fs.StringVar(&toEtcd, "to-etcd", "", "the etcd to copy into: client URLs, comma-separated")
	f.fs.StringVar(&toPrefix, "to-prefix", toPrefix, "the prefix to write, with --to-etcd; it must hold no key")
	lock := DefaultConfig().LockTimeout
	f.dur(&lock, "LOCK_TIMEOUT", "lock-timeout", "how long to wait for another process's lock on a data file")
	tls := f.etcdTLS()
	if err := f.parse(args); err != nil {
		return err
	}
	if (fromDB == "") == (fromEtcd == "") {
		return errors.New("give one source: --from-db FILE or --from-etcd URLS")
	}
	if (toDB == "") == (toEtcd == "") {
		return errors.New("give one target: --to-db FILE or --to-etcd URLS")
	}
	if f.isSet("from-prefix") && fromEtcd == "" {
		return errors.New("--from-prefix needs --from-etcd")
	}
	if f.isSet("to-prefix") && toEtcd == "" {
		return errors.New("--to-prefix needs --to-etcd")
	}
	if lock <= 0 {
		return fmt.Errorf("--lock-timeout must be positive, got %s", lock)
	}

	src, err := openSource(tls, fromDB, fromEtcd, fromPrefix, lock)
	if err != nil {
		return err
	}
	defer src.db.Close()
	dst, err := openTarget(tls, toDB, toEtcd, toPrefix, lock)
	if err != nil {
		return err
	}
	digests, err := copyStore(dst, src)
	if err != nil {
		return errors.Join(err, dst.abandon())
	}
	if err := dst.finish(); err != nil {
		return err
	}
	printDigests(stdout, digests)
	fmt.Fprintf(stdout, "ok: the copy matches the source in every bucket\n")
	fmt.Fprintf(stderr, "apikeyd: copied %s to %s\n", src.name, dst.name)
	return nil
}

// side is one end of a migration: an open engine, what to call it in
// messages, and for a target, how to keep or drop what was written.
type side struct {
	db   kv.DB
	name string
	// finish makes a target's copy final and closes it; abandon drops
	// what is there of it (a file) or says what is left (etcd), and
	// closes it.
	finish, abandon func() error
}

// openSource opens the file or the etcd prefix to copy, and refuses it if
// it is not a store of this build's schema.
func openSource(tls *etcdTLS, file, urls, prefix string, lock time.Duration) (*side, error) {
	var src *side
	var err error
	if file != "" {
		src, err = openSourceFile(file, lock)
	} else {
		src, err = openEtcdSide(tls, "--from-etcd", urls, prefix)
	}
	if err != nil {
		return nil, err
	}
	if err := store.IsStore(src.db); err != nil {
		_ = src.db.Close()
		return nil, fmt.Errorf("the source, %s, is not a store this build can copy: %w (a store of an older version is upgraded by serving it once with this build)", src.name, err)
	}
	return src, nil
}

// openTarget opens the file or the etcd prefix to copy into, and refuses
// it if it holds data.
func openTarget(tls *etcdTLS, file, urls, prefix string, lock time.Duration) (*side, error) {
	if file != "" {
		return createTargetFile(file, lock)
	}
	dst, err := openEtcdSide(tls, "--to-etcd", urls, prefix)
	if err != nil {
		return nil, err
	}
	if err := refuseNonEmptyPrefix(dst.db.(*etcdkv.DB), dst.name); err != nil {
		_ = dst.db.Close()
		return nil, err
	}
	return dst, nil
}

// openSourceFile opens an existing data file to read, under bbolt's shared
// lock: a server holds an exclusive one, so a running server fails it, and
// no server starts on the file while it is copied.
func openSourceFile(path string, lock time.Duration) (*side, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--from-db: %w", err)
	}
	db, err := boltkv.Open(path, boltkv.Options{Timeout: lock, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("--from-db %s: %w: stop the apikeyd serving it first; migrate copies a stopped server's file", path, store.ErrLocked)
	} else if err != nil {
		return nil, fmt.Errorf("--from-db: %w", err)
	}
	return &side{db: db, name: path}, nil
}

// openEtcdSide opens the etcd of flag at prefix.
func openEtcdSide(tls *etcdTLS, flag, urls, prefix string) (*side, error) {
	cfg, err := tls.config(flag, urls, prefix)
	if err != nil {
		return nil, err
	}
	db, err := openEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	name := fmt.Sprintf("etcd %s at %s", urls, db.Prefix())
	return &side{db: db, name: name,
		finish: db.Close,
		abandon: func() error {
			return errors.Join(fmt.Errorf("%s may hold part of the copy: delete it (etcdctl del --prefix %s) before trying again", name, db.Prefix()), db.Close())
		},
	}, nil
}

// refuseNonEmptyPrefix fails if the prefix holds any key but the live
// nodes' (which come and go with their processes: this one's included).
func refuseNonEmptyPrefix(db *etcdkv.DB, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Both counts at one revision.
	resp, err := db.Client().Txn(ctx).Then(
		clientv3.OpGet(db.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(db.Shared()+"nodes/", clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	all, nodes := resp.Responses[0].GetResponseRange(), resp.Responses[1].GetResponseRange()
	if n := all.Count - nodes.Count; n > 0 {
		return fmt.Errorf("%s holds %d keys: migrate writes only into an empty prefix; choose another --to-prefix, or delete this one (etcdctl del --prefix %s) if its data is not wanted", name, n, db.Prefix())
	}
	return nil
}

// createTargetFile refuses a file that holds data, and opens a new file
// beside it that finish checks (store.CheckFile) and renames over it.
func createTargetFile(path string, lock time.Duration) (*side, error) {
	if _, err := os.Stat(path); err == nil {
		if err := refuseFileWithData(path, lock); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--to-db: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("--to-db: %w", err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	// Synced once, at the end: a copy cut short is thrown away.
	db, err := boltkv.Open(name, boltkv.Options{Timeout: lock, NoSync: true})
	if err != nil {
		_ = os.Remove(name)
		return nil, fmt.Errorf("--to-db: %w", err)
	}
	return &side{db: db, name: path,
		finish: func() error {
			err := errors.Join(db.Bolt().Sync(), db.Close())
			if err == nil {
				err = store.CheckFile(name, lock)
			}
			if err == nil {
				err = os.Rename(name, path)
			}
			if err != nil {
				_ = os.Remove(name)
				return fmt.Errorf("--to-db %s: %w; nothing written", path, err)
			}
			syncDir(filepath.Dir(path))
			return nil
		},
		abandon: func() error {
			_ = db.Close()
			_ = os.Remove(name)
			return nil
		},
	}, nil
}

// refuseFileWithData fails if the bbolt file at path holds any bucket, or
// is not a bbolt file, or a process holds it.
func refuseFileWithData(path string, lock time.Duration) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lock})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("--to-db %s: %w", path, store.ErrLocked)
	} else if err != nil {
		return fmt.Errorf("--to-db %s exists and is not an empty data file: %w", path, err)
	}
	defer db.Close()
	empty := true
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return nil
		})
	})
	if err == nil && !empty {
		err = errors.New("it holds data; migrate writes only a new file or one without data")
	}
	if err != nil {
		return fmt.Errorf("--to-db %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable, as far as the system allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// copyStore copies src into dst and compares them. The source is summed
// up before and after the copy too: a source that changed meanwhile (a
// node still writing to it) is reported as such, not as a bad copy.
func copyStore(dst, src *side) ([]kv.BucketDigest, error) {
	buckets := store.Buckets()
	before, err := kv.Digest(src.db, buckets)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.name, err)
	}
	if err := kv.Copy(dst.db, src.db, buckets); err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", src.name, dst.name, err)
	}
	after, err := kv.Digest(src.db, buckets)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.name, err)
	}
	if err := kv.SameDigests(before, after); err != nil {
		return nil, fmt.Errorf("%s changed while it was copied (is a server still writing to it? stop it first): %w", src.name, err)
	}
	copied, err := kv.Digest(dst.db, buckets)
	if err != nil {
		return nil, fmt.Errorf("read the copy in %s: %w", dst.name, err)
	}
	if err := kv.SameDigests(after, copied); err != nil {
		return nil, fmt.Errorf("the copy in %s differs from %s: %w", dst.name, src.name, err)
	}
	return copied, nil
}

// printDigests prints one line per bucket: its records, sequence and the
// start of its SHA-256.
func printDigests(w io.Writer, ds []kv.BucketDigest) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "bucket\trecords\tsequence\tsha256\t")
	for _, d := range ds {
		if d.Missing {
			fmt.Fprintf(tw, "%s\t-\t-\t(missing)\t\n", d.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%x\t\n", d.Name, d.Keys, d.Sequence, d.SHA256[:8])
	}
	_ = tw.Flush()
}
