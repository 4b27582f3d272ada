# apikeyd: make build | run | test | vet | fmt | bench | bench-scale
GO      ?= go
BIN     ?= bin/apikeyd
ADDR    ?= 127.0.0.1:8080
DB      ?= ./apikeyd.db
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test vet fmt fmt-check bench bench-scale cover clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/apikeyd

run: build
	./$(BIN) serve --addr $(ADDR) --db $(DB)

test:
	$(GO) test -race -count=1 -timeout 10m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkScale$$' -benchmem ./...

# Builds stores of 1,000 and 1,000,000 keys (a minute or two, ~1 GiB of
# temp disk) and measures authentication and list pages in each.
bench-scale:
	$(GO) test -run '^$$' -bench '^BenchmarkScale$$' -timeout 30m -v ./store

cover:
	$(GO) test -race -count=1 -coverprofile=cover.out ./... && $(GO) tool cover -func=cover.out | tail -1

clean:
	rm -rf bin cover.out
