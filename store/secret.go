package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/uuid"
)

// SecretLen is the length of a secret: 32 lowercase hex digits, 128 bits.
const SecretLen = 32

// NewSecret returns a fresh secret from crypto/rand.
func NewSecret() string {
	var b [SecretLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// lowerHex marks the bytes 0-9 and a-f.
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// IsSecret reports whether s has the shape of a secret: 32 lowercase hex digits.
func IsSecret(s string) bool {
	return len(s) == SecretLen && allLowerHex(s)
}

func allLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

// IsKeyID reports whether s has the shape of a public key id: a UUID in its
// canonical lowercase 36-character form. A key id can never be a secret.
func IsKeyID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return allLowerHex(s[:8]) && allLowerHex(s[9:13]) && allLowerHex(s[14:18]) &&
		allLowerHex(s[19:23]) && allLowerHex(s[24:])
}

// newKeyID returns a UUIDv7: public, unguessable enough to be harmless, and
// sorted by creation time.
func newKeyID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// digest is what the store keeps of a secret.
func digest(secret string) [32]byte {
	return sha256.Sum256([]byte(secret))
}
