package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// AuditRecord is one entry of the audit trail: a mutation (success or
// failure), a failed authentication or a lockout. It never holds a secret or
// a password.
type AuditRecord struct {
	Seq      uint64    // assigned by Audit, increasing
	Time     time.Time // assigned by Audit
	Account  string    // the account acted in; empty when no key was known
	Actor    string    // the key id, or "user:<login name>" for a login
	SourceIP string
	Method   string
	Target   string // the id or name the call named, if any
	Outcome  string // "ok" or an error id
	// Count is how many calls the record stands for: 1, except for failed
	// authentications, which are counted per source, method, outcome and
	// minute (see AuditFailure).
	Count uint64
}

func (r *AuditRecord) marshal() []byte {
	b := make([]byte, 0, 64+len(r.Account)+len(r.Actor)+len(r.SourceIP)+len(r.Method)+len(r.Target)+len(r.Outcome))
	b = append(b, recordVersion)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, s := range []string{r.Account, r.Actor, r.SourceIP, r.Method, r.Target, r.Outcome} {
		b = appendString(b, s)
	}
	if r.Count > 1 { // a record of one call keeps the layout it always had
		b = binary.AppendUvarint(b, r.Count)
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
	r.Count = 1
	if d.err == nil && len(d.b) != 0 {
		r.Count = d.uvarint()
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
	r.Count = 1
	return s.batchKeys(context.Background(), func(tx kv.Tx) error {
		_, err := putAudit(tx, 0, &r)
		return err
	})
}

// CallAudit is the audit record of one call of a method that mutates,
// carried in the call's context (WithCallAudit) down to the store's
// writes. The first write of the call that succeeds puts the record, with
// the outcome "ok", in its own transaction: the change and its record
// commit together or not at all, and a mutation costs one durable commit,
// not two. A call that writes nothing, or fails, is recorded by its caller
// with Audit, as before (Written says which).
type CallAudit struct {
	// record returns the call's record, once it can say who acted; ok is
	// false until then (a login knows its user only once the password
	// matched). Each write of the call asks it, as the write begins,
	// until a write holds the record.
	record func() (r AuditRecord, ok bool)
	// state is auditFree, auditClaimed while a write that carries the
	// record is under way, or auditWritten once one committed: of writes
	// of one call made at once, one carries the record, never two.
	state atomic.Int32
}

const (
	auditFree int32 = iota
	auditClaimed
	auditWritten
)

// NewCallAudit returns the audit record of a call: record describes it as
// it then is (every field but Seq, Time, Outcome and Count), or reports
// that it cannot yet.
func NewCallAudit(record func() (AuditRecord, bool)) *CallAudit {
	return &CallAudit{record: record}
}

// Written reports whether a committed write of the call holds its record,
// with the outcome "ok". The call's writes must have returned.
func (a *CallAudit) Written() bool { return a.state.Load() == auditWritten }

type callAuditKey struct{}

// WithCallAudit returns ctx carrying a: the store's writes under it put a's
// record in their transaction.
func WithCallAudit(ctx context.Context, a *CallAudit) context.Context {
	return context.WithValue(ctx, callAuditKey{}, a)
}

// audited returns fn, followed in its transaction by the audit record of
// the call ctx carries, if the record is not yet written nor carried by
// another write under way, and can be written, and fn succeeded; and a
// function to call once the write has returned, which frees the record
// for a later write if this one did not commit. Every write door calls
// it, so a call's record is in the first of its writes that commits, and
// in no other.
func (s *Store) audited(ctx context.Context, fn func(kv.Tx) error) (func(kv.Tx) error, func()) {
	a, _ := ctx.Value(callAuditKey{}).(*CallAudit)
	if a == nil || !a.state.CompareAndSwap(auditFree, auditClaimed) {
		return fn, func() {}
	}
	release := func() { a.state.CompareAndSwap(auditClaimed, auditFree) }
	// Made here, on the caller's goroutine, not in the transaction: a
	// shared transaction runs its writes one after another (group
	// commit), and a write's function may run more than once.
	r, ok := a.record()
	if !ok {
		release()
		return fn, func() {}
	}
	r.Time, r.Outcome, r.Count = s.now().UTC(), "ok", 1
	return func(tx kv.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if _, err := putAudit(tx, 0, &r); err != nil {
			return err
		}
		tx.OnCommit(func() { a.state.Store(auditWritten) })
		return nil
	}, release
}

// putAudit writes r under seq, or under the next sequence number when seq
// is 0, and returns the sequence number.
func putAudit(tx kv.Tx, seq uint64, r *AuditRecord) (uint64, error) {
	b := tx.Bucket(bucketAudit)
	if seq == 0 {
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return 0, err
		}
	}
	if err := b.Put(seqKey(seq), r.marshal()); err != nil {
		return 0, err
	}
	return seq, tx.Bucket(bucketAuditAccount).Put(append(accountKey(r.Account, ""), seqKey(seq)...), nil)
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
	err := s.view(func(tx kv.Tx) error {
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

// Failed authentications come at whatever rate anyone cares to send them,
// with no key to limit them. They are counted in memory and written as one
// record per source address, method, outcome and minute, whose Count grows
// as more arrive: storage grows with sources and minutes, never with the
// rate.

// MaxFailureSources bounds the sources counted apart in one minute; past it,
// the failures of further sources are counted together under the source
// "(other)".
const MaxFailureSources = 4096

// OtherSources is the SourceIP of the record that counts failures of sources
// past MaxFailureSources in one minute.
const OtherSources = "(other)"

type failureKey struct {
	minute                  int64 // Unix minutes
	source, method, outcome string
}

type failureCount struct {
	n, written uint64
	seq        uint64 // the record's, once written
}

type failureTally struct {
	mu      sync.Mutex
	pending map[failureKey]*failureCount
	// minute is the latest minute counted, and sources the records it
	// has in pending.
	minute, sources int64
	flushMu         sync.Mutex // one flush at a time
}

// AuditFailure counts a failed authentication described by r (its SourceIP,
// Method and Outcome; Account, Actor and Target are not kept, since anyone
// can vary them). It writes nothing itself: the failures of each minute are
// written by the background flush and by Close, as one record per source,
// method and outcome with their Count, stamped with the minute's start.
func (s *Store) AuditFailure(r AuditRecord) {
	k := failureKey{minute: s.now().Unix() / 60, source: r.SourceIP, method: r.Method, outcome: r.Outcome}
	t := &s.failures
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[failureKey]*failureCount{}
	}
	if k.minute != t.minute {
		t.minute, t.sources = k.minute, 0
	}
	c := t.pending[k]
	if c == nil {
		if t.sources >= MaxFailureSources {
			k.source = OtherSources
			c = t.pending[k]
		}
		if c == nil {
			c = &failureCount{}
			t.pending[k] = c
			t.sources++
		}
	}
	c.n++
}

// FlushAudit writes the failed authentications counted since the last
// flush: a new record for each source, method, outcome and minute not yet
// written, a new count for those written before. It runs in the background
// every Options.UsageFlush and at Close; tests call it to see the records
// at once.
func (s *Store) FlushAudit() error {
	t := &s.failures
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	type item struct {
		k   failureKey
		c   *failureCount
		n   uint64
		seq uint64
	}
	var items []item
	t.mu.Lock()
	for k, c := range t.pending {
		if c.n > c.written {
			items = append(items, item{k: k, c: c, n: c.n, seq: c.seq})
		}
	}
	t.mu.Unlock()
	for step := s.auditStep(len(items)); len(items) > 0; {
		part := items[:min(step, len(items))]
		err := s.updateKeys(context.Background(), func(tx kv.Tx) error {
			for i := range part {
				it := &part[i]
				r := AuditRecord{Time: time.Unix(it.k.minute*60, 0).UTC(), SourceIP: it.k.source,
					Method: it.k.method, Outcome: it.k.outcome, Count: it.n}
				seq, err := putAudit(tx, it.c.seq, &r)
				if err != nil {
					return err
				}
				it.seq = seq
			}
			return nil
		})
		if err != nil {
			return err // the counts not written stay for the next flush
		}
		t.mu.Lock()
		for _, it := range part {
			it.c.written, it.c.seq = it.n, it.seq
		}
		t.mu.Unlock()
		items = items[len(part):]
	}
	now := s.now().Unix() / 60
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, c := range t.pending {
		if k.minute < now && c.n == c.written { // its minute is over and written
			delete(t.pending, k)
		}
	}
	return nil
}

// DefaultAuditRetention is how long audit records are kept when
// Options.AuditRetention is 0.
const DefaultAuditRetention = 90 * 24 * time.Hour

// AuditPruneBatch is the most records one pruning transaction deletes, so
// that writers waiting behind it never wait long.
const AuditPruneBatch = 512

// auditChunk is the most audit records one transaction of the store's own
// (a flush of failure counts, a pruning) writes or deletes on a shared
// engine: each record is two operations, its own and its account index
// entry's, and etcd refuses a transaction of more than its --max-txn-ops,
// 128 by default. Without a cap such a write would fail at every try, and
// its work would never be done.
const auditChunk = flushChunk / 2

// auditStep is how many of n audit records one such transaction takes:
// all of them on a file.
func (s *Store) auditStep(n int) int {
	if s.limits.nodes == nil {
		return n
	}
	return auditChunk
}

// PruneAudit deletes, oldest first, up to max audit records older than
// before, in one transaction, and returns how many it deleted. Records are
// in time order but for the minute-long reach of failure counts: it stops at
// the first record that is not older.
func (s *Store) PruneAudit(before time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	n := 0
	err := s.updateKeys(context.Background(), func(tx kv.Tx) error {
		n = 0
		records := tx.Bucket(bucketAudit)
		type doomed struct {
			seq     []byte
			account string
		}
		var del []doomed
		c := records.Cursor()
		for k, v := c.First(); k != nil && len(del) < max; k, v = c.Next() {
			var r AuditRecord
			if err := r.unmarshal(binary.BigEndian.Uint64(k), v); err != nil {
				return err
			}
			if !r.Time.Before(before) {
				break
			}
			del = append(del, doomed{seq: bytes.Clone(k), account: r.Account})
		}
		index := tx.Bucket(bucketAuditAccount)
		for _, d := range del {
			if err := records.Delete(d.seq); err != nil {
				return err
			}
			if err := index.Delete(append(accountKey(d.account, ""), d.seq...)); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, err
}

// pruneAudit deletes the records older than the retention period, in
// transactions of AuditPruneBatch records, giving way to other writers
// between them. It stops early when the store is closing.
func (s *Store) pruneAudit() {
	if s.auditRetention < 0 {
		return
	}
	before := s.now().Add(-s.auditRetention)
	batch := min(AuditPruneBatch, s.auditStep(AuditPruneBatch))
	for {
		n, err := s.PruneAudit(before, batch)
		if err != nil || n < batch {
			return
		}
		select {
		case <-s.stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}
