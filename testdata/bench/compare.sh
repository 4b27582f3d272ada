#!/usr/bin/env bash
# Side-by-side HTTP throughput: this project's authenticated apikey.info against
# unauthenticated "ping" on peer JSON-RPC servers and fixed-reply handlers on
# net/http and on fasthttp (the floor: no JSON, no auth, the fastest Go HTTP/1.1),
# in one run on this machine. Each server is pinned to CPU 0 and wrk to CPU 1,
# and the servers take turns (A B C ... A B C ...), so ratios hold when the
# machine's speed drifts. From the project's root:
#
#   make bench-compare [BENCH_SECONDS=5] [BENCH_ROUNDS=3]
#   testdata/bench/compare.sh [SECONDS_PER_ROUND] [ROUNDS]   # the same, from anywhere
#
# With BENCH_METRICS=1 a second apikeyd, started with --metrics=false on the
# same data, joins the turns, and the run also reports the ratio of apikeyd
# (metrics on, the default) to it: what serving /metrics costs each call.
# With BENCH_ETCD=1 apikeyd on etcd (docs/scale-out.md) joins the turns,
# with the same data on an etcd of one member (testdata/etcd): ratio
# apikeyd/etcd is bbolt's throughput over etcd's.
# With BENCH_BASE=<git revision> apikeyd built at that revision joins the
# turns too, on a data file of its own, for a before-and-after in one run.
#
# Needs: Go, curl, jq, and wrk (installed from Debian's packages if missing).
# The peers are their own module (testdata/bench/peers/go.mod), so their
# dependencies stay out of the project's go.mod.
set -euo pipefail
secs=${1:-5}; rounds=${2:-3}
name=compare
. "$(dirname "$0")/lib.sh"
for p in 18090 18091 18092 18081 18082 18083 18084 18085; do port_free "$p"; done
call() { curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" -d "$1" http://127.0.0.1:18090/rpc; }
# seed PORT WHO: on the apikeyd at PORT, creates the key every round reads
# and 200 more, and prints the key's id.
seed() {
  local url="http://127.0.0.1:$1/rpc" id n
  id=$(curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" -d '{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"bench"},"id":1}' "$url" | jq -r '.result.id // empty')
  [ -n "$id" ] || { echo "compare: $2: apikey.create returned no result.id" >&2; return 1; }
  for n in $(seq 1 200); do
    curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" -d "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"filler $n\"},\"id\":1}" "$url" >/dev/null
  done
  echo "$id"
}
infobody() { echo "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.info\",\"params\":{\"id\":\"$1\"},\"id\":1}"; }

export APIKEYD_ADMIN_KEY=$admin
pin 0 "$work/apikeyd" serve --addr 127.0.0.1:18090 --db "$work/bench.db" >"$work/apikeyd.log" 2>&1 &
pids+=($!)
wait_port 18090
id=$(seed 18090 apikeyd)

declare -A port body auth
port[apikeyd]=18090; body[apikeyd]=$(infobody "$id"); auth[apikeyd]="Bearer $admin"
port[gorilla]=18082; body[gorilla]='{"jsonrpc":"2.0","method":"Svc.Ping","params":{},"id":1}'
port[jrpc2]=18081;   body[jrpc2]='{"jsonrpc":"2.0","method":"ping","id":1}'
port[geth]=18083;    body[geth]='{"jsonrpc":"2.0","method":"test_ping","params":[],"id":1}'
port[nethttp]=18084; body[nethttp]='{"jsonrpc":"2.0","method":"ping","id":1}'
port[fasthttp]=18085; body[fasthttp]='{"jsonrpc":"2.0","method":"ping","id":1}'
for impl in gorilla jrpc2 geth nethttp fasthttp; do
  pin 0 "$work/peers" -impl "$impl" -addr "127.0.0.1:${port[$impl]}" >"$work/$impl.log" 2>&1 &
  pids+=($!); wait_port "${port[$impl]}"
done

names=(apikeyd gorilla jrpc2 geth nethttp fasthttp)
if [ "${BENCH_METRICS:-}" = 1 ]; then
  # The first server holds the data file's lock; the second gets a copy of it.
  call '{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"'"$id"'"},"id":1}' >/dev/null
  curl -sS -H "Authorization: Bearer $admin" -o "$work/nometrics.db" http://127.0.0.1:18090/backup
  pin 0 "$work/apikeyd" serve --addr 127.0.0.1:18091 --db "$work/nometrics.db" --metrics=false >"$work/nometrics.log" 2>&1 &
  pids+=($!); wait_port 18091
  port[nometrics]=18091; body[nometrics]=${body[apikeyd]}; auth[nometrics]=${auth[apikeyd]}
  names+=(nometrics)
fi
if [ -n "${BENCH_BASE:-}" ]; then
  # Its own data file: an older build may not open a newer file's schema.
  pin 0 "$work/apikeyd-base" serve --addr 127.0.0.1:18092 --db "$work/base.db" >"$work/base.log" 2>&1 &
  pids+=($!); wait_port 18092
  bid=$(seed 18092 "the base apikeyd")
  port[base]=18092; body[base]=$(infobody "$bid"); auth[base]=${auth[apikeyd]}
  names+=(base)
fi
if [ "${BENCH_ETCD:-}" = 1 ]; then
  # The same server on etcd (testdata/etcd, one member, fsync on) with the
  # same data: reads come from each node's memory, so it should match.
  (cd "$root" && go build -o "$work/etcd" ./testdata/etcd)
  port_free 18094; port_free 18095; port_free 18093
  "$work/etcd" --listen 127.0.0.1:18094 --peer 127.0.0.1:18095 --data-dir "$work/etcd-data" >"$work/etcd.log" 2>&1 &
  pids+=($!); wait_port 18094
  pin 0 "$work/apikeyd" serve --addr 127.0.0.1:18093 --etcd http://127.0.0.1:18094 >"$work/etcdnode.log" 2>&1 &
  pids+=($!); wait_port 18093
  eid=$(seed 18093 "apikeyd on etcd")
  port[etcd]=18093; body[etcd]=$(infobody "$eid"); auth[etcd]=${auth[apikeyd]}
  names+=(etcd)
fi
for impl in "${names[@]}"; do
  b=${body[$impl]}; a=${auth[$impl]:-}
  reply=$(curl -sS -H 'Content-Type: application/json' ${a:+-H "Authorization: $a"} -d "$b" "http://127.0.0.1:${port[$impl]}/rpc")
  echo "$reply" | jq -e 'has("result")' >/dev/null || { echo "compare: $impl answered without a result: $reply" >&2; exit 1; }
  { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
    [ -n "$a" ] && echo "wrk.headers[\"Authorization\"] = \"$a\""
    printf 'wrk.body = %s\n' "'$b'"; } >"$work/$impl.lua"
done

declare -A runs
for r in $(seq 1 "$rounds"); do
  for impl in "${names[@]}"; do
    rps=$( pin 1 wrk -t1 -c32 -d"${secs}s" -s "$work/$impl.lua" "http://127.0.0.1:${port[$impl]}/rpc" | awk '/^Requests\/sec/ {print $2}')
    runs[$impl]="${runs[$impl]:-} $rps"
  done
done
declare -A med
printf '%-8s %12s   %s\n' server "median req/s" "each round"
for impl in "${names[@]}"; do med[$impl]=$(echo "${runs[$impl]}" | median); printf '%-8s %12.0f  %s\n' "$impl" "${med[$impl]}" "${runs[$impl]}"; done
# the ratio is taken round by round (the two ran seconds apart), then its median
for impl in "${names[@]:1}"; do
  paste <(echo "${runs[apikeyd]}" | tr ' ' '\n' | grep -v '^$') <(echo "${runs[$impl]}" | tr ' ' '\n' | grep -v '^$') |
    awk '{printf "%s ", $1/$2}' | median | awk -v n="$impl" '{printf "ratio apikeyd/%s %.2f\n", n, $1}'
done
