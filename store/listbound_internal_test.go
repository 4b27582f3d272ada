package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListKeys_ScanBound: with the bound lowered to 5, a filtered list
// that would read more keys one by one, or sort more, or keep a deeper
// window, fails with ErrListTooBroad; lists that an index answers, or
// that read no more than the bound, do not.
func TestListKeys_ScanBound(t *testing.T) {
	listScanLimit = 5
	t.Cleanup(func() { listScanLimit = MaxListScan })
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	for i := range 10 {
		_, _, err := st.CreateKey(context.Background(), NewKey{Account: "a", Name: fmt.Sprintf("key-%d", i)})
		require.NoError(t, err)
	}
	off, on := false, true
	for _, tt := range []struct {
		name  string
		q     KeyQuery
		total int // -1: too broad
	}{
		{"ContainsReadsTen", KeyQuery{Name: NameFilter{NameContains, "key"}}, -1},
		{"EndsWithReadsTen", KeyQuery{Name: NameFilter{NameEndsWith, "1"}}, -1},
		{"LastUsedReadsTen", KeyQuery{LastUsed: []TimeCond{{"gt", time.Unix(0, 0)}}}, -1},
		{"MatchReadsTen", KeyQuery{Match: func(*Key) bool { return true }}, -1},
		{"StartsWithIndexed", KeyQuery{Name: NameFilter{NameStartsWith, "key"}}, 10},
		{"EqualsThenContains", KeyQuery{Name: NameFilter{NameEquals, "key-3"}, Match: func(*Key) bool { return true }}, 1},
		{"ActiveCounted", KeyQuery{Active: &on}, 10},
		{"InactiveNone", KeyQuery{Active: &off, Name: NameFilter{NameContains, "key"}}, 0},
		{"SortedTen", KeyQuery{Name: NameFilter{NameStartsWith, "key"}, Sort: SortName}, -1},
		{"SortedUnfiltered", KeyQuery{Sort: SortName}, 10},
		{"DeepWindow", KeyQuery{Name: NameFilter{NameStartsWith, "key"}, Offset: 4}, -1},
		{"DeepCounted", KeyQuery{Active: &on, Offset: 8}, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			q.Account, q.Limit = "a", 1
			p, err := st.ListKeys(q)
			if tt.total < 0 {
				assert.ErrorIs(t, err, ErrListTooBroad)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.total, p.Total)
		})
	}
}
