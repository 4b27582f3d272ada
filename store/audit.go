package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditRecord is one entry of the audit trail: a mutation (success or
// failure), a failed authentication or a lockout. It never holds a secret or
// a password.
type AuditRecord struct {
	Seq      uint64    // assigned by Audit, increasing
	Time     time.Time // assigned by Audit
	Account  string    // the account acted in; empty when no key was known
	Actor    string    // the key id, or "user:<name>" for a login
	SourceIP string
	Method   string
	Target   string // the id or name the call named, if any
	Outcome  string // "ok" or an error id
}

func (r *AuditRecord) marshal() []byte {
	b := make([]byte, 0, 64+len(r.Account)+len(r.Actor)+len(r.SourceIP)+len(r.Method)+len(r.Target)+len(r.Outcome))
	b = append(b, recordVersion)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, s := range []string{r.Account, r.Actor, r.SourceIP, r.Method, r.Target, r.Outcome} {
		b = appendString(b, s)
	}
	return b
}

func (r *AuditRecord) unmarshal(seq uint64, b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: audit format version %d", errCorrupt, v)
	}
	r.Seq = seq
	r.Time = time.Unix(0, d.varint()).UTC()
	for _, p := range []*string{&r.Account, &r.Actor, &r.SourceIP, &r.Method, &r.Target, &r.Outcome} {
		*p = d.string()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Audit appends r to the audit trail, with the next sequence number and the
// store's clock.
func (s *Store) Audit(r AuditRecord) error {
	r.Time = s.now().UTC()
	return s.batchKeys(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), r.marshal()); err != nil {
			return err
		}
		return tx.Bucket(bucketAuditAccount).Put(append(accountKey(r.Account, ""), seqKey(seq)...), nil)
	})
}

// AuditQuery selects audit records. Zero fields select everything.
type AuditQuery struct {
	// Account limits the records to one account, unless AllAccounts.
	Account     string
	AllAccounts bool
	Since       time.Time // records at or after
	Until       time.Time // records before
	Method      string
	Outcome     string
	After       uint64 // records with a greater Seq: the cursor of the previous page
	Limit       int    // at most this many; 0 means 100
}

// AuditRecords returns the records q selects, oldest first, and the cursor
// for the next page (0 when there is none).
func (s *Store) AuditRecords(q AuditQuery) ([]AuditRecord, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	out := []AuditRecord{}
	var next uint64
	err := s.view(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketAudit)
		match := func(seq uint64, v []byte) (bool, error) {
			var r AuditRecord
			if err := r.unmarshal(seq, v); err != nil {
				return false, err
			}
			switch {
			case !q.Since.IsZero() && r.Time.Before(q.Since),
				!q.Until.IsZero() && !r.Time.Before(q.Until),
				q.Method != "" && r.Method != q.Method,
				q.Outcome != "" && r.Outcome != q.Outcome:
				return false, nil
			}
			if len(out) == q.Limit {
				next = out[len(out)-1].Seq
				return true, nil
			}
			out = append(out, r)
			return false, nil
		}
		if q.AllAccounts {
			c := records.Cursor()
			for k, v := c.Seek(seqKey(q.After + 1)); k != nil; k, v = c.Next() {
				if stop, err := match(binary.BigEndian.Uint64(k), v); err != nil || stop {
					return err
				}
			}
			return nil
		}
		prefix := accountKey(q.Account, "")
		c := tx.Bucket(bucketAuditAccount).Cursor()
		for k, _ := c.Seek(append(bytes.Clone(prefix), seqKey(q.After+1)...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			seqBytes := k[len(prefix):]
			if stop, err := match(binary.BigEndian.Uint64(seqBytes), records.Get(seqBytes)); err != nil || stop {
				return err
			}
		}
		return nil
	})
	return out, next, err
}
