package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Update runs fn on a private copy of the current snapshot and commits
// its changes in one etcd transaction that holds only if the version key
// is as the snapshot saw it: if any write of any node came between, fn
// runs again on a snapshot that holds that write. So writes are
// serializable across nodes, and none is lost.
//
// Update returns once this node's copy holds the commit, so every later
// View on this node sees it.
func (db *DB) Update(fn func(kv.Tx) error) error {
	db.updateMu.Lock()
	defer db.updateMu.Unlock()
	ctx, cancel := context.WithTimeout(db.ctx, 3*db.timeout)
	defer cancel()
	token := db.token()
	db.mu.Lock()
	db.mine[token] = 0
	db.mu.Unlock()
	defer func() {
		db.mu.Lock()
		delete(db.mine, token)
		db.mu.Unlock()
	}()
	for {
		base := db.snap.Load()
		tx := newWriteTx(db, base)
		if err := fn(tx); err != nil {
			return err
		}
		ops := tx.ops(token)
		if ops == nil {
			for _, f := range tx.onCommit {
				f()
			}
			return nil
		}
		rev, committed, err := db.commit(ctx, base.version, ops, token)
		if err != nil {
			return err
		}
		if !committed {
			continue
		}
		// The commit is durable: a copy slow to show it does not undo
		// it, so a wait that times out is not an error (the node goes
		// stale meanwhile, which authentication sees).
		_ = db.waitApplied(ctx, rev)
		for _, f := range tx.onCommit {
			f()
		}
		return nil
	}
}

// commit sends ops if the version key's mod revision is still version. It
// returns whether they committed, and the revision that decides: the
// commit's, or one that holds the other write that came first (once the
// copy holds it, a run of fn sees that write).
func (db *DB) commit(ctx context.Context, version int64, ops []clientv3.Op, token string) (int64, bool, error) {
	unchanged := clientv3.Compare(clientv3.ModRevision(db.prefix+"version"), "=", version)
	rctx, cancel := context.WithTimeout(ctx, db.timeout)
	resp, err := db.cli.Txn(rctx).If(unchanged).Then(ops...).Commit()
	cancel()
	if err == nil {
		if !resp.Succeeded {
			if err := db.waitApplied(ctx, resp.Header.Revision); err != nil {
				return 0, false, err
			}
		}
		return resp.Header.Revision, resp.Succeeded, nil
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return 0, false, fmt.Errorf("%w (%d operations): raise etcd's --max-txn-ops or --max-request-bytes: %w", kv.ErrTooLarge, len(ops), err)
	}
	return db.settle(ctx, version, token, err)
}

// settle finds out whether a transaction whose answer was lost (a timeout,
// a leader change) committed. It first makes sure that it never will
// later: it moves the version key on if it is still at version, so the
// lost transaction's comparison can no longer hold. Then the watch tells
// whether the transaction's token reached the version key.
func (db *DB) settle(ctx context.Context, version int64, token string, cause error) (int64, bool, error) {
	unchanged := clientv3.Compare(clientv3.ModRevision(db.prefix+"version"), "=", version)
	for {
		rctx, cancel := context.WithTimeout(ctx, db.timeout)
		resp, err := db.cli.Txn(rctx).If(unchanged).Then(clientv3.OpPut(db.prefix+"version", "fence")).Commit()
		cancel()
		if err == nil {
			if err := db.waitApplied(ctx, resp.Header.Revision); err != nil {
				return 0, false, fmt.Errorf("etcd: %w: %w (after %w)", kv.ErrOutcomeUnknown, err, cause)
			}
			db.mu.Lock()
			rev := db.mine[token]
			db.mu.Unlock()
			return rev, rev > 0, nil
		}
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("etcd: %w: %w", kv.ErrOutcomeUnknown, cause)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
