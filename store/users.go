package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// User is a person who logs in with a name and password to get keys. User
// names are global (a login names no account) and each user belongs to one
// account.
type User struct {
	Name    string
	Account string
	Created time.Time
}

// userRecord is a User as stored: version byte (1), name, account, PHC
// password hash, created (Unix seconds).
type userRecord struct {
	Name    string
	Account string
	Hash    string
	Created time.Time
}

func (r *userRecord) marshal() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(r.Name)+len(r.Account)+len(r.Hash))
	b = append(b, recordVersion)
	b = appendString(b, r.Name)
	b = appendString(b, r.Account)
	b = appendString(b, r.Hash)
	return binary.AppendVarint(b, r.Created.Unix())
}

func (r *userRecord) unmarshal(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: user format version %d", errCorrupt, v)
	}
	r.Name = d.string()
	r.Account = d.string()
	r.Hash = d.string()
	r.Created = time.Unix(d.varint(), 0).UTC()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

func (r *userRecord) user() User { return User{Name: r.Name, Account: r.Account, Created: r.Created} }

// UserOwner is the Owner of keys that user name holds.
func UserOwner(name string) string { return "user:" + name }

var (
	// ErrUserNotFound is returned for a user that does not exist in the
	// account asked about. It is also an ErrNotFound.
	ErrUserNotFound = fmt.Errorf("%w: no such user", ErrNotFound)
	// ErrUserExists is returned when a user name is taken, in any account.
	// It is also an ErrConflict.
	ErrUserExists = fmt.Errorf("%w: user exists", ErrConflict)
	// ErrLoginFailed is returned by Login for a wrong name or password,
	// alike.
	ErrLoginFailed = errors.New("store: login failed")
	// ErrBusy is returned when no password-hashing slot came free before
	// the caller's context ended.
	ErrBusy = errors.New("store: too many logins at once")
)

// LockedError is returned by Login while a user name is locked out after
// too many failed logins.
type LockedError struct {
	Until      time.Time
	RetryAfter time.Duration
}

func (e *LockedError) Error() string {
	return "store: login locked until " + e.Until.Format(time.RFC3339)
}

// CreateUser creates user name in account with password pw, hashed with
// argon2id in a capped slot.
func (s *Store) CreateUser(ctx context.Context, account, name, pw string) (User, error) {
	hash, err := s.HashPassword(ctx, pw)
	if err != nil {
		return User{}, err
	}
	rec := userRecord{Name: name, Account: account, Hash: hash, Created: s.now().UTC().Truncate(time.Second)}
	err = s.batch(func(tx *bolt.Tx) error {
		if _, err := findAccount(tx, account); err != nil {
			return err
		}
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(name)) != nil {
			return ErrUserExists
		}
		return users.Put([]byte(name), rec.marshal())
	})
	if err != nil {
		return User{}, err
	}
	return rec.user(), nil
}

// Users returns the users of account, by name.
func (s *Store) Users(account string) ([]User, error) {
	out := []User{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			var rec userRecord
			if err := rec.unmarshal(v); err != nil {
				return err
			}
			if rec.Account == account {
				out = append(out, rec.user())
			}
			return nil
		})
	})
	return out, err
}

// SetPassword replaces the password of user name in account.
func (s *Store) SetPassword(ctx context.Context, account, name, pw string) error {
	if _, err := s.userIn(account, name); err != nil {
		return err // fail fast, before hashing
	}
	hash, err := s.HashPassword(ctx, pw)
	if err != nil {
		return err
	}
	return s.batch(func(tx *bolt.Tx) error {
		rec, err := findUser(tx, account, name)
		if err != nil {
			return err
		}
		rec.Hash = hash
		return tx.Bucket(bucketUsers).Put([]byte(name), rec.marshal())
	})
}

// DeleteUser deletes user name of account and every key the user holds, in
// one transaction with check, which sees each of those keys first and may
// refuse with an error that DeleteUser returns, having written nothing.
func (s *Store) DeleteUser(account, name string, check func(Key) error) error {
	return s.batch(func(tx *bolt.Tx) error {
		if _, err := findUser(tx, account, name); err != nil {
			return err
		}
		if err := checkOwnerKeys(tx, UserOwner(name), check); err != nil {
			return err
		}
		if err := deleteOwnerKeys(tx, UserOwner(name)); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Delete([]byte(name))
	})
}

// KeysOf returns the keys that owner holds in account, oldest first.
func (s *Store) KeysOf(account, owner string) ([]Key, error) {
	keys := []Key{}
	prefix := accountKey(owner, "")
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOwnerKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rec, err := decodeRecord(tx.Bucket(bucketKeys).Get(k[len(prefix):]))
			if err != nil {
				return err
			}
			if rec.Account == account {
				keys = append(keys, rec.key())
			}
		}
		return nil
	})
	return keys, err
}

func (s *Store) userIn(account, name string) (userRecord, error) {
	var rec userRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = findUser(tx, account, name)
		return err
	})
	return rec, err
}

// findUser returns user name if it belongs to account; a user of another
// account is ErrUserNotFound, as is one that does not exist.
func findUser(tx *bolt.Tx, account, name string) (userRecord, error) {
	var rec userRecord
	v := tx.Bucket(bucketUsers).Get([]byte(name))
	if v == nil {
		return rec, ErrUserNotFound
	}
	if err := rec.unmarshal(v); err != nil {
		return rec, err
	}
	if rec.Account != account {
		return userRecord{}, ErrUserNotFound
	}
	return rec, nil
}

// deleteOwnerKeys deletes every key owner holds.
func deleteOwnerKeys(tx *bolt.Tx, owner string) error {
	prefix := accountKey(owner, "")
	var ids [][]byte
	c := tx.Bucket(bucketOwnerKeys).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, bytes.Clone(k[len(prefix):]))
	}
	for _, id := range ids {
		rec, err := decodeRecord(tx.Bucket(bucketKeys).Get(id))
		if err != nil {
			return err
		}
		if err := deleteRecord(tx, &rec); err != nil {
			return err
		}
	}
	return nil
}

// Login checks name and password pw. Every failure, for a user that exists
// or not, costs one argon2id run and counts toward a lockout of that name:
// after MaxLoginFailures in a row it fails with *LockedError for
// LockoutDuration, without hashing. A wrong name and a wrong password both
// give ErrLoginFailed.
func (s *Store) Login(ctx context.Context, name, pw string) (User, error) {
	if until, locked := s.logins.locked(name, s.now()); locked {
		return User{}, &LockedError{Until: until, RetryAfter: until.Sub(s.now())}
	}
	release, err := s.hashSlot(ctx)
	if err != nil {
		return User{}, err
	}
	defer release()
	var rec userRecord
	found := false
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		return rec.unmarshal(v)
	})
	if err != nil {
		return User{}, err
	}
	hash := dummyHash()
	if found {
		hash = rec.Hash
	}
	ok, err := verifyPassword(hash, pw)
	if err != nil {
		return User{}, err
	}
	if !ok || !found {
		if until, locked := s.logins.fail(name, s.now()); locked {
			return User{}, &LockedError{Until: until, RetryAfter: until.Sub(s.now())}
		}
		return User{}, ErrLoginFailed
	}
	s.logins.succeed(name)
	return rec.user(), nil
}

// loginGuard counts consecutive failed logins per user name, in memory.
type loginGuard struct {
	mu       sync.Mutex
	max      int
	lockout  time.Duration
	failures map[string]*loginFailures
}

type loginFailures struct {
	n           int
	lockedUntil time.Time
}

// maxTrackedNames bounds the guard's memory; past it, names that are not
// locked are forgotten first.
const maxTrackedNames = 100_000

func (g *loginGuard) locked(name string, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.failures[name]
	if f == nil {
		return time.Time{}, false
	}
	if now.Before(f.lockedUntil) {
		return f.lockedUntil, true
	}
	if !f.lockedUntil.IsZero() { // the lock ran out: start afresh
		delete(g.failures, name)
	}
	return time.Time{}, false
}

// fail records a failure and reports whether it locked the name.
func (g *loginGuard) fail(name string, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.failures[name]
	if f == nil {
		if len(g.failures) >= maxTrackedNames {
			for k, v := range g.failures {
				if !now.Before(v.lockedUntil) {
					delete(g.failures, k)
				}
			}
		}
		f = &loginFailures{}
		g.failures[name] = f
	}
	f.n++
	if f.n >= g.max {
		f.lockedUntil = now.Add(g.lockout)
		return f.lockedUntil, true
	}
	return time.Time{}, false
}

func (g *loginGuard) succeed(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, name)
}
