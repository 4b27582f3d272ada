package store

import (
	"bytes"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store/kv"
)

// Authority returns what k carries that bounds what it may do, for
// scope.Within.
func (k Key) Authority() scope.Authority {
	a := scope.Authority{Key: k.ID, Scopes: k.Scopes, NotBefore: k.NotBefore, ExpiresAt: k.ExpiresAt, Holder: k.Owner}
	if k.Rate.Limit > 0 {
		a.Limits.RateLimit, a.Limits.RateInterval = k.Rate.Limit, k.Rate.Interval
	}
	if k.HasQuota {
		a.Limits.Quota, a.Limits.Refill, a.Limits.RefillAmount = true, k.Quota.Refill, k.Quota.RefillAmount
	}
	return a
}

// checkOwnerKeys calls check with every key owner holds, in tx, and returns
// the first error it returns. Holder writes call it in the transaction that
// writes, so a key added meanwhile is seen too.
func checkOwnerKeys(tx kv.Tx, owner string, check func(Key) error) error {
	prefix := accountKey(owner, "")
	c := tx.Bucket(bucketOwnerKeys).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		rec, err := decodeRecord(tx.Bucket(bucketKeys).Get(k[len(prefix):]))
		if err != nil {
			return err
		}
		if err := check(rec.key()); err != nil {
			return err
		}
	}
	return nil
}
