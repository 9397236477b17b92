#!/usr/bin/env bash
# One replica of each role against two, on PostgreSQL + Redis, behind HAProxy, on this machine;
# then the failed requests and the recovery time while an API replica is killed.
#
# Seeds a small instance (`admin seed`: SCALE × 10,000 videos), starts the roles alone (release
# build): auth ×2, API ×2, and gateways in two layouts, each behind its own HAProxy (round robin,
# health-checked on /healthz every 300 ms):
#   one   HAProxy → 1 gateway → 1 auth, 1 API
#   two   HAProxy → 2 gateways → 2 auth, 2 API (each gateway takes both in turn)
# A signed-in viewer's watch page (GET /videos/{id}, rendered per viewer: never cached) is loaded
# with wrk (2 threads, CONNS connections, DURATION s, RUNS runs alternating the layouts after a
# warm-up); medians of requests/s and p99 are printed. On these 2 shared cores the second
# replica adds no CPU, so expect "two" to match "one" within the noise: the figure says what
# the extra hops and pools cost, not what a second machine would add.
#
# Then, on "two" for 20 s, one API replica is killed (`kill -9`) 5 s in and started again 5 s
# later: wrk's failed requests (socket errors and non-2xx answers) against its total, and the
# time from the restart to the replica answering /readyz and to its first proxied answer.
#   bash benches/replicas.sh        (RUNS=3 DURATION=10 CONNS=64 SCALE=1; needs wrk and haproxy)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
. benches/lib.sh
command -v haproxy >/dev/null || { echo "needs haproxy (bash scripts/install-deps.sh)" >&2; exit 1; }

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fresh_instance postgres "$work/seed"
"$bin" admin seed --data-dir "$work/seed" "${args[@]}" --users "$(n 500)" --channels "$(n 1000)" --videos "$(n 10000)" \
  --subscriptions "$(n 5000)" | sed 's/^/  seed: /'
make_user "$work/seed" bench

PA1=$(port); PA2=$(port); PB1=$(port); PB2=$(port); PG1=$(port); PG2=$(port); PG3=$(port); H1=$(port); H2=$(port)
public="http://127.0.0.1:$H2"
export TURTLEMEN_PUBLIC_URL="$public" TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role"
export TURTLEMEN_TRUSTED_PROXIES="127.0.0.1/32" TURTLEMEN_STORAGE_URL="file://$work/media"
mkdir -p "$work/media"
start() { # name args…
  local name=$1; shift
  "$bin" "$@" --data-dir "$work/$name" "${args[@]}" > "$work/$name.log" 2>&1 & pids+=($!)
  eval "pid_$name=$!"
}
ready() { until curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; do sleep 0.05; done; }
start auth1 auth --listen "127.0.0.1:$PA1"; start auth2 auth --listen "127.0.0.1:$PA2"
ready "$PA1"; ready "$PA2"
api_args() { echo api --listen "127.0.0.1:$1" --upstream-auth "http://127.0.0.1:$PA1,http://127.0.0.1:$PA2"; }
# shellcheck disable=SC2046
start api1 $(api_args "$PB1"); start api2 $(api_args "$PB2")
ready "$PB1"; ready "$PB2"
start gw_one gateway --listen "127.0.0.1:$PG1" --upstream-auth "http://127.0.0.1:$PA1" --upstream-api "http://127.0.0.1:$PB1"
both_auth="http://127.0.0.1:$PA1,http://127.0.0.1:$PA2"; both_api="http://127.0.0.1:$PB1,http://127.0.0.1:$PB2"
start gw_two_a gateway --listen "127.0.0.1:$PG2" --upstream-auth "$both_auth" --upstream-api "$both_api"
start gw_two_b gateway --listen "127.0.0.1:$PG3" --upstream-auth "$both_auth" --upstream-api "$both_api"
ready "$PG1"; ready "$PG2"; ready "$PG3"
haproxy_conf() { # port gateway-ports…
  local port=$1; shift
  printf 'global\n    maxconn 4096\n    log stdout format raw local0\ndefaults\n    mode http\n    log global\n    option httplog\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n    retries 2\n    option redispatch 1\n    option forwardfor\n    http-reuse always\nfrontend entry\n    bind 127.0.0.1:%s\n    default_backend gateways\nbackend gateways\n    balance roundrobin\n    option httpchk\n    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1:%s\n    default-server check inter 300ms fall 1 rise 1\n' "$port" "$port"
  local i=1 p; for p in "$@"; do printf '    server gateway-%s 127.0.0.1:%s\n' "$i" "$p"; i=$((i + 1)); done
}
haproxy_conf "$H1" "$PG1" > "$work/one.cfg"; haproxy_conf "$H2" "$PG2" "$PG3" > "$work/two.cfg"
haproxy -f "$work/one.cfg" -db > "$work/haproxy-one.log" 2>&1 & pids+=($!)
haproxy -f "$work/two.cfg" -db > "$work/haproxy-two.log" 2>&1 & pids+=($!)
until curl -fs "http://127.0.0.1:$H1/healthz" >/dev/null 2>&1 && curl -fs "$public/healthz" >/dev/null 2>&1; do sleep 0.1; done

cookie=$(python3 benches/sign_in.py "$public")
video=$(curl -fs "$public/api/v1/channels/seed0/videos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["videos"][0]["id"])')
page="/videos/$video"
for h in "$H1" "$H2"; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$h$page")" = 200 ] \
    || { echo "the watch page is not answered through 127.0.0.1:$h" >&2; exit 1; }
done

load() { # layout port seconds → "layout rps p99_ms total failed"
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${3}s" --latency -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$2$page")
  echo "$out" | awk -v l="$1" '
    /Requests\/sec/ {rps=$2}
    $1=="99%" {p=$2; if (p ~ /us$/) {sub(/us/,"",p); p/=1000} else if (p ~ /ms$/) {sub(/ms/,"",p)} else if (p ~ /s$/) {sub(/s/,"",p); p*=1000}}
    /requests in/ {total=$1}
    /Socket errors/ {gsub(/,/,""); failed+=$4+$6+$8+$10; timeouts+=$10}
    /Non-2xx or 3xx/ {failed+=$5; non2xx+=$5}
    END {printf "%s %s %s %d %d %d %d\n", l, rps, p, total, failed, timeouts, non2xx}'
}
echo "== one replica of each role against two ($CONNS connections, signed-in watch page)"
load one "$H1" 2 >/dev/null; load two "$H2" 2 >/dev/null
results=$(for i in $(seq 1 "$RUNS"); do load one "$H1" "$DURATION"; load two "$H2" "$DURATION"; done)
echo "$results" | awk '{printf "  %-4s %9.0f req/s  p99 %7.1f ms  (%d requests, %d failed: %d timed out after 2 s, %d not 2xx)\n", $1, $2, $3, $4, $5, $6, $7}'
for l in one two; do
  rps=$(echo "$results" | awk -v l="$l" '$1==l {print $2}' | median)
  p99=$(echo "$results" | awk -v l="$l" '$1==l {print $3}' | median)
  printf '  median %-4s %9.0f req/s  p99 %7.1f ms\n' "$l" "$rps" "$p99"
  eval "rps_$l=$rps"
done
awk -v a="$rps_two" -v b="$rps_one" 'BEGIN {printf "  two / one: %.2f x req/s\n", a/b}'

echo "== an API replica killed (kill -9) 5 s into 20 s of load on \"two\", started again 5 s later"
load killed "$H2" 20 > "$work/killed.txt" &
wrk_pid=$!
sleep 5
kill -9 "$pid_api2"
sleep 5
restarted=$(date +%s.%N)
# shellcheck disable=SC2046
"$bin" $(api_args "$PB2") --data-dir "$work/api2" "${args[@]}" > "$work/api2-again.log" 2>&1 & pids+=($!)
ready "$PB2"
readyz=$(date +%s.%N)
# The restarted replica's first proxied answer, from its request counter (probes and scrapes
# left out).
served() {
  curl -fs "http://127.0.0.1:$PB2/metrics" \
    | awk '/^turtlemen_http_requests_total\{/ && !/route="(healthz|readyz|metrics)"/ {s+=$2} END {print s+0}'
}
first=""
while [ -z "$first" ]; do
  [ "$(served)" -gt 0 ] && first=$(date +%s.%N)
  sleep 0.05
done
wait "$wrk_pid"
read -r _ rps p99 total failed timeouts non2xx < "$work/killed.txt"
awk -v r="$rps" -v p="$p99" -v t="$total" -v f="$failed" -v o="$timeouts" -v n="$non2xx" -v s="$restarted" -v y="$readyz" -v x="$first" 'BEGIN {
  printf "  %d requests, %d failed (%.3f %%: %d timed out, %d not 2xx); %.0f req/s, p99 %.1f ms\n", t, f, 100*f/t, o, n, r, p
  printf "  restart → /readyz %.2f s, → first proxied watch page %.2f s\n", y-s, x-s }'
echo "== what the roles logged as warnings and errors (counts by message)"
for f in "$work"/*.log; do
  grep -hoE '(WARN|ERROR).*' "$f" | sed -E 's/\x1b\[[0-9;]*m//g; s/[0-9a-f-]{36}//g; s/[0-9]+(\.[0-9]+)? ?(ms|s)\b/N\2/g' \
    | cut -c1-160 | sort | uniq -c | sort -rn | head -5 | sed "s|^|  $(basename "$f" .log): |" || true
done
echo "== HAProxy's answers other than 200 (status, session state flags, count)"
for f in "$work"/haproxy-*.log; do
  grep -oE ' [0-9-]+/[0-9-]+/[0-9-]+/[0-9-]+/[0-9]+ [0-9]{3} [0-9]+ - - [A-Za-z-]{4}' "$f" | awk '$2 != 200 {print $2, $6}' \
    | sort | uniq -c | sed "s|^|  $(basename "$f" .log): |" || true
done
