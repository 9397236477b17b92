#!/usr/bin/env bash
# Idle and slow connections against the gateway: what each costs, how long it is kept, and
# whether real users are still served.
#
# Starts the roles alone (auth, API, gateway; release build, SQLite + embedded sessions), signs
# a user in through the gateway, then, RUNS times each:
#   baseline   the real users alone: wrk (1 thread, 8 connections, 5 s) GETs /api/v1/me with the
#              session through the gateway
#   KIND       N connections of that kind held against the gateway by
#              crates/gateway/examples/idle_conns.rs (one the gateway closes is opened again), and
#              the same wrk run while they are held:
#                silent     connects and never sends a byte
#                slow       sends a request head one byte every 2 s (slowloris)
#                keepalive  one request, then idle on the kept-alive connection
#                tls        the first bytes of a TLS ClientHello, then nothing (against the
#                           gateway started with a certificate, when openssl is there)
# Prints per run and as medians: the gateway's resident memory per held connection (VmRSS after
# they are open, less before, over their number), the real users' p50/p99 latency and req/s, and
# how long the gateway kept the connections it closed. The machine is shared and noisy: compare
# the rows of one run, not runs on different days.
#   [CAP=M] bash benches/idle_conns.sh [N] [RUNS]     (default 10000 connections, 3 runs; needs wrk;
#   TURTLEMEN_BIN=path/to/turtlemen takes that build and the idle_conns example beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
runs="${2:-3}"
hold=25
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
# Both ends of every connection need a file descriptor.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((n + 1000)) ] || { echo "ulimit -n $(ulimit -n) is too low for $n connections" >&2; exit 1; }
if [ -z "${TURTLEMEN_BIN:-}" ]; then
  cargo build --release --locked -q
  cargo build --release --locked -q -p turtlemen-gateway --example idle_conns
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
else
  bin="$TURTLEMEN_BIN" # another build (a debug one: memory is alike, latency is not)
fi
tool="$(dirname "$bin")/examples/idle_conns"
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(port); PB=$(port); PG=$(port); PT=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$PG" TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role" TURTLEMEN_LOG_LEVEL=error
# The cap above the held connections, so that what is measured is their cost, not the cap; CAP
# sets it lower, to see the real users served while the held connections are past the cap (the
# gateway closes the connection idle the longest for each newcomer, and the tool opens it again).
export TURTLEMEN_MAX_CONNECTIONS=${CAP:-$((n + 500))}
"$bin" auth --listen "127.0.0.1:$PA" --data-dir "$work/data" & pids+=($!)
until curl -fs "http://127.0.0.1:$PA/healthz" >/dev/null 2>&1; do sleep 0.05; done
"$bin" api --listen "127.0.0.1:$PB" --data-dir "$work/data" --upstream-auth "http://127.0.0.1:$PA" & pids+=($!)
"$bin" gateway --listen "127.0.0.1:$PG" --data-dir "$work/gw" --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" & pids+=($!)
gw_pid=$!
tls_pid=""
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 -subj /CN=localhost 2>/dev/null
  "$bin" gateway --listen "127.0.0.1:$PT" --data-dir "$work/gw-tls" --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" \
    --tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem" & pids+=($!)
  tls_pid=$!
  until curl -ks -o /dev/null "https://127.0.0.1:$PT/healthz"; do sleep 0.05; done
fi
until curl -fs "http://127.0.0.1:$PB/healthz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$PG/healthz" >/dev/null 2>&1; do sleep 0.05; done
echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null
cookie=$(python3 benches/sign_in.py "http://127.0.0.1:$PG")
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$PG/api/v1/me")" = 200 ] || { echo "sign-in failed" >&2; exit 1; }

# wrk's latency in ms.
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f\n", v}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
users() { # -> "p50 p99 rps"
  local out
  out=$(wrk -t1 -c8 -d5s --latency -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$PG/api/v1/me")
  echo "$(echo "$out" | awk '$1=="50%" {print $2}' | ms) $(echo "$out" | awk '$1=="99%" {print $2}' | ms) $(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')"
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "gateway pid $gw_pid, $n connections per kind, $runs runs; RSS at start $(rss_kib "$gw_pid") KiB"
declare -A P50 P99 RPS BYTES KEPT
for run in $(seq "$runs"); do
  read -r a b c < <(users)
  P50[baseline]+="$a "; P99[baseline]+="$b "; RPS[baseline]+="$c "
  echo "run $run baseline: users p50 ${a} ms p99 ${b} ms ${c} req/s"
  for kind in silent slow keepalive tls; do
    addr="127.0.0.1:$PG"; pid=$gw_pid
    if [ "$kind" = tls ]; then [ -n "$tls_pid" ] || continue; addr="127.0.0.1:$PT"; pid=$tls_pid; fi
    "$tool" "$addr" "$kind" "$n" "$hold" "$pid" > "$work/tool.out" &
    tool_pid=$!
    until grep -q '^rss' "$work/tool.out" 2>/dev/null || ! kill -0 "$tool_pid" 2>/dev/null; do sleep 0.2; done
    read -r a b c < <(users)
    wait "$tool_pid"
    per=$(awk '/^rss/ {print $NF}' "$work/tool.out")
    open=$(awk '/^rss/ {print $7}' "$work/tool.out")
    kept=$(grep '^closed' "$work/tool.out")
    P50[$kind]+="$a "; P99[$kind]+="$b "; RPS[$kind]+="$c "; BYTES[$kind]+="$per "
    KEPT[$kind]="$kept"
    echo "run $run $kind: $open open, $per bytes/conn; users p50 ${a} ms p99 ${b} ms ${c} req/s; $kept"
    # Let the gateway settle (and its closed connections go) before the next kind.
    sleep 3
  done
done
echo
printf '%-10s %14s %10s %10s %8s\n' kind bytes/conn p50_ms p99_ms req/s
for kind in baseline silent slow keepalive tls; do
  [ -n "${P50[$kind]:-}" ] || continue
  bytes="-"; [ -n "${BYTES[$kind]:-}" ] && bytes=$(echo "${BYTES[$kind]}" | tr ' ' '\n' | grep . | median)
  printf '%-10s %14s %10s %10s %8s\n' "$kind" "$bytes" \
    "$(echo "${P50[$kind]}" | tr ' ' '\n' | grep . | median)" \
    "$(echo "${P99[$kind]}" | tr ' ' '\n' | grep . | median)" \
    "$(echo "${RPS[$kind]}" | tr ' ' '\n' | grep . | median)"
done
for kind in silent slow keepalive tls; do [ -n "${KEPT[$kind]:-}" ] && echo "$kind (last run): ${KEPT[$kind]}"; done
echo "(medians of $runs runs; shared, noisy machine: compare rows of one run)"
