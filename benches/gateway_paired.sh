#!/usr/bin/env bash
# Two builds of the gateway and the hyper-alone proxy, measured in alternation, so each round
# compares the three under the same load of a shared, noisy machine.
#
# Starts, for each build, its own auth, API and gateway (release, SQLite + embedded sessions) and
# signs a user in through that gateway; starts bare_proxy (crates/gateway/examples/bare_proxy.rs)
# in front of the first build's API. Then ROUNDS times: a signed-in `GET /api/v1/bench` through
# build A's gateway, through build B's, and through bare_proxy, each under wrk (2 threads, 32
# connections, DURATION seconds). Prints each run's requests/s and the CPU time per request of
# the process wrk talks to (user and system, from /proc), then the medians of the per-round
# ratios: B against A, and each build against hyper alone (issue 18's targets: at least 0.9×
# its requests/s, at most 1.3× its CPU per request).
#   bash benches/gateway_paired.sh BUILD_A BUILD_B [ROUNDS] [DURATION]   (needs wrk)
# For example BUILD_A a baseline built in a worktree, BUILD_B this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -ge 2 ] || { echo "usage: bash benches/gateway_paired.sh BUILD_A BUILD_B [ROUNDS] [DURATION]" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
builds=("$1" "$2"); rounds="${3:-15}"; duration="${4:-4}"
cargo build --release --locked -q -p turtlemen-gateway --example bare_proxy
release="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up() { until curl -fs "$1" >/dev/null 2>&1; do sleep 0.05; done; }
export TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role" TURTLEMEN_LOG_LEVEL=warn
declare -a gw_pid gw_url cookie api_port api_pid
for i in 0 1; do
  bin=${builds[$i]} dir="$work/$i" pa=$(port) pb=$(port) pg=$(port)
  export TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$pg"
  "$bin" auth --listen "127.0.0.1:$pa" --data-dir "$dir/data" & pids+=($!)
  up "http://127.0.0.1:$pa/healthz"
  "$bin" api --listen "127.0.0.1:$pb" --data-dir "$dir/data" --upstream-auth "http://127.0.0.1:$pa" & pids+=($!)
  api_pid[$i]=$!
  "$bin" gateway --listen "127.0.0.1:$pg" --data-dir "$dir/gw" --upstream-auth "http://127.0.0.1:$pa" --upstream-api "http://127.0.0.1:$pb" & pids+=($!)
  gw_pid[$i]=$!
  up "http://127.0.0.1:$pb/healthz"; up "http://127.0.0.1:$pg/healthz"
  echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$dir/data" >/dev/null
  cookie[$i]=$(python3 benches/sign_in.py "http://127.0.0.1:$pg")
  gw_url[$i]="http://127.0.0.1:$pg/api/v1/bench"; api_port[$i]=$pb
done
ph=$(port)
"$release/examples/bare_proxy" "127.0.0.1:$ph" "127.0.0.1:${api_port[0]}" & pids+=($!)
hyper_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$ph/api/v1/bench"; do sleep 0.05; done

tick_ns=$((1000000000 / $(getconf CLK_TCK)))
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # name pid url cookie api-pid
  local u0 s0 u1 s1 a0 a1 out n
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$2/stat"); a0=$(cpu "$5")
  out=$(wrk -t2 -c32 -d"${duration}s" -H "cookie: turtlemen_session=$4" "$3")
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$2/stat"); a1=$(cpu "$5")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$1 $(echo "$out" | awk '/Requests\/sec/ {print $2}') $(( (u1 - u0) * tick_ns / n )) $(( (s1 - s0) * tick_ns / n )) $(( (a1 - a0) * tick_ns / n ))"
}
for name in A B; do i=$([ $name = A ] && echo 0 || echo 1); wrk -t2 -c32 -d2s -H "cookie: turtlemen_session=${cookie[$i]}" "${gw_url[$i]}" >/dev/null; done
results=$(for r in $(seq 1 "$rounds"); do
  load A "${gw_pid[0]}" "${gw_url[0]}" "${cookie[0]}" "${api_pid[0]}"
  load B "${gw_pid[1]}" "${gw_url[1]}" "${cookie[1]}" "${api_pid[1]}"
  load hyper "$hyper_pid" "http://127.0.0.1:$ph/api/v1/bench" none "${api_pid[0]}"
done)
echo "$results" | awk '{printf "%-5s %9.0f req/s  CPU/req: user %5.1f us, system %5.1f us; the API behind it %5.1f us\n", $1, $2, $3/1000, $4/1000, $5/1000}'
echo "$results" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
runs = [{r[0]: (float(r[1]), int(r[2]) + int(r[3])) for r in rows[k:k + 3]} for k in range(0, len(rows), 3)]
def ratio(a, b, what):
    return statistics.median(x[a][what] / x[b][what] for x in runs)
print("-- medians over %d rounds of the per-round ratios" % len(runs))
for a, b in (("B", "A"), ("A", "hyper"), ("B", "hyper")):
    print("%s against %-6s req/s %.3f  CPU/req %.3f" % (a, b + ":", ratio(a, b, 0), ratio(a, b, 1)))
'
