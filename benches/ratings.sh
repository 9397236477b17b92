#!/usr/bin/env bash
# Toggling a like through the gateway, on SQLite and on PostgreSQL + Redis.
#
# Makes a fresh instance with a small seeded catalogue (`turtlemen admin seed`, SCALE × 10,000
# videos), signs USERS accounts in (default 20), runs `turtlemen serve` (release build) and
# loads it with wrk: 200 connections, 2 threads, DURATION seconds (default 15) after a 3 s
# warm-up, printing p50 and p99 latency and requests/s:
#   baseline    GET /api/v1/videos/{id}          the video's JSON (no write), signed in
#   like        PUT /api/v1/videos/{id}/rating   like / none in turn, each connection one of the
#                                                USERS sessions (all on one video: its counter
#                                                row is the hot spot)
# then checks that the video's likes equal COUNT(*) of its rating rows.
#   bash benches/ratings.sh [sqlite|postgres|both]     (needs wrk: apt-get install wrk)
# The server is the release build's unless TURTLEMEN_BIN names another.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
scale="${SCALE:-1}"
duration="${DURATION:-15}"
users="${USERS:-20}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
if [ -z "${TURTLEMEN_BIN:-}" ]; then
  cargo build --release --locked -q
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
else
  bin="$TURTLEMEN_BIN" # another build (a debug one only to try the script)
fi
n() { python3 -c "print(max(1, int($1 * $scale)))"; }
VIDEOS=$(n 10000); CHANNELS=$(n 1000); SEEDUSERS=$(n 1000)
PG_BASE="${TURTLEMEN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
REDIS="${TURTLEMEN_BENCH_REDIS:-redis://127.0.0.1:6379/7}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export TURTLEMEN_LOG_LEVEL=warn

# Signs USER in through the gateway as a browser would; prints the session cookie.
sign_in() { # base user
  python3 - "$1" "$2" <<'PY'
import html, re, sys, urllib.parse, urllib.request, http.cookiejar
base, user = sys.argv[1], sys.argv[2]
jar = http.cookiejar.CookieJar()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = op.open(base + "/oauth2/start?rd=/").read().decode()
field = lambda n: html.unescape(re.search(rf'name="{n}" value="([^"]*)"', page).group(1))
form = urllib.parse.urlencode({"csrf": field("csrf"), "return_to": field("return_to"),
                               "username": user, "password": "correct horse battery staple"}).encode()
op.open(base + "/auth/login", form).read()
print(next(c.value for c in jar if c.name == "turtlemen_session"))
PY
}

# wrk's script: each connection takes one session (round robin) and sends like / none in turn.
cat > "$work/toggle.lua" <<'LUA'
local cookies = {}
for c in string.gmatch(os.getenv("BENCH_COOKIES"), "[^,]+") do cookies[#cookies + 1] = c end
local path = os.getenv("BENCH_PATH")
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
local n = 0
function init(args) n = id * 7919 end
function request()
  n = n + 1
  local body = (n % 2 == 0) and '{"rating":"like"}' or '{"rating":"none"}'
  local cookie = cookies[(n % #cookies) + 1]
  return wrk.format("PUT", path, {["content-type"] = "application/json", ["cookie"] = "turtlemen_session=" .. cookie}, body)
end
LUA

report() { # name wrk-output
  python3 - "$1" <<PY
import re, sys
out = """$2"""
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x
p50m = re.search(r"50%\s+(\S+)", out); p99m = re.search(r"99%\s+(\S+)", out)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
if not (p50m and p99m):
    print(f"  {sys.argv[1]:<9} no answer within 10 s  {rps:8.0f} req/s"); sys.exit(0)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out); errs = re.search(r"Socket errors: (.*)", out)
print(f"  {sys.argv[1]:<9} p50 {ms(p50m.group(1)):7.1f} ms  p99 {ms(p99m.group(1)):7.1f} ms  {rps:8.0f} req/s"
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
  echo "== $backend: $VIDEOS videos, $users raters"
  for i in $(seq 1 "$users"); do
    echo "correct horse battery staple" | "$bin" admin create-user --username "rater$i" --email "rater$i@example.org" --password-stdin --data-dir "$data" "${args[@]}" >/dev/null
  done
  "$bin" admin seed --data-dir "$data" "${args[@]}" --users "$SEEDUSERS" --channels "$CHANNELS" --videos "$VIDEOS" \
    --subscriptions 0 | sed 's/^/  seed: /'
  local p; p=$(port)
  TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$p" "$bin" serve --listen "127.0.0.1:$p" --data-dir "$data" "${args[@]}" & pid=$!
  until curl -fs "http://127.0.0.1:$p/readyz" >/dev/null 2>&1; do sleep 0.1; done
  local base="http://127.0.0.1:$p" cookies="" video
  for i in $(seq 1 "$users"); do cookies="$cookies${cookies:+,}$(sign_in "$base" "rater$i")"; done
  video=$(curl -fs "$base/api/v1/channels/seed0/videos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["videos"][0]["id"])')
  local first=${cookies%%,*} wrkargs=(-t2 -c200 --latency --timeout 10s)
  wrk "${wrkargs[@]}" -d3s -H "cookie: turtlemen_session=$first" "$base/api/v1/videos/$video" >/dev/null
  report baseline "$(wrk "${wrkargs[@]}" -d"${duration}s" -H "cookie: turtlemen_session=$first" "$base/api/v1/videos/$video")"
  export BENCH_COOKIES="$cookies" BENCH_PATH="/api/v1/videos/$video/rating"
  wrk "${wrkargs[@]}" -d3s -s "$work/toggle.lua" "$base" >/dev/null
  report like "$(wrk "${wrkargs[@]}" -d"${duration}s" -s "$work/toggle.lua" "$base")"
  local likes; likes=$(curl -fs "$base/api/v1/videos/$video" | python3 -c 'import json,sys; print(json.load(sys.stdin)["likes"])')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  local rows
  if [ "$backend" = postgres ]; then
    rows=$(psql "$PG_BASE/turtlemen_bench" -Atc "SELECT COUNT(*) FROM video_ratings WHERE video_id = '$video' AND rating = 'like'")
  else
    rows=$(python3 -c "import sqlite3,uuid,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"SELECT COUNT(*) FROM video_ratings WHERE video_id = ? AND rating = 'like'\", (uuid.UUID(sys.argv[2]).bytes,)).fetchone()[0])" "$data/turtlemen.db" "$video")
  fi
  echo "  counter: likes $likes, rows $rows $([ "$likes" = "$rows" ] && echo '(exact)' || echo '(MISMATCH)')"
}

case "$which" in
  sqlite) run sqlite ;;
  postgres) run postgres ;;
  both) run sqlite; run postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
