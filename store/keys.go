package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	bolt "go.etcd.io/bbolt"
)

// Key is an API key as callers see it. It never holds the secret.
type Key struct {
	ID      string
	Account string
	Scopes  scope.Scopes
	Comment string
	Created time.Time
	// Owner names the user whose key this is ("user:alice"), or is empty
	// for a key of the account itself.
	Owner string
}

// NewKey describes a key to create. Scopes must be normalised already.
type NewKey struct {
	Account string
	Scopes  scope.Scopes
	Comment string
	Owner   string
}

// CreateKey stores a new key of nk and returns it with its secret, which
// exists nowhere else: the store keeps only its digest.
func (s *Store) CreateKey(nk NewKey) (Key, string, error) {
	secret := NewSecret()
	k, err := s.createKey(nk, secret)
	return k, secret, err
}

func (s *Store) createKey(nk NewKey, secret string) (Key, error) {
	// Made before Batch, whose function may run twice.
	rec := &keyRecord{
		ID:      newKeyID(),
		Account: nk.Account,
		Digest:  digest(secret),
		Scopes:  nk.Scopes.Clone(),
		Comment: nk.Comment,
		Owner:   nk.Owner,
		Created: s.now().UTC().Truncate(time.Second),
	}
	err := s.db.Batch(func(tx *bolt.Tx) error { return putNewKey(tx, rec) })
	if err != nil {
		return Key{}, err
	}
	return rec.key(), nil
}

// Bootstrap creates the operator account and its key with the given secret
// when the store holds no key at all, in one transaction. It reports whether
// it created them. A store that holds keys is left unchanged.
func (s *Store) Bootstrap(secret string) (Key, bool, error) {
	if !IsSecret(secret) {
		return Key{}, false, fmt.Errorf("store: operator key must be %d lowercase hex digits", SecretLen)
	}
	now := s.now().UTC().Truncate(time.Second)
	rec := &keyRecord{
		ID:      newKeyID(),
		Account: OperatorAccount,
		Digest:  digest(secret),
		Comment: "operator",
		Created: s.now().UTC().Truncate(time.Second),
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketKeys).Cursor().First(); k != nil {
			return errUnchanged // roll back: a store with keys is left as it is
		}
		if tx.Bucket(bucketAccounts).Get([]byte(OperatorAccount)) == nil {
			acct := accountRecord{Name: OperatorAccount, Comment: "the operator", Created: now}
			if err := tx.Bucket(bucketAccounts).Put([]byte(OperatorAccount), acct.marshal()); err != nil {
				return err
			}
		}
		return putNewKey(tx, rec)
	})
	if errors.Is(err, errUnchanged) {
		return Key{}, false, nil
	} else if err != nil {
		return Key{}, false, err
	}
	return rec.key(), true, nil
}

func putNewKey(tx *bolt.Tx, rec *keyRecord) error {
	digests := tx.Bucket(bucketDigests)
	if digests.Get(rec.Digest[:]) != nil {
		return fmt.Errorf("%w: secret already in use", ErrConflict)
	}
	if err := digests.Put(rec.Digest[:], []byte(rec.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketAccountKeys).Put(accountKey(rec.Account, rec.ID), nil); err != nil {
		return err
	}
	if rec.Owner != "" {
		if err := tx.Bucket(bucketOwnerKeys).Put(accountKey(rec.Owner, rec.ID), nil); err != nil {
			return err
		}
	}
	return putRecord(tx, rec)
}

func putRecord(tx *bolt.Tx, rec *keyRecord) error {
	return tx.Bucket(bucketKeys).Put([]byte(rec.ID), rec.marshal())
}

func accountKey(account, id string) []byte {
	b := make([]byte, 0, len(account)+1+len(id))
	b = append(b, account...)
	b = append(b, 0)
	return append(b, id...)
}

// KeyBySecret returns the key whose secret is secret, or ErrNotFound. The
// secret is hashed before any lookup.
func (s *Store) KeyBySecret(secret string) (Key, error) {
	if !IsSecret(secret) {
		return Key{}, ErrNotFound
	}
	d := digest(secret)
	k, ok, gen := s.cache.get(d)
	if ok {
		if s.inactive.has(k.Owner) {
			return Key{}, ErrNotFound // an inactive owner's key fails as an unknown one
		}
		return k, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := recordByDigest(tx, d[:])
		if err != nil {
			return err
		}
		k = rec.key()
		return nil
	})
	if err != nil {
		return Key{}, err
	}
	s.cache.put(d, k, gen)
	if s.inactive.has(k.Owner) {
		return Key{}, ErrNotFound
	}
	return k, nil
}

// Key returns the key of account that ref names: its public id or its
// secret. A key of another account is ErrNotFound, as is a ref of neither shape.
func (s *Store) Key(account, ref string) (Key, error) {
	var k Key
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := findKey(tx, account, ref)
		if err != nil {
			return err
		}
		k = rec.key()
		return nil
	})
	return k, err
}

// Keys returns every key of account, oldest first.
func (s *Store) Keys(account string) ([]Key, error) {
	keys := []Key{}
	prefix := accountKey(account, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAccountKeys).Cursor()
		records := tx.Bucket(bucketKeys)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rec, err := decodeRecord(records.Get(k[len(prefix):]))
			if err != nil {
				return err
			}
			keys = append(keys, rec.key())
		}
		return nil
	})
	return keys, err
}

// UpdateScopes replaces the scopes of account's key ref with what change
// returns, in one transaction: change sees the stored key and may refuse
// with an error, which UpdateScopes returns unchanged and writes nothing.
// The scopes change returns must be normalised. When they equal the stored
// ones, nothing is written.
func (s *Store) UpdateScopes(account, ref string, change func(Key) (scope.Scopes, error)) (Key, error) {
	var out Key
	var d [32]byte
	err := s.db.Batch(func(tx *bolt.Tx) error {
		rec, err := findKey(tx, account, ref)
		if err != nil {
			return err
		}
		scopes, err := change(rec.key())
		if err != nil {
			return err
		}
		if scopes.Equal(rec.Scopes) {
			out = rec.key()
			return errUnchanged // roll back: not even an empty commit
		}
		rec.Scopes = scopes.Clone()
		if err := putRecord(tx, &rec); err != nil {
			return err
		}
		out, d = rec.key(), rec.Digest
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return out, nil
	} else if err != nil {
		return Key{}, err
	}
	s.cache.invalidate(d)
	return out, nil
}

// DeleteKey deletes account's key ref, in one transaction with check, which
// sees the stored key and may refuse with an error that DeleteKey returns.
func (s *Store) DeleteKey(account, ref string, check func(Key) error) error {
	var d [32]byte
	err := s.db.Batch(func(tx *bolt.Tx) error {
		rec, err := findKey(tx, account, ref)
		if err != nil {
			return err
		}
		if err := check(rec.key()); err != nil {
			return err
		}
		d = rec.Digest
		return deleteRecord(tx, &rec)
	})
	if err != nil {
		return err
	}
	s.cache.invalidate(d)
	return nil
}

// deleteRecord removes a key and its index entries.
func deleteRecord(tx *bolt.Tx, rec *keyRecord) error {
	if err := tx.Bucket(bucketDigests).Delete(rec.Digest[:]); err != nil {
		return err
	}
	if err := tx.Bucket(bucketAccountKeys).Delete(accountKey(rec.Account, rec.ID)); err != nil {
		return err
	}
	if rec.Owner != "" {
		if err := tx.Bucket(bucketOwnerKeys).Delete(accountKey(rec.Owner, rec.ID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketKeys).Delete([]byte(rec.ID))
}

// errUnchanged ends a write transaction that found nothing to change.
var errUnchanged = errors.New("store: unchanged")

// findKey resolves ref (public id or secret) within account.
func findKey(tx *bolt.Tx, account, ref string) (keyRecord, error) {
	var rec keyRecord
	var err error
	switch {
	case IsSecret(ref):
		d := digest(ref)
		rec, err = recordByDigest(tx, d[:])
	case IsKeyID(ref):
		rec, err = decodeRecord(tx.Bucket(bucketKeys).Get([]byte(ref)))
	default:
		return keyRecord{}, ErrNotFound
	}
	if err != nil {
		return keyRecord{}, err
	}
	if rec.Account != account {
		return keyRecord{}, ErrNotFound
	}
	return rec, nil
}

func recordByDigest(tx *bolt.Tx, d []byte) (keyRecord, error) {
	id := tx.Bucket(bucketDigests).Get(d)
	if id == nil {
		return keyRecord{}, ErrNotFound
	}
	return decodeRecord(tx.Bucket(bucketKeys).Get(id))
}

// decodeRecord decodes a stored record into a copy that outlives the
// transaction. A nil value is ErrNotFound.
func decodeRecord(v []byte) (keyRecord, error) {
	var rec keyRecord
	if v == nil {
		return rec, ErrNotFound
	}
	err := rec.unmarshal(v)
	return rec, err
}

// CountKeys returns the number of keys in the store, across all accounts.
func (s *Store) CountKeys() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketKeys).Stats().KeyN
		return nil
	})
	return n, err
}
