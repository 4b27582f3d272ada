package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id at OWASP's recommended minimum (19 MiB of
// memory, 2 passes, 1 lane), in PHC string form:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with the salt (16 bytes) and hash (32 bytes) in unpadded standard base64.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

var errBadHash = errors.New("store: malformed password hash")

// hashPassword returns the PHC string of pw with a fresh salt.
func hashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	return phc(salt, argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen), argonMemory, argonTime, argonThreads)
}

func phc(salt, key []byte, m, t uint32, p uint8) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verifyPassword reports whether pw matches the PHC string hash, comparing in
// constant time. The parameters are read from hash, so hashes made with
// other (older) parameters still verify.
func verifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when a login names no user, so that a
// failed login takes the same time whether or not the user exists. It is
// made on first use, not at start-up.
var dummyHash = sync.OnceValue(func() string { return hashPassword("no user has this password") })

// hashSlot waits for one of the store's password-hashing slots, which cap
// concurrent argon2id runs (and their memory), or for ctx to end.
func (s *Store) hashSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ErrBusy
	}
	// A hash costs tens of milliseconds of a core: before running one,
	// give whatever watches the caller's connection, which asking ctx for
	// Done may have just started, a chance to run, so that a client that
	// sent its login and left is most often seen gone now rather than
	// after its hash. (A chance, not a promise: the hash is bounded by
	// the slots either way.)
	runtime.Gosched()
	if ctx.Err() != nil { // the caller has gone, though a slot was free
		<-s.hashSem
		return nil, ErrBusy
	}
	s.hashRuns.Add(1)
	now := s.hashInFlight.Add(1)
	for peak := s.hashPeak.Load(); now > peak && !s.hashPeak.CompareAndSwap(peak, now); peak = s.hashPeak.Load() {
	}
	return func() { s.hashInFlight.Add(-1); <-s.hashSem }, nil
}

// HashStats reports how many password hashes the store has run and the most
// that ran at once, never more than Options.MaxConcurrentHashes.
func (s *Store) HashStats() (runs, peak int64) {
	return s.hashRuns.Load(), s.hashPeak.Load()
}

// HashPassword hashes pw in one of the capped hashing slots.
func (s *Store) HashPassword(ctx context.Context, pw string) (string, error) {
	release, err := s.hashSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return hashPassword(pw), nil
}
