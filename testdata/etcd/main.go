// Command etcd runs a single-member etcd on this machine, for trying
// apikeyd's scale-out on one host, and for its benchmarks and
// documentation examples. It is etcd's own server (go.etcd.io/etcd/server
// embed), with the limits docs/scale-out.md recommends. A real deployment
// runs etcd's release or Debian's etcd-server package instead.
//
//	go run ./testdata/etcd --listen 127.0.0.1:2379 --data-dir ./etcd-data
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:2379", "client address")
	peer := flag.String("peer", "127.0.0.1:2380", "peer address")
	dir := flag.String("data-dir", "etcd-data", "data directory")
	maxOps := flag.Uint("max-txn-ops", 10000, "most operations in one transaction")
	noSync := flag.Bool("unsafe-no-fsync", false, "skip fsync (benchmarks of the rest only)")
	flag.Parse()

	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = *dir
	client := url.URL{Scheme: "http", Host: *listen}
	peers := url.URL{Scheme: "http", Host: *peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers}, []url.URL{peers}
	cfg.InitialCluster = cfg.Name + "=" + peers.String()
	cfg.MaxTxnOps = *maxOps
	cfg.MaxRequestBytes = 10 << 20
	cfg.UnsafeNoFsync = *noSync
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd serving on %s\n", client.String())
	case err := <-e.Err():
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	select {
	case <-stop:
	case err := <-e.Err():
		log.Fatal(err)
	}
}
