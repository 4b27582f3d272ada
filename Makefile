# apikeyd: make build | run | test | vet | fmt | docs | bench | bench-scale | bench-memory | bench-flood | bench-compare | bench-writes | bench-gateway | bench-revocation | pgo | node-deps
GO      ?= go
BIN     ?= bin/apikeyd
# The command-line client, a binary of its own (docs/cli.md).
CTL_BIN ?= bin/apikeyctl
# make run serves on $(ADDR) with $(DB); APIKEYD_ADDR and APIKEYD_DB in the
# environment set them, as they set apikeyd's own --addr and --db.
ADDR    ?= $(or $(APIKEYD_ADDR),127.0.0.1:8080)
DB      ?= $(or $(APIKEYD_DB),./apikeyd.db)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
NODE_CLIENTS := testdata/clients/node

.PHONY: build run test node-deps docs vet fmt fmt-check bench bench-scale bench-memory bench-flood bench-compare bench-writes bench-gateway bench-revocation pgo cover clean
.PHONY: crash timing
.PHONY: soak
.PHONY: fuzz

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/apikeyd
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(CTL_BIN) ./cmd/apikeyctl

run: build
	./$(BIN) serve --addr $(ADDR) --db $(DB)

# The store's tests and the end-to-end and golden tests of rpc run twice:
# on bbolt, and on etcd started inside the test binary (store/storetest).
test: node-deps
	$(GO) test -race -count=1 -timeout 10m ./...
	APIKEYD_TEST_BACKEND=etcd $(GO) test -race -count=1 -timeout 10m ./store/ ./rpc/ ./rpc/h1/

# Installs, from the committed lock file, the JSON-RPC client libraries that
# rpc/clients_test.go runs under node. It reinstalls when the lock file is
# newer than the install (npm writes node_modules/.package-lock.json), so a
# changed pin is never tested against old packages. Without npm it only says
# so, and so does a failed install (no network, say): outside CI that test
# then skips, saying why. In CI (CI=true) both are errors, as is the test.
node-deps:
	@if [ -f $(NODE_CLIENTS)/node_modules/.package-lock.json ] && \
	    [ ! $(NODE_CLIENTS)/package-lock.json -nt $(NODE_CLIENTS)/node_modules/.package-lock.json ]; then \
		:; \
	elif command -v npm >/dev/null 2>&1; then \
		echo "npm ci --no-audit --no-fund --prefix $(NODE_CLIENTS)"; \
		npm ci --no-audit --no-fund --prefix $(NODE_CLIENTS) || { \
			echo "node-deps: npm ci failed; $(NODE_CLIENTS) is not installed (TestClients needs it)"; \
			case "$$CI" in ""|0|false|FALSE|False) ;; *) exit 1 ;; esac; }; \
	else \
		echo "node-deps: npm not found; not installing $(NODE_CLIENTS) (TestClients needs node and these packages)"; \
		case "$$CI" in ""|0|false|FALSE|False) ;; *) exit 1 ;; esac; \
	fi

# Rewrites docs/api.md's method index from the method table.
docs:
	$(GO) test ./rpc -run '^TestAPIDocs$$' -count=1 -update-docs

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -skip '^Benchmark(Scale|AuditFlood)$$' -benchmem ./...

# Builds stores of 1,000 and 1,000,000 keys (a minute or two, ~1 GiB of
# temp disk) and measures authentication and list pages in each; then,
# in a store of a million keys kept in the temp dir between runs, the
# first page of apikey.list under each filter (ms/op, B/op).
bench-scale:
	$(GO) test -run '^$$' -bench '^BenchmarkScale(Filters)?$$' -timeout 30m -v ./store

# Resident memory after authenticating each key of a store of 1,000 and
# of 1,000,000 keys once: all of it, the data file's mapped pages, the
# heap, and bytes per key beyond the file's pages.
bench-memory:
	$(GO) test -run '^$$' -bench '^BenchmarkMemory$$' -benchtime 1x -timeout 30m -v ./store

# Floods a server on the fast path with calls under a made-up key for 60 s,
# at full speed, and reports how much the data file grew (file-growth-bytes;
# it must stay under 1 MiB).
bench-flood:
	$(GO) test -run '^$$' -bench '^BenchmarkAuditFlood$$' -benchtime 60s -timeout 10m ./rpc

# Requests per second of apikeyd's apikey.info over HTTP beside peer
# JSON-RPC servers (testdata/bench/peers, its own module), each pinned to
# one core, taking turns: how any throughput figure in the docs is taken. Needs curl,
# jq and wrk. A quick look: make bench-compare BENCH_SECONDS=1 BENCH_ROUNDS=1
bench-compare:
	bash testdata/bench/compare.sh $(or $(BENCH_SECONDS),5) $(or $(BENCH_ROUNDS),3)

# apikey.create per second from one client and from BENCH_CLIENTS at once,
# beside the disk's ceiling of one fdatasync per write. Needs curl and wrk.
bench-writes:
	bash testdata/bench/writes.sh $(or $(BENCH_SECONDS),4) $(or $(BENCH_CLIENTS),64)

# A forwarded call through gateway mode beside the same call made straight
# to the upstream, with no upstream work and with 1 ms. BENCH_BASE=<git rev>
# adds apikeyd at that revision to the same turns. Needs curl, jq and wrk.
bench-gateway:
	bash testdata/bench/gateway.sh $(or $(BENCH_SECONDS),3) $(or $(BENCH_ROUNDS),5)

# Three nodes on a three-member etcd in process, 1,050 revocations of
# every kind (key deleted or switched off, grace period ended, service
# account switched off or deleted, user or account deleted): p50, p99 and
# max from the revoking call's return on one node to refusal on each
# other. Under a minute; without -race, as the figures in the docs are.
bench-revocation:
	$(GO) test ./store -count=1 -run '^TestRevocation$$' -v -timeout 5m

# Refreshes cmd/apikeyd/default.pgo, the profile go build optimises the
# server with, from 30 s of apikey.info under wrk. Refresh it after large
# changes to the call path.
pgo:
	bash cmd/apikeyd/pgo.sh

cover:
	$(GO) test -race -count=1 -coverprofile=cover.out ./... && $(GO) tool cover -func=cover.out | tail -1

# Kills the real server with SIGKILL at random moments of a write storm, 30
# rounds on one file, and checks after each that every acknowledged create,
# delete and scope change survived and that the file passes bbolt's check
# and store.CheckKeys. make test runs 3 rounds.
crash:
	$(GO) test ./cmd/apikeyd -count=1 -run '^TestCrash$$' -timeout 20m -v -crash.rounds=30

# Welch's t between wrong-key and near-miss authentication, and between
# logins of unknown and known users; |t| < 5 expected.
timing:
	$(GO) test ./store -run '^$$' -bench '^BenchmarkTiming' -benchtime 1x -timeout 20m -v -timing

# 64 clients over 8 accounts send mixed calls to the real server for 60 s,
# then every acknowledged create must be listed, every acknowledged delete
# gone, and no reply may have carried another account's key. Reports
# throughput. make test runs 2 s of it.
soak:
	$(GO) test ./cmd/apikeyd -count=1 -run '^TestSoak$$' -timeout 10m -v -soak.duration=60s -soak.clients=64 -soak.accounts=8

clean:
	rm -rf bin cover.out

# Runs each fuzz target for FUZZTIME (one at a time: go test fuzzes one
# target per run). Plain go test, and so make test and CI, runs only each
# target's seeds. A failing input is written to the package's
# testdata/fuzz/FuzzX/; commit it with the fix.
FUZZTIME ?= 1m
FUZZ_TARGETS := rpc:FuzzCallPath rpc:FuzzParamsDecode rpc/h1:FuzzH1Head rpc:FuzzServeHTTP rpc/urlstyle:FuzzServeURL \
	rpc/internal/jsonwire:FuzzValidJSON rpc/internal/jsonwire:FuzzValidObject rpc/internal/jsonwire:FuzzValidJSONStrict rpc/internal/jsonwire:FuzzSkipString rpc/internal/jsonwire:FuzzAppendJSONString \
	rpc/h1:FuzzFraming
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done
