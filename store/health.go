package store

import (
	"context"
	"errors"
	"strconv"

	"github.com/apikeyd/apikeyd/store/kv"
)

// metaReady is the meta key the readiness probe writes: the time of the
// last probe, which nothing else reads.
var metaReady = []byte("ready_probe")

// errClosed is returned by Ready on a closed store.
var errClosed = errors.New("store: closed")

// Fresh fails, wrapping ErrStale, when the store's engine cannot vouch
// that its data is current (a node of a shared engine cut off from it);
// a file always can.
func (s *Store) Fresh() error { return s.db.Fresh() }

// Ready proves the store answers: it reads the schema version in a read
// transaction, then writes the probe's time to the meta bucket in a write
// transaction of its own, through the door for writes that touch no key
// state (so it drops no cached key). It returns the first failure.
func (s *Store) Ready() error {
	if s.closed.Load() {
		return errClosed
	}
	err := s.view(func(tx kv.Tx) error {
		_, err := schemaOf(tx.Bucket(bucketMeta).Get(metaSchema))
		return err
	})
	if err != nil {
		return err
	}
	now := strconv.FormatInt(s.now().UnixNano(), 10)
	return s.updateKeys(context.Background(), func(tx kv.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaReady, []byte(now))
	})
}
