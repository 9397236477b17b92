#!/usr/bin/env bash
# Search and the home page on a seeded instance (release build, `turtlemen serve` on SQLite +
# embedded sessions), beside the floor of the same stack in the same run:
#   healthz   GET /healthz (no database): the gateway + foundation floor
#   home      GET / (recent, trending, categories: three indexed reads)
#   category  GET /?category=music
#   search    GET /api/v1/search?q=turtle (a word in 1 of 50 titles), and a rarer one
#   suggest   GET /api/v1/search/suggestions?q=tu
# Each with wrk (2 threads, 32 connections, 10 s): requests/s and latency p50/p99.
# The instance is seeded with N videos (default 100000) in 1000 channels: rows written straight
# into the database the server made and migrated, then indexed with the migration's own
# backfill statements (the application's write path is not what is measured here).
#   bash benches/search.sh [N]        (needs wrk, and python3 with apsw for an SQLite that knows
#                                      FTS5's contentless_delete: apt-get install wrk; pip install apsw)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk curl python3)" >&2; exit 1; }
done
python3 -c 'import apsw' 2>/dev/null || { echo "needs the apsw Python module (pip install apsw)" >&2; exit 1; }
cargo build --release --locked -q
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
base="http://127.0.0.1:$P"
start() {
  TURTLEMEN_LOG_LEVEL=warn "$bin" serve --listen "127.0.0.1:$P" --data-dir "$work/data" & server=$!
  until curl -fs "$base/healthz" >/dev/null 2>&1; do sleep 0.05; done
}
start
echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null
kill "$server"; wait "$server" 2>/dev/null || true; server=

echo "seeding $n videos..."
t0=$(date +%s.%N)
python3 - "$work/data/turtlemen.db" "$n" <<'PY'
import random, apsw, sys, uuid, datetime
db, n = sys.argv[1], int(sys.argv[2])
con = apsw.Connection(db)
owner = next(con.execute("SELECT id FROM users LIMIT 1"))[0]
words = "turtle shell reef ocean tide coral kelp sand wave storm river lake forest mountain city night day song dance cook bread garden stone glass paper fire ice".split()
cats = ["music", "films", "sports", "gaming", "education", "science-technology", "food", None]
now = datetime.datetime.now(datetime.timezone.utc)
ts = lambda d: d.isoformat()
channels = []
for i in range(1000):
    cid = uuid.uuid4().bytes
    channels.append(cid)
    con.execute("INSERT INTO channels (id, owner_id, handle, handle_key, display_name, created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
                (cid, owner, f"chan{i}", f"chan{i}", f"Channel {i} {random.choice(words)}", ts(now), ts(now)))
rows = []
for i in range(n):
    t = now - datetime.timedelta(minutes=i)
    title = " ".join(random.sample(words[1:], 4)) + (" turtle" if i % 50 == 0 else "") + (" zeppelin" if i % 5000 == 0 else "")
    rows.append((uuid.uuid4().bytes, owner, title, "A description about " + " ".join(random.sample(words[1:], 8)), '["' + random.choice(words) + '"]',
                 random.choice(cats), "public", "ready", 1, random.uniform(10, 3600), "f.mp4", 1000, random.randint(0, 100000),
                 ts(t), ts(t), ts(t), random.choice(channels), random.random() * 100 if i % 10 == 0 else 0.0))
with con:
  con.executemany("INSERT INTO videos (id, owner_id, title, description, tags, category, privacy, state, playable, duration_secs, original_name, "
                  "original_bytes, views, created_at, updated_at, published_at, channel_id, trending_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
# The migration's backfill, as in crates/db/migrations/sqlite/20261204000010_search.sql.
con.execute("""
INSERT INTO search_docs (id) SELECT id FROM videos WHERE true ON CONFLICT DO NOTHING;
INSERT INTO search_docs (id) SELECT id FROM channels WHERE true ON CONFLICT DO NOTHING;
INSERT INTO videos_fts (rowid, title, tags, description)
    SELECT d.doc, v.title, v.tags, v.description FROM videos v JOIN search_docs d ON d.id = v.id
    WHERE d.doc NOT IN (SELECT rowid FROM videos_fts);
INSERT INTO channels_fts (rowid, handle, display_name, description)
    SELECT d.doc, c.handle, c.display_name, c.description FROM channels c JOIN search_docs d ON d.id = c.id
    WHERE d.doc NOT IN (SELECT rowid FROM channels_fts);
ANALYZE;
""")
PY
t1=$(date +%s.%N)
echo "seeded in $(python3 -c "print(round($t1 - $t0, 1))") s; database $(du -m "$work/data/turtlemen.db" | cut -f1) MiB"
start

measure() { # name path
  local out
  out=$(wrk -t2 -c32 -d10s --latency "$base$2")
  printf '%-10s %10s req/s   p50 %8s   p99 %8s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
measure healthz /healthz
measure home /
measure category "/?category=music"
measure search "/api/v1/search?q=turtle"
measure rare "/api/v1/search?q=zeppelin"
measure suggest "/api/v1/search/suggestions?q=tu"
