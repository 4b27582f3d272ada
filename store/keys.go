package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
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
}

// keyRecord is a Key as stored in the keys bucket.
type keyRecord struct {
	ID      string       `json:"id"`
	Account string       `json:"account"`
	Digest  string       `json:"digest"` // hex SHA-256 of the secret
	Scopes  scope.Scopes `json:"scopes"`
	Comment string       `json:"comment,omitempty"`
	Created time.Time    `json:"created"`
}

func (r *keyRecord) key() Key {
	return Key{ID: r.ID, Account: r.Account, Scopes: r.Scopes, Comment: r.Comment, Created: r.Created}
}

// NewKey describes a key to create. Scopes must be normalised already.
type NewKey struct {
	Account string
	Scopes  scope.Scopes
	Comment string
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
		Digest:  hex.EncodeToString(digest(secret)),
		Scopes:  nk.Scopes.Clone(),
		Comment: nk.Comment,
		Created: s.now().UTC().Truncate(time.Second),
	}
	err := s.db.Batch(func(tx *bolt.Tx) error { return putNewKey(tx, rec) })
	if err != nil {
		return Key{}, err
	}
	return rec.key(), nil
}

// Bootstrap creates the operator's key with the given secret in account when
// the store holds no key at all, in one transaction. It reports whether it
// created one. A store that holds keys is left unchanged.
func (s *Store) Bootstrap(account, secret string) (Key, bool, error) {
	if !IsSecret(secret) {
		return Key{}, false, fmt.Errorf("store: operator key must be %d lowercase hex digits", SecretLen)
	}
	rec := &keyRecord{
		ID:      newKeyID(),
		Account: account,
		Digest:  hex.EncodeToString(digest(secret)),
		Comment: "operator",
		Created: s.now().UTC().Truncate(time.Second),
	}
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketKeys).Cursor().First(); k != nil {
			return nil
		}
		created = true
		return putNewKey(tx, rec)
	})
	if err != nil || !created {
		return Key{}, false, err
	}
	return rec.key(), true, nil
}

func putNewKey(tx *bolt.Tx, rec *keyRecord) error {
	d, err := hex.DecodeString(rec.Digest)
	if err != nil {
		return err
	}
	digests := tx.Bucket(bucketDigests)
	if digests.Get(d) != nil {
		return fmt.Errorf("%w: secret already in use", ErrConflict)
	}
	if err := digests.Put(d, []byte(rec.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketAccountKeys).Put(accountKey(rec.Account, rec.ID), nil); err != nil {
		return err
	}
	return putRecord(tx, rec)
}

func putRecord(tx *bolt.Tx, rec *keyRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketKeys).Put([]byte(rec.ID), b)
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
	var k Key
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := recordByDigest(tx, d)
		if err != nil {
			return err
		}
		k = rec.key()
		return nil
	})
	return k, err
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
// The scopes change returns must be normalised.
func (s *Store) UpdateScopes(account, ref string, change func(Key) (scope.Scopes, error)) (Key, error) {
	var out Key
	err := s.db.Batch(func(tx *bolt.Tx) error {
		rec, err := findKey(tx, account, ref)
		if err != nil {
			return err
		}
		scopes, err := change(rec.key())
		if err != nil {
			return err
		}
		rec.Scopes = scopes.Clone()
		if err := putRecord(tx, rec); err != nil {
			return err
		}
		out = rec.key()
		return nil
	})
	if err != nil {
		return Key{}, err
	}
	return out, nil
}

// DeleteKey deletes account's key ref, in one transaction with check, which
// sees the stored key and may refuse with an error that DeleteKey returns.
func (s *Store) DeleteKey(account, ref string, check func(Key) error) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		rec, err := findKey(tx, account, ref)
		if err != nil {
			return err
		}
		if err := check(rec.key()); err != nil {
			return err
		}
		d, err := hex.DecodeString(rec.Digest)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketDigests).Delete(d); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAccountKeys).Delete(accountKey(rec.Account, rec.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketKeys).Delete([]byte(rec.ID))
	})
}

// findKey resolves ref (public id or secret) within account.
func findKey(tx *bolt.Tx, account, ref string) (*keyRecord, error) {
	var rec *keyRecord
	var err error
	switch {
	case IsSecret(ref):
		rec, err = recordByDigest(tx, digest(ref))
	case IsKeyID(ref):
		rec, err = decodeRecord(tx.Bucket(bucketKeys).Get([]byte(ref)))
	default:
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if rec.Account != account {
		return nil, ErrNotFound
	}
	return rec, nil
}

func recordByDigest(tx *bolt.Tx, d []byte) (*keyRecord, error) {
	id := tx.Bucket(bucketDigests).Get(d)
	if id == nil {
		return nil, ErrNotFound
	}
	return decodeRecord(tx.Bucket(bucketKeys).Get(id))
}

// decodeRecord decodes a stored record; json.Unmarshal copies, so the result
// outlives the transaction. A nil value is ErrNotFound.
func decodeRecord(v []byte) (*keyRecord, error) {
	if v == nil {
		return nil, ErrNotFound
	}
	rec := new(keyRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("store: corrupt key record: %w", err)
	}
	return rec, nil
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
