#!/usr/bin/env bash
# The community pages at the size of a large instance, on SQLite and on PostgreSQL + Redis.
#
# Seeds a fresh database with `turtlemen admin seed` (default: 1,000,000 videos, 100,000
# channels, 50,000 users, 5,000,000 subscriptions; SCALE=0.1 for a tenth), makes an account
# `bench` that follows the 1,000 biggest channels, runs `turtlemen serve` (release build) and
# loads each page through the gateway with wrk: 200 connections, 2 threads, DURATION seconds
# (default 15) after a 3 s warm-up, printing p50 and p99 latency and requests/s:
#   home        GET /                      anonymous
#   home-in     GET /                      signed in (with "From your subscriptions")
#   channel     GET /@seed0                the channel with the most videos
#   feed        GET /subscriptions         signed in, following 1,000 channels
#   search      GET /search?q=river+guitar
#   watch       GET /videos/{id}           a public video of the biggest channel
# and the database's size on disk. Also prints how long seeding took.
#   bash benches/community.sh [sqlite|postgres|both]     (needs wrk: apt-get install wrk)
# The Rust seeding and the pages are the release build's unless TURTLEMEN_BIN names another.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
scale="${SCALE:-1}"
duration="${DURATION:-15}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
if [ -z "${TURTLEMEN_BIN:-}" ]; then
  cargo build --release --locked -q
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
else
  bin="$TURTLEMEN_BIN" # another build (a debug one only to try the script)
fi
n() { python3 -c "print(max(1, int($1 * $scale)))"; }
USERS=$(n 50000); CHANNELS=$(n 100000); VIDEOS=$(n 1000000); SUBS=$(n 5000000); FOLLOWS=$(python3 -c "print(min(1000, $CHANNELS))")
PG_BASE="${TURTLEMEN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
REDIS="${TURTLEMEN_BENCH_REDIS:-redis://127.0.0.1:6379/7}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export TURTLEMEN_LOG_LEVEL=warn

# Sign in through the gateway as a browser would; prints the session cookie.
sign_in() {
  python3 benches/sign_in.py "$1"
}

load() { # name url [cookie]
  local name=$1 url=$2 cookie=${3:-}
  local args=(-t2 -c200 --latency --timeout 10s)
  [ -n "$cookie" ] && args+=(-H "cookie: turtlemen_session=$cookie")
  wrk "${args[@]}" -d3s "$url" >/dev/null
  local out; out=$(wrk "${args[@]}" -d"${duration}s" "$url")
  local status; status=$(curl -s -o /dev/null -w '%{http_code}' ${cookie:+-H "cookie: turtlemen_session=$cookie"} "$url")
  python3 - "$name" "$status" <<PY
import re, sys
out = """$out"""
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x
p50m = re.search(r"50%\s+(\S+)", out); p99m = re.search(r"99%\s+(\S+)", out)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
if not (p50m and p99m):  # nothing answered within wrk's timeout: no latency distribution
    print(f"  {sys.argv[1]:<9} HTTP {sys.argv[2]}  no answer within 10 s  {rps:8.0f} req/s"); sys.exit(0)
p50 = ms(p50m.group(1)); p99 = ms(p99m.group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out); errs = re.search(r"Socket errors: (.*)", out)
print(f"  {sys.argv[1]:<9} HTTP {sys.argv[2]}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  {rps:8.0f} req/s"
      + (f"  non-2xx {bad.group(1)}" if bad else "") + (f"  socket errors: {errs.group(1)}" if errs else ""))
PY
}

run() { # backend
  local backend=$1 data="$work/$1" args=()
  mkdir -p "$data"
  if [ "$backend" = postgres ]; then
    psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS turtlemen_bench" -c "CREATE DATABASE turtlemen_bench" >/dev/null
    redis-cli -u "$REDIS" flushdb >/dev/null
    args=(--database-url "$PG_BASE/turtlemen_bench" --session-url "$REDIS")
    "$bin" migrate "${args[@]}" --data-dir "$data" >/dev/null
  fi
  echo "== $backend: $VIDEOS videos, $CHANNELS channels, $USERS users, $SUBS subscriptions"
  echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$data" "${args[@]}" >/dev/null
  "$bin" admin seed --data-dir "$data" "${args[@]}" --users "$USERS" --channels "$CHANNELS" --videos "$VIDEOS" \
    --subscriptions "$SUBS" --follower bench --follows "$FOLLOWS" | sed 's/^/  seed: /'
  local p; p=$(port)
  TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$p" "$bin" serve --listen "127.0.0.1:$p" --data-dir "$data" "${args[@]}" & pid=$!
  until curl -fs "http://127.0.0.1:$p/readyz" >/dev/null 2>&1; do sleep 0.1; done
  local base="http://127.0.0.1:$p" cookie video
  cookie=$(sign_in "$base")
  video=$(curl -fs "$base/api/v1/channels/seed0/videos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["videos"][0]["id"])')
  load home "$base/"
  load home-in "$base/" "$cookie"
  load channel "$base/@seed0"
  load feed "$base/subscriptions" "$cookie"
  load search "$base/search?q=river+guitar"
  load watch "$base/videos/$video"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  if [ "$backend" = postgres ]; then
    psql "$PG_BASE/turtlemen_bench" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size('turtlemen_bench'))" | sed 's/^/  /'
  else
    echo "  database size: $(du -ch "$data"/turtlemen.db* | tail -1 | cut -f1)"
  fi
}

case "$which" in
  sqlite) run sqlite ;;
  postgres) run postgres ;;
  both) run sqlite; run postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
