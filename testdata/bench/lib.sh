# Shared by compare.sh and gateway.sh; source it after setting `name` (for
# messages). It sets here, root and work (a temp dir removed at exit, kept
# with BENCH_KEEP=1), ends the servers whose pids are in `pids` at exit,
# installs wrk if missing, and builds $work/peers, $work/apikeyd and, with
# BENCH_BASE=<git revision>, $work/apikeyd-base. admin is a fresh operator key.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 || { echo "$name: cannot install wrk" >&2; exit 2; }
fi
# exec: a backgrounded pin leaves one process, the server itself, for cleanup to end
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }

(cd "$here/peers" && go build -o "$work/peers" .)
(cd "$root" && go build -o "$work/apikeyd" ./cmd/apikeyd)
if [ -n "${BENCH_BASE:-}" ]; then
  mkdir "$work/base"
  git -C "$root" archive "$BENCH_BASE" | tar -x -C "$work/base"
  (cd "$work/base" && go build -o "$work/apikeyd-base" ./cmd/apikeyd)
fi

admin=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
port_free() { ! (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null || { echo "$name: port $1 is already in use" >&2; exit 2; }; }
wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "$name: port $1 never opened" >&2; return 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
