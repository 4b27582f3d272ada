package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store/kv"
)

// Key is an API key as callers see it. It never holds the secret.
type Key struct {
	ID      string
	Account string
	Scopes  scope.Scopes
	Comment string
	Created time.Time
	// Owner names the user or service account holding the key
	// ("user:alice", "sa:acme/ci"), or is empty for a key of the account.
	Owner string

	// Name is unique among the keys of its account and owner; may be empty.
	Name        string
	Description string
	// Active is false for a key switched off with apikey.update.
	Active bool
	// NotBefore and ExpiresAt bound when the key authenticates; zero means
	// no bound.
	NotBefore, ExpiresAt time.Time
	// LastRotated is when apikey.rotate last gave the key a new secret.
	LastRotated time.Time
	// LastUsed is when the key last authenticated a call, and UseCount how
	// many calls it has authenticated (when usage tracking is on).
	LastUsed time.Time
	UseCount int64
	// Rate is the key's rate limit (Limit 0: none); Quota its calls
	// remaining, when HasQuota.
	Rate     RateLimit
	HasQuota bool
	Quota    Quota
	quotaGen int64
}

// usable reports whether k may authenticate at now.
func (k *Key) usable(now time.Time) bool {
	return k.Active && (k.NotBefore.IsZero() || !now.Before(k.NotBefore)) && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// NewKey describes a key to create. Scopes must be normalised already.
type NewKey struct {
	Account     string
	Scopes      scope.Scopes
	Comment     string
	Owner       string
	Name        string
	Description string
	NotBefore   time.Time
	ExpiresAt   time.Time
	Rate        RateLimit
	Quota       *Quota
	// By is the id of the key that asks for this one, if any: it must
	// still be a usable key of Account (active, valid, its holder active)
	// when the new key is written, and Check, if set, sees it as it then
	// is and may refuse with an error that CreateKey returns.
	By    string
	Check func(by Key) error
}

// CreateKey stores a new key of nk and returns it with its secret, which
// exists nowhere else: the store keeps only its digest.
func (s *Store) CreateKey(ctx context.Context, nk NewKey) (Key, string, error) {
	secret := NewSecret()
	k, err := s.createKey(ctx, nk, secret)
	return k, secret, err
}

func (s *Store) createKey(ctx context.Context, nk NewKey, secret string) (Key, error) {
	// Made before Batch, whose function may run twice.
	rec := &keyRecord{
		ID:      newKeyID(),
		Account: nk.Account,
		Digest:  digest(secret),
		Scopes:  nk.Scopes.Clone(),
		Comment: nk.Comment,
		Owner:   nk.Owner,

		Name:        nk.Name,
		Description: nk.Description,
		NotBefore:   nk.NotBefore,
		ExpiresAt:   nk.ExpiresAt,
		Rate:        nk.Rate,
		Created:     s.now().UTC().Truncate(time.Second),
	}
	if nk.Quota != nil {
		rec.HasQuota, rec.Quota = true, *nk.Quota
		rec.Quota.LastRefill = periodStart(rec.Quota.Refill, s.now())
	}
	err := s.batchKeys(ctx, func(tx kv.Tx) error {
		if err := stillKeyOf(tx, nk, s.now()); err != nil {
			return err
		}
		return putNewKey(tx, rec)
	})
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
	err := s.update(context.Background(), func(tx kv.Tx) error {
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

// putNewKey writes a new key and its index entries. A holder that does not
// exist in the key's account refuses it: a key is never written for a user
// or service account deleted while the request was under way.
func putNewKey(tx kv.Tx, rec *keyRecord) error {
	if _, gone := holderState(tx, rec.Account, rec.Owner); gone {
		return holderNotFound(rec.Owner)
	}
	// Key ids grow with time, so new keys land at the end of these two
	// buckets: pages filled before they split keep the file small.
	fillForAppends(tx.Bucket(bucketKeys))
	fillForAppends(tx.Bucket(bucketAccountKeys))
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
	if err := addKeyCount(tx, rec.Account, 1); err != nil {
		return err
	}
	if rec.Owner != "" {
		if err := tx.Bucket(bucketOwnerKeys).Put(accountKey(rec.Owner, rec.ID), nil); err != nil {
			return err
		}
		if err := addKeyCount(tx, rec.Owner, 1); err != nil {
			return err
		}
	}
	if err := putName(tx, rec, ""); err != nil {
		return err
	}
	return putRecord(tx, rec)
}

// holderNotFound is the error for a holder that does not exist.
func holderNotFound(owner string) error {
	switch {
	case strings.HasPrefix(owner, "sa:"):
		return ErrServiceAccountNotFound
	case strings.HasPrefix(owner, "user:"):
		return ErrUserNotFound
	}
	return ErrNotFound
}

// stillKeyOf checks, in the transaction that writes a new key, that the
// key nk.By that asked for it (when set) is still a usable key of
// nk.Account, and runs nk.Check on it as it now is: a key deleted, switched
// off, narrowed or whose holder or account went while its request was
// under way makes nothing beyond what it now is. Otherwise a key could be
// written into a deleted account, and come alive in a later account of
// the same name, or outlive the authority that made it.
func stillKeyOf(tx kv.Tx, nk NewKey, now time.Time) error {
	if nk.By == "" {
		return nil
	}
	rec, err := decodeRecord(tx.Bucket(bucketKeys).Get([]byte(nk.By)))
	if err != nil {
		return err
	}
	k := rec.key()
	if k.Account != nk.Account || !k.usable(now) {
		return ErrNotFound
	}
	if inactive, gone := holderState(tx, k.Account, k.Owner); inactive || gone {
		return ErrNotFound
	}
	if nk.Check != nil {
		return nk.Check(k)
	}
	return nil
}

// appendFill is the fill of pages in buckets whose keys mostly arrive in
// order.
const appendFill = 0.9

// fillSetter is a bucket of an engine that stores pages, and splits a full
// one in two (bbolt): told to, it leaves the first page fuller than half.
type fillSetter interface{ SetFillPercent(float64) }

// fillForAppends fills b's pages to appendFill, for keys that mostly
// arrive in order, on an engine that has pages.
func fillForAppends(b kv.Bucket) {
	if f, ok := b.(fillSetter); ok {
		f.SetFillPercent(appendFill)
	}
}

// putRecord writes rec. It and deleteRecord are the only writers of the
// keys bucket: each drops the key's cached state when tx commits.
// Both keep the key's entries in key_index (listindex.go).
func putRecord(tx kv.Tx, rec *keyRecord) error {
	dropOnCommit(tx, rec.ID)
	keys := tx.Bucket(bucketKeys)
	old, err := storedEntries(keys, rec.ID)
	if err != nil {
		return err
	}
	if err := reindex(tx, old, indexEntries(rec)); err != nil {
		return err
	}
	return keys.Put([]byte(rec.ID), rec.marshal())
}

func accountKey(account, id string) []byte {
	b := make([]byte, 0, len(account)+1+len(id))
	b = append(b, account...)
	b = append(b, 0)
	return append(b, id...)
}

// KeyBySecret returns the key whose secret is secret, or ErrNotFound (or
// ErrStale, as AuthKey). The secret is hashed before any lookup.
func (s *Store) KeyBySecret(secret string) (Key, error) {
	k, err := s.AuthKey(secret)
	if err != nil {
		return Key{}, err
	}
	return *k, nil
}

// AuthKey is KeyBySecret without the copy, for authenticating calls: the
// key it returns may be shared with other callers, and must not be changed.
//
// A node that cannot vouch for its copy of the data (kv.DB.Fresh) refuses
// with ErrStale before its cache, a copy of that copy, is asked.
func (s *Store) AuthKey(secret string) (*Key, error) {
	if err := s.db.Fresh(); err != nil {
		return nil, err
	}
	if !IsSecret(secret) {
		return nil, ErrNotFound
	}
	d := digest(secret)
	c, ok, gen := s.cache.get(d)
	if ok {
		s.stats.cacheHits.Add(1)
	} else {
		s.stats.cacheMisses.Add(1)
		var err error
		if c, err = s.bySecretDigest(d); err != nil {
			return nil, err
		}
		s.cache.put(c, gen)
	}
	// Switched off, expired, not yet valid, a rotated-out secret past its
	// grace period, an inactive or deleted holder: all fail as an unknown
	// key.
	if s.status(c, d) != StatusValid {
		return nil, ErrNotFound
	}
	return &c.key, nil
}

// bySecretDigest reads the state of the key whose current or rotated-out
// secret has digest d.
func (s *Store) bySecretDigest(d [32]byte) (*cached, error) {
	r := getKeyRead(s)
	r.d = d
	err := s.view(r.byDigest)
	c := r.state
	putKeyRead(r)
	return c, err
}

// KeyStatus says whether a secret authenticates, and if not, why.
type KeyStatus string

// Key statuses, as apikey.verify reports them.
const (
	StatusValid          KeyStatus = "valid"
	StatusNotFound       KeyStatus = "not_found"
	StatusInactive       KeyStatus = "inactive"
	StatusExpired        KeyStatus = "expired"
	StatusNotYetValid    KeyStatus = "not_yet_valid"
	StatusRotated        KeyStatus = "rotated"
	StatusHolderInactive KeyStatus = "holder_inactive"
)

// status says whether the key of state c authenticates the secret of
// digest d now.
func (s *Store) status(c *cached, d [32]byte) KeyStatus {
	k := &c.key
	if c.holderGone {
		return StatusNotFound
	}
	if !k.Active {
		return StatusInactive
	}
	until := c.until(d)
	if k.ExpiresAt.IsZero() && k.NotBefore.IsZero() && until.IsZero() { // most keys: no clock needed
		if c.holderInactive {
			return StatusHolderInactive
		}
		return StatusValid
	}
	now := s.now()
	switch {
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	case !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		return StatusNotYetValid
	case !until.IsZero() && !now.Before(until):
		return StatusRotated
	case c.holderInactive:
		return StatusHolderInactive
	}
	return StatusValid
}

// InspectSecret returns the key whose secret (current, or rotated out) is
// secret, and whether it authenticates now. An unknown secret is
// StatusNotFound with a zero Key. A node that cannot vouch for its copy of
// the data refuses with ErrStale, as AuthKey does.
func (s *Store) InspectSecret(secret string) (Key, KeyStatus, error) {
	if err := s.db.Fresh(); err != nil {
		return Key{}, "", err
	}
	if !IsSecret(secret) {
		return Key{}, StatusNotFound, nil
	}
	d := digest(secret)
	c, err := s.bySecretDigest(d)
	if errors.Is(err, ErrNotFound) {
		return Key{}, StatusNotFound, nil
	} else if err != nil {
		return Key{}, "", err
	}
	status := s.status(c, d)
	if status == StatusNotFound { // a key whose holder is gone: nobody's
		return Key{}, status, nil
	}
	return c.key, status, nil
}

// Key returns the key of account that ref names: its public id or its
// secret. A key of another account is ErrNotFound, as is a ref of neither shape.
func (s *Store) Key(account, ref string) (Key, error) {
	r := getKeyRead(s)
	r.account, r.ref = account, ref
	err := s.view(r.byRef)
	var k Key
	if err == nil {
		k = r.rec.key()
		s.current(&k)
	}
	putKeyRead(r)
	return k, err
}

// keyRead is one read of Key or bySecretDigest, the store's most frequent
// reads, with its transaction functions bound once. A closure handed to
// the engine, an interface, escapes, and with it what it captures: a
// read would allocate them every time. keyReads keeps them instead.
type keyRead struct {
	s            *Store
	account, ref string   // byRef's question
	d            [32]byte // byDigest's
	rec          keyRecord
	state        *cached

	byRef, byDigest func(kv.Tx) error
}

var keyReads = sync.Pool{New: func() any {
	r := new(keyRead)
	r.byRef, r.byDigest = r.readByRef, r.readByDigest
	return r
}}

func getKeyRead(s *Store) *keyRead {
	r := keyReads.Get().(*keyRead)
	r.s = s
	return r
}

// putKeyRead returns r to the pool, holding nothing of its read.
func putKeyRead(r *keyRead) {
	*r = keyRead{byRef: r.byRef, byDigest: r.byDigest}
	keyReads.Put(r)
}

func (r *keyRead) readByRef(tx kv.Tx) error {
	var err error
	r.rec, err = r.s.findKey(tx, r.account, r.ref)
	return err
}

func (r *keyRead) readByDigest(tx kv.Tx) error {
	var err error
	r.state, err = readState(tx, r.d[:])
	return err
}

// Keys returns every key of account, oldest first.
func (s *Store) Keys(account string) ([]Key, error) {
	keys := []Key{}
	prefix := accountKey(account, "")
	err := s.view(func(tx kv.Tx) error {
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
	for i := range keys {
		s.current(&keys[i])
	}
	return keys, err
}

// UpdateScopes replaces the scopes of account's key ref with what change
// returns, in one transaction: change sees the stored key and may refuse
// with an error, which UpdateScopes returns unchanged and writes nothing.
// The scopes change returns must be normalised. When they equal the stored
// ones, nothing is written.
func (s *Store) UpdateScopes(ctx context.Context, account, ref string, change func(Key) (scope.Scopes, error)) (Key, error) {
	k, _, err := s.editKey(ctx, account, ref, func(_ kv.Tx, rec *keyRecord) error {
		scopes, err := change(rec.key())
		if err != nil {
			return err
		}
		rec.Scopes = scopes.Clone()
		return nil
	})
	return k, err
}

// editKey applies edit to account's key ref in one transaction and returns
// the key as it then is, and whether anything changed. edit works on a copy
// of the record and may refuse with an error, which editKey returns having
// written nothing; an edit that changes nothing writes nothing either, not
// even an empty commit.
func (s *Store) editKey(ctx context.Context, account, ref string, edit func(tx kv.Tx, rec *keyRecord) error) (Key, bool, error) {
	var out Key
	err := s.batchKeys(ctx, func(tx kv.Tx) error {
		rec, err := s.findKey(tx, account, ref)
		if err != nil {
			return err
		}
		next := rec
		next.Scopes = rec.Scopes.Clone()
		if err := edit(tx, &next); err != nil {
			return err
		}
		if string(next.marshal()) == string(rec.marshal()) {
			out = rec.key()
			return errUnchanged
		}
		if err := putRecord(tx, &next); err != nil {
			return err
		}
		out = next.key()
		return nil
	})
	changed := err == nil
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	if err != nil {
		return Key{}, false, err
	}
	s.current(&out)
	return out, changed, nil
}

// DeleteKey deletes account's key ref, in one transaction with check, which
// sees the stored key and may refuse with an error that DeleteKey returns.
func (s *Store) DeleteKey(ctx context.Context, account, ref string, check func(Key) error) error {
	var id string
	err := s.batchKeys(ctx, func(tx kv.Tx) error {
		rec, err := s.findKey(tx, account, ref)
		if err != nil {
			return err
		}
		if err := check(rec.key()); err != nil {
			return err
		}
		id = rec.ID
		return deleteRecord(tx, &rec)
	})
	if err != nil {
		return err
	}
	s.limits.forget(id)
	return nil
}

// deleteRecord removes a key and its index entries.
func deleteRecord(tx kv.Tx, rec *keyRecord) error {
	dropOnCommit(tx, rec.ID)
	old, err := storedEntries(tx.Bucket(bucketKeys), rec.ID)
	if err != nil {
		return err
	}
	if err := reindex(tx, old, nil); err != nil {
		return err
	}
	if err := tx.Bucket(bucketDigests).Delete(rec.Digest[:]); err != nil {
		return err
	}
	if err := tx.Bucket(bucketAccountKeys).Delete(accountKey(rec.Account, rec.ID)); err != nil {
		return err
	}
	if err := addKeyCount(tx, rec.Account, -1); err != nil {
		return err
	}
	if rec.Owner != "" {
		if err := tx.Bucket(bucketOwnerKeys).Delete(accountKey(rec.Owner, rec.ID)); err != nil {
			return err
		}
		if err := addKeyCount(tx, rec.Owner, -1); err != nil {
			return err
		}
	}
	if rec.Name != "" {
		if err := tx.Bucket(bucketKeyNames).Delete(nameKey(rec.Account, rec.Owner, rec.Name)); err != nil {
			return err
		}
	}
	if !rec.PrevUntil.IsZero() {
		if err := tx.Bucket(bucketDigests).Delete(rec.PrevDigest[:]); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketKeys).Delete([]byte(rec.ID))
}

func nameKey(account, owner, name string) []byte {
	return append(accountKey(account, owner), append([]byte{0}, name...)...)
}

// putName indexes rec's name, dropping old, its previous name, if different.
func putName(tx kv.Tx, rec *keyRecord, old string) error {
	names := tx.Bucket(bucketKeyNames)
	if old == rec.Name {
		return nil
	}
	if old != "" {
		if err := names.Delete(nameKey(rec.Account, rec.Owner, old)); err != nil {
			return err
		}
	}
	if rec.Name == "" {
		return nil
	}
	k := nameKey(rec.Account, rec.Owner, rec.Name)
	if names.Get(k) != nil {
		return ErrKeyNameTaken
	}
	return names.Put(k, []byte(rec.ID))
}

// KeyIDByName returns the id of the key named name among the keys of
// account held by owner ("" for the account's own keys).
func (s *Store) KeyIDByName(account, owner, name string) (string, error) {
	var id string
	err := s.view(func(tx kv.Tx) error {
		v := tx.Bucket(bucketKeyNames).Get(nameKey(account, owner, name))
		if v == nil {
			return ErrNotFound
		}
		id = string(v)
		return nil
	})
	return id, err
}

// KeyChange is what apikey.update may change; nil fields stay as they are.
type KeyChange struct {
	Name, Description, Comment *string
	Active                     *bool
	NotBefore, ExpiresAt       *time.Time // a zero time clears the bound
	Rate                       *RateLimit // Limit 0 removes the rate limit
	Quota                      **Quota    // a nil *Quota removes the quota
}

// UpdateKey applies the change that change returns to account's key ref, in
// one transaction; change sees the stored key and may refuse with an error,
// which UpdateKey returns, writing nothing. A name taken by another key of
// the same holder is ErrKeyNameTaken.
func (s *Store) UpdateKey(ctx context.Context, account, ref string, change func(Key) (KeyChange, error)) (Key, error) {
	var c KeyChange
	k, changed, err := s.editKey(ctx, account, ref, func(tx kv.Tx, next *keyRecord) error {
		var err error
		if c, err = change(next.key()); err != nil {
			return err
		}
		oldName := next.Name
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&next.Name, c.Name)
		set(&next.Description, c.Description)
		set(&next.Comment, c.Comment)
		if c.Active != nil {
			next.Inactive = !*c.Active
		}
		if c.NotBefore != nil {
			next.NotBefore = *c.NotBefore
		}
		if c.ExpiresAt != nil {
			next.ExpiresAt = *c.ExpiresAt
		}
		if c.Rate != nil {
			next.Rate = *c.Rate
		}
		if c.Quota != nil {
			next.HasQuota, next.Quota, next.QuotaGen = *c.Quota != nil, Quota{}, next.QuotaGen+1
			if *c.Quota != nil {
				next.Quota = **c.Quota
				next.Quota.LastRefill = periodStart(next.Quota.Refill, s.now())
			}
		}
		return putName(tx, next, oldName)
	})
	// Only a new rate limit drops a bucket. A new quota has a newer
	// generation, which replaces memory's at the next call; calls spent
	// before count against the quota they were spent from.
	if changed && c.Rate != nil {
		s.limits.forgetBucket(k.ID)
	}
	return k, err
}

// RotateKey gives account's key ref a new secret, returned with the key.
// The old secret keeps working for retain (0: not at all), then never again;
// a secret rotated out earlier stops at once. check sees the stored key
// first and may refuse.
func (s *Store) RotateKey(ctx context.Context, account, ref string, retain time.Duration, check func(Key) error) (Key, string, error) {
	secret := NewSecret()
	newDigest := digest(secret)
	now := s.now().UTC().Truncate(time.Second)
	var out Key
	err := s.batchKeys(ctx, func(tx kv.Tx) error {
		rec, err := s.findKey(tx, account, ref)
		if err != nil {
			return err
		}
		if err := check(rec.key()); err != nil {
			return err
		}
		digests := tx.Bucket(bucketDigests)
		if !rec.PrevUntil.IsZero() { // an earlier rotation's secret: gone now
			if err := digests.Delete(rec.PrevDigest[:]); err != nil {
				return err
			}
		}
		rec.PrevDigest, rec.PrevUntil = [32]byte{}, time.Time{}
		if retain > 0 {
			rec.PrevDigest, rec.PrevUntil = rec.Digest, now.Add(retain)
		} else if err := digests.Delete(rec.Digest[:]); err != nil {
			return err
		}
		if digests.Get(newDigest[:]) != nil {
			return fmt.Errorf("%w: secret already in use", ErrConflict)
		}
		if err := digests.Put(newDigest[:], []byte(rec.ID)); err != nil {
			return err
		}
		rec.Digest, rec.LastRotated = newDigest, now
		if err := putRecord(tx, &rec); err != nil {
			return err
		}
		out = rec.key()
		return nil
	})
	if err != nil {
		return Key{}, "", err
	}
	s.current(&out)
	return out, secret, nil
}

// errUnchanged ends a write transaction that found nothing to change.
var errUnchanged = errors.New("store: unchanged")

// findKey resolves ref (public id or secret) within account. A secret
// rotated out names its key only while it still authenticates, in its
// grace period.
func (s *Store) findKey(tx kv.Tx, account, ref string) (keyRecord, error) {
	var rec keyRecord
	var err error
	switch {
	case IsSecret(ref):
		d := digest(ref)
		rec, err = recordByDigest(tx, d[:])
		if err == nil && d != rec.Digest && (rec.PrevUntil.IsZero() || !s.now().Before(rec.PrevUntil)) {
			return keyRecord{}, ErrNotFound
		}
	case IsKeyID(ref):
		rec, err = decodeRecord(tx.Bucket(bucketKeys).Get(lookupKey(ref)))
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

func recordByDigest(tx kv.Tx, d []byte) (keyRecord, error) {
	id := tx.Bucket(bucketDigests).Get(d)
	if id == nil {
		return keyRecord{}, ErrNotFound
	}
	return decodeRecord(tx.Bucket(bucketKeys).Get(id))
}

// lookupKey is s as a key to look up, not copied: the engine only reads
// it. Copying would cost an allocation, as a buffer on the stack escapes
// through the engine's interface.
func lookupKey(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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
	err := s.view(func(tx kv.Tx) error {
		n = tx.Bucket(bucketKeys).KeyN()
		return nil
	})
	return n, err
}
