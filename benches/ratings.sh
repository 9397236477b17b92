#!/usr/bin/env bash
# Toggling a like through the gateway, on SQLite and on PostgreSQL + Redis.
#
# Makes a fresh instance with a small seeded catalogue (`turtlemen admin seed`, SCALE × 10,000
# videos), signs USERS accounts in (default 20), runs `turtlemen serve` (release build; no rating limit) and
# loads it with wrk: 200 connections, 2 threads, RUNS runs (default 3) of DURATION seconds
# (default 15) after a 3 s warm-up, printing the medians of p50 and p99 latency and requests/s
# (benches/lib.sh):
#   baseline    GET /api/v1/videos/{id}          the video's JSON (no write), signed in
#   like        PUT /api/v1/videos/{id}/rating   like / none in turn, each connection one of the
#                                                USERS sessions (all on one video: its counter
#                                                row is the hot spot)
# then checks that the video's likes equal COUNT(*) of its rating rows.
#   bash benches/ratings.sh [sqlite|postgres|both]     (needs wrk: apt-get install wrk)
# The server is the release build's unless TURTLEMEN_BIN names another.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${USERS:-20}"
. benches/lib.sh
VIDEOS=$(n 10000); CHANNELS=$(n 1000); SEEDUSERS=$(n 1000)

session_script

run() { # backend
  local backend=$1 data="$work/$1"
  fresh_instance "$backend" "$data"
  echo "== $backend: $VIDEOS videos, $users raters"
  for i in $(seq 1 "$users"); do make_user "$data" "rater$i"; done
  "$bin" admin seed --data-dir "$data" "${args[@]}" --users "$SEEDUSERS" --channels "$CHANNELS" --videos "$VIDEOS" \
    --subscriptions 0 | sed 's/^/  seed: /'
  TURTLEMEN_RATINGS_PER_MINUTE=0 serve "$data"
  local cookies="" video
  for i in $(seq 1 "$users"); do cookies="$cookies${cookies:+,}$(sign_in "$base" "rater$i")"; done
  video=$(curl -fs "$base/api/v1/channels/seed0/videos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["videos"][0]["id"])')
  load baseline -H "cookie: turtlemen_session=${cookies%%,*}" "$base/api/v1/videos/$video"
  BENCH_COOKIES="$cookies" BENCH_METHOD=PUT BENCH_PATH="/api/v1/videos/$video/rating" \
    BENCH_BODIES='{"rating":"like"}|{"rating":"none"}' load like -s "$work/sessions.lua" "$base"
  local likes; likes=$(curl -fs "$base/api/v1/videos/$video" | python3 -c 'import json,sys; print(json.load(sys.stdin)["likes"])')
  stop
  local rows
  rows=$(db_scalar "$backend" "$data" "SELECT COUNT(*) FROM video_ratings WHERE video_id = ? AND rating = 'like'" "$video")
  echo "  counter: likes $likes, rows $rows $(exact "$likes" "$rows")"
}

run_backends "${1:-both}"
