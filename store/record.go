package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/scope"
)

// keyRecord is a Key as stored in the keys bucket.
type keyRecord struct {
	ID      string
	Account string
	Digest  [32]byte // SHA-256 of the secret
	Scopes  scope.Scopes
	Comment string
	Created time.Time
	Owner   string // "user:<name>", or empty for a key of the account itself
}

func (r *keyRecord) key() Key {
	return Key{ID: r.ID, Account: r.Account, Scopes: r.Scopes, Comment: r.Comment, Created: r.Created, Owner: r.Owner}
}

// Records are binary, not JSON: authentication decodes one on every call and
// a JSON decode cost more than the rest of the call path together. Layout,
// version 1 (strings and lists are length-prefixed with uvarints):
//
//	byte     format version (1)
//	string   id
//	string   account
//	[32]byte digest
//	varint   created, Unix seconds
//	string   comment
//	string   owner
//	list     method scope values (count, then strings)
//	list     name scope values
//	list     access scope values
//
// Lists missing at the end of a record are empty: a scope type added later
// appends a list, and older records still read.
const recordVersion = 1

var errCorrupt = errors.New("store: corrupt key record")

func (r *keyRecord) marshal() []byte {
	n := 1 + 4*binary.MaxVarintLen64 + len(r.ID) + len(r.Account) + 32 + len(r.Comment) + len(r.Owner) + 3*binary.MaxVarintLen64
	for _, typ := range scope.Types {
		for _, v := range r.Scopes.Values(typ) {
			n += binary.MaxVarintLen64 + len(v)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = appendString(b, r.ID)
	b = appendString(b, r.Account)
	b = append(b, r.Digest[:]...)
	b = binary.AppendVarint(b, r.Created.Unix())
	b = appendString(b, r.Comment)
	b = appendString(b, r.Owner)
	for _, typ := range scope.Types {
		vals := r.Scopes.Values(typ)
		b = binary.AppendUvarint(b, uint64(len(vals)))
		for _, v := range vals {
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unmarshal decodes b into r, copying every byte: r outlives the transaction.
func (r *keyRecord) unmarshal(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: format version %d", errCorrupt, v)
	}
	r.ID = d.string()
	r.Account = d.string()
	copy(r.Digest[:], d.bytes(32))
	r.Created = time.Unix(d.varint(), 0).UTC()
	r.Comment = d.string()
	r.Owner = d.string()
	var scopes scope.Scopes
	for _, typ := range scope.Types {
		if d.err == nil && len(d.b) == 0 {
			break // lists of types newer than the record
		}
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.err = errCorrupt
			break
		}
		var vals []string
		if n > 0 {
			vals = make([]string, n)
		}
		for i := range vals {
			vals[i] = d.string()
		}
		scopes = scopes.With(typ, vals)
	}
	r.Scopes = scopes
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

// decoder reads a record; after the first error every read returns zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errCorrupt
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	return string(d.bytes(int(n)))
}
