#!/usr/bin/env bash
# Comments at the size of a large instance, on SQLite and on PostgreSQL + Redis.
#
# Seeds a fresh database with `turtlemen admin seed` (default: 10,000,000 comments on 1,000,000
# videos of 100,000 channels and 50,000 users; the 5 most commented videos get 100,000 each, a
# tenth of all comments when fewer, the others a handful; SCALE=0.1 for a tenth of everything,
# which still leaves 100,000 on each of the five; COMMENTS, VIDEOS, CHANNELS and SEEDUSERS set
# each alone), makes USERS accounts (default 20) and signs
# them in, runs `turtlemen serve` (release build; no per-user comment or rating limit) and loads it
# through the gateway with wrk: 200 connections, 2 threads, RUNS runs (default 3) of DURATION
# seconds (default 15) after a 3 s warm-up, printing the medians of p50 and p99 latency and
# requests/s (benches/lib.sh). Target: p99 under 50 ms.
#   baseline   GET  /api/v1/videos/{id}                the most commented video's JSON (no
#                                                      comments read), signed in: the floor
#   first      GET  /api/v1/videos/{id}/comments       its first page (20, newest), signed in
#   deep       GET  …/comments?cursor=…                the page nine tenths of the way down,
#                                                      by the cursor of the page before it
#   top-deep   GET  …/comments?sort=top&cursor=…       the same depth, most liked first
#   post       POST /api/v1/videos/{id}/comments       a new comment, as each of the USERS in turn
#   like       PUT  /api/v1/comments/{id}/rating       like / none in turn on one comment (its
#                                                      counter row is the hot spot), USERS sessions
# then checks that the comment's like count equals its rows and the video's comment count its
# visible comments (counters exact under the concurrent writes), and prints the database size.
#   bash benches/comments.sh [sqlite|postgres|both]     (needs wrk: apt-get install wrk)
# The seeding and the server are the release build's unless TURTLEMEN_BIN names another.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${USERS:-20}"
. benches/lib.sh
COMMENTS=${COMMENTS:-$(n 10000000)}; VIDEOS=${VIDEOS:-$(n 1000000)}; CHANNELS=${CHANNELS:-$(n 100000)}; SEEDUSERS=${SEEDUSERS:-$(n 50000)}
session_script

# The cursor DEPTH (a fraction) of the way down the comment list at URL (walked to its end
# 100 at a time).
cursor_at() { # url depth
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.parse, urllib.request
url, depth = sys.argv[1], float(sys.argv[2])
sep = "&" if "?" in url else "?"
cursors, cursor = [], None
while True:
    page = json.load(urllib.request.urlopen(url + sep + "limit=100" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")))
    cursor = page["next_cursor"]
    if cursor is None:
        break
    cursors.append(cursor)
print(urllib.parse.quote(cursors[int(len(cursors) * depth)]))
PY
}

run() { # backend
  local backend=$1 data="$work/$1"
  fresh_instance "$backend" "$data"
  echo "== $backend: $COMMENTS comments, $VIDEOS videos, $CHANNELS channels, $SEEDUSERS users"
  for i in $(seq 1 "$users"); do make_user "$data" "commenter$i"; done
  "$bin" admin seed --data-dir "$data" "${args[@]}" --users "$SEEDUSERS" --channels "$CHANNELS" --videos "$VIDEOS" \
    --subscriptions 0 --comments "$COMMENTS" | tee "$work/seed.txt" | sed 's/^/  seed: /'
  local video; video=$(awk '/^most commented video:/ {print $4; exit}' "$work/seed.txt")
  TURTLEMEN_COMMENTS_PER_MINUTE=0 TURTLEMEN_RATINGS_PER_MINUTE=0 serve "$data"
  local cookies=""
  for i in $(seq 1 "$users"); do cookies="$cookies${cookies:+,}$(sign_in "$base" "commenter$i")"; done
  local signed=(-H "cookie: turtlemen_session=${cookies%%,*}") list="$base/api/v1/videos/$video/comments"
  echo "  the video has $(curl -fs "$list" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])') comments"
  local deep top comment
  deep=$(cursor_at "$list" 0.9)
  top=$(cursor_at "$list?sort=top" 0.9)
  comment=$(curl -fs "$list" | python3 -c 'import json,sys; print(json.load(sys.stdin)["comments"][0]["id"])')
  load baseline "${signed[@]}" "$base/api/v1/videos/$video"
  load first "${signed[@]}" "$list"
  load deep "${signed[@]}" "$list?cursor=$deep"
  load top-deep "${signed[@]}" "$list?sort=top&cursor=$top"
  BENCH_COOKIES="$cookies" BENCH_METHOD=POST BENCH_PATH="/api/v1/videos/$video/comments" \
    BENCH_BODIES='{"text":"A comment from the bench, with *emphasis* and a [link](https://example.org)."}' \
    load post -s "$work/sessions.lua" "$base"
  BENCH_COOKIES="$cookies" BENCH_METHOD=PUT BENCH_PATH="/api/v1/comments/$comment/rating" \
    BENCH_BODIES='{"rating":"like"}|{"rating":"none"}' load like -s "$work/sessions.lua" "$base"
  local likes count
  likes=$(curl -fs "$base/api/v1/comments/$comment" | python3 -c 'import json,sys; print(json.load(sys.stdin)["likes"])')
  count=$(curl -fs "$list" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  stop
  local rows visible
  rows=$(db_scalar "$backend" "$data" "SELECT COUNT(*) FROM comment_likes WHERE comment_id = ?" "$comment")
  visible=$(db_scalar "$backend" "$data" "SELECT COUNT(*) FROM comments WHERE video_id = ? AND status = 'visible'" "$video")
  echo "  counters: comment likes $likes, rows $rows $(exact "$likes" "$rows");" \
    "video comments $count, rows $visible $(exact "$count" "$visible")"
  db_size "$backend" "$data"
}

run_backends "${1:-both}"
