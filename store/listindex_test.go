package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// indexWorld is a store under random writes, with the secrets it issued.
type indexWorld struct {
	st *store.Store
	// now is the store's clock, moved by the test; the store's background
	// flush reads it too, under clockMu.
	now     time.Time
	clockMu sync.Mutex
	secrets map[string]string // key id → current secret
}

var (
	indexAccounts = []string{"a", "b"}
	indexNames    = []string{"", "web", "web-1", "db", "web-2"}
	indexSAs      = []string{"ci", "ops"}
)

func newIndexWorld(t testing.TB) *indexWorld {
	w := &indexWorld{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), secrets: map[string]string{}}
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: -1, Now: func() time.Time {
		w.clockMu.Lock()
		defer w.clockMu.Unlock()
		return w.now
	}})
	w.st = st
	for _, a := range indexAccounts {
		_, _, _, err := st.CreateAccount(context.Background(), a, "")
		require.NoError(t, err)
		for _, sa := range indexSAs {
			_, err := st.CreateServiceAccount(context.Background(), a, sa, "", true)
			require.NoError(t, err)
		}
	}
	return w
}

func (w *indexWorld) anyKey(rt *rapid.T) (store.Key, bool) {
	acct := rapid.SampledFrom(indexAccounts).Draw(rt, "account")
	keys, err := w.st.Keys(acct)
	require.NoError(rt, err)
	if len(keys) == 0 {
		return store.Key{}, false
	}
	return rapid.SampledFrom(keys).Draw(rt, "key"), true
}

func (w *indexWorld) drawTime(rt *rapid.T, label string) time.Time {
	return w.now.Add(time.Duration(rapid.IntRange(-3, 3).Draw(rt, label)) * time.Hour)
}

func (w *indexWorld) ops() map[string]func(*rapid.T) {
	ok := func(rt *rapid.T, err error) {
		if err != nil && !errors.Is(err, store.ErrKeyNameTaken) && !errors.Is(err, store.ErrNotFound) &&
			!errors.Is(err, store.ErrServiceAccountNotFound) && !errors.Is(err, store.ErrServiceAccountExists) {
			rt.Fatalf("unexpected error: %v", err)
		}
	}
	return map[string]func(*rapid.T){
		"create": func(rt *rapid.T) {
			acct := rapid.SampledFrom(indexAccounts).Draw(rt, "account")
			owner := ""
			if sa := rapid.SampledFrom(append([]string{""}, indexSAs...)).Draw(rt, "holder"); sa != "" {
				owner = store.ServiceAccountOwner(acct, sa)
			}
			nk := store.NewKey{Account: acct, Owner: owner, Name: rapid.SampledFrom(indexNames).Draw(rt, "name")}
			if rapid.Bool().Draw(rt, "expires") {
				nk.ExpiresAt = w.drawTime(rt, "expires_at").Add(24 * time.Hour)
			}
			k, secret, err := w.st.CreateKey(context.Background(), nk)
			ok(rt, err)
			if err == nil {
				w.secrets[k.ID] = secret
			}
		},
		"update": func(rt *rapid.T) {
			k, found := w.anyKey(rt)
			if !found {
				return
			}
			var c store.KeyChange
			if rapid.Bool().Draw(rt, "rename") {
				name := rapid.SampledFrom(indexNames).Draw(rt, "name")
				c.Name = &name
			}
			if rapid.Bool().Draw(rt, "toggle") {
				active := !k.Active
				c.Active = &active
			}
			if rapid.Bool().Draw(rt, "expiry") {
				at := time.Time{}
				if rapid.Bool().Draw(rt, "set") {
					at = w.drawTime(rt, "expires_at").Add(24 * time.Hour)
				}
				c.ExpiresAt = &at
			}
			_, err := w.st.UpdateKey(context.Background(), k.Account, k.ID, func(store.Key) (store.KeyChange, error) { return c, nil })
			ok(rt, err)
		},
		"rotate": func(rt *rapid.T) {
			k, found := w.anyKey(rt)
			if !found {
				return
			}
			retain := time.Duration(rapid.IntRange(0, 1).Draw(rt, "retain")) * time.Hour
			_, secret, err := w.st.RotateKey(context.Background(), k.Account, k.ID, retain, func(store.Key) error { return nil })
			ok(rt, err)
			if err == nil {
				w.secrets[k.ID] = secret
			}
		},
		"delete": func(rt *rapid.T) {
			k, found := w.anyKey(rt)
			if !found {
				return
			}
			ok(rt, w.st.DeleteKey(context.Background(), k.Account, k.ID, func(store.Key) error { return nil }))
		},
		"delete holder": func(rt *rapid.T) {
			acct := rapid.SampledFrom(indexAccounts).Draw(rt, "account")
			sa := rapid.SampledFrom(indexSAs).Draw(rt, "sa")
			ok(rt, w.st.DeleteServiceAccount(context.Background(), acct, sa, func(store.Key) error { return nil }))
			_, err := w.st.CreateServiceAccount(context.Background(), acct, sa, "", true)
			ok(rt, err)
		},
		"clock": func(rt *rapid.T) {
			d := time.Duration(rapid.IntRange(1, 5400).Draw(rt, "seconds")) * time.Second
			w.clockMu.Lock()
			w.now = w.now.Add(d)
			w.clockMu.Unlock()
		},
	}
}

// drawQuery draws a filtered list of one account.
func (w *indexWorld) drawQuery(rt *rapid.T) store.KeyQuery {
	q := store.KeyQuery{Account: rapid.SampledFrom(indexAccounts).Draw(rt, "list account"), Limit: rapid.IntRange(1, 4).Draw(rt, "limit")}
	if rapid.Bool().Draw(rt, "by name") {
		q.Name = store.NameFilter{
			Op:   rapid.SampledFrom([]string{store.NameEquals, store.NameStartsWith, store.NameContains, store.NameEndsWith}).Draw(rt, "name op"),
			Text: rapid.SampledFrom([]string{"web", "web-1", "db", "-2", "b"}).Draw(rt, "name text"),
		}
	}
	if rapid.Bool().Draw(rt, "by active") {
		active := rapid.Bool().Draw(rt, "active")
		q.Active = &active
	}
	if rapid.Bool().Draw(rt, "by owner") {
		q.OwnerSet = true
		if sa := rapid.SampledFrom(append([]string{""}, indexSAs...)).Draw(rt, "owner"); sa != "" {
			q.Owner = store.ServiceAccountOwner(q.Account, sa)
		}
	}
	cond := func(label string) []store.TimeCond {
		if !rapid.Bool().Draw(rt, "by "+label) {
			return nil
		}
		return []store.TimeCond{{Op: rapid.SampledFrom([]string{"eq", "gt", "gte", "lt", "lte"}).Draw(rt, label+" op"),
			At: w.drawTime(rt, label).Add(time.Duration(rapid.IntRange(0, 1).Draw(rt, label+" ns")) * 500 * time.Millisecond)}}
	}
	q.Created, q.ExpiresAt, q.LastRotated = cond("created"), cond("expires_at"), cond("last_rotated")
	if len(q.ExpiresAt) > 0 {
		q.ExpiresAt[0].At = q.ExpiresAt[0].At.Add(24 * time.Hour)
	}
	q.Desc = rapid.Bool().Draw(rt, "desc")
	q.Sort = rapid.SampledFrom([]string{store.SortCreated, store.SortCreated, store.SortName}).Draw(rt, "sort")
	return q
}

// scanned is what a list of q must hold: a scan of the account's keys.
func scanned(t require.TestingT, st *store.Store, q store.KeyQuery) []string {
	keys, err := st.Keys(q.Account)
	require.NoError(t, err)
	in := func(v time.Time, conds []store.TimeCond) bool {
		if v.IsZero() {
			return false
		}
		for _, c := range conds {
			ok := map[string]bool{"eq": v.Equal(c.At), "gt": v.After(c.At), "gte": !v.Before(c.At), "lt": v.Before(c.At), "lte": !v.After(c.At)}[c.Op]
			if !ok {
				return false
			}
		}
		return true
	}
	var ids []string
	for _, k := range keys {
		name := map[string]bool{"": true, store.NameEquals: k.Name == q.Name.Text, store.NameStartsWith: strings.HasPrefix(k.Name, q.Name.Text),
			store.NameContains: strings.Contains(k.Name, q.Name.Text), store.NameEndsWith: strings.HasSuffix(k.Name, q.Name.Text)}[q.Name.Op]
		if !name || q.Active != nil && k.Active != *q.Active || q.OwnerSet && k.Owner != q.Owner ||
			len(q.Created) > 0 && !in(k.Created, q.Created) || len(q.ExpiresAt) > 0 && !in(k.ExpiresAt, q.ExpiresAt) ||
			len(q.LastRotated) > 0 && !in(k.LastRotated, q.LastRotated) {
			continue
		}
		ids = append(ids, k.ID)
	}
	return ids
}

// listed walks every page of q by cursor, checking each page's total.
func listed(t require.TestingT, st *store.Store, q store.KeyQuery, total int) []string {
	var ids []string
	for range 1000 {
		p, err := st.ListKeys(q)
		require.NoError(t, err)
		require.Equal(t, total, p.Total, "total")
		for _, k := range p.Keys {
			ids = append(ids, k.ID)
		}
		if p.Next == nil {
			return ids
		}
		q.After = p.Next
	}
	panic("no end of pages")
}

// TestKeyIndex_AgreesWithScan writes at random (creates, renames, active
// toggles, expiry changes, rotations, deletes of keys and of their holder,
// the clock moving) and after every step lists with random filters: each
// list, served by key_index, holds exactly the keys a scan finds, in
// order and with the scan's total; and CheckKeys finds the index whole.
func TestKeyIndex_AgreesWithScan(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newIndexWorld(t)
		ops := w.ops()
		ops[""] = func(rt *rapid.T) {
			require.NoError(rt, w.st.CheckKeys())
			for range 4 {
				q := w.drawQuery(rt)
				want := scanned(rt, w.st, q)
				got := listed(rt, w.st, q, len(want))
				if q.Sort == store.SortCreated {
					if q.Desc {
						slices.Reverse(want)
					}
					require.Equal(rt, want, got, "%+v", q)
				} else {
					require.ElementsMatch(rt, want, got, "%+v", q)
				}
			}
		}
		rt.Repeat(ops)
	})
}

// TestKeyIndex_Offsets: a page by offset holds the same keys as the same
// page reached by cursor, for a filter that reads keys and one that does not.
func TestKeyIndex_Offsets(t *testing.T) {
	st := MustOpenStore(t)
	for i := range 9 {
		_, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Name: fmt.Sprintf("k%d", i)})
		require.NoError(t, err)
	}
	inactive := false
	for _, q := range []store.KeyQuery{
		{Account: "a", Limit: 2, Name: store.NameFilter{Op: store.NameContains, Text: "k"}},
		{Account: "a", Limit: 2, Name: store.NameFilter{Op: store.NameStartsWith, Text: "k"}, Desc: true},
		{Account: "a", Limit: 2, Active: &inactive},
	} {
		all := listed(t, st, q, len(scanned(t, st, q)))
		for off := 0; off < len(all); off += 2 {
			q := q
			q.Offset = off
			p, err := st.ListKeys(q)
			require.NoError(t, err)
			var ids []string
			for _, k := range p.Keys {
				ids = append(ids, k.ID)
			}
			assert.Equal(t, all[off:min(off+2, len(all))], ids)
		}
	}
}

// TestKeyIndex_BuiltOnOpen opens a file written before key_index existed
// (schema version 2, no index, no counts of its lists): the index is built
// when it opens, lists answer from it, and the check passes.
func TestKeyIndex_BuiltOnOpen(t *testing.T) {
	storetest.NeedsFile(t)
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	_, err := st.CreateServiceAccount(context.Background(), "a", "ci", "", true)
	require.Error(t, err) // no account a yet
	_, _, _, err = st.CreateAccount(context.Background(), "a", "")
	require.NoError(t, err)
	_, err = st.CreateServiceAccount(context.Background(), "a", "ci", "", true)
	require.NoError(t, err)
	off := false
	for i := range 6 {
		nk := store.NewKey{Account: "a", Name: fmt.Sprintf("k%d", i)}
		if i%2 == 0 {
			nk.Owner = store.ServiceAccountOwner("a", "ci")
		}
		k, _, err := st.CreateKey(context.Background(), nk)
		require.NoError(t, err)
		if i%3 == 0 {
			_, err = st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Active: &off}, nil })
			require.NoError(t, err)
		}
	}
	queries := []store.KeyQuery{
		{Account: "a", Limit: 10, Active: &off},
		{Account: "a", Limit: 10, OwnerSet: true},
		{Account: "a", Limit: 10, OwnerSet: true, Active: &off},
		{Account: "a", Limit: 10, Name: store.NameFilter{Op: store.NameEquals, Text: "k3"}},
	}
	before := map[int]store.KeyPage{}
	for i, q := range queries {
		before[i], err = st.ListKeys(q)
		require.NoError(t, err)
		require.NotZero(t, before[i].Total)
	}
	require.NoError(t, st.Close())

	db := openRaw(t, path)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		if err := tx.DeleteBucket([]byte("key_index")); err != nil {
			return err
		}
		counts := tx.Bucket([]byte("key_counts"))
		var lists [][]byte
		err := counts.ForEach(func(k, _ []byte) error {
			if k[0] == 0 {
				lists = append(lists, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range lists {
			if err := counts.Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("2"))
	}))
	require.NoError(t, db.Close())
	require.ErrorIs(t, store.CheckFile(path, time.Second), store.ErrInconsistent, "the old file lacks the index")

	st = MustOpenStoreAt(t, path)
	for i, q := range queries {
		p, err := st.ListKeys(q)
		require.NoError(t, err)
		assert.Equal(t, before[i], p, "query %d", i)
	}
	require.NoError(t, st.CheckKeys())
	require.NoError(t, st.Close())
	require.NoError(t, store.CheckFile(path, time.Second))
}

// TestKeyIndex_CheckFindsFaults: CheckKeys reports a key missing from
// key_index, an entry leading nowhere, and a wrong count of a list.
func TestKeyIndex_CheckFindsFaults(t *testing.T) {
	storetest.NeedsFile(t)
	for _, tt := range []struct {
		name  string
		fault string
		spoil func(ix, counts kv.Bucket) error
	}{
		{"MissingEntry", "missing from key_index", func(ix, _ kv.Bucket) error {
			k, _ := ix.Cursor().First()
			return ix.Delete(k)
		}},
		{"StrayEntry", "key_index entries lead to no key", func(ix, _ kv.Bucket) error {
			return ix.Put([]byte("na\x00ghost\x0001900000-0000-7000-8000-000000000000"), nil)
		}},
		{"WrongCount", "counts 7 keys, holds 1", func(_, counts kv.Bucket) error {
			return counts.Put([]byte("\x00ia"), []byte{7})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "apikeyd.db")
			st := MustOpenStoreAt(t, path)
			_, _, _, err := st.CreateAccount(context.Background(), "a", "")
			require.NoError(t, err)
			k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Name: "web"})
			require.NoError(t, err)
			off := false
			_, err = st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Active: &off}, nil })
			require.NoError(t, err)
			require.NoError(t, st.CheckKeys())
			require.NoError(t, st.Close())
			db := openRaw(t, path)
			require.NoError(t, db.Update(func(tx kv.Tx) error {
				return tt.spoil(tx.Bucket([]byte("key_index")), tx.Bucket([]byte("key_counts")))
			}))
			require.NoError(t, db.Close())
			err = store.CheckFile(path, time.Second)
			assert.ErrorIs(t, err, store.ErrInconsistent)
			assert.ErrorContains(t, err, tt.fault)
		})
	}
}
