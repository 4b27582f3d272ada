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

// ServiceAccount is a non-human owner of keys, as in ZenML. Deactivating it
// stops all its keys at once; reactivating restores them.
type ServiceAccount struct {
	Name        string
	Account     string
	Description string
	Active      bool
	Created     time.Time
	// Keys is the number of keys the service account holds.
	Keys int
}

// serviceAccountRecord is stored under account + 0x00 + name: version byte
// (1), name, account, description, active (1 byte), created (Unix seconds).
type serviceAccountRecord struct {
	Name        string
	Account     string
	Description string
	Active      bool
	Created     time.Time
}

func (r *serviceAccountRecord) marshal() []byte {
	b := make([]byte, 0, 2+4*binary.MaxVarintLen64+len(r.Name)+len(r.Account)+len(r.Description))
	b = append(b, recordVersion)
	b = appendString(b, r.Name)
	b = appendString(b, r.Account)
	b = appendString(b, r.Description)
	active := byte(0)
	if r.Active {
		active = 1
	}
	b = append(b, active)
	return binary.AppendVarint(b, r.Created.Unix())
}

func (r *serviceAccountRecord) unmarshal(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: service account format version %d", errCorrupt, v)
	}
	r.Name = d.string()
	r.Account = d.string()
	r.Description = d.string()
	r.Active = d.byte() == 1
	r.Created = time.Unix(d.varint(), 0).UTC()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

func (r *serviceAccountRecord) serviceAccount(keys int) ServiceAccount {
	return ServiceAccount{Name: r.Name, Account: r.Account, Description: r.Description, Active: r.Active, Created: r.Created, Keys: keys}
}

// ServiceAccountOwner is the Owner of keys that service account name of
// account holds. Service account names are unique within an account.
func ServiceAccountOwner(account, name string) string { return "sa:" + account + "/" + name }

// CreateServiceAccount creates service account name in account.
func (s *Store) CreateServiceAccount(ctx context.Context, account, name, description string, active bool) (ServiceAccount, error) {
	rec := serviceAccountRecord{Name: name, Account: account, Description: description, Active: active, Created: s.now().UTC().Truncate(time.Second)}
	err := s.batch(ctx, func(tx kv.Tx) error {
		if _, err := findAccount(tx, account); err != nil {
			return err
		}
		b := tx.Bucket(bucketServiceAccounts)
		if b.Get(accountKey(account, name)) != nil {
			return ErrServiceAccountExists
		}
		return b.Put(accountKey(account, name), rec.marshal())
	})
	if err != nil {
		return ServiceAccount{}, err
	}
	return rec.serviceAccount(0), nil
}

// ServiceAccount returns service account name of account.
func (s *Store) ServiceAccount(account, name string) (ServiceAccount, error) {
	var out ServiceAccount
	err := s.view(func(tx kv.Tx) error {
		rec, err := findServiceAccount(tx, account, name)
		if err != nil {
			return err
		}
		out = rec.serviceAccount(countOwnerKeys(tx, ServiceAccountOwner(account, name)))
		return nil
	})
	return out, err
}

// ServiceAccounts returns the service accounts of account, by name.
func (s *Store) ServiceAccounts(account string) ([]ServiceAccount, error) {
	out := []ServiceAccount{}
	prefix := accountKey(account, "")
	err := s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucketServiceAccounts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec serviceAccountRecord
			if err := rec.unmarshal(v); err != nil {
				return err
			}
			out = append(out, rec.serviceAccount(countOwnerKeys(tx, ServiceAccountOwner(account, rec.Name))))
		}
		return nil
	})
	return out, err
}

// UpdateServiceAccount sets the description and the active flag of service
// account name, each when not nil. Deactivating stops its keys at once. It
// runs in one transaction with check, which sees each key the service
// account holds first and may refuse with an error that UpdateServiceAccount
// returns, having written nothing.
func (s *Store) UpdateServiceAccount(ctx context.Context, account, name string, description *string, active *bool, check func(Key) error) (ServiceAccount, error) {
	var out serviceAccountRecord
	var keys int
	err := s.batch(ctx, func(tx kv.Tx) error {
		rec, err := findServiceAccount(tx, account, name)
		if err != nil {
			return err
		}
		if err := checkOwnerKeys(tx, ServiceAccountOwner(account, name), check); err != nil {
			return err
		}
		next := rec
		if description != nil {
			next.Description = *description
		}
		if active != nil {
			next.Active = *active
		}
		out, keys = next, countOwnerKeys(tx, ServiceAccountOwner(account, name))
		if next == rec {
			return errUnchanged
		}
		return tx.Bucket(bucketServiceAccounts).Put(accountKey(account, name), next.marshal())
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return ServiceAccount{}, err
	}
	return out.serviceAccount(keys), nil
}

// DeleteServiceAccount deletes service account name of account and every
// key it holds, in one transaction with check, which sees each of those keys
// first and may refuse with an error that DeleteServiceAccount returns,
// having written nothing.
func (s *Store) DeleteServiceAccount(ctx context.Context, account, name string, check func(Key) error) error {
	return s.batch(ctx, func(tx kv.Tx) error {
		if _, err := findServiceAccount(tx, account, name); err != nil {
			return err
		}
		if err := checkOwnerKeys(tx, ServiceAccountOwner(account, name), check); err != nil {
			return err
		}
		if err := deleteOwnerKeys(tx, ServiceAccountOwner(account, name)); err != nil {
			return err
		}
		return tx.Bucket(bucketServiceAccounts).Delete(accountKey(account, name))
	})
}

func findServiceAccount(tx kv.Tx, account, name string) (serviceAccountRecord, error) {
	var rec serviceAccountRecord
	v := tx.Bucket(bucketServiceAccounts).Get(accountKey(account, name))
	if v == nil {
		return rec, ErrServiceAccountNotFound
	}
	err := rec.unmarshal(v)
	return rec, err
}

// deleteAccountServiceAccounts deletes the service accounts of account (their
// keys go with the account's keys).
func deleteAccountServiceAccounts(tx kv.Tx, account string) error {
	prefix := accountKey(account, "")
	var names [][]byte
	c := tx.Bucket(bucketServiceAccounts).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		names = append(names, bytes.Clone(k))
	}
	for _, k := range names {
		if err := tx.Bucket(bucketServiceAccounts).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func countOwnerKeys(tx kv.Tx, owner string) int {
	prefix := accountKey(owner, "")
	n := 0
	c := tx.Bucket(bucketOwnerKeys).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}
