#!/usr/bin/env bash
# The gateway's instructions per proxied request, counted by callgrind: a figure that does not
# move with the machine's load, unlike benches/gateway.sh's CPU times, so a change of a few
# percent can be seen in one run.
#
# Starts the roles alone (auth and API natively, the gateway under `valgrind --tool=callgrind`;
# release build, SQLite + embedded sessions), signs a user in through the gateway, warms up,
# then for a signed-in and an anonymous `GET /api/v1/bench` (the API's tiny 404) zeroes the
# counters, loads with wrk (1 thread, 4 connections, 10 s) and dumps them. Prints per request:
# every instruction, and those outside memcpy/memmove. Callgrind counts a `rep movsb` copy byte
# by byte, which the hardware does not, so moves of large futures weigh far more here than in
# time: read both columns.
#   bash benches/gateway_instructions.sh [BINARY...]   (needs wrk and valgrind: apt-get install wrk valgrind)
# With no binary, this tree's release build; given several (say, a baseline built elsewhere and
# this one), each is measured in turn.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null && command -v valgrind >/dev/null || { echo "needs wrk and valgrind (apt-get install wrk valgrind)" >&2; exit 1; }
if [ "$#" -eq 0 ]; then
  cargo build --release --locked -q
  set -- "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
measure() { # binary
  local bin=$1 work PA PB PG pids=() cookie
  work=$(mktemp -d)
  PA=$(port); PB=$(port); PG=$(port)
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' RETURN
  export TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$PG" TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role" TURTLEMEN_LOG_LEVEL=warn
  "$bin" auth --listen "127.0.0.1:$PA" --data-dir "$work/data" 2>/dev/null & pids+=($!)
  until curl -fs "http://127.0.0.1:$PA/healthz" >/dev/null 2>&1; do sleep 0.05; done
  "$bin" api --listen "127.0.0.1:$PB" --data-dir "$work/data" --upstream-auth "http://127.0.0.1:$PA" 2>/dev/null & pids+=($!)
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" gateway --listen "127.0.0.1:$PG" \
    --data-dir "$work/gw" --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" 2>"$work/cg.err" & pids+=($!)
  until curl -fs "http://127.0.0.1:$PB/healthz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$PG/healthz" >/dev/null 2>&1; do sleep 0.2; done
  echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null 2>&1
  cookie=$(python3 benches/sign_in.py "http://127.0.0.1:$PG")
  wrk -t1 -c4 -d5s -H "cookie: turtlemen_session=$cookie" "http://127.0.0.1:$PG/api/v1/bench" >/dev/null
  local kind header out n dump total copies
  for kind in signed-in anonymous; do
    header=""; [ "$kind" = signed-in ] && header="cookie: turtlemen_session=$cookie"
    rm -f "$work"/cg.out.*
    callgrind_control -z "${pids[2]}" >/dev/null 2>&1
    out=$(wrk -t1 -c4 -d10s ${header:+-H "$header"} "http://127.0.0.1:$PG/api/v1/bench")
    callgrind_control -d "${pids[2]}" >/dev/null 2>&1
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    dump=$(ls -S "$work"/cg.out.* | head -1)
    total=$(awk '/^totals:/ {print $2}' "$dump")
    copies=$(callgrind_annotate --threshold=100 "$dump" 2>/dev/null | grep -E '__mem(cpy|move)' | sed 's/,//g' | awk '{s+=$1} END {print s+0}')
    printf '%-10s %6d requests  %7d instructions/request  %7d outside memcpy/memmove\n' \
      "$kind" "$n" $((total / n)) $(((total - copies) / n))
  done
}
for bin in "$@"; do
  echo "== $bin"
  measure "$bin"
done
