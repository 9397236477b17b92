# Shell helpers shared by the benches that seed an instance and load it through the gateway
# with wrk (community.sh, ratings.sh, comments.sh). Sourced, not run:
#   set -euo pipefail; cd "$(dirname "$0")/.."; . benches/lib.sh
# On sourcing it checks for wrk, sets `bin` (the release build, built here, unless
# TURTLEMEN_BIN names another), `work` (a temporary directory), PG_BASE and REDIS (the
# PostgreSQL server and Redis database a postgres run uses: TURTLEMEN_BENCH_POSTGRES,
# TURTLEMEN_BENCH_REDIS), `duration` (DURATION, default 15 s per wrk run) and `runs` (RUNS,
# default 3 wrk runs per measurement, of which the medians are printed) and `scale` (SCALE,
# default 1, for `n`), and removes `work` and stops the server on exit. A script defines
# `run BACKEND` and ends with `run_backends "${1:-both}"`.

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
if [ -z "${TURTLEMEN_BIN:-}" ]; then
  cargo build --release --locked -q
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
else
  bin="$TURTLEMEN_BIN" # another build (a debug one only to try a script)
fi
PG_BASE="${TURTLEMEN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
REDIS="${TURTLEMEN_BENCH_REDIS:-redis://127.0.0.1:6379/7}"
duration="${DURATION:-15}"
runs="${RUNS:-3}"
scale="${SCALE:-1}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export TURTLEMEN_LOG_LEVEL=warn

# N times SCALE, at least 1.
n() { python3 -c "print(max(1, int($1 * $scale)))"; }

# "(exact)" when the two are equal, "(MISMATCH)" otherwise.
exact() { if [ "$1" = "$2" ]; then echo '(exact)'; else echo '(MISMATCH)'; fi; }

# Runs the script's `run` on sqlite, postgres or both.
run_backends() { # sqlite|postgres|both
  case "$1" in
    sqlite) run sqlite ;;
    postgres) run postgres ;;
    both) run sqlite; run postgres ;;
    *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
  esac
}

# A free port on the loopback.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The middle of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A fresh instance for BACKEND (sqlite | postgres) in DATA: on postgres, the bench database made
# again, the Redis database flushed and the schema migrated. Sets `args`, the storage options
# every later command takes.
fresh_instance() { # backend data
  local backend=$1 data=$2
  mkdir -p "$data"
  args=()
  if [ "$backend" = postgres ]; then
    psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS turtlemen_bench" -c "CREATE DATABASE turtlemen_bench" >/dev/null
    redis-cli -u "$REDIS" flushdb >/dev/null
    args=(--database-url "$PG_BASE/turtlemen_bench" --session-url "$REDIS")
    "$bin" migrate "${args[@]}" --data-dir "$data" >/dev/null
  fi
}

# Makes an account that can sign in (password "correct horse battery staple").
make_user() { # data name
  echo "correct horse battery staple" | "$bin" admin create-user --username "$2" --email "$2@example.org" \
    --password-stdin --data-dir "$1" "${args[@]}" >/dev/null
}

# Starts `turtlemen serve` on a free port with DATA and `args`; sets `pid` and `base`. Extra
# environment for the server goes before the call (`VAR=x serve data`).
serve() { # data
  local p; p=$(port)
  TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$p" "$bin" serve --listen "127.0.0.1:$p" --data-dir "$1" "${args[@]}" & pid=$!
  base="http://127.0.0.1:$p"
  until curl -fs "$base/readyz" >/dev/null 2>&1; do sleep 0.1; done
}

# Stops the server `serve` started.
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# Signs USER (default bench) in through the gateway as a browser would; prints the session
# cookie's value.
sign_in() { # base [user]
  python3 "$(dirname "${BASH_SOURCE[0]}")/sign_in.py" "$1" "${2:-bench}"
}

# The database's size on disk.
db_size() { # backend data [postgres-database]
  if [ "$1" = postgres ]; then
    local name="${3:-turtlemen_bench}"
    psql "$PG_BASE/$name" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size('$name'))" | sed 's/^/  /'
  else
    echo "  database size: $(du -ch "$2"/turtlemen.db* | tail -1 | cut -f1)"
  fi
}

# One number from the bench database: SQL with one `?`, which is bound to the UUID ID (the
# server should be stopped on SQLite, so nothing holds the database).
db_scalar() { # backend data sql id
  if [ "$1" = postgres ]; then
    local q="'"
    psql "$PG_BASE/turtlemen_bench" -Atc "${3//\?/$q$4$q}"
  else
    python3 -c "import sqlite3,uuid,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2], (uuid.UUID(sys.argv[3]).bytes,)).fetchone()[0])" "$2/turtlemen.db" "$3" "$4"
  fi
}

# One wrk run's p50 and p99 (ms), requests/s, non-2xx/3xx answers and socket errors, as one
# line: "p50 p99 rps non2xx errors" ("- - rps …" when nothing answered within wrk's timeout).
wrk_numbers() { # wrk-output
  python3 -c '
import re, sys
out = sys.argv[1]
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", v)
    if not m:
        sys.stderr.write(f"unreadable latency {v!r} in:\n{out}\n"); return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]
p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M); p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
p50 = p50 and ms(p50.group(1)); p99 = p99 and ms(p99.group(1))
rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
rps = float(rps.group(1)) if rps else 0.0
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
print(f"{p50:.2f}" if p50 is not None else "-", f"{p99:.2f}" if p99 is not None else "-", f"{rps:.0f}",
      bad.group(1) if bad else 0, sum(int(e) for e in errs.groups()) if errs else 0)
' "$1"
}

# Loads a target with wrk (2 threads, 200 connections, 10 s timeout): a 3 s warm-up, then
# `runs` runs of `duration` seconds; prints each run and the medians of p50, p99 and requests/s.
# WRK_ARGS are wrk's arguments after the common ones (a URL, and -H or -s as needed).
load() { # name wrk-args...
  local name=$1; shift
  local common=(-t2 -c200 --latency --timeout 10s)
  wrk "${common[@]}" -d3s "$@" >/dev/null
  local lines="" i
  for i in $(seq 1 "$runs"); do
    lines+="$(wrk_numbers "$(wrk "${common[@]}" -d"${duration}s" "$@")")"$'\n'
  done
  python3 -c '
import statistics, sys
name, lines = sys.argv[1], [l.split() for l in sys.argv[2].strip().splitlines()]
num = lambda i: [float(l[i]) for l in lines if l[i] != "-"]
runs = "  ".join(f"{l[0]}/{l[1]}" for l in lines)
bad = sum(int(l[3]) for l in lines); errs = sum(int(l[4]) for l in lines)
p50, p99, rps = num(0), num(1), num(2)
head = f"  {name:<10}"
if not p99:
    print(f"{head} no answer within 10 s  {statistics.median(rps):8.0f} req/s"); sys.exit(0)
print(f"{head} p50 {statistics.median(p50):7.1f} ms  p99 {statistics.median(p99):7.1f} ms  {statistics.median(rps):8.0f} req/s"
      f"  (median of {len(lines)}; p50/p99 per run: {runs})"
      + (f"  non-2xx {bad}" if bad else "") + (f"  socket errors {errs}" if errs else ""))
' "$name" "$lines"
}

# Writes $work/sessions.lua, a wrk script: each request takes the next of the session cookies
# in BENCH_COOKIES (comma-separated) and the next of the JSON bodies in BENCH_BODIES
# ("|"-separated), and sends BENCH_METHOD to BENCH_PATH. Each thread starts at its own offset.
session_script() {
  cat > "$work/sessions.lua" <<'LUA'
local cookies, bodies = {}, {}
for c in string.gmatch(os.getenv("BENCH_COOKIES"), "[^,]+") do cookies[#cookies + 1] = c end
for b in string.gmatch(os.getenv("BENCH_BODIES"), "[^|]+") do bodies[#bodies + 1] = b end
local method, path = os.getenv("BENCH_METHOD"), os.getenv("BENCH_PATH")
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
local n = 0
function init(args) n = id * 7919 end
function request()
  n = n + 1
  local headers = {["content-type"] = "application/json", ["cookie"] = "turtlemen_session=" .. cookies[(n % #cookies) + 1]}
  return wrk.format(method, path, headers, bodies[(n % #bodies) + 1])
end
LUA
}
