package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// The operator cannot lose the server: no write may leave the operator
// account without a key that can always manage it. The rule is kept by
// guarded, which every write transaction of the store runs (batch and update
// wrap their function in it), so a new write path is covered without
// remembering to be.

// IsFullOperatorKey reports whether k is a full operator key at now: a key
// of the operator account that is active, has no scopes of any type, has no
// expiry (time alone could end it), is valid already (no not-before, or one
// that has passed), and has neither a rate limit nor a quota. Its holder, if
// any, must be a user of the operator account or an active service account
// of it; the store checks that part, which k alone does not tell.
func IsFullOperatorKey(k Key, now time.Time) bool {
	return k.Account == OperatorAccount && k.Active && k.Scopes.IsUnrestricted() &&
		k.ExpiresAt.IsZero() && (k.NotBefore.IsZero() || !now.Before(k.NotBefore)) &&
		k.Rate.Limit == 0 && !k.HasQuota
}

// guarded wraps the function of a write transaction so that it fails with
// ErrLastOperatorKey, and so writes nothing, when the operator account had
// a full operator key before it ran and has none after. A file that has
// none to begin with (one written before this rule, say) is not frozen by
// it: recover-operator gives it one. fn may run more than once, as a
// write of a shared commit may (write.go); each run is judged on the
// state it starts from.
//
// In a shared transaction, the state one function starts from is the one
// the function before it left, which that function's check found to hold a
// full key: that finding stands (time alone never ends a full key), so each
// function of a group costs one check, not two.
func (s *Store) guarded(fn func(kv.Tx) error) func(kv.Tx) error {
	return func(tx kv.Tx) error {
		now := s.now()
		had := s.guardedTx == tx || s.hasFullOperatorKey(tx, now)
		s.guardedTx = nil
		if err := fn(tx); err != nil {
			return err
		}
		if had {
			if !s.hasFullOperatorKey(tx, now) {
				return ErrLastOperatorKey
			}
			s.guardedTx = tx
		}
		return nil
	}
}

// hasFullOperatorKey reports whether tx holds a full operator key whose
// holder is present and active. The key found last is tried first, so
// that every write costs one lookup however many keys the operator has;
// only when that key is gone or no longer full are the operator's keys
// read, up to the first full one.
func (s *Store) hasFullOperatorKey(tx kv.Tx, now time.Time) bool {
	if id := s.fullKey.Load(); id != nil && fullOperatorKey(tx, []byte(*id), now) {
		return true
	}
	id, ok := findFullOperatorKey(tx, now)
	if ok {
		s.fullKey.Store(&id)
	}
	return ok
}

// fullOperatorKey reports whether the key id is, in tx, a full operator key
// whose holder is present and active.
func fullOperatorKey(tx kv.Tx, id []byte, now time.Time) bool {
	keys, accounts := tx.Bucket(bucketKeys), tx.Bucket(bucketAccounts)
	if keys == nil || accounts == nil || accounts.Get([]byte(OperatorAccount)) == nil {
		return false // a file still being created, or no operator account
	}
	rec, err := decodeRecord(keys.Get(id))
	return err == nil && IsFullOperatorKey(rec.key(), now) && operatorHolderActive(tx, rec.Owner)
}

// findFullOperatorKey returns the id of the first full operator key in tx
// whose holder is present and active.
func findFullOperatorKey(tx kv.Tx, now time.Time) (string, bool) {
	accountKeys := tx.Bucket(bucketAccountKeys)
	if accountKeys == nil {
		return "", false
	}
	prefix := accountKey(OperatorAccount, "")
	c := accountKeys.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if id := k[len(prefix):]; fullOperatorKey(tx, id, now) {
			return string(id), true
		}
	}
	return "", false
}

// operatorHolderActive reports whether owner, the holder of an operator
// key, exists in the operator account and is active. A key of the account
// itself (no holder) is.
func operatorHolderActive(tx kv.Tx, owner string) bool {
	switch {
	case owner == "":
		return true
	case strings.HasPrefix(owner, "user:"):
		b := tx.Bucket(bucketUsers)
		if b == nil {
			return false
		}
		var u userRecord
		v := b.Get([]byte(strings.TrimPrefix(owner, "user:")))
		return v != nil && u.unmarshal(v) == nil && u.Account == OperatorAccount
	case strings.HasPrefix(owner, ServiceAccountOwner(OperatorAccount, "")):
		b := tx.Bucket(bucketServiceAccounts)
		if b == nil {
			return false
		}
		var sa serviceAccountRecord
		v := b.Get(accountKey(OperatorAccount, strings.TrimPrefix(owner, ServiceAccountOwner(OperatorAccount, ""))))
		return v != nil && sa.unmarshal(v) == nil && sa.Active
	}
	return false
}

// HasFullOperatorKey reports whether the operator account holds a full
// operator key (IsFullOperatorKey) whose holder is present and active.
func (s *Store) HasFullOperatorKey() (bool, error) {
	ok := false
	err := s.view(func(tx kv.Tx) error {
		ok = s.hasFullOperatorKey(tx, s.now())
		return nil
	})
	return ok, err
}

// RecoverOperator gives the operator account a new full operator key with
// the given secret, recreating the account if it is missing, in one
// transaction with an audit record of it. It is for a stopped
// server's file (apikeyd recover-operator): keys already there are left as
// they are. A secret already in use is ErrConflict.
func (s *Store) RecoverOperator(secret string) (Key, error) {
	if !IsSecret(secret) {
		return Key{}, fmt.Errorf("store: operator key must be %d lowercase hex digits", SecretLen)
	}
	now := s.now().UTC().Truncate(time.Second)
	rec := &keyRecord{
		ID:      newKeyID(),
		Account: OperatorAccount,
		Digest:  digest(secret),
		Comment: "operator, recovered " + now.Format(time.RFC3339),
		Created: now,
	}
	err := s.update(context.Background(), func(tx kv.Tx) error {
		if tx.Bucket(bucketAccounts).Get([]byte(OperatorAccount)) == nil {
			acct := accountRecord{Name: OperatorAccount, Comment: "the operator", Created: now}
			if err := tx.Bucket(bucketAccounts).Put([]byte(OperatorAccount), acct.marshal()); err != nil {
				return err
			}
		}
		if err := putNewKey(tx, rec); err != nil {
			return err
		}
		// The trail says when and which key was minted offline.
		audit := AuditRecord{Time: s.now().UTC(), Account: OperatorAccount, Actor: "recover-operator",
			Method: "recover-operator", Target: rec.ID, Outcome: "ok"}
		seq, err := tx.Bucket(bucketAudit).NextSequence()
		if err != nil {
			return err
		}
		audit.Seq = seq
		if err := tx.Bucket(bucketAudit).Put(seqKey(seq), audit.marshal()); err != nil {
			return err
		}
		return tx.Bucket(bucketAuditAccount).Put(append(accountKey(OperatorAccount, ""), seqKey(seq)...), nil)
	})
	if err != nil {
		return Key{}, err
	}
	return rec.key(), nil
}
