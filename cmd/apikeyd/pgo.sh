#!/usr/bin/env bash
# Refreshes cmd/apikeyd/default.pgo, the CPU profile `go build` optimises
# apikeyd with (profile-guided optimisation): 30 seconds of authenticated
# apikey.info calls, the hot path, under wrk. Run from the project's root:
#
#   make pgo
#
# Needs wrk (installed from Debian's packages if missing), curl and jq.
set -euo pipefail
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 || { echo "pgo: cannot install wrk" >&2; exit 2; }
fi
go build -o "$work/apikeyd" ./cmd/apikeyd
admin=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
APIKEYD_ADMIN_KEY=$admin "$work/apikeyd" serve --addr 127.0.0.1:18190 --db "$work/pgo.db" \
  --debug-addr 127.0.0.1:18199 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18190/healthz && break; sleep 0.1; done
call() { curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" -d "$1" http://127.0.0.1:18190/rpc; }
id=$(call '{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"pgo"},"id":1}' | jq -r .result.id)
for n in $(seq 1 200); do call "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"filler $n\"},\"id\":1}" >/dev/null; done
{ echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
  echo "wrk.headers[\"Authorization\"] = \"Bearer $admin\""
  echo "wrk.body = '{\"jsonrpc\":\"2.0\",\"method\":\"apikey.info\",\"params\":{\"id\":\"$id\"},\"id\":1}'"; } >"$work/info.lua"
wrk -t1 -c32 -d35s -s "$work/info.lua" http://127.0.0.1:18190/rpc >/dev/null &
load=$!
sleep 2
curl -sS -o cmd/apikeyd/default.pgo 'http://127.0.0.1:18199/debug/pprof/profile?seconds=30'
wait "$load"
echo "pgo: wrote cmd/apikeyd/default.pgo"
