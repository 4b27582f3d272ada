package kv

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// copyChunk bounds the keys one transaction of Copy writes: an engine
// shared by many nodes caps the operations of one transaction (etcd's
// --max-txn-ops).
const copyChunk = 100

// Copy copies the named buckets whole, with their sequences, from one
// consistent read of src into dst, in transactions of up to copyChunk keys.
// It refuses to write into a dst that has any of the buckets. If it fails
// part way, dst holds part of the copy.
func Copy(dst, src DB, buckets [][]byte) error {
	err := dst.View(func(tx Tx) error {
		for _, name := range buckets {
			if tx.Bucket(name) != nil {
				return fmt.Errorf("copy: the target already has bucket %q: %w", name, ErrBucketExists)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return src.View(func(stx Tx) error {
		for _, name := range buckets {
			b := stx.Bucket(name)
			if b == nil {
				continue
			}
			if err := copyBucket(dst, name, b); err != nil {
				return fmt.Errorf("copy bucket %q: %w", name, err)
			}
		}
		return nil
	})
}

func copyBucket(dst DB, name []byte, from Bucket) error {
	err := dst.Update(func(tx Tx) error {
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		return b.SetSequence(from.Sequence())
	})
	if err != nil {
		return err
	}
	c := from.Cursor()
	k, v := c.First()
	for k != nil {
		start := k
		err := dst.Update(func(tx Tx) error {
			b := tx.Bucket(name)
			if b == nil {
				return ErrBucketNotFound
			}
			// A run may be repeated: start again where this chunk began.
			k, v = c.Seek(start)
			for n := 0; k != nil && n < copyChunk; n++ {
				if err := b.Put(k, v); err != nil {
					return err
				}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// BucketDigest sums up one bucket: its key count, sequence and a SHA-256
// of its keys and values in order.
type BucketDigest struct {
	Name     string
	Keys     int
	Sequence uint64
	SHA256   [32]byte
	Missing  bool
}

// Digest sums up the named buckets from one consistent read of db, so two
// engines' copies can be compared.
func Digest(db DB, buckets [][]byte) ([]BucketDigest, error) {
	var out []BucketDigest
	err := db.View(func(tx Tx) error {
		for _, name := range buckets {
			d := BucketDigest{Name: string(name)}
			b := tx.Bucket(name)
			if b == nil {
				d.Missing = true
				out = append(out, d)
				continue
			}
			h := sha256.New()
			var n [binary.MaxVarintLen64]byte
			err := b.ForEach(func(k, v []byte) error {
				h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
				h.Write(k)
				h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
				h.Write(v)
				d.Keys++
				return nil
			})
			if err != nil {
				return err
			}
			d.Sequence = b.Sequence()
			h.Sum(d.SHA256[:0])
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// ErrDigestMismatch says two copies differ.
var ErrDigestMismatch = errors.New("copies differ")

// SameDigests compares two Digest results and names the first bucket that
// differs.
func SameDigests(a, b []BucketDigest) error {
	if len(a) != len(b) {
		return fmt.Errorf("%w: %d buckets against %d", ErrDigestMismatch, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("%w: bucket %q: %d keys, sequence %d, sha256 %x against %d keys, sequence %d, sha256 %x",
				ErrDigestMismatch, a[i].Name, a[i].Keys, a[i].Sequence, a[i].SHA256[:8], b[i].Keys, b[i].Sequence, b[i].SHA256[:8])
		}
	}
	return nil
}
