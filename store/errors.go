package store

import (
	"errors"
	"fmt"

	"github.com/apikeyd/apikeyd/store/kv"
)

// The errors the store returns, by when they occur. Each kind of failure
// is one sentinel, to be tested with errors.Is; the more specific ones
// wrap ErrNotFound or ErrConflict, so a caller that only needs "not there"
// or "clashes" tests for those. Two failures carry values and are types,
// declared beside the code that fills them in: *LimitError (limits.go,
// also an ErrLimited) and *LockedError (users.go).

// Opening and checking a file.
var (
	// ErrLocked is returned by Open when another process holds the file,
	// and did not let go within Options.LockTimeout.
	ErrLocked = errors.New("store: database file is in use by another process")

	// ErrSchema is returned by Open for a file of an unknown schema version.
	ErrSchema = errors.New("store: unsupported schema version")

	// ErrInconsistent is returned by CheckKeys and CheckFile for a file
	// whose keys and indexes disagree, or that bbolt finds damaged; the
	// wrapping error says what is wrong.
	ErrInconsistent = errors.New("store: inconsistent keys")

	// ErrNotFile is returned, wrapped, by what only a data file has (Size,
	// WriteTo) on a store over another engine (OpenDB).
	ErrNotFile = errors.New("store: the engine is not a data file")
)

// ErrStale is returned, wrapped, by authentication (AuthKey, KeyBySecret,
// InspectSecret, Login) on a node that cannot vouch that its copy of the
// data is current: rather than answer from an old truth, it refuses. The
// call may succeed on another node, or here later.
var ErrStale = kv.ErrStale

// Objects that are not there.
var (
	// ErrNotFound is returned when a key does not exist, or belongs to
	// another account (callers must not learn which).
	ErrNotFound = errors.New("store: not found")

	// ErrAccountNotFound is returned for an account that does not exist.
	// It is also an ErrNotFound.
	ErrAccountNotFound = fmt.Errorf("%w: no such account", ErrNotFound)

	// ErrUserNotFound is returned for a user that does not exist in the
	// account asked about. It is also an ErrNotFound.
	ErrUserNotFound = fmt.Errorf("%w: no such user", ErrNotFound)

	// ErrServiceAccountNotFound is returned for a service account that
	// does not exist in the account asked about. It is also an ErrNotFound.
	ErrServiceAccountNotFound = fmt.Errorf("%w: no such service account", ErrNotFound)
)

// Writes that clash with what is stored. A write that fails with one of
// these changes nothing.
var (
	// ErrConflict is returned when a write would break a uniqueness rule.
	ErrConflict = errors.New("store: conflict")

	// ErrAccountExists is returned when creating an account whose name is
	// taken. It is also an ErrConflict.
	ErrAccountExists = fmt.Errorf("%w: account exists", ErrConflict)

	// ErrUserExists is returned when a user name is taken in the account.
	// It is also an ErrConflict.
	ErrUserExists = fmt.Errorf("%w: user exists", ErrConflict)

	// ErrServiceAccountExists is returned when creating a service account
	// whose name is taken in the account. It is also an ErrConflict.
	ErrServiceAccountExists = fmt.Errorf("%w: service account exists", ErrConflict)

	// ErrKeyNameTaken is returned when a key name is taken among the keys of
	// the same account and holder. It is also an ErrConflict.
	ErrKeyNameTaken = fmt.Errorf("%w: key name taken", ErrConflict)

	// ErrOperatorAccount is returned on an attempt to delete the operator
	// account. It is also an ErrConflict.
	ErrOperatorAccount = fmt.Errorf("%w: the operator account cannot be deleted", ErrConflict)

	// ErrLastOperatorKey is returned by a write that would leave the operator
	// account without a full operator key (see IsFullOperatorKey): deleting,
	// switching off, narrowing or limiting the last one, or deleting or
	// switching off its holder. The write changes nothing. It is also an
	// ErrConflict.
	ErrLastOperatorKey = fmt.Errorf("%w: the change would leave the operator account without a full operator key", ErrConflict)
)

// Calls and logins refused.
var (
	// ErrLimited matches every *LimitError with errors.Is: a key over its
	// rate limit or out of its quota.
	ErrLimited = errors.New("store: limited")

	// ErrLoginFailed is returned by Login for a wrong name or password,
	// alike.
	ErrLoginFailed = errors.New("store: login failed")

	// ErrBusy is returned when no password-hashing slot came free before
	// the caller's context ended.
	ErrBusy = errors.New("store: too many logins at once")

	// ErrBadQuery is returned by ListKeys for a KeyQuery that makes no
	// sense.
	ErrBadQuery = errors.New("store: bad key query")

	// ErrListTooBroad is returned by ListKeys for a filtered list that
	// would read more than MaxListScan keys one by one (a filter no index
	// answers, or one beside the index walked).
	ErrListTooBroad = errors.New("store: list too broad")
)
