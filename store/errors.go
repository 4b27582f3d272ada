package store

import "errors"

var (
	// ErrNotFound is returned when a key does not exist, or belongs to
	// another account (callers must not learn which).
	ErrNotFound = errors.New("store: not found")

	// ErrConflict is returned when a write would break a uniqueness rule.
	ErrConflict = errors.New("store: conflict")

	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("store: database file is in use by another process")

	// ErrSchema is returned by Open for a file of an unknown schema version.
	ErrSchema = errors.New("store: unsupported schema version")
)
