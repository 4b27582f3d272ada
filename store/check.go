package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// CheckKeys checks, in one read transaction, that every key is whole and
// that nothing outlives it: each key's account and holder exist, each of
// its secrets (current, and retained while one is) leads to it, it is in
// its account's and holder's lists, under its name and in key_index with
// the entries its fields call for; every entry of those indexes leads to
// a key that belongs there, and every count counts what it should. So no
// key survives its account or holder, and none is hidden from a list. It
// returns the first fault found, wrapped in ErrInconsistent.
func (s *Store) CheckKeys() error {
	return s.view(checkKeys)
}

func checkKeys(tx kv.Tx) error {
	fault := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInconsistent}, args...)...)
	}
	keys := tx.Bucket(bucketKeys)
	digests, indexed := 0, 0
	counts := map[string]int{}
	err := keys.ForEach(func(id, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if rec.ID != string(id) {
			return fault("key %s is stored as %s", rec.ID, id)
		}
		if tx.Bucket(bucketAccounts).Get([]byte(rec.Account)) == nil {
			return fault("key %s outlives its account", rec.ID)
		}
		if _, gone := holderState(tx, rec.Account, rec.Owner); gone {
			return fault("key %s outlives its holder", rec.ID)
		}
		if !bytes.Equal(tx.Bucket(bucketDigests).Get(rec.Digest[:]), id) {
			return fault("key %s: its secret does not lead to it", rec.ID)
		}
		digests++
		if !rec.PrevUntil.IsZero() {
			if !bytes.Equal(tx.Bucket(bucketDigests).Get(rec.PrevDigest[:]), id) {
				return fault("key %s: its retained secret does not lead to it", rec.ID)
			}
			digests++
		}
		if tx.Bucket(bucketAccountKeys).Get(accountKey(rec.Account, rec.ID)) == nil {
			return fault("key %s is missing from its account's list", rec.ID)
		}
		counts[rec.Account]++
		if rec.Owner != "" {
			if tx.Bucket(bucketOwnerKeys).Get(accountKey(rec.Owner, rec.ID)) == nil {
				return fault("key %s is missing from its holder's list", rec.ID)
			}
			counts[rec.Owner]++
		}
		if rec.Name != "" && !bytes.Equal(tx.Bucket(bucketKeyNames).Get(nameKey(rec.Account, rec.Owner, rec.Name)), id) {
			return fault("key %s is missing under its name", rec.ID)
		}
		for _, e := range indexEntries(&rec) {
			if tx.Bucket(bucketKeyIndex).Get(e) == nil {
				return fault("key %s is missing from key_index entry %q", rec.ID, e[:len(e)-keyIDLen])
			}
			indexed++
			if c, ok := counterOf(e); ok {
				counts[c]++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := tx.Bucket(bucketKeyIndex).KeyN(); n != indexed {
		return fault("%d key_index entries lead to no key that belongs there", n-indexed)
	}
	if n := tx.Bucket(bucketDigests).KeyN(); n != digests {
		return fault("%d secrets lead nowhere", n-digests)
	}
	// Every list entry leads to a key of that list.
	for _, index := range [][]byte{bucketAccountKeys, bucketOwnerKeys} {
		byOwner := bytes.Equal(index, bucketOwnerKeys)
		err := tx.Bucket(index).ForEach(func(k, _ []byte) error {
			i := bytes.LastIndexByte(k, 0)
			if i < 0 {
				return fault("%s entry %q has no key id", index, k)
			}
			rec, err := decodeRecord(keys.Get(k[i+1:]))
			if err != nil {
				return fault("%s entry %q leads to no key", index, k)
			}
			if list := string(k[:i]); (!byOwner && list != rec.Account) || (byOwner && list != rec.Owner) {
				return fault("%s entry %q leads to a key of %s", index, k, rec.Account)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err = tx.Bucket(bucketKeyNames).ForEach(func(k, id []byte) error {
		rec, err := decodeRecord(keys.Get(id))
		if err != nil || !bytes.Equal(nameKey(rec.Account, rec.Owner, rec.Name), k) {
			return fault("key name %q leads to no key of that name", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for list, n := range counts {
		if got := countKeys(tx, list); got != n {
			return fault("%s counts %d keys, holds %d", list, got, n)
		}
	}
	return tx.Bucket(bucketKeyCounts).ForEach(func(k, _ []byte) error {
		if counts[string(k)] == 0 {
			return fault("%s counts keys, holds none", k)
		}
		return nil
	})
}

// CheckFile checks the data file at path without changing it: bbolt's own
// consistency check of its pages, then that every bucket is there with the
// schema version this build writes, then CheckKeys's invariants, then that
// every entry of the accounts' audit index leads to a record of that
// account. It opens
// the file read-only, so a file a running server holds fails with ErrLocked
// after lockTimeout. It returns every fault bbolt reports, or the first
// fault of the store's invariants, wrapped in ErrInconsistent.
func CheckFile(path string, lockTimeout time.Duration) (err error) {
	// bbolt may panic on pages it cannot make sense of: that is a fault of
	// the file, reported as one.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: unreadable pages: %v", ErrInconsistent, path, r)
		}
	}()
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := boltkv.Open(path, boltkv.Options{Timeout: lockTimeout, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("open %s: %w (waited %s)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	defer db.Close()
	if err := checkPages(db.Bolt(), path); err != nil {
		return err
	}
	// Nothing writes the file meanwhile: no process can, while this one
	// holds its read-only lock.
	return db.View(func(tx kv.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %s is missing", ErrInconsistent, name)
			}
		}
		v := tx.Bucket(bucketMeta).Get(metaSchema)
		if n, err := schemaOf(v); err != nil {
			return fmt.Errorf("%w: %w", ErrInconsistent, err)
		} else if n != SchemaVersion {
			return fmt.Errorf("%w: schema version %d, this build writes %d (apikeyd serve migrates it on open)", ErrInconsistent, n, SchemaVersion)
		}
		if err := checkKeys(tx); err != nil {
			return err
		}
		return checkAuditIndex(tx)
	})
}

// checkPages is bbolt's own check of the pages of the file at path.
func checkPages(db *bolt.DB, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		// Pages past the end of the file would fault, not fail, when read.
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: the file is cut short: %d bytes of %d", ErrInconsistent, fi.Size(), tx.Size())
		}
		var faults []error
		for err := range tx.Check() {
			faults = append(faults, err)
		}
		if len(faults) > 0 {
			return fmt.Errorf("%w: bbolt found %d faults: %w", ErrInconsistent, len(faults), errors.Join(faults...))
		}
		return nil
	})
}

// checkAuditIndex checks that every entry of the accounts' index of the
// audit trail leads to a record of that account.
func checkAuditIndex(tx kv.Tx) error {
	records := tx.Bucket(bucketAudit)
	return tx.Bucket(bucketAuditAccount).ForEach(func(k, _ []byte) error {
		i := len(k) - 9
		if i < 0 || k[i] != 0 {
			return fmt.Errorf("%w: audit index entry %q is malformed", ErrInconsistent, k)
		}
		v := records.Get(k[i+1:])
		var r AuditRecord
		if v == nil || r.unmarshal(binary.BigEndian.Uint64(k[i+1:]), v) != nil || r.Account != string(k[:i]) {
			return fmt.Errorf("%w: audit index entry %q leads to no audit record of %s", ErrInconsistent, k, k[:i])
		}
		return nil
	})
}
