package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// User is a person who logs in with a name and password to get keys. Each
// user belongs to one account, and logs in with its login name,
// "<name>@<account>": names are unique within an account only, and one
// account's users tell nothing of another's. A user stored by an older
// version, under a name without '@', is a legacy global user: its login
// name is its name, and it is found both by that and within its account.
type User struct {
	Name    string // within the account
	Account string
	Login   string // what the user logs in with; keys it holds have Owner UserOwner(Login)
	Created time.Time
}

// LoginName is the login name of user name of account.
func LoginName(name, account string) string { return name + "@" + account }

// userRecord is a User as stored under its login name: version byte (1),
// name, account, PHC password hash, created (Unix seconds). A legacy
// record's name is its login name.
type userRecord struct {
	Name    string
	Account string
	Hash    string
	Created time.Time
	login   string // the key it is stored under; not itself stored
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

func (r *userRecord) user() User {
	return User{Name: r.Name, Account: r.Account, Login: r.login, Created: r.Created}
}

// UserOwner is the Owner of keys that the user of login name login holds
// ("user:alice@acme", or "user:alice" for a legacy user).
func UserOwner(login string) string { return "user:" + login }

// LockedError is returned by Login while a login name is locked for the
// client's source address, or for every address, after too many failed
// logins.
type LockedError struct {
	Until      time.Time
	RetryAfter time.Duration
}

func (e *LockedError) Error() string {
	return "store: login locked until " + e.Until.Format(time.RFC3339)
}

// CreateUser creates user name in account with password pw, hashed with
// argon2id in a capped slot. The user logs in as LoginName(name, account).
// A name taken in another account does not conflict; neither name nor
// account may hold '@'.
func (s *Store) CreateUser(ctx context.Context, account, name, pw string) (User, error) {
	if strings.Contains(name, "@") || strings.Contains(account, "@") {
		return User{}, fmt.Errorf("store: user name %q or account %q holds '@'", name, account)
	}
	hash, err := s.HashPassword(ctx, pw)
	if err != nil {
		return User{}, err
	}
	login := LoginName(name, account)
	rec := userRecord{Name: name, Account: account, Hash: hash, Created: s.now().UTC().Truncate(time.Second), login: login}
	err = s.batch(ctx, func(tx kv.Tx) error {
		if _, err := findAccount(tx, account); err != nil {
			return err
		}
		switch _, err := findUser(tx, account, name); {
		case err == nil:
			return ErrUserExists // the name, or a legacy user of it, in this account
		case !errors.Is(err, ErrUserNotFound):
			return err
		}
		return tx.Bucket(bucketUsers).Put([]byte(login), rec.marshal())
	})
	if err != nil {
		return User{}, err
	}
	s.logins.clear(login) // failures guessed at the name before it existed
	return rec.user(), nil
}

// UserByName returns user name of account.
func (s *Store) UserByName(account, name string) (User, error) {
	rec, err := s.userIn(account, name)
	if err != nil {
		return User{}, err
	}
	return rec.user(), nil
}

// Users returns the users of account, by login name.
func (s *Store) Users(account string) ([]User, error) {
	out := []User{}
	err := s.view(func(tx kv.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var rec userRecord
			if err := rec.unmarshal(v); err != nil {
				return err
			}
			rec.login = string(k)
			if rec.Account == account {
				out = append(out, rec.user())
			}
			return nil
		})
	})
	return out, err
}

// SetPassword replaces the password of user name in account, and clears
// the user's login throttling: the failures counted were guesses at the old
// password.
func (s *Store) SetPassword(ctx context.Context, account, name, pw string) error {
	if _, err := s.userIn(account, name); err != nil {
		return err // fail fast, before hashing
	}
	hash, err := s.HashPassword(ctx, pw)
	if err != nil {
		return err
	}
	var login string
	err = s.batch(ctx, func(tx kv.Tx) error {
		rec, err := findUser(tx, account, name)
		if err != nil {
			return err
		}
		rec.Hash = hash
		login = rec.login
		return tx.Bucket(bucketUsers).Put([]byte(rec.login), rec.marshal())
	})
	if err != nil {
		return err
	}
	s.logins.clear(login)
	return nil
}

// UnlockUser clears the login throttling of user name of account: every
// source address may try again at once. It returns the user.
func (s *Store) UnlockUser(account, name string) (User, error) {
	rec, err := s.userIn(account, name)
	if err != nil {
		return User{}, err
	}
	s.logins.clear(rec.login)
	return rec.user(), nil
}

// DeleteUser deletes user name of account and every key the user holds, in
// one transaction with check, which sees each of those keys first and may
// refuse with an error that DeleteUser returns, having written nothing.
func (s *Store) DeleteUser(ctx context.Context, account, name string, check func(Key) error) error {
	var login string
	err := s.batch(ctx, func(tx kv.Tx) error {
		rec, err := findUser(tx, account, name)
		if err != nil {
			return err
		}
		login = rec.login
		if err := checkOwnerKeys(tx, UserOwner(rec.login), check); err != nil {
			return err
		}
		if err := deleteOwnerKeys(tx, UserOwner(rec.login)); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Delete([]byte(rec.login))
	})
	if err != nil {
		return err
	}
	s.logins.clear(login)
	return nil
}

// KeysOf returns the keys that owner holds in account, oldest first.
func (s *Store) KeysOf(account, owner string) ([]Key, error) {
	keys := []Key{}
	prefix := accountKey(owner, "")
	err := s.view(func(tx kv.Tx) error {
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
	err := s.view(func(tx kv.Tx) error {
		var err error
		rec, err = findUser(tx, account, name)
		return err
	})
	return rec, err
}

// findUser returns user name of account: the one stored under its login
// name, or a legacy user of that name that belongs to account. A user of
// another account is ErrUserNotFound, as is one that does not exist.
func findUser(tx kv.Tx, account, name string) (userRecord, error) {
	if strings.Contains(name, "@") {
		return userRecord{}, ErrUserNotFound
	}
	for _, login := range []string{LoginName(name, account), name} {
		rec, found, err := getUser(tx, login)
		if err != nil || found && rec.Account == account {
			return rec, err
		}
	}
	return userRecord{}, ErrUserNotFound
}

// getUser reads the user stored under login.
func getUser(tx kv.Tx, login string) (userRecord, bool, error) {
	var rec userRecord
	v := tx.Bucket(bucketUsers).Get(lookupKey(login))
	if v == nil {
		return rec, false, nil
	}
	if err := rec.unmarshal(v); err != nil {
		return rec, false, err
	}
	rec.login = login
	return rec, true, nil
}

// findLogin returns the user that logs in as login: the user stored under
// it, or, for "<name>@<account>", a legacy user name of account.
func findLogin(tx kv.Tx, login string) (userRecord, bool, error) {
	rec, found, err := getUser(tx, login)
	if err != nil || found {
		return rec, found, err
	}
	name, account, ok := strings.Cut(login, "@")
	if !ok || name == "" || strings.Contains(account, "@") {
		return rec, false, nil
	}
	rec, found, err = getUser(tx, name)
	if err != nil || !found || rec.Account != account || rec.login != rec.Name {
		return userRecord{}, false, err
	}
	return rec, true, nil
}

// deleteOwnerKeys deletes every key owner holds.
func deleteOwnerKeys(tx kv.Tx, owner string) error {
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

// Login checks login name login and password pw for a client at source
// (its address). The guess is counted before any hashing, and the lock
// checked again after it, so that no more guesses are ever evaluated than
// the throttle allows, however many arrive at once:
//
//   - per login name and source, MaxLoginFailures failures in a row throttle
//     that source: each further guess must wait, 1 minute after the limit,
//     then 2, 4, 8, up to LockoutDuration; other sources are not affected;
//   - per login name, MaxUserLoginFailures failures from all sources within
//     LockoutDuration lock the name for every source for LockoutDuration.
//
// A throttled guess fails with *LockedError, without hashing; so does the
// guess whose failure reaches a limit. Guesses in flight count toward the
// limits: one that could pass them fails with ErrBusy, without hashing. A
// success clears its source's count; SetPassword, DeleteUser and
// UnlockUser clear the name's. Every guess evaluated, for a user that
// exists or not, costs one argon2id run. A wrong name and a wrong password
// both give ErrLoginFailed. A guess whose ctx ends before a hashing slot is
// free fails with ErrBusy, and counts neither way. A node that cannot vouch
// for its copy of the data refuses every guess with ErrStale, unhashed and
// uncounted.
func (s *Store) Login(ctx context.Context, login, pw, source string) (User, error) {
	if err := s.db.Fresh(); err != nil {
		return User{}, err
	}
	var rec userRecord
	found := false
	err := s.view(func(tx kv.Tx) error {
		var err error
		rec, found, err = findLogin(tx, login)
		return err
	})
	if err != nil {
		return User{}, err
	}
	name := login // an unknown name is throttled as a known one is
	if found {
		name = rec.login // one count per user, by whichever name it is tried
	}
	t, err := s.logins.begin(name, source, s.now())
	if err != nil {
		return User{}, err
	}
	release, err := s.hashSlot(ctx)
	if err != nil {
		s.logins.abandon(t)
		return User{}, err
	}
	hash := dummyHash()
	if found {
		hash = rec.Hash
	}
	ok, err := verifyPassword(hash, pw)
	release()
	if err != nil {
		s.logins.abandon(t)
		return User{}, err
	}
	if err := s.logins.end(t, ok && found, s.now()); err != nil {
		return User{}, err
	}
	if !ok || !found {
		return User{}, ErrLoginFailed
	}
	return rec.user(), nil
}

// loginGuard throttles logins per login name and source address, and per
// login name, in memory. A guess is counted in flight from before it is
// hashed until it is settled, and guesses in flight count toward the
// limits, so that no more guesses are evaluated than the limits allow,
// however many arrive at once.
//
// On an engine that many nodes share, each node counts the guesses it
// evaluates and keeps its share of both limits: with N nodes alive,
// MaxLoginFailures/N and MaxUserLoginFailures/N (at least 1 each). A lock
// holds on the node that set it; the others lock once their own shares are
// spent, so the guesses evaluated across the cluster before every node
// refuses stay within the configured limits (N, if a limit is less than
// N).
type loginGuard struct {
	mu        sync.Mutex
	max       int           // failures in a row per name and source before throttling
	userMax   int           // failures per name within lockout, from all sources
	lockout   time.Duration // the longest delay, and the name's lock
	nodes     func() int    // the nodes sharing the engine; nil for one node
	users     map[string]*userLogins
	tracked   int       // sources tracked, over all names
	lastSweep time.Time // a sweep runs at most once a second
}

type userLogins struct {
	failures, inflight int
	windowEnd          time.Time // failures counts from windowEnd-lockout
	lockedUntil        time.Time // locked for every source
	sources            map[string]*sourceLogins
}

type sourceLogins struct {
	failures, inflight int // failures in a row
	lockedUntil        time.Time
}

// loginTicket is a guess counted by begin, for end.
type loginTicket struct {
	name, source string
	u            *userLogins
	p            *sourceLogins
}

// maxTrackedSources bounds the guard's memory; past it, names and sources
// that are neither locked nor in flight are forgotten.
const maxTrackedSources = 100_000

// firstLoginDelay is the wait after MaxLoginFailures failures in a row from
// one source; it doubles with each further failure, up to the lockout.
const firstLoginDelay = time.Minute

// limits are max and userMax as this node keeps them: its share on a
// shared engine.
func (g *loginGuard) limits() (pairMax, userMax int) {
	if g.nodes == nil {
		return g.max, g.userMax
	}
	n := g.nodes()
	return int(share(int64(g.max), n)), int(share(int64(g.userMax), n))
}

func locked(until, now time.Time) *LockedError {
	return &LockedError{Until: until, RetryAfter: until.Sub(now)}
}

// begin counts a guess at name from source as in flight, before it is
// evaluated. It refuses the guess with *LockedError while the name or the
// pair is locked, and with ErrBusy while the guesses in flight could reach
// a limit: once MaxLoginFailures have failed in a row, one guess at a time.
func (g *loginGuard) begin(name, source string, now time.Time) (loginTicket, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	u := g.users[name]
	if u == nil {
		g.sweep(now)
		u = &userLogins{sources: map[string]*sourceLogins{}}
		g.users[name] = u
	}
	if now.Before(u.lockedUntil) {
		return loginTicket{}, locked(u.lockedUntil, now)
	}
	if !now.Before(u.windowEnd) {
		u.failures, u.windowEnd = 0, now.Add(g.lockout)
	}
	p := u.sources[source]
	if p == nil {
		p = &sourceLogins{}
		u.sources[source] = p
		g.tracked++
	}
	if now.Before(p.lockedUntil) {
		return loginTicket{}, locked(p.lockedUntil, now)
	}
	pairMax, userMax := g.limits()
	pairFull := p.failures+p.inflight >= pairMax
	if p.failures >= pairMax { // throttled, and the wait is over: one more
		pairFull = p.inflight > 0
	}
	if pairFull || u.failures+u.inflight >= userMax {
		return loginTicket{}, ErrBusy
	}
	p.inflight++
	u.inflight++
	return loginTicket{name: name, source: source, u: u, p: p}, nil
}

// end settles a guess counted by begin. A wrong one counts as a failure,
// and when it reaches a limit it locks: the lock is then its reply. A right
// one is refused after all if the name was locked by other guesses, or
// cleared (a new password, say), while it was hashed; otherwise it clears
// its source's failures.
func (g *loginGuard) end(t loginTicket, ok bool, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	t.p.inflight--
	t.u.inflight--
	if g.users[t.name] != t.u || t.u.sources[t.source] != t.p {
		if ok {
			return ErrLoginFailed // the hash checked may be stale
		}
		return nil
	}
	u, p := t.u, t.p
	if !ok {
		p.failures++
		u.failures++
		var err error
		pairMax, userMax := g.limits()
		if p.failures >= pairMax {
			delay := g.lockout
			if shift := p.failures - pairMax; shift < 20 && firstLoginDelay<<shift < delay {
				delay = firstLoginDelay << shift
			}
			p.lockedUntil = now.Add(delay)
			err = locked(p.lockedUntil, now)
		}
		if u.failures >= userMax {
			u.lockedUntil = now.Add(g.lockout)
			err = locked(u.lockedUntil, now)
		}
		return err
	}
	if now.Before(u.lockedUntil) {
		return locked(u.lockedUntil, now)
	}
	p.failures, p.lockedUntil = 0, time.Time{}
	if p.inflight == 0 {
		delete(u.sources, t.source)
		g.tracked--
	}
	return nil
}

// abandon settles a guess counted by begin that was never evaluated.
func (g *loginGuard) abandon(t loginTicket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t.p.inflight--
	t.u.inflight--
}

// clear forgets every count and lock of name.
func (g *loginGuard) clear(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.users[name]; u != nil {
		g.tracked -= len(u.sources)
		delete(g.users, name)
	}
}

// sweep forgets, when the guard tracks too many sources, the sources
// neither locked nor in flight, and names left with nothing. Called with
// g.mu held.
func (g *loginGuard) sweep(now time.Time) {
	if g.tracked < maxTrackedSources && len(g.users) < maxTrackedSources || now.Sub(g.lastSweep) < time.Second {
		return
	}
	g.lastSweep = now
	for name, u := range g.users {
		for src, p := range u.sources {
			if p.inflight == 0 && !now.Before(p.lockedUntil) {
				delete(u.sources, src)
				g.tracked--
			}
		}
		if len(u.sources) == 0 && u.inflight == 0 && !now.Before(u.lockedUntil) {
			delete(g.users, name)
		}
	}
}
