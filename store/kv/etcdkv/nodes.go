package etcdkv

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// nodeTTL is how long a node that stopped without a word still counts
// as alive.
const nodeTTL = 5 // seconds

// live announces this node under Shared()+"nodes/" with a lease that it
// keeps alive, and counts the nodes announced there every second, until
// the DB closes. A node that loses its lease (etcd away for longer than
// nodeTTL) announces itself again.
func (db *DB) live() {
	defer db.done.Done()
	key := db.Shared() + "nodes/" + db.node
	var keep <-chan *clientv3.LeaseKeepAliveResponse
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if keep == nil {
			keep = db.announce(key)
		}
		select {
		case <-db.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = db.cli.Delete(ctx, key)
			cancel()
			return
		case _, ok := <-keep:
			if !ok {
				keep = nil
			}
			continue
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(db.ctx, db.timeout)
		resp, err := db.cli.Get(ctx, db.Shared()+"nodes/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil {
			db.nodes.Store(max(1, resp.Count))
		}
	}
}

// announce puts key with a lease kept alive, and returns the keep-alive
// channel, which closes when the lease is lost (nil if it could not be
// granted).
func (db *DB) announce(key string) <-chan *clientv3.LeaseKeepAliveResponse {
	ctx, cancel := context.WithTimeout(db.ctx, db.timeout)
	defer cancel()
	lease, err := db.cli.Grant(ctx, nodeTTL)
	if err != nil {
		return nil
	}
	if _, err := db.cli.Put(ctx, key, "", clientv3.WithLease(lease.ID)); err != nil {
		return nil
	}
	keep, err := db.cli.KeepAlive(db.ctx, lease.ID)
	if err != nil {
		return nil
	}
	return keep
}
