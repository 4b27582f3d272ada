package store

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned when a key does not exist, or belongs to
	// another account (callers must not learn which).
	ErrNotFound = errors.New("store: not found")

	// ErrConflict is returned when a write would break a uniqueness rule.
	ErrConflict = errors.New("store: conflict")

	// ErrAccountNotFound is returned for an account that does not exist.
	// It is also an ErrNotFound.
	ErrAccountNotFound = fmt.Errorf("%w: no such account", ErrNotFound)

	// ErrAccountExists is returned when creating an account whose name is
	// taken. It is also an ErrConflict.
	ErrAccountExists = fmt.Errorf("%w: account exists", ErrConflict)

	// ErrOperatorAccount is returned on an attempt to delete the operator
	// account. It is also an ErrConflict.
	ErrOperatorAccount = fmt.Errorf("%w: the operator account cannot be deleted", ErrConflict)

	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("store: database file is in use by another process")

	// ErrSchema is returned by Open for a file of an unknown schema version.
	ErrSchema = errors.New("store: unsupported schema version")
)
