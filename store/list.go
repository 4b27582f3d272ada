package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
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

// KeyQuery asks ListKeys for one page of an account's keys. Its filters
// are fields the store plans with: it walks the smallest index that
// answers one of them and tests the rest key by key.
type KeyQuery struct {
	Account string
	// Owner, when OwnerSet, restricts the list to keys of that holder (""
	// is the account itself, not a user or service account).
	Owner    string
	OwnerSet bool
	// Name, when its Op is set, keeps keys whose name equals, starts
	// with, contains or ends with its Text.
	Name NameFilter
	// Active, when set, keeps the keys switched on (true) or off (false).
	Active *bool
	// Conditions on time fields: a key matches when it has that time and
	// it meets every condition. LastUsed sees uses not yet written.
	Created, LastUsed, LastRotated, ExpiresAt []TimeCond
	// Match, when set, keeps only the keys it accepts. It sees each key
	// with its latest usage and quota, and costs a read of every key the
	// other filters leave (see MaxListScan).
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

// NameFilter is a condition on key names.
type NameFilter struct {
	Op   string // one of the Name* operators; "" filters nothing
	Text string
}

// Operators of NameFilter. Equals and StartsWith have an index; Contains
// and EndsWith read the keys the other filters leave.
const (
	NameEquals     = "equals"
	NameStartsWith = "startswith"
	NameContains   = "contains"
	NameEndsWith   = "endswith"
)

// TimeCond is one condition on a time field: Op is "eq", "gt", "gte", "lt"
// or "lte", comparing the key's time with At. Times are kept to the second.
type TimeCond struct {
	Op string
	At time.Time
}

// MaxListScan bounds the keys one filtered list may read one by one: those
// its indexes cannot answer (a name that contains or ends with a text, a
// last_used_at condition, Match, or a filter beside another that drives
// the walk), and, in an order other than created, the matching keys it
// sorts. A list that would read more fails with ErrListTooBroad before
// reading any. Walking index entries, which reads no key, is not counted.
const MaxListScan = 50_000

// listScanLimit is MaxListScan, lowered by tests.
var listScanLimit = MaxListScan

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

// ListKeys returns one page of account's keys. In created order, a page
// whose filters one index answers (owner, active, or the two together,
// or none) costs the same at any depth when reached by After, and its
// total comes from stored counts; a page of other filters walks the
// entries of the smallest index that answers one of them, testing the
// rest key by key, at most MaxListScan keys read. Other orders sort every
// matching key.
func (s *Store) ListKeys(q KeyQuery) (KeyPage, error) {
	if q.Sort == "" {
		q.Sort = SortCreated
	}
	if !slices.Contains(SortFields, q.Sort) || q.Limit < 1 || q.Offset < 0 || !q.valid() {
		return KeyPage{}, ErrBadQuery
	}
	var page KeyPage
	err := s.view(func(tx kv.Tx) error {
		if q.OwnerSet && !ownerIn(tx, q.Account, q.Owner) {
			return nil // another account's holder, or none: nothing, not even a count
		}
		p, ok := q.plan(tx)
		if !ok {
			return nil // a time span no key can meet
		}
		var err error
		switch {
		case q.Sort != SortCreated:
			page, err = s.listSorted(tx, &q, p)
		case p.total >= 0 && p.ordered:
			page, err = s.listCounted(tx, &q, p)
		default:
			page, err = s.listSelected(tx, &q, p)
		}
		return err
	})
	return page, err
}

// valid reports whether q's filters are well formed.
func (q *KeyQuery) valid() bool {
	switch q.Name.Op {
	case "", NameEquals, NameStartsWith, NameContains, NameEndsWith:
	default:
		return false
	}
	for _, conds := range [][]TimeCond{q.Created, q.LastUsed, q.LastRotated, q.ExpiresAt} {
		if _, _, ok := spanOf(conds); !ok {
			return false
		}
	}
	return true
}

// filtered reports whether q has a filter beside the owner.
func (q *KeyQuery) filtered() bool {
	return q.Name.Op != "" || q.Active != nil || q.Match != nil ||
		len(q.Created)+len(q.LastUsed)+len(q.LastRotated)+len(q.ExpiresAt) > 0
}

// ownerIn reports whether owner is a holder of account ("" is the account
// itself), so that a list by another account's holder reads nothing of it.
func ownerIn(tx kv.Tx, account, owner string) bool {
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

// spanOf turns conditions on a time into the whole seconds that meet all
// of them, lo to hi inclusive; ok is false for an unknown operator.
func spanOf(conds []TimeCond) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	for _, c := range conds {
		floor := c.At.Unix()
		ceil := floor
		if c.At.Nanosecond() > 0 {
			ceil++
		}
		switch c.Op {
		case "eq":
			lo, hi = max(lo, ceil), min(hi, floor)
		case "gt":
			if floor < math.MaxInt64 {
				lo = max(lo, floor+1)
			} else {
				lo, hi = 1, 0
			}
		case "gte":
			lo = max(lo, ceil)
		case "lt":
			if ceil > math.MinInt64 {
				hi = min(hi, ceil-1)
			} else {
				lo, hi = 1, 0
			}
		case "lte":
			hi = min(hi, floor)
		default:
			return 0, 0, false
		}
	}
	return lo, hi, true
}

// inSpan reports whether t is set and meets conds.
func inSpan(t time.Time, conds []TimeCond) bool {
	if t.IsZero() {
		return false
	}
	lo, hi, _ := spanOf(conds)
	v := t.Unix()
	return lo <= v && v <= hi
}

// keyPlan is how a list finds its candidates: the entries of one index
// within a range, each leading to a key id.
type keyPlan struct {
	b        kv.Bucket
	prefix   []byte // every entry starts with it
	from, to []byte // entries lie in [from, to); to nil: to the end of prefix
	byValue  bool   // the id is the entry's value (key_names), else its last 36 bytes
	// ordered: the entries are prefix + id, in id order.
	ordered bool
	// total, when not negative, is the number of matches: the walk needs
	// no test but the cheap one of active, which total counts.
	total int
	// size is the number of entries, when known (-1 otherwise).
	size int
	// The filters the walk answers, needing no test.
	name, owner, active, created, expires, rotated bool
}

// plan picks the index q walks. The lists of an account or holder, and
// of its keys switched off, have stored counts; the indexes of a name or
// a time span are counted, each up to the size of the best so far. ok is
// false when a time span is empty.
func (q *KeyQuery) plan(tx kv.Tx) (*keyPlan, bool) {
	ix := tx.Bucket(bucketKeyIndex)
	list := q.Account
	best := &keyPlan{owner: !q.OwnerSet, total: -1}
	switch {
	case !q.OwnerSet:
		best.b, best.prefix, best.size = tx.Bucket(bucketAccountKeys), accountKey(q.Account, ""), countKeys(tx, q.Account)
	case q.Owner == "":
		list = holderList(q.Account, "")
		best.b, best.prefix, best.size = ix, ixPrefix(ixOwn, q.Account), countKeys(tx, "\x00o"+q.Account)
		best.owner = true
	default:
		list = q.Owner
		best.b, best.prefix, best.size = tx.Bucket(bucketOwnerKeys), accountKey(q.Owner, ""), countKeys(tx, q.Owner)
		best.owner = true
	}
	inactive := countKeys(tx, "\x00i"+list)
	switch {
	case q.Active == nil:
	case *q.Active:
		best.size -= inactive
	default:
		best.b, best.prefix, best.size, best.active = ix, ixPrefix(ixInactive, list), inactive, true
	}
	best.ordered = true
	best.total = best.size
	// A plan that reads no key beats one that does; between two alike,
	// the smaller wins.
	consider := func(p *keyPlan) {
		p.total = -1
		switch reads, bestReads := q.needsRead(p), q.needsRead(best); {
		case reads && !bestReads:
		case !reads && bestReads:
			p.size, best = -1, p // counted when compared, or by the walk
		default:
			if best.size < 0 {
				best.size = best.count(math.MaxInt)
			}
			if p.size = p.count(best.size + 1); p.size < best.size {
				best = p
			}
		}
	}
	switch q.Name.Op {
	case NameEquals:
		if q.OwnerSet {
			k := nameKey(q.Account, q.Owner, q.Name.Text)
			consider(&keyPlan{b: tx.Bucket(bucketKeyNames), prefix: k, from: k, to: append(bytes.Clone(k), 0), byValue: true, name: true, owner: true})
		} else {
			p := append(ixPrefix(ixName, q.Account), q.Name.Text...)
			consider(&keyPlan{b: ix, prefix: append(p, 0), ordered: true, name: true})
		}
	case NameStartsWith:
		if q.OwnerSet {
			k := nameKey(q.Account, q.Owner, q.Name.Text)
			consider(&keyPlan{b: tx.Bucket(bucketKeyNames), prefix: k, byValue: true, name: true, owner: true})
		} else {
			consider(&keyPlan{b: ix, prefix: append(ixPrefix(ixName, q.Account), q.Name.Text...), name: true})
		}
	}
	for _, t := range []struct {
		tag   byte
		conds []TimeCond
	}{{ixCreated, q.Created}, {ixExpires, q.ExpiresAt}, {ixRotated, q.LastRotated}, {0, q.LastUsed}} {
		if len(t.conds) == 0 {
			continue
		}
		lo, hi, _ := spanOf(t.conds)
		if lo > hi {
			return nil, false
		}
		if t.tag == 0 {
			continue // last_used_at has no index: uses in memory count too
		}
		prefix := ixPrefix(t.tag, q.Account)
		if t.tag == ixCreated && spansAll(ix, prefix, lo, hi) {
			q.Created = nil // every key of the account meets it
			continue
		}
		p := &keyPlan{b: ix, prefix: prefix, from: append(bytes.Clone(prefix), ixTime(time.Unix(lo, 0))...)}
		if hi < math.MaxInt64 {
			p.to = append(bytes.Clone(prefix), ixTime(time.Unix(hi+1, 0))...)
		}
		switch t.tag {
		case ixCreated:
			p.created = true
		case ixExpires:
			p.expires = true
		case ixRotated:
			p.rotated = true
		}
		consider(p)
	}
	if best.total >= 0 && q.needsRead(best) {
		best.total = -1
	}
	return best, true
}

// spansAll reports whether lo to hi holds the times of the first and the
// last entry under prefix of key_index, and so of every one.
func spansAll(ix kv.Bucket, prefix []byte, lo, hi int64) bool {
	at := func(k []byte) (int64, bool) {
		if !bytes.HasPrefix(k, prefix) || len(k) < len(prefix)+8 {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(k[len(prefix):]) ^ 1<<63), true
	}
	c := ix.Cursor()
	k, _ := c.Seek(prefix)
	first, ok := at(k)
	if !ok || first < lo {
		return false
	}
	k, _ = c.Seek(append(bytes.Clone(prefix[:len(prefix)-1]), 1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	last, ok := at(k)
	return ok && last <= hi
}

// needsRead reports whether a key found by p must be read to test it.
func (q *KeyQuery) needsRead(p *keyPlan) bool {
	return q.Name.Op != "" && !p.name || len(q.Created) > 0 && !p.created || len(q.ExpiresAt) > 0 && !p.expires ||
		len(q.LastRotated) > 0 && !p.rotated || len(q.LastUsed) > 0 || q.Match != nil
}

// count counts p's entries, stopping at limit.
func (p *keyPlan) count(limit int) int {
	n := 0
	p.each(func([]byte) bool {
		n++
		return n < limit
	})
	return n
}

// each calls fn with the id of each of p's entries, in entry order, until
// fn returns false. The id is valid during the transaction.
func (p *keyPlan) each(fn func(id []byte) bool) {
	c := p.b.Cursor()
	from := p.from
	if from == nil {
		from = p.prefix
	}
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, p.prefix); k, v = c.Next() {
		if p.to != nil && bytes.Compare(k, p.to) >= 0 {
			return
		}
		id := v
		if !p.byValue {
			if len(k) < keyIDLen {
				continue
			}
			id = k[len(k)-keyIDLen:]
		}
		if !fn(id) {
			return
		}
	}
}

// keyTest tests the keys a plan finds against the filters it leaves.
type keyTest struct {
	s    *Store
	tx   kv.Tx
	q    *KeyQuery
	p    *keyPlan
	keys kv.Bucket
	// Cursors of key_index, owner_keys and keys, kept for the walk.
	ix, owner, keysAt kv.Cursor
	buf               []byte
	read              bool // a key must be read
	reads             int
	// Prefixes of the account's entries in key_index and of the holder's
	// list in owner_keys.
	inactive, own, held []byte
}

func (s *Store) tester(tx kv.Tx, q *KeyQuery, p *keyPlan) *keyTest {
	keys := tx.Bucket(bucketKeys)
	return &keyTest{s: s, tx: tx, q: q, p: p, ix: tx.Bucket(bucketKeyIndex).Cursor(), owner: tx.Bucket(bucketOwnerKeys).Cursor(),
		keys: keys, keysAt: keys.Cursor(), read: q.needsRead(p),
		inactive: ixPrefix(ixInactive, q.Account), own: ixPrefix(ixOwn, q.Account), held: accountKey(q.Owner, "")}
}

// has reports whether the bucket of cursor c has the entry prefix + id.
// A cursor kept for the walk looks up without allocating, where
// Bucket.Get makes a cursor each time.
func (t *keyTest) has(c kv.Cursor, prefix []byte, id []byte) bool {
	t.buf = append(append(t.buf[:0], prefix...), id...)
	k, _ := c.Seek(t.buf)
	return bytes.Equal(k, t.buf)
}

// get returns the record of key id, or nil.
func (t *keyTest) get(id []byte) []byte {
	k, v := t.keysAt.Seek(id)
	if !bytes.Equal(k, id) {
		return nil
	}
	return v
}

// keeps reports whether the key id meets the filters p leaves.
func (t *keyTest) keeps(id []byte) (bool, error) {
	q := t.q
	if q.Active != nil && !t.p.active {
		if t.has(t.ix, t.inactive, id) == *q.Active {
			return false, nil
		}
	}
	if q.OwnerSet && !t.p.owner {
		var ok bool
		if q.Owner == "" {
			ok = t.has(t.ix, t.own, id)
		} else {
			ok = t.has(t.owner, t.held, id)
		}
		if !ok {
			return false, nil
		}
	}
	if !t.read {
		return true, nil
	}
	t.reads++
	if t.reads > listScanLimit {
		return false, ErrListTooBroad
	}
	var r keyRecord
	if err := r.view(t.get(id)); err != nil {
		return false, err
	}
	if r.Account != q.Account {
		return false, nil
	}
	if q.Name.Op != "" && !t.p.name && !q.Name.matches(r.Name) ||
		len(q.Created) > 0 && !t.p.created && !inSpan(r.Created, q.Created) ||
		len(q.ExpiresAt) > 0 && !t.p.expires && !inSpan(r.ExpiresAt, q.ExpiresAt) ||
		len(q.LastRotated) > 0 && !t.p.rotated && !inSpan(r.LastRotated, q.LastRotated) {
		return false, nil
	}
	if len(q.LastUsed) == 0 && q.Match == nil {
		return true, nil
	}
	k, err := t.s.loadKey(t.keys, id)
	if err != nil {
		return false, err
	}
	return (len(q.LastUsed) == 0 || inSpan(k.LastUsed, q.LastUsed)) && (q.Match == nil || q.Match(&k)), nil
}

// matches reports whether name meets f.
func (f NameFilter) matches(name string) bool {
	switch f.Op {
	case NameEquals:
		return name == f.Text
	case NameStartsWith:
		return strings.HasPrefix(name, f.Text)
	case NameContains:
		return strings.Contains(name, f.Text)
	case NameEndsWith:
		return strings.HasSuffix(name, f.Text)
	}
	return true
}

// loadKey reads key id as callers see it, with its latest usage and quota.
func (s *Store) loadKey(keys kv.Bucket, id []byte) (Key, error) {
	rec, err := decodeRecord(keys.Get(id))
	if err != nil {
		return Key{}, err
	}
	k := rec.key()
	s.current(&k)
	return k, nil
}

// tooBroad reports whether walking p would read more keys than a list may.
func (q *KeyQuery) tooBroad(p *keyPlan) bool {
	return q.needsRead(p) && p.size > listScanLimit
}

// listCounted pages through an ordered plan whose total is known: from
// q.After, only the page's keys and the entries before it are walked.
func (s *Store) listCounted(tx kv.Tx, q *KeyQuery, p *keyPlan) (KeyPage, error) {
	t := s.tester(tx, q, p)
	page := KeyPage{Total: p.total}
	prefix := p.prefix
	c := p.b.Cursor()
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
	var ids []string
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = next() {
		id := k[len(prefix):]
		if ok, err := t.keeps(id); err != nil {
			return KeyPage{}, err
		} else if !ok {
			continue
		}
		if len(ids) == q.Limit {
			page.Next = &Position{ID: ids[len(ids)-1]}
			break
		}
		if skip > 0 {
			skip--
			continue
		}
		ids = append(ids, string(id))
	}
	return s.pageOf(tx, page, ids)
}

// pageOf reads the keys ids into page.
func (s *Store) pageOf(tx kv.Tx, page KeyPage, ids []string) (KeyPage, error) {
	keys := tx.Bucket(bucketKeys)
	page.Keys = make([]Key, 0, len(ids))
	for _, id := range ids {
		k, err := s.loadKey(keys, []byte(id))
		if err != nil {
			return KeyPage{}, err
		}
		page.Keys = append(page.Keys, k)
	}
	return page, nil
}

// listSelected walks every entry of p, counts the matches, and keeps the
// page's ids among them: those past q.After (in q's direction), the
// Offset first skipped, kept in a sorted window of Offset+Limit+1 ids.
func (s *Store) listSelected(tx kv.Tx, q *KeyQuery, p *keyPlan) (KeyPage, error) {
	if q.tooBroad(p) {
		return KeyPage{}, ErrListTooBroad
	}
	window := q.Offset + q.Limit + 1
	if window > listScanLimit {
		return KeyPage{}, ErrListTooBroad
	}
	t := s.tester(tx, q, p)
	before := func(a, b []byte) bool { // a comes first in q's order
		if q.Desc {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	var after []byte
	if q.After != nil {
		after = []byte(q.After.ID)
	}
	var page KeyPage
	var best [][]byte // sorted in q's order
	var err error
	p.each(func(id []byte) bool {
		var ok bool
		if ok, err = t.keeps(id); err != nil || !ok {
			return err == nil
		}
		page.Total++
		if after != nil && !before(after, id) {
			return true
		}
		if len(best) == window && !before(id, best[window-1]) {
			return true
		}
		i, _ := slices.BinarySearchFunc(best, id, func(a, b []byte) int {
			if q.Desc {
				return bytes.Compare(b, a)
			}
			return bytes.Compare(a, b)
		})
		if len(best) == window {
			best = best[:window-1]
		}
		best = slices.Insert(best, i, id)
		return true
	})
	if err != nil {
		return KeyPage{}, err
	}
	start := min(q.Offset, len(best))
	end := min(start+q.Limit, len(best))
	ids := make([]string, 0, end-start)
	for _, id := range best[start:end] {
		ids = append(ids, string(id))
	}
	if len(best) > end && end > start {
		page.Next = &Position{ID: ids[len(ids)-1]}
	}
	return s.pageOf(tx, page, ids)
}

// listSorted reads every matching key, sorts them and cuts the page out.
// A filtered list reads at most MaxListScan keys.
func (s *Store) listSorted(tx kv.Tx, q *KeyQuery, p *keyPlan) (KeyPage, error) {
	if p.size < 0 {
		p.size = p.count(listScanLimit + 1)
	}
	if q.filtered() && (q.tooBroad(p) || p.size > listScanLimit) {
		return KeyPage{}, ErrListTooBroad
	}
	t := s.tester(tx, q, p)
	var all []Key
	var err error
	p.each(func(id []byte) bool {
		var ok bool
		if ok, err = t.keeps(id); err != nil || !ok {
			return err == nil
		}
		var k Key
		if k, err = s.loadKey(t.keys, id); err != nil {
			return false
		}
		all = append(all, k)
		return true
	})
	if err != nil {
		return KeyPage{}, err
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
