package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/apikeyd/apikeyd/store/kv"
)

// The key_index bucket holds the secondary indexes that filtered lists
// plan with. Every entry ends with the key id it leads to (ids are 36
// bytes), and its value is empty. Entries, by their first byte:
//
//	'n' account 0x00 name 0x00 id        keys by name, across holders
//	'o' account 0x00 id                  the account's own keys (no user or service account)
//	'i' list 0x00 id                     switched-off keys of a list: an account, or a holder list
//	'c' account 0x00 time id             keys by created
//	'e' account 0x00 time id             keys by expires_at, those that have one
//	'r' account 0x00 time id             keys by last_rotated, those rotated
//
// A holder list is the owner ("user:…", "sa:…"), or 0x00 and the account
// for the account's own keys. time is Unix seconds, 8 bytes big-endian with
// the sign bit flipped, so entries sort by time, then id.
//
// key_counts counts the 'o' and 'i' lists under 0x00, the tag and the list
// ("\x00oacme", "\x00iacme"), beside the counts of account_keys and
// owner_keys.
//
// putRecord and deleteRecord, the only writers of the keys bucket, keep
// these entries: each compares the entries of the record stored before
// with those of the record written.
var bucketKeyIndex = []byte("key_index")

// Tags of key_index entries.
const (
	ixName     = 'n'
	ixOwn      = 'o'
	ixInactive = 'i'
	ixCreated  = 'c'
	ixExpires  = 'e'
	ixRotated  = 'r'
)

const keyIDLen = 36

// holderList names the list of keys of rec's holder in 'i' entries.
func holderList(account, owner string) string {
	if owner != "" {
		return owner
	}
	return "\x00" + account
}

func ixPrefix(tag byte, list string) []byte {
	b := make([]byte, 0, 2+len(list)+8+keyIDLen)
	b = append(b, tag)
	b = append(b, list...)
	return append(b, 0)
}

func ixTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.Unix())^(1<<63))
}

// indexEntries are the key_index entries of a record.
func indexEntries(r *keyRecord) [][]byte {
	out := make([][]byte, 0, 6)
	add := func(tag byte, list string, mid []byte) {
		e := ixPrefix(tag, list)
		e = append(e, mid...)
		out = append(out, append(e, r.ID...))
	}
	if r.Name != "" {
		add(ixName, r.Account, append([]byte(r.Name), 0))
	}
	if r.Owner == "" {
		add(ixOwn, r.Account, nil)
	}
	if r.Inactive {
		add(ixInactive, r.Account, nil)
		add(ixInactive, holderList(r.Account, r.Owner), nil)
	}
	add(ixCreated, r.Account, ixTime(r.Created))
	if !r.ExpiresAt.IsZero() {
		add(ixExpires, r.Account, ixTime(r.ExpiresAt))
	}
	if !r.LastRotated.IsZero() {
		add(ixRotated, r.Account, ixTime(r.LastRotated))
	}
	return out
}

// counterOf is the key_counts key that counts entry e's list, if counted.
func counterOf(e []byte) (string, bool) {
	if e[0] != ixOwn && e[0] != ixInactive {
		return "", false
	}
	return "\x00" + string(e[:len(e)-keyIDLen-1]), true
}

// reindex replaces a key's entries old with new.
func reindex(tx kv.Tx, old, new [][]byte) error {
	b := tx.Bucket(bucketKeyIndex)
	// Most entries of new keys land at the end of their range (ids and
	// created times grow): full pages keep the file small.
	fillForAppends(b)
	has := func(set [][]byte, e []byte) bool {
		for _, x := range set {
			if bytes.Equal(x, e) {
				return true
			}
		}
		return false
	}
	for _, e := range old {
		if has(new, e) {
			continue
		}
		if err := b.Delete(e); err != nil {
			return err
		}
		if c, ok := counterOf(e); ok {
			if err := addKeyCount(tx, c, -1); err != nil {
				return err
			}
		}
	}
	for _, e := range new {
		if has(old, e) {
			continue
		}
		if err := b.Put(e, nil); err != nil {
			return err
		}
		if c, ok := counterOf(e); ok {
			if err := addKeyCount(tx, c, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// storedEntries are the entries of the record stored under id, if any.
func storedEntries(keys kv.Bucket, id string) ([][]byte, error) {
	v := keys.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var rec keyRecord
	if err := rec.view(v); err != nil {
		return nil, err
	}
	return indexEntries(&rec), nil
}

// hasKeys reports whether the file holds any key.
func hasKeys(tx kv.Tx) bool {
	k, _ := tx.Bucket(bucketKeys).Cursor().First()
	return k != nil
}

// indexChunk is how many entries one transaction of buildKeyIndex writes.
const indexChunk = 50_000

// buildKeyIndex writes every key's entries and the counts of their lists,
// for a file written before key_index existed (schema version 2 and
// older), then the schema version. bbolt splits pages only at commit, so
// entries put at random places in one large transaction cost time
// quadratic in their number: the entries are written one tag at a time,
// sorted, in transactions of indexChunk, each appending to the last. A
// build cut short leaves the old version, and the next open starts over.
// It holds one tag's entries in memory at once (about 100 MB for a
// million keys).
func (s *Store) buildKeyIndex() error {
	err := s.update(context.Background(), func(tx kv.Tx) error {
		if err := tx.DeleteBucket(bucketKeyIndex); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketKeyIndex); err != nil {
			return err
		}
		counters := tx.Bucket(bucketKeyCounts)
		var stale [][]byte
		_ = counters.ForEach(func(k, _ []byte) error {
			if len(k) > 0 && k[0] == 0 {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range stale {
			if err := counters.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, tag := range []byte{ixName, ixOwn, ixInactive, ixCreated, ixExpires, ixRotated} {
		var entries [][]byte
		err := s.view(func(tx kv.Tx) error {
			return tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
				var rec keyRecord
				if err := rec.view(v); err != nil {
					return err
				}
				for _, e := range indexEntries(&rec) {
					if e[0] == tag {
						entries = append(entries, e)
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		slices.SortFunc(entries, bytes.Compare)
		counts := map[string]int{}
		for len(entries) > 0 {
			chunk := entries[:min(indexChunk, len(entries))]
			entries = entries[len(chunk):]
			err := s.update(context.Background(), func(tx kv.Tx) error {
				ix := tx.Bucket(bucketKeyIndex)
				fillForAppends(ix)
				for _, e := range chunk {
					if err := ix.Put(e, nil); err != nil {
						return err
					}
					if c, ok := counterOf(e); ok {
						counts[c]++
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		err = s.update(context.Background(), func(tx kv.Tx) error {
			for c, n := range counts {
				if err := addKeyCount(tx, c, n); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.update(context.Background(), func(tx kv.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchema, []byte(strconv.Itoa(SchemaVersion)))
	})
}

// view decodes v into r without copying: r's strings share v's memory,
// so r is valid only while the transaction v came from is open. It has
// no scopes. Lists read records this way to test them against their
// filters, and writes to find the index entries of the stored record.
func (r *keyRecord) view(v []byte) error {
	if len(v) == 0 {
		return errCorrupt
	}
	d := decoder{b: v, s: unsafe.String(unsafe.SliceData(v), len(v)), view: true}
	return r.decode(&d)
}
