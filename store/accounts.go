package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// OperatorAccount is the account of the key Bootstrap creates: the one
// account whose keys may manage accounts.
const OperatorAccount = "operator"

// Account is a tenant: every key belongs to exactly one.
type Account struct {
	Name    string
	Comment string
	Created time.Time
	// Keys is the number of keys in the account.
	Keys int
}

// accountRecord is an Account as stored in the accounts bucket, binary:
// version byte (1), name, comment, created (Unix seconds, varint).
type accountRecord struct {
	Name    string
	Comment string
	Created time.Time
}

func (r *accountRecord) marshal() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(r.Name)+len(r.Comment)+binary.MaxVarintLen64)
	b = append(b, recordVersion)
	b = appendString(b, r.Name)
	b = appendString(b, r.Comment)
	return binary.AppendVarint(b, r.Created.Unix())
}

func (r *accountRecord) unmarshal(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: account format version %d", errCorrupt, v)
	}
	r.Name = d.string()
	r.Comment = d.string()
	r.Created = time.Unix(d.varint(), 0).UTC()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

func (r *accountRecord) account(keys int) Account {
	return Account{Name: r.Name, Comment: r.Comment, Created: r.Created, Keys: keys}
}

// CreateAccount creates the account name and its first key, unrestricted
// within the account, in one transaction. It returns the account, the key
// and the key's secret, which exists nowhere else. A taken name is
// ErrAccountExists.
func (s *Store) CreateAccount(ctx context.Context, name, comment string) (Account, Key, string, error) {
	secret := NewSecret()
	now := s.now().UTC().Truncate(time.Second)
	acct := accountRecord{Name: name, Comment: comment, Created: now}
	rec := &keyRecord{ID: newKeyID(), Account: name, Digest: digest(secret), Comment: "first key of " + name, Created: now}
	err := s.batch(ctx, func(tx kv.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		if accounts.Get([]byte(name)) != nil {
			return ErrAccountExists
		}
		if err := accounts.Put([]byte(name), acct.marshal()); err != nil {
			return err
		}
		return putNewKey(tx, rec)
	})
	if err != nil {
		return Account{}, Key{}, "", err
	}
	return acct.account(1), rec.key(), secret, nil
}

// Account returns the account name, or ErrAccountNotFound.
func (s *Store) Account(name string) (Account, error) {
	var out Account
	err := s.view(func(tx kv.Tx) error {
		rec, err := findAccount(tx, name)
		if err != nil {
			return err
		}
		out = rec.account(countKeys(tx, name))
		return nil
	})
	return out, err
}

// Accounts returns every account, by name.
func (s *Store) Accounts() ([]Account, error) {
	out := []Account{}
	err := s.view(func(tx kv.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var rec accountRecord
			if err := rec.unmarshal(v); err != nil {
				return err
			}
			out = append(out, rec.account(countKeys(tx, rec.Name)))
			return nil
		})
	})
	return out, err
}

// UpdateAccount sets the comment of account name.
func (s *Store) UpdateAccount(ctx context.Context, name, comment string) (Account, error) {
	var out Account
	err := s.batch(ctx, func(tx kv.Tx) error {
		rec, err := findAccount(tx, name)
		if err != nil {
			return err
		}
		if rec.Comment == comment {
			out = rec.account(countKeys(tx, name))
			return errUnchanged
		}
		rec.Comment = comment
		if err := tx.Bucket(bucketAccounts).Put([]byte(name), rec.marshal()); err != nil {
			return err
		}
		out = rec.account(countKeys(tx, name))
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return Account{}, err
	}
	return out, nil
}

// DeleteAccount deletes account name and every key in it, in one
// transaction with check, which sees each of those keys first and may
// refuse with an error that DeleteAccount returns, having written nothing.
// Once it returns, none of those keys authenticates. The operator account
// cannot be deleted (ErrOperatorAccount).
func (s *Store) DeleteAccount(ctx context.Context, name string, check func(Key) error) error {
	if name == OperatorAccount {
		return ErrOperatorAccount
	}
	return s.batch(ctx, func(tx kv.Tx) error {
		if _, err := findAccount(tx, name); err != nil {
			return err
		}
		prefix := accountKey(name, "")
		var ids [][]byte
		c := tx.Bucket(bucketAccountKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, bytes.Clone(k[len(prefix):]))
		}
		for _, id := range ids {
			rec, err := decodeRecord(tx.Bucket(bucketKeys).Get(id))
			if err != nil {
				return err
			}
			if err := check(rec.key()); err != nil {
				return err
			}
			if err := deleteRecord(tx, &rec); err != nil {
				return err
			}
		}
		if err := deleteAccountUsers(tx, name); err != nil {
			return err
		}
		if err := deleteAccountServiceAccounts(tx, name); err != nil {
			return err
		}
		if err := forgetAccountAudit(tx, name); err != nil {
			return err
		}
		return tx.Bucket(bucketAccounts).Delete([]byte(name))
	})
}

// forgetAccountAudit drops the account's index of its audit records, so
// that a later account of the same name, another tenant, never reads them.
// The records stay in the trail, for the operator, until retention prunes
// them.
func forgetAccountAudit(tx kv.Tx, account string) error {
	prefix := accountKey(account, "")
	index := tx.Bucket(bucketAuditAccount)
	var doomed [][]byte
	c := index.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := index.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// deleteAccountUsers deletes the users of account (their keys go with the
// account's keys).
func deleteAccountUsers(tx kv.Tx, account string) error {
	users := tx.Bucket(bucketUsers)
	var names [][]byte
	err := users.ForEach(func(k, v []byte) error {
		var rec userRecord
		if err := rec.unmarshal(v); err != nil {
			return err
		}
		if rec.Account == account {
			names = append(names, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := users.Delete(n); err != nil {
			return err
		}
	}
	return nil
}

func findAccount(tx kv.Tx, name string) (accountRecord, error) {
	var rec accountRecord
	v := tx.Bucket(bucketAccounts).Get([]byte(name))
	if v == nil {
		return rec, ErrAccountNotFound
	}
	err := rec.unmarshal(v)
	return rec, err
}

// countKeys returns the number of keys of account, or of owner.
func countKeys(tx kv.Tx, accountOrOwner string) int {
	n, _ := binary.Uvarint(tx.Bucket(bucketKeyCounts).Get([]byte(accountOrOwner)))
	return int(n)
}

// addKeyCount adds delta to the key count of account or owner; a count
// that reaches zero is removed.
func addKeyCount(tx kv.Tx, accountOrOwner string, delta int) error {
	b := tx.Bucket(bucketKeyCounts)
	n := countKeys(tx, accountOrOwner) + delta
	if n <= 0 {
		return b.Delete([]byte(accountOrOwner))
	}
	return b.Put([]byte(accountOrOwner), binary.AppendUvarint(nil, uint64(n)))
}

// recountKeys sets every key count from the key indexes.
func recountKeys(tx kv.Tx) error {
	counts := map[string]int{}
	for _, index := range [][]byte{bucketAccountKeys, bucketOwnerKeys} {
		err := tx.Bucket(index).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i > 0 {
				counts[string(k[:i])]++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for name, n := range counts {
		if err := tx.Bucket(bucketKeyCounts).Put([]byte(name), binary.AppendUvarint(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}
