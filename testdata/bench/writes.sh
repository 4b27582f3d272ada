#!/usr/bin/env bash
# Write throughput: apikey.create per second from one client and from many at
# once, beside the disk's ceiling for one durable commit per write (small
# write + fdatasync per second, measured on the same disk in the same run).
# A store that commits each write alone can never pass that ceiling; group
# commit multiplies it. From the project's root:
#
#   make bench-writes [BENCH_SECONDS=4] [BENCH_CLIENTS=64]
#   testdata/bench/writes.sh [SECONDS] [CLIENTS]   # the same, from anywhere
#
# Needs: Go, curl, and wrk (installed from Debian's packages if missing).
set -euo pipefail
secs=${1:-4}; clients=${2:-64}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 || { echo "writes: cannot install wrk" >&2; exit 2; }
fi
(cd "$here/fsyncprobe" && go build -o "$work/fsyncprobe" .)
(cd "$root" && go build -o "$work/apikeyd" ./cmd/apikeyd)
admin=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=18190
! (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null || { echo "writes: port $port is in use" >&2; exit 2; }
APIKEYD_ADMIN_KEY=$admin "$work/apikeyd" serve --addr 127.0.0.1:$port --db "$work/w.db" >"$work/apikeyd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
{ echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
  echo "wrk.headers[\"Authorization\"] = \"Bearer $admin\""
  echo "wrk.body = '{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"w\"},\"id\":1}'"
  echo 'function response(status, headers, body) if not string.find(body, "\"result\"") then wrk.thread:stop() end end'; } >"$work/create.lua"
reply=$(curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" \
  -d '{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"w"},"id":1}' http://127.0.0.1:$port/rpc)
echo "$reply" | grep -q '"result"' || { echo "writes: apikey.create failed: $reply" >&2; exit 1; }
ceiling=$("$work/fsyncprobe" -dir "$work" -secs 2)
one=$(wrk -t1 -c1 -d"${secs}s" -s "$work/create.lua" http://127.0.0.1:$port/rpc | awk '/^Requests\/sec/ {print $2}')
many=$(wrk -t2 -c"$clients" -d"${secs}s" -s "$work/create.lua" http://127.0.0.1:$port/rpc | awk '/^Requests\/sec/ {print $2}')
printf 'fsync ceiling   %10.0f commits/s (write + fdatasync on the same disk)\n' "$ceiling"
printf 'create, 1 client %9.0f /s\n' "$one"
printf 'create, %d clients %7.0f /s\n' "$clients" "$many"
awk -v a="$many" -v b="$one" -v c="$ceiling" 'BEGIN {printf "ratio many/one %.2f\nratio many/ceiling %.2f\n", a/b, a/c}'
