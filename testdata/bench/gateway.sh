#!/usr/bin/env bash
# Gateway throughput: a forwarded call through apikeyd (authenticated,
# scope-checked, logged, then posted upstream) beside the same call made
# straight to the upstream, for an upstream that does nothing and for one
# that waits 1 ms a call. wrk runs on CPU 1 with 16 connections and the
# upstream on CPU 0, in every turn; each gateway runs twice, in two shapes:
#
#   shared  the gateway on CPU 0 beside the upstream. The two share one
#           CPU, so the ratio is CPU cost: the upstream's per call over the
#           upstream's and the gateway's together.
#   split   the gateway on CPU 1 beside wrk, the upstream alone on CPU 0 as
#           in the direct turns. The gateway takes none of the upstream's
#           CPU, only what wrk leaves idle, as a gateway on a host or core
#           of its own would.
#
# The targets take turns, and each ratio is the median of the rounds'
# ratios. From the project's root:
#
#   make bench-gateway [BENCH_SECONDS=3] [BENCH_ROUNDS=5]
#   testdata/bench/gateway.sh [SECONDS_PER_ROUND] [ROUNDS]
#
# BENCH_BASE=<git revision> also builds apikeyd at that revision and runs it
# in the same turns, in both shapes, for a before-and-after in one run.
#
# Needs: Go, curl, jq, wrk (installed from Debian's packages if missing).
set -euo pipefail
secs=${1:-3}; rounds=${2:-5}
name=gateway
. "$(dirname "$0")/lib.sh"
for p in $(seq 18100 18109); do port_free "$p"; done

declare -A port auth
names=()
upstream() { # name port work
  pin 0 "$work/peers" -impl upstream -addr "127.0.0.1:$2" -work "$3" >"$work/$1.log" 2>&1 &
  pids+=($!); wait_port "$2"; port[$1]=$2; names+=("$1")
}
gateway() { # name binary cpu port upstream-port
  APIKEYD_ADMIN_KEY=$admin pin "$3" "$2" serve --addr "127.0.0.1:$4" --db "$work/$1.db" \
    --upstream "http://127.0.0.1:$5/rpc" --log-level error >"$work/$1.log" 2>&1 &
  pids+=($!); wait_port "$4"; port[$1]=$4; auth[$1]="Bearer $admin"; names+=("$1")
}
# Names end in -<work>: each ratio is against direct-<work>.
upstream direct-0 18100 0s
gateway shared-0 "$work/apikeyd" 0 18102 18100
gateway split-0 "$work/apikeyd" 1 18106 18100
if [ -n "${BENCH_BASE:-}" ]; then
  gateway base-shared-0 "$work/apikeyd-base" 0 18104 18100
  gateway base-split-0 "$work/apikeyd-base" 1 18108 18100
fi
upstream direct-1ms 18101 1ms
gateway shared-1ms "$work/apikeyd" 0 18103 18101
gateway split-1ms "$work/apikeyd" 1 18107 18101
if [ -n "${BENCH_BASE:-}" ]; then
  gateway base-shared-1ms "$work/apikeyd-base" 0 18105 18101
  gateway base-split-1ms "$work/apikeyd-base" 1 18109 18101
fi

body='{"jsonrpc":"2.0","method":"vm.ping","id":1}'
for n in "${names[@]}"; do
  a=${auth[$n]:-}
  reply=$(curl -sS -H 'Content-Type: application/json' ${a:+-H "Authorization: $a"} -d "$body" "http://127.0.0.1:${port[$n]}/rpc")
  echo "$reply" | jq -e '.result == "pong"' >/dev/null || { echo "gateway: $n answered $reply" >&2; exit 1; }
  { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
    [ -n "$a" ] && echo "wrk.headers[\"Authorization\"] = \"$a\""
    printf 'wrk.body = %s\n' "'$body'"; } >"$work/$n.lua"
done

declare -A runs
for _ in $(seq 1 "$rounds"); do
  for n in "${names[@]}"; do
    rps=$(pin 1 wrk -t1 -c16 -d"${secs}s" -s "$work/$n.lua" "http://127.0.0.1:${port[$n]}/rpc" | awk '/^Requests\/sec/ {print $2}')
    runs[$n]="${runs[$n]:-} $rps"
  done
done
printf '%-16s %12s   %s\n' target "median req/s" "each round"
for n in "${names[@]}"; do printf '%-16s %12.0f  %s\n' "$n" "$(echo "${runs[$n]}" | median)" "${runs[$n]}"; done
for n in "${names[@]}"; do
  case $n in direct-*) continue ;; esac
  d=direct-${n##*-}
  paste <(echo "${runs[$n]}" | tr ' ' '\n' | grep -v '^$') <(echo "${runs[$d]}" | tr ' ' '\n' | grep -v '^$') |
    awk '{printf "%s ", $1/$2}' | median | awk -v n="$n" -v d="$d" '{printf "ratio %s/%s %.2f\n", n, d, $1}'
done
