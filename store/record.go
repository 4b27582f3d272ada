package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

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
	Owner   string // "user:<name>", "sa:<account>/<name>", or empty for a key of the account itself

	Name        string
	Description string
	Inactive    bool
	NotBefore   time.Time // zero: no limit
	ExpiresAt   time.Time // zero: never
	LastRotated time.Time // zero: never rotated
	// PrevDigest is the secret before the last rotation, which still
	// authenticates until PrevUntil.
	PrevDigest [32]byte
	PrevUntil  time.Time
	// LastUsed and UseCount are as of the last usage flush.
	LastUsed time.Time
	UseCount int64
	// Rate and Quota are the key's limits; QuotaGen changes whenever the
	// quota is set, so a usage flush never writes over a newer one.
	Rate     RateLimit
	HasQuota bool
	Quota    Quota
	QuotaGen int64
}

func (r *keyRecord) key() Key {
	return Key{
		ID: r.ID, Account: r.Account, Scopes: r.Scopes, Comment: r.Comment, Created: r.Created, Owner: r.Owner,
		Name: r.Name, Description: r.Description, Active: !r.Inactive,
		NotBefore: r.NotBefore, ExpiresAt: r.ExpiresAt, LastRotated: r.LastRotated,
		LastUsed: r.LastUsed, UseCount: r.UseCount,
		Rate: r.Rate, HasQuota: r.HasQuota, Quota: r.Quota, quotaGen: r.QuotaGen,
	}
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
//	fields   until the end: tag byte, uvarint length, value
//
// Fields hold what most keys lack (tags below), so a field added later is
// one more tag, and a reader skips tags it does not know.
const recordVersion = 1

// Field tags of key records.
const (
	tagName        = 1  // string
	tagDescription = 2  // string
	tagInactive    = 3  // empty
	tagNotBefore   = 4  // varint Unix seconds
	tagExpiresAt   = 5  // varint Unix seconds
	tagLastRotated = 6  // varint Unix seconds
	tagPrevSecret  = 7  // [32]byte digest, varint Unix seconds it is valid until
	tagIPScope     = 8  // the ip scope: uvarint count, then strings
	tagUsage       = 9  // varint Unix seconds last used, varint use count
	tagRate        = 10 // varint limit, varint interval seconds
	tagQuota       = 11 // varint remaining, string refill, varint amount, varint last refill, varint generation
)

// recordScopeTypes are the scope lists of a record, in order. A scope type
// added later is a field, not a list.
var recordScopeTypes = []string{scope.TypeMethod, scope.TypeName, scope.TypeAccess}

var errCorrupt = errors.New("store: corrupt key record")

func (r *keyRecord) marshal() []byte {
	n := 96 + len(r.ID) + len(r.Account) + len(r.Comment) + len(r.Owner) + len(r.Name) + len(r.Description)
	for _, typ := range recordScopeTypes {
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
	for _, typ := range recordScopeTypes {
		vals := r.Scopes.Values(typ)
		b = binary.AppendUvarint(b, uint64(len(vals)))
		for _, v := range vals {
			b = appendString(b, v)
		}
	}
	field := func(tag byte, v []byte) {
		b = append(b, tag)
		b = appendString(b, string(v))
	}
	unix := func(t time.Time) []byte { return binary.AppendVarint(nil, t.Unix()) }
	if r.Name != "" {
		field(tagName, []byte(r.Name))
	}
	if r.Description != "" {
		field(tagDescription, []byte(r.Description))
	}
	if r.Inactive {
		field(tagInactive, nil)
	}
	if !r.NotBefore.IsZero() {
		field(tagNotBefore, unix(r.NotBefore))
	}
	if !r.ExpiresAt.IsZero() {
		field(tagExpiresAt, unix(r.ExpiresAt))
	}
	if !r.LastRotated.IsZero() {
		field(tagLastRotated, unix(r.LastRotated))
	}
	if !r.PrevUntil.IsZero() {
		field(tagPrevSecret, append(r.PrevDigest[:], unix(r.PrevUntil)...))
	}
	if r.UseCount > 0 {
		field(tagUsage, appendUsage(nil, r.LastUsed, r.UseCount))
	}
	if r.Rate.Limit > 0 {
		field(tagRate, appendRate(r.Rate))
	}
	if r.HasQuota {
		field(tagQuota, appendQuota(r.Quota, r.QuotaGen))
	}
	if len(r.Scopes.IP) > 0 {
		v := binary.AppendUvarint(nil, uint64(len(r.Scopes.IP)))
		for _, ip := range r.Scopes.IP {
			v = appendString(v, ip)
		}
		field(tagIPScope, v)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unmarshal decodes b into r, copying every byte: r outlives the transaction.
func (r *keyRecord) unmarshal(b []byte) error {
	// One copy of the record backs all its strings: one allocation, not
	// one a field, on the path of every call that reads a key.
	d := decoder{b: b, s: string(b)}
	return r.decode(&d)
}

// decode reads a record from d. A decoder of a view (see keyRecord.view)
// leaves the scopes out and copies nothing.
func (r *keyRecord) decode(d *decoder) error {
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
	for _, typ := range recordScopeTypes {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.err = errCorrupt
			break
		}
		if n == 0 {
			continue
		}
		if d.view {
			for range n {
				d.string()
			}
			continue
		}
		vals := make([]string, n)
		for i := range vals {
			vals[i] = d.string()
		}
		scopes.Set(typ, vals)
	}
	r.Scopes = scopes
	for d.err == nil && len(d.b) > 0 {
		tag := d.byte()
		v := decoder{b: d.bytes(int(min(d.uvarint(), uint64(len(d.b)+1))))}
		unix := func() time.Time { return time.Unix(v.varint(), 0).UTC() }
		switch tag {
		case tagName:
			r.Name = d.text(v.b)
		case tagDescription:
			r.Description = d.text(v.b)
		case tagInactive:
			r.Inactive = true
		case tagNotBefore:
			r.NotBefore = unix()
		case tagExpiresAt:
			r.ExpiresAt = unix()
		case tagLastRotated:
			r.LastRotated = unix()
		case tagPrevSecret:
			copy(r.PrevDigest[:], v.bytes(32))
			r.PrevUntil = unix()
		case tagUsage:
			r.LastUsed = unix()
			r.UseCount = v.varint()
		case tagRate:
			r.Rate.Limit = v.varint()
			r.Rate.Interval = time.Duration(v.varint()) * time.Second
		case tagQuota:
			r.HasQuota = true
			r.Quota.Remaining = v.varint()
			r.Quota.Refill = v.string()
			r.Quota.RefillAmount = v.varint()
			r.Quota.LastRefill = unix()
			r.QuotaGen = v.varint()
		case tagIPScope:
			if d.view {
				break
			}
			n := v.uvarint()
			if n > uint64(len(v.b)) {
				v.err = errCorrupt
				break
			}
			r.Scopes.IP = make([]string, n)
			for i := range r.Scopes.IP {
				r.Scopes.IP[i] = v.string()
			}
		}
		if v.err != nil {
			d.err = v.err
		}
	}
	return d.err
}

// decoder reads a record; after the first error every read returns zero.
type decoder struct {
	b   []byte
	s   string // when set, a copy of all of b as first given: strings are cut from it
	err error
	// view is set when s shares b's memory (keyRecord.view).
	view bool
}

// text returns b, a part of d's record, as a string: cut from s when it is
// a view, else copied.
func (d *decoder) text(b []byte) string {
	if d.view && len(b) > 0 {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
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
	if d.s == "" {
		return string(d.bytes(int(n)))
	}
	at := len(d.s) - len(d.b)
	d.b = d.b[n:]
	return d.s[at : at+int(n)]
}
