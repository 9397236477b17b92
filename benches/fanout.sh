#!/usr/bin/env bash
# The new-video fan-out, measured on SQLite and on PostgreSQL in one run (release build,
# `turtlemen serve` with its embedded worker, embedded session store):
#   seed      N users (default 100,000) following one creator's channel, each with a feed head
#             (every follower an active viewer: the fan-out adds the video to each head), in bulk SQL
#   fan-out   the creator uploads a 2 s public clip; ffmpeg makes it playable, which queues the
#             notify_new_video job; its time from queued to succeeded (the job row's timestamps),
#             and that exactly N notifications and N feed entries exist afterwards (none twice)
#   latency   p50 and p99 of a simple read endpoint (GET /api/v1/channels/{creator}, wrk: 2
#             threads, 16 connections, --latency) idle for 10 s, then from the moment the fan-out
#             job is queued until it has succeeded (same server, same run)
#   bash benches/fanout.sh [N]     (needs ffmpeg, wrk, sqlite3, psql: apt-get install ffmpeg wrk
#                                   sqlite3 postgresql-client; PostgreSQL as in DESIGN.md, URL in
#                                   TURTLEMEN_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/test)
# TURTLEMEN_BIN=path runs another build instead of building the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
pg="${TURTLEMEN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
for tool in ffmpeg wrk curl python3 sqlite3 psql; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install ffmpeg wrk curl sqlite3 postgresql-client)" >&2; exit 1; }
done
if [ -n "${TURTLEMEN_BIN:-}" ]; then bin="$TURTLEMEN_BIN"; else
  cargo build --release --locked -q
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
fi
work=$(mktemp -d)
schema="fanout_bench_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ffmpeg -v error -f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine -t 2 -c:v libx264 -preset ultrafast \
  -pix_fmt yuv420p -c:a aac -shortest "$work/clip.mp4"
# p50 and p99 in ms from wrk --latency output.
percentiles() { awk '$1=="50%"||$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; printf "%s=%.2fms ", ($1=="50%"?"p50":"p99"), v}'; }

run() { # engine
  local engine=$1 data="$work/$1" P base url sql
  P=$(port); base="http://127.0.0.1:$P"
  if [ "$engine" = postgres ]; then
    psql "$pg" -qc "CREATE SCHEMA $schema" >/dev/null
    url="$pg?options[search_path]=$schema"
    sql() { psql "$pg" -qAtX -v ON_ERROR_STOP=1 -c "SET search_path TO $schema" -c "$1"; }
  else
    url="sqlite://$data/turtlemen.db"
    sql() { sqlite3 "$data/turtlemen.db" "$1"; }
  fi
  local args=(--data-dir "$data" --database-url "$url")
  TURTLEMEN_LOG_LEVEL=warn "$bin" serve --listen "127.0.0.1:$P" "${args[@]}" & local server=$!; pids+=($server)
  until curl -fs "$base/healthz" >/dev/null 2>&1; do sleep 0.05; done
  echo "correct horse battery staple" | "$bin" admin create-user --username creator --email creator@example.org --password-stdin "${args[@]}" >/dev/null

  local t0 t1
  t0=$(date +%s.%N)
  if [ "$engine" = postgres ]; then
    sql "INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at)
         SELECT gen_random_uuid(), 'fan' || i, 'fan' || i, 'fan' || i || '@example.org', 'fan' || i || '@example.org', 'Fan ' || i, now(), now()
         FROM generate_series(1, $n) AS i;
         INSERT INTO subscriptions (user_id, channel_id, created_at)
         SELECT u.id, c.id, now() FROM users u, channels c WHERE u.username_key LIKE 'fan%' AND c.handle_key = 'creator';
         UPDATE channels SET subscriber_count = $n WHERE handle_key = 'creator';
         INSERT INTO feed_heads (user_id, token, ready, built_at, read_at)
         SELECT id, gen_random_uuid(), TRUE, now(), now() FROM users WHERE username_key LIKE 'fan%'; ANALYZE;" >/dev/null
  else
    sql "PRAGMA busy_timeout = 10000; BEGIN;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n)
         INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at)
         SELECT randomblob(16), 'fan' || i, 'fan' || i, 'fan' || i || '@example.org', 'fan' || i || '@example.org', 'Fan ' || i,
                strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ') FROM s;
         INSERT INTO subscriptions (user_id, channel_id, created_at)
         SELECT u.id, c.id, strftime('%Y-%m-%dT%H:%M:%fZ') FROM users u, channels c WHERE u.username_key LIKE 'fan%' AND c.handle_key = 'creator';
         UPDATE channels SET subscriber_count = $n WHERE handle_key = 'creator';
         INSERT INTO feed_heads (user_id, token, ready, built_at, read_at)
         SELECT id, randomblob(16), 1, strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ')
         FROM users WHERE username_key LIKE 'fan%'; COMMIT;" >/dev/null
  fi
  t1=$(date +%s.%N)
  printf '%-8s seed %d users + subscriptions + feed heads: %.1f s\n' "$engine" "$n" "$(echo "$t1 - $t0" | bc -l)"

  local cookie
  cookie=$(python3 benches/sign_in.py "$base" creator)
  local read="$base/api/v1/channels/creator"
  wrk -t2 -c16 -d2s "$read" >/dev/null
  printf '%-8s idle    %s\n' "$engine" "$(wrk -t2 -c16 -d10s --latency "$read" | percentiles)"

  # The upload: creation with the whole clip in one request.
  local size meta
  size=$(stat -c %s "$work/clip.mp4")
  meta="filename $(echo -n clip.mp4 | base64 -w0),title $(echo -n 'Fan-out' | base64 -w0),privacy $(echo -n public | base64 -w0)"
  curl -fs -o /dev/null -X POST -H "cookie: turtlemen_session=$cookie" -H "tus-resumable: 1.0.0" -H "upload-length: $size" \
    -H "upload-metadata: $meta" -H "content-type: application/offset+octet-stream" --data-binary "@$work/clip.mp4" "$base/api/v1/uploads"
  # The load starts once the fan-out is queued (the video became playable) and stops when it is done.
  until [ "$(sql "SELECT COUNT(*) FROM jobs WHERE kind = 'notify_new_video'")" = 1 ]; do sleep 0.05; done
  wrk -t2 -c16 -d600s --latency "$read" > "$work/$engine.wrk" & local load=$!
  until [ "$(sql "SELECT COUNT(*) FROM jobs WHERE kind = 'notify_new_video' AND state = 'succeeded'")" = 1 ]; do sleep 0.2; done
  kill -INT "$load"; wait "$load" || true
  local took made twice entries
  if [ "$engine" = postgres ]; then
    took=$(sql "SELECT EXTRACT(EPOCH FROM updated_at - created_at) FROM jobs WHERE kind = 'notify_new_video'")
  else
    took=$(sql "SELECT (julianday(updated_at) - julianday(created_at)) * 86400 FROM jobs WHERE kind = 'notify_new_video'")
  fi
  made=$(sql "SELECT COUNT(*) FROM notifications WHERE kind = 'new_video'")
  entries=$(sql "SELECT COUNT(*) FROM feed_entries")
  twice=$(sql "SELECT COUNT(*) FROM (SELECT user_id FROM notifications WHERE kind = 'new_video' GROUP BY user_id HAVING COUNT(*) > 1) d")
  printf '%-8s fan-out to %d subscribers: %.2f s (queued to succeeded), %d notifications, %d twice, %d feed entries\n' \
    "$engine" "$n" "$took" "$made" "$twice" "$entries"
  printf '%-8s during  %s\n' "$engine" "$(percentiles < "$work/$engine.wrk")"
  kill "$server"; wait "$server" || true
}

run sqlite
run postgres
