#!/usr/bin/env bash
# The gateway against nginx, same upstream, same run, same machine.
#
# Starts the roles alone (auth, API, gateway; release build, SQLite + embedded sessions), signs
# a user in through the gateway, then loads with wrk (2 threads, 32 connections, 10 s, after a
# warm-up), alternating targets, RUNS times each:
#   direct    GET /api/v1/bench straight to the API server (a tiny 404 JSON answer)
#   nginx     the same through Debian's nginx proxy_pass (keep-alive upstream)
#   hyper     the same through a proxy of hyper alone (crates/gateway/examples/bare_proxy.rs:
#             hyper's server and pooled client, nothing else): the floor of this HTTP stack
#   anonymous the same through the gateway without a session (the check and the proxy alone)
#   gateway   the same through the gateway with a signed-in session (cookie checked, session
#             loaded from the store, identity headers set, request proxied)
#   fwd-auth  GET /oauth2/auth with the session (nginx auth_request's view of the gateway)
#   jwks      GET /auth/jwks on the auth service
#   userinfo  GET /auth/userinfo with the session's access token
# Prints requests/s and p99 latency per run and the medians, and for each target the CPU time
# per request (user + system, from /proc) of the process answering wrk and of the API server
# behind it: throughput on these 2 shared cores is bounded by the sum over all processes, so the
# proxy's own cost per request is the number to compare with nginx's.
#   bash benches/gateway.sh [RUNS]        (needs wrk and nginx: apt-get install wrk nginx)
# TURTLEMEN_BIN names another build of turtlemen to measure (a baseline built in a worktree, say);
# bare_proxy is always this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (apt-get install wrk nginx)" >&2; exit 1; }
[ -n "${TURTLEMEN_BIN:-}" ] || cargo build --release --locked -q
cargo build --release --locked -q -p turtlemen-gateway --example bare_proxy
release="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
bin="${TURTLEMEN_BIN:-$release/turtlemen}"
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(port); PB=$(port); PG=$(port); PN=$(port); PH=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$PG" TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role" TURTLEMEN_LOG_LEVEL=warn
"$bin" auth --listen "127.0.0.1:$PA" --data-dir "$work/data" & pids+=($!)
until curl -fs "http://127.0.0.1:$PA/healthz" >/dev/null 2>&1; do sleep 0.05; done
"$bin" api --listen "127.0.0.1:$PB" --data-dir "$work/data" --upstream-auth "http://127.0.0.1:$PA" & pids+=($!)
"$bin" gateway --listen "127.0.0.1:$PG" --data-dir "$work/gw" --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" & pids+=($!)
until curl -fs "http://127.0.0.1:$PB/healthz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$PG/healthz" >/dev/null 2>&1; do sleep 0.05; done
echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null

# Sign in through the gateway as a browser would (urllib follows the redirects with cookies).
cookie=$(python3 benches/sign_in.py "http://127.0.0.1:$PG")
token=$(curl -fs -o /dev/null -D - -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$PG/oauth2/auth" | awk -F': ' 'tolower($1)=="authorization" {print $2}' | tr -d '\r')
[ -n "$token" ] || { echo "sign-in through the gateway failed" >&2; exit 1; }

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 2;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream api { server 127.0.0.1:$PB; keepalive 64; }
  server {
    listen 127.0.0.1:$PN;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' & pids+=($!)
until curl -s -o /dev/null "http://127.0.0.1:$PN/api/v1/bench"; do sleep 0.05; done

"$release/examples/bare_proxy" "127.0.0.1:$PH" "127.0.0.1:$PB" & pids+=($!)
until curl -s -o /dev/null "http://127.0.0.1:$PH/api/v1/bench"; do sleep 0.05; done

api_pid=${pids[1]}; gw_pid=${pids[2]}; auth_pid=${pids[0]}; hyper_pid=${pids[4]}
nginx_workers=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
tick_ns=$((1000000000 / $(getconf CLK_TCK)))
load() { # name url header front-pids
  local out f0 a0 f1 a1 n
  f0=$(ticks $4); a0=$(ticks "$api_pid")
  if [ -n "${3:-}" ]; then out=$(wrk -t2 -c32 -d10s --latency -H "$3" "$2"); else out=$(wrk -t2 -c32 -d10s --latency "$2"); fi
  f1=$(ticks $4); a1=$(ticks "$api_pid")
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$1 $rps $p99 $(( (f1 - f0) * tick_ns / n / 100 )) $(( (a1 - a0) * tick_ns / n / 100 ))"
}
declare -A targets=(
  [direct]="http://127.0.0.1:$PB/api/v1/bench||$api_pid"
  [nginx]="http://127.0.0.1:$PN/api/v1/bench||$nginx_workers"
  [hyper]="http://127.0.0.1:$PH/api/v1/bench||$hyper_pid"
  [anonymous]="http://127.0.0.1:$PG/api/v1/bench||$gw_pid"
  [gateway]="http://127.0.0.1:$PG/api/v1/bench|cookie: turtlemen_session=$cookie|$gw_pid"
  [fwd-auth]="http://127.0.0.1:$PG/oauth2/auth|cookie: turtlemen_session=$cookie|$gw_pid"
  [jwks]="http://127.0.0.1:$PA/auth/jwks||$auth_pid"
  [userinfo]="http://127.0.0.1:$PA/auth/userinfo|authorization: $token|$auth_pid"
)
order=(direct nginx hyper anonymous gateway fwd-auth jwks userinfo)
for name in "${order[@]}"; do IFS='|' read -r url header _ <<<"${targets[$name]}"; wrk -t2 -c32 -d2s ${header:+-H "$header"} "$url" >/dev/null; done
results=$(for i in $(seq 1 "$runs"); do
  for name in "${order[@]}"; do IFS='|' read -r url header front <<<"${targets[$name]}"; load "$name" "$url" "$header" "$front"; done
done)
echo "$results" | awk '{printf "%-9s %10s req/s  p99 %-8s  CPU/req: front %5.1f us, api %5.1f us\n", $1, $2, $3, $4/10, $5/10}'
echo "-- medians over $runs runs (CPU per request: the process wrk talks to, and the API server)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for name in "${order[@]}"; do
  rps=$(echo "$results" | awk -v n="$name" '$1==n {print $2}' | median)
  front=$(echo "$results" | awk -v n="$name" '$1==n {print $4}' | median)
  api=$(echo "$results" | awk -v n="$name" '$1==n {print $5}' | median)
  awk -v n="$name" -v r="$rps" -v f="$front" -v a="$api" 'BEGIN {printf "%-9s %10.0f req/s  CPU/req: front %5.1f us, api %5.1f us\n", n, r, f/10, a/10}'
done
