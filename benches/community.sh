#!/usr/bin/env bash
# The community pages at the size of a large instance, on SQLite and on PostgreSQL + Redis.
#
# Seeds a fresh database with `turtlemen admin seed` (default: 1,000,000 videos, 100,000
# channels, 50,000 users, 5,000,000 subscriptions; SCALE=0.1 for a tenth), makes an account
# `bench` that follows the 1,000 biggest channels, runs `turtlemen serve` (release build) and
# loads each page through the gateway with wrk: 200 connections, 2 threads, RUNS runs (default
# 3) of DURATION seconds (default 15) after a 3 s warm-up, printing the medians of p50 and p99
# latency and requests/s (benches/lib.sh):
#   home        GET /                      anonymous
#   home-in     GET /                      signed in (with "From your subscriptions")
#   channel     GET /@seed0                the channel with the most videos
#   channel-in  GET /@seed0                the same, signed in (with the viewer's subscription)
#   feed        GET /subscriptions         signed in, following 1,000 channels: read from the
#                                          viewer's feed head (built by the first read)
#   feed-past   GET /subscriptions?cursor= the page after the head's 240 videos: computed from
#                                          the followed channels, as every feed page was before
#                                          heads (the baseline for `feed`)
#   feed-first  the first open of the feed, which builds the head: single requests, each after
#               the head was dropped (median of 9, curl)
#   search      GET /search?q=river+guitar
#   watch       GET /videos/{id}           a public video of the biggest channel
#   watch-in    GET /videos/{id}           the same, signed in (their rating, lists, history and
#                                          subscription: the page that asks the most per viewer)
# first with every page rendered for every request (the gateway's page cache off: the baseline),
# then as deployed, where anonymous visitors' public pages are kept 2 s by the gateway; and the
# database's size on disk. Also prints how long seeding took.
#   bash benches/community.sh [sqlite|postgres|both]     (needs wrk: apt-get install wrk)
# KEEP_SQLITE=FILE keeps a copy of the seeded SQLite database; SEEDED_SQLITE=FILE starts from such
# a copy, and SEEDED_POSTGRES=NAME from a PostgreSQL database seeded before (e.g. a kept
# `turtlemen_bench`), instead of seeding again (seeding is most of a run's time).
# The Rust seeding and the pages are the release build's unless TURTLEMEN_BIN names another.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
USERS=$(n 50000); CHANNELS=$(n 100000); VIDEOS=$(n 1000000); SUBS=$(n 5000000); FOLLOWS=$(python3 -c "print(min(1000, $CHANNELS))")

# A feed cursor past the signed-in viewer's head: three API pages of 100 (the head holds 240).
cursor_past_head() { # base cookie
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
base, cookie, cursor = sys.argv[1], sys.argv[2], None
for _ in range(3):
    url = base + "/api/v1/me/feed?limit=100" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"cookie": f"turtlemen_session={cookie}", "accept": "application/json"})
    cursor = json.load(urllib.request.urlopen(req))["next_cursor"]
print(cursor)
PY
}

# The first open of the feed (the head built): the median of 9 single requests, each after
# every head was dropped.
feed_first() { # backend data base cookie
  local i times=""
  for i in $(seq 1 9); do
    if [ "$1" = postgres ]; then
      psql "$PG_BASE/${SEEDED_POSTGRES:-turtlemen_bench}" -qc "DELETE FROM feed_heads" >/dev/null
    else
      python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); c.execute('DELETE FROM feed_heads'); c.commit()" "$2/turtlemen.db"
    fi
    times+="$(curl -fs -o /dev/null -w '%{time_total}' -H "cookie: turtlemen_session=$4" "$3/subscriptions")"$'\n'
  done
  printf '  %-10s %7.1f ms  (median of 9 single requests, the head dropped before each)\n' feed-first \
    "$(echo "$times" | grep . | median | awk '{print $1 * 1000}')"
}

run() { # backend
  local backend=$1 data="$work/$1"
  if [ "$backend" = postgres ] && [ -n "${SEEDED_POSTGRES:-}" ]; then
    # A database this script seeded before (with `bench`), migrated to this build. Its signing
    # keys are sealed with the earlier run's instance secret: dropped, so this instance makes its own.
    mkdir -p "$data"; redis-cli -u "$REDIS" flushdb >/dev/null
    psql "$PG_BASE/$SEEDED_POSTGRES" -qc "DELETE FROM signing_keys" >/dev/null
    args=(--database-url "$PG_BASE/$SEEDED_POSTGRES" --session-url "$REDIS")
    "$bin" migrate "${args[@]}" --data-dir "$data" >/dev/null
  else
    fresh_instance "$backend" "$data"
  fi
  echo "== $backend: $VIDEOS videos, $CHANNELS channels, $USERS users, $SUBS subscriptions"
  if [ "$backend" = sqlite ] && [ -n "${SEEDED_SQLITE:-}" ]; then
    cp "$SEEDED_SQLITE" "$data/turtlemen.db" # a database this script seeded before (with `bench`)
    echo "  seed: reused $SEEDED_SQLITE"
  elif [ "$backend" = postgres ] && [ -n "${SEEDED_POSTGRES:-}" ]; then
    echo "  seed: reused the database $SEEDED_POSTGRES"
  else
    make_user "$data" bench
    "$bin" admin seed --data-dir "$data" "${args[@]}" --users "$USERS" --channels "$CHANNELS" --videos "$VIDEOS" \
      --subscriptions "$SUBS" --follower bench --follows "$FOLLOWS" | sed 's/^/  seed: /'
    if [ "$backend" = sqlite ] && [ -n "${KEEP_SQLITE:-}" ]; then cp "$data/turtlemen.db" "$KEEP_SQLITE"; fi
  fi
  # Every page rendered for every request (the gateway's page cache off)…
  echo "  -- every request rendered (public_page_max_age_secs = 0)"
  TURTLEMEN_PUBLIC_PAGE_MAX_AGE_SECS=0 serve "$data"
  local cookie video
  cookie=$(sign_in "$base")
  video=$(curl -fs "$base/api/v1/channels/seed0/videos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["videos"][0]["id"])')
  local signed=(-H "cookie: turtlemen_session=$cookie")
  load home "$base/"
  load home-in "${signed[@]}" "$base/"
  load channel "$base/@seed0"
  load channel-in "${signed[@]}" "$base/@seed0"
  load feed "${signed[@]}" "$base/subscriptions"
  load feed-past "${signed[@]}" "$base/subscriptions?cursor=$(cursor_past_head "$base" "$cookie")"
  feed_first "$backend" "$data" "$base" "$cookie"
  load search "$base/search?q=river+guitar"
  load watch "$base/videos/$video"
  load watch-in "${signed[@]}" "$base/videos/$video"
  stop
  # …then as deployed: anonymous visitors' public pages kept 2 s by the gateway, and the lists
  # every viewer sees alike (home lists, search results) shared 2 s by the API; signed-in pages
  # are never kept whole, and the feed is per viewer.
  echo "  -- as deployed (public_page_max_age_secs = 2)"
  serve "$data"
  cookie=$(sign_in "$base")
  signed=(-H "cookie: turtlemen_session=$cookie")
  load home "$base/"
  load home-in "${signed[@]}" "$base/"
  load search-in "${signed[@]}" "$base/search?q=river+guitar"
  load channel "$base/@seed0"
  load channel-in "${signed[@]}" "$base/@seed0"
  load search "$base/search?q=river+guitar"
  load watch "$base/videos/$video"
  load watch-in "${signed[@]}" "$base/videos/$video"
  stop
  db_size "$backend" "$data" "${SEEDED_POSTGRES:-turtlemen_bench}"
}

run_backends "${1:-both}"
