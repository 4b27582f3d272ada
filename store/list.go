package store

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sort orders of ListKeys. SortCreated is the order of key ids, which is
// the order of creation, and the one an index serves: a page in it costs
// the same however deep it is. Every other order sorts the matching keys.
const (
	SortCreated     = "created"
	SortName        = "name"
	SortLastUsed    = "last_used_at"
	SortLastRotated = "last_rotated"
	SortExpiresAt   = "expires_at"
)

// SortFields are the orders ListKeys knows.
var SortFields = []string{SortCreated, SortName, SortLastUsed, SortLastRotated, SortExpiresAt}

// KeyQuery asks ListKeys for one page of an account's keys.
type KeyQuery struct {
	Account string
	// Owner, when OwnerSet, restricts the list to keys of that holder (""
	// is the account itself, not a user or service account).
	Owner    string
	OwnerSet bool
	// Match, when set, keeps only the keys it accepts. It sees each key
	// with its latest usage and quota.
	Match func(*Key) bool
	// Sort is one of SortFields ("" is SortCreated); Desc reverses it.
	// Keys without the sort field's value come last either way; ties are
	// broken by id.
	Sort string
	Desc bool
	// After, when set, starts the page after that position, which is the
	// Next of an earlier page of the same order. Offset skips that many
	// matching keys first. Limit is the page size.
	After  *Position
	Offset int
	Limit  int
}

// Position is a place in a list of keys: the sort value and id of the
// last key of a page.
type Position struct {
	Value string // the sort field's value, as positionValue writes it
	ID    string
}

// KeyPage is one page of a list.
type KeyPage struct {
	Keys  []Key
	Total int // keys matching the query, in all pages
	// Next is the position after the last key of the page, when more keys
	// follow.
	Next *Position
}

// ListKeys returns one page of account's keys. In created order without
// Match, a page costs the same at any depth when reached by After, and the
// total comes from a stored count; otherwise every key of the account (or
// holder) is read.
func (s *Store) ListKeys(q KeyQuery) (KeyPage, error) {
	if q.Sort == "" {
		q.Sort = SortCreated
	}
	if !slices.Contains(SortFields, q.Sort) || q.Limit < 1 || q.Offset < 0 {
		return KeyPage{}, ErrBadQuery
	}
	var page KeyPage
	err := s.view(func(tx *bolt.Tx) error {
		if q.OwnerSet && !ownerIn(tx, q.Account, q.Owner) {
			return nil // another account's holder, or none: nothing, not even a count
		}
		var err error
		if q.Sort == SortCreated {
			page, err = s.listByID(tx, q)
		} else {
			page, err = s.listSorted(tx, q)
		}
		return err
	})
	return page, err
}

// ownerIn reports whether owner is a holder of account ("" is the account
// itself), so that a list by another account's holder reads nothing of it.
func ownerIn(tx *bolt.Tx, account, owner string) bool {
	switch kind, rest, _ := strings.Cut(owner, ":"); {
	case owner == "":
		return true
	case kind == "sa":
		acct, _, ok := strings.Cut(rest, "/")
		return ok && acct == account
	case kind == "user": // rest is a login name
		rec, found, err := getUser(tx, rest)
		return err == nil && found && rec.Account == account
	}
	return false
}

// index returns the index bucket and prefix that list q's candidate keys.
// Owner "" (the account's own keys) has no index: the account's is walked
// and the others skipped.
func (q *KeyQuery) index(tx *bolt.Tx) (*bolt.Bucket, []byte, bool) {
	if q.OwnerSet && q.Owner != "" {
		return tx.Bucket(bucketOwnerKeys), accountKey(q.Owner, ""), true
	}
	return tx.Bucket(bucketAccountKeys), accountKey(q.Account, ""), false
}

// load reads key id and decides whether q keeps it.
func (s *Store) load(tx *bolt.Tx, q *KeyQuery, id []byte) (Key, bool, error) {
	rec, err := decodeRecord(tx.Bucket(bucketKeys).Get(id))
	if err != nil {
		return Key{}, false, err
	}
	if rec.Account != q.Account || q.OwnerSet && rec.Owner != q.Owner {
		return Key{}, false, nil
	}
	k := rec.key()
	s.current(&k)
	if q.Match != nil && !q.Match(&k) {
		return Key{}, false, nil
	}
	return k, true, nil
}

// listByID walks the index in id order from q.After. Without Match the
// total is the stored count and only the page's records are read.
func (s *Store) listByID(tx *bolt.Tx, q KeyQuery) (KeyPage, error) {
	b, prefix, byOwner := q.index(tx)
	counted := q.Match == nil && (!q.OwnerSet || byOwner)
	var page KeyPage
	if counted {
		if byOwner {
			page.Total = countKeys(tx, q.Owner)
		} else {
			page.Total = countKeys(tx, q.Account)
		}
	}
	c := b.Cursor()
	next := c.Next
	var k []byte
	switch {
	case !q.Desc && q.After != nil:
		k, _ = c.Seek(append(bytes.Clone(prefix), q.After.ID...))
		if k != nil && string(k[len(prefix):]) == q.After.ID {
			k, _ = c.Next()
		}
	case !q.Desc:
		k, _ = c.Seek(prefix)
	default:
		// Seek to the position, or just past the prefix, and step back
		// until inside the range and before the position.
		from := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
		after := "\xff"
		if q.After != nil {
			from, after = append(bytes.Clone(prefix), q.After.ID...), q.After.ID
		}
		if k, _ = c.Seek(from); k == nil {
			k, _ = c.Last()
		}
		for k != nil && (bytes.HasPrefix(k, prefix) && string(k[len(prefix):]) >= after ||
			!bytes.HasPrefix(k, prefix) && bytes.Compare(k, prefix) > 0) {
			k, _ = c.Prev()
		}
		next = c.Prev
	}
	skip := q.Offset
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = next() {
		id := k[len(prefix):]
		if counted && len(page.Keys) == q.Limit {
			// The total is known: one more index entry means a next page.
			page.Next = &Position{ID: page.Keys[len(page.Keys)-1].ID}
			break
		}
		if counted && skip > 0 {
			skip--
			continue
		}
		key, ok, err := s.load(tx, &q, id)
		if err != nil {
			return KeyPage{}, err
		}
		if !ok {
			continue
		}
		if !counted {
			page.Total++
		}
		switch {
		case skip > 0:
			skip--
		case len(page.Keys) < q.Limit:
			page.Keys = append(page.Keys, key)
		case page.Next == nil:
			page.Next = &Position{ID: page.Keys[len(page.Keys)-1].ID}
		}
	}
	if !counted && q.After != nil {
		// The keys before the position match too: the total counts all.
		before, err := s.countBefore(tx, q)
		if err != nil {
			return KeyPage{}, err
		}
		page.Total += before
	}
	return page, nil
}

// countBefore counts the keys q keeps that lie at or before q.After in its
// order.
func (s *Store) countBefore(tx *bolt.Tx, q KeyQuery) (int, error) {
	b, prefix, _ := q.index(tx)
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix):])
		if !q.Desc && id > q.After.ID || q.Desc && id < q.After.ID {
			continue
		}
		_, ok, err := s.load(tx, &q, k[len(prefix):])
		if err != nil {
			return 0, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// listSorted reads every candidate key, sorts the matches and cuts the
// page out.
func (s *Store) listSorted(tx *bolt.Tx, q KeyQuery) (KeyPage, error) {
	b, prefix, _ := q.index(tx)
	var all []Key
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		key, ok, err := s.load(tx, &q, k[len(prefix):])
		if err != nil {
			return KeyPage{}, err
		}
		if ok {
			all = append(all, key)
		}
	}
	type entry struct {
		value string
		has   bool
		key   *Key
	}
	entries := make([]entry, len(all))
	for i := range all {
		v, has := positionValue(&all[i], q.Sort)
		entries[i] = entry{v, has, &all[i]}
	}
	compare := func(av string, ahas bool, aid string, bv string, bhas bool, bid string) int {
		if ahas != bhas { // keys without a value come last
			if ahas {
				return -1
			}
			return 1
		}
		c := cmp.Compare(av, bv)
		if q.Desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(aid, bid)
			if q.Desc {
				c = -c
			}
		}
		return c
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return compare(a.value, a.has, a.key.ID, b.value, b.has, b.key.ID)
	})
	page := KeyPage{Total: len(entries)}
	start := 0
	if q.After != nil {
		start = len(entries)
		afterHas := q.After.Value != ""
		for i, e := range entries {
			if compare(e.value, e.has, e.key.ID, q.After.Value, afterHas, q.After.ID) > 0 {
				start = i
				break
			}
		}
	}
	start = min(start+q.Offset, len(entries))
	end := min(start+q.Limit, len(entries))
	for _, e := range entries[start:end] {
		page.Keys = append(page.Keys, *e.key)
	}
	if end < len(entries) && end > start {
		last := entries[end-1]
		page.Next = &Position{Value: last.value, ID: last.key.ID}
	}
	return page, nil
}

// positionValue returns k's value of sort field, as a string that sorts
// as the value does, and whether k has one.
func positionValue(k *Key, field string) (string, bool) {
	t := func(v time.Time) (string, bool) {
		if v.IsZero() {
			return "", false
		}
		return v.UTC().Format("20060102T150405.000000000Z"), true
	}
	switch field {
	case SortName:
		return k.Name, k.Name != ""
	case SortLastUsed:
		return t(k.LastUsed)
	case SortLastRotated:
		return t(k.LastRotated)
	case SortExpiresAt:
		return t(k.ExpiresAt)
	}
	return k.ID, true
}
