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

// IsSecret reports whether s has the shape of a secret: 32 lowercase hex digits.
func IsSecret(s string) bool {
	return len(s) == SecretLen && hex8(le64(s[0:8])) && hex8(le64(s[8:16])) &&
		hex8(le64(s[16:24])) && hex8(le64(s[24:32]))
}

// IsKeyID reports whether s has the shape of a public key id: a UUID in its
// canonical lowercase 36-character form. A key id can never be a secret.
func IsKeyID(s string) bool {
	return len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
		hex8(le64(s[0:8])) && hex8(uint64(le32(s[9:13]))|uint64(le32(s[14:18]))<<32) &&
		hex8(uint64(le32(s[19:23]))|uint64(le32(s[24:28]))<<32) && hex8(le64(s[28:36]))
}

// hex8 reports whether the eight bytes of x are all lowercase hex digits,
// testing them at once: for a byte b below 0x80, b+0x50 has its top bit set
// exactly when b >= '0', b+0x46 when b > '9', b+0x1f when b >= 'a' and b+0x19
// when b > 'f', and no sum carries into the next byte.
func hex8(x uint64) bool {
	const top = 0x8080808080808080
	if x&top != 0 {
		return false
	}
	digit := (x + 0x5050505050505050) &^ (x + 0x4646464646464646)
	letter := (x + 0x1f1f1f1f1f1f1f1f) &^ (x + 0x1919191919191919)
	return (digit|letter)&top == top
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
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
