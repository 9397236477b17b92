#!/usr/bin/env bash
# The subscriptions feed's query before and after the floor (commit "Feed: a floor first"),
# on one seeded instance per engine, in the same run: median milliseconds of the first page and
# of a page 40 pages down, for the account `bench` following 1,000 channels.
#   SCALE=0.05 bash benches/feed_floor.sh        (SCALE 1 = 1,000,000 videos; needs psql)
# The "before" SQL is kept here only as the baseline; the code's is in crates/db/src/subscriptions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${SCALE:-0.05}"
bin="${TURTLEMEN_BIN:-$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen}"
[ -n "${TURTLEMEN_BIN:-}" ] || cargo build --release --locked -q
n() { python3 -c "print(max(1, int($1 * $scale)))"; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export TURTLEMEN_LOG_LEVEL=warn
PG="${TURTLEMEN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
seed() { # data-dir [db args]
  local data=$1; shift
  echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$data" "$@" >/dev/null
  "$bin" admin seed --data-dir "$data" "$@" --users "$(n 50000)" --channels "$(n 100000)" --videos "$(n 1000000)" \
    --subscriptions "$(n 5000000)" --follower bench --follows 1000 | tail -1 | sed 's/^/  /'
}

echo "== SQLite"
seed "$work/sqlite"
python3 - "$work/sqlite/turtlemen.db" <<'PY'
import datetime, sqlite3, statistics, sys, time
db = sqlite3.connect(sys.argv[1])
uid = db.execute("SELECT id FROM users WHERE username = 'bench'").fetchone()[0]
LISTED = "privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL"
FEED = f"""SELECT v.id, v.published_at FROM videos v INDEXED BY videos_channel_published
 JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id
 WHERE v.channel_id IN (SELECT channel_id FROM subscriptions WHERE user_id = ?1) AND v.{LISTED.replace(' AND ', ' AND v.')}
 AND v.published_at <= ?2 AND (v.published_at < ?2 OR v.id < ?3) AND v.published_at >= ?5
 ORDER BY v.published_at DESC, v.id DESC LIMIT ?4"""
FLOOR = f"""SELECT newest FROM (SELECT (SELECT w.published_at FROM videos w INDEXED BY videos_channel_published
 WHERE w.channel_id = s.channel_id AND w.{LISTED.replace(' AND ', ' AND w.')}
 AND w.published_at <= ?2 AND (w.published_at < ?2 OR w.id < ?3) ORDER BY w.published_at DESC, w.id DESC LIMIT 1)
 AS newest FROM subscriptions s WHERE s.user_id = ?1) t WHERE newest IS NOT NULL ORDER BY newest DESC LIMIT 1 OFFSET ?4"""
fmt = lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")
now = datetime.datetime.now(datetime.timezone.utc)
LIMIT = 24
def before(at, last):  # a window widening from a week to everything
    for days in (7, 31, 366, None):
        since = fmt(datetime.datetime.fromisoformat(at[:26]).replace(tzinfo=datetime.timezone.utc) - datetime.timedelta(days=days)) if days else "0"
        rows = db.execute(FEED, (uid, at, last, LIMIT, since)).fetchall()
        if len(rows) >= LIMIT:
            return rows
    return rows
def after(at, last):
    floor = db.execute(FLOOR, (uid, at, last, LIMIT - 1)).fetchone()
    return db.execute(FEED, (uid, at, last, LIMIT, floor[0])).fetchall() if floor else before(at, last)
def median_ms(fn, *args):
    times = []
    for _ in range(15):
        t = time.perf_counter(); fn(*args); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
first = (fmt(now + datetime.timedelta(days=3650)), b"\xff" * 16)
cursor = first
for _ in range(40):
    page = after(*cursor); cursor = (page[-1][1], page[-1][0])
for name, args in (("first page", first), ("page 41", cursor)):
    assert before(*args) == after(*args), "the same answer"
    b = median_ms(before, *args); a = median_ms(after, *args)
    print(f"  {name:<10} before {b:7.2f} ms  after {a:6.2f} ms  ({b / a:.1f}x)")
PY

echo "== PostgreSQL"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS turtlemen_feed_bench" -c "CREATE DATABASE turtlemen_feed_bench" >/dev/null 2>&1
args=(--database-url "$PG/turtlemen_feed_bench")
"$bin" migrate "${args[@]}" --data-dir "$work/pg" >/dev/null
seed "$work/pg" "${args[@]}"
P="w.channel_id = s.channel_id AND w.privacy = 'public' AND w.playable = TRUE AND w.published_at IS NOT NULL AND w.published_at <= \$2 AND (w.published_at < \$2 OR w.id < \$3)"
FEED="SELECT v.id FROM videos v JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id WHERE v.id IN (SELECT f.id FROM subscriptions s CROSS JOIN LATERAL (SELECT w.id, w.published_at FROM videos w WHERE $P AND w.published_at >= \$5 ORDER BY w.published_at DESC, w.id DESC LIMIT \$4) f WHERE s.user_id = \$1 ORDER BY f.published_at DESC, f.id DESC LIMIT \$4) ORDER BY v.published_at DESC, v.id DESC"
{
  echo "ANALYZE;"
  echo "SELECT id AS uid FROM users WHERE username = 'bench' \\gset"
  echo "PREPARE feed(uuid, timestamptz, uuid, bigint, timestamptz) AS $FEED;"
  echo "PREPARE floor(uuid, timestamptz, uuid, bigint) AS SELECT newest FROM (SELECT (SELECT w.published_at FROM videos w WHERE $P ORDER BY w.published_at DESC, w.id DESC LIMIT 1) AS newest FROM subscriptions s WHERE s.user_id = \$1) t WHERE newest IS NOT NULL ORDER BY newest DESC LIMIT 1 OFFSET \$4;"
  echo "EXECUTE floor(:'uid', now() + interval '3650 days', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 23) \\gset f_"
  echo "\\timing on"
  for _ in 1 2 3 4 5 6 7; do
    echo "\\echo before"
    echo "EXECUTE feed(:'uid', now() + interval '3650 days', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 24, 'epoch') \\g /dev/null"
    echo "\\echo after"
    echo "EXECUTE floor(:'uid', now() + interval '3650 days', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 23) \\g /dev/null"
    echo "EXECUTE feed(:'uid', now() + interval '3650 days', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 24, :'f_newest') \\g /dev/null"
  done
} | psql "$PG/turtlemen_feed_bench" -q 2>&1 | python3 -c '
import re, statistics, sys
runs = {"before": [], "after": []}; cur = None; acc = 0.0
for line in sys.stdin:
    line = line.strip()
    if line in runs:
        if cur: runs[cur].append(acc)
        cur, acc = line, 0.0
    elif (m := re.match(r"Time: ([\d.]+) ms", line)):
        acc += float(m.group(1))
runs[cur].append(acc)
b = statistics.median(runs["before"]); a = statistics.median(runs["after"])
print(f"  first page before {b:7.2f} ms  after {a:6.2f} ms  ({b / a:.1f}x)")'
psql "$PG/postgres" -qc "DROP DATABASE turtlemen_feed_bench" >/dev/null
