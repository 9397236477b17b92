#!/usr/bin/env bash
# How long a video takes to become ready when `turtlemen serve` is killed (`kill -9`) in the
# middle of its transcode and started again, on a 40 s 1080p30 clip (testsrc2 + sine, made here
# with lavfi), SQLite and local storage as `serve` runs by default. Per run:
#   (a) baseline: the clip uploaded and transcoded with no kill — upload to ready;
#   (b) the clip uploaded, serve killed once progress reaches KILL_AT % (default 30), serve
#       started again on the same data dir — restart to ready, and restart to the job's second
#       attempt (the takeover);
#   (c) with BEFORE=/path/to/an/older/turtlemen, (b) for that binary too.
# (b) − (a) is what the crash costs beyond a transcode from the start; a takeover within the
# lease would show as a second attempt seconds after the restart. Prints each run and medians.
#   bash benches/takeover.sh [RUNS]   (BIN=… a built binary; KILL_AT=… percent; CLIP_SECS=… instead of 40)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
kill_at="${KILL_AT:-30}"
secs="${CLIP_SECS:-40}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q --bin turtlemen
  target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  BIN="$target/release/turtlemen"
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
clip="$work/clip.mp4"
ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=$secs \
  -f lavfi -i sine=frequency=440:duration=$secs -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$clip"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# start BIN DATA PORT: serve in the background (pid in $pid), once it answers.
start() {
  TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$3" TURTLEMEN_LOG_LEVEL=warn \
    "$1" serve --listen "127.0.0.1:$3" --data-dir "$2" --rtmp-listen off >>"$2.log" 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$3/healthz" >/dev/null 2>&1; do sleep 0.05; done
}

# prepare BIN DATA PORT: a fresh instance (pid in $pid) with a signed-in account (cookie in $cookie).
prepare() {
  rm -rf "$2" "$2.log"
  start "$1" "$2" "$3"
  echo "correct horse battery staple" |
    TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$3" "$1" admin create-user --username bench --email bench@example.org \
      --password-stdin --data-dir "$2" >/dev/null
  cookie=$(python3 benches/sign_in.py "http://127.0.0.1:$3")
}

# upload PORT COOKIE: the clip in one tus request; prints the video id.
upload() {
  local meta
  meta="filename $(printf clip.mp4 | base64),privacy $(printf public | base64)"
  curl -fs -o /dev/null -D - -X POST "http://127.0.0.1:$1/api/v1/uploads" \
    -H "cookie: turtlemen_session=$2" -H "tus-resumable: 1.0.0" -H "upload-length: $(stat -c %s "$clip")" \
    -H "upload-metadata: $meta" -H "content-type: application/offset+octet-stream" --data-binary "@$clip" |
    awk -F': ' 'tolower($1)=="video-id" {print $2}' | tr -d '\r'
}

# field PORT COOKIE ID NAME: a field of the video as its owner sees it.
field() {
  curl -fs -H "cookie: turtlemen_session=$2" "http://127.0.0.1:$1/api/v1/videos/$3" |
    python3 -c "import json,sys; print(json.load(sys.stdin).get('$4'))" 2>/dev/null || echo none
}

wait_ready() {
  while [ "$(field "$1" "$2" "$3" state)" != ready ]; do sleep 0.1; done
}

# attempts DATA: the transcode job's attempts (SQLite, as serve keeps it).
attempts() {
  python3 - "$1/turtlemen.db" <<'PY'
import sqlite3, sys
try:
    row = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute(
        "SELECT attempts FROM jobs WHERE kind = 'transcode'").fetchone()
    print(row[0] if row else 0)
except sqlite3.Error:
    print(0)
PY
}

# baseline BIN: upload to ready, no kill (ms).
baseline() {
  local p data id t0
  p=$(port); data="$work/base"
  prepare "$1" "$data" "$p" >&2
  t0=$(now_ms)
  id=$(upload "$p" "$cookie")
  wait_ready "$p" "$cookie" "$id"
  echo $(( $(now_ms) - t0 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

# killed BIN: "restart-to-takeover restart-to-ready" (ms).
killed() {
  local p data id t0 taken=""
  p=$(port); data="$work/killed"
  prepare "$1" "$data" "$p" >&2
  id=$(upload "$p" "$cookie")
  until [ "$(field "$p" "$cookie" "$id" progress)" -ge "$kill_at" ] 2>/dev/null; do sleep 0.1; done
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  t0=$(now_ms)
  start "$1" "$data" "$p"
  while [ "$(field "$p" "$cookie" "$id" state)" != ready ]; do
    [ -z "$taken" ] && [ "$(attempts "$data")" -ge 2 ] && taken=$(( $(now_ms) - t0 ))
    sleep 0.1
  done
  [ -z "$taken" ] && taken=$(( $(now_ms) - t0 ))
  echo "$taken $(( $(now_ms) - t0 ))"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
a=(); bt=(); br=(); ct=(); cr=()
for i in $(seq 1 "$runs"); do
  a+=("$(baseline "$BIN")")
  read -r t r < <(killed "$BIN"); bt+=("$t"); br+=("$r")
  line="run $i: (a) no kill ${a[-1]} ms; (b) killed at ${kill_at}%: taken up ${t} ms, ready ${r} ms after the restart"
  if [ -n "${BEFORE:-}" ]; then
    read -r t r < <(killed "$BEFORE"); ct+=("$t"); cr+=("$r")
    line="$line; (c) before: taken up ${t} ms, ready ${r} ms after the restart"
  fi
  echo "$line"
done
echo "median over $runs runs: (a) ${a[*]:+$(median "${a[@]}")} ms; (b) taken up $(median "${bt[@]}") ms, ready $(median "${br[@]}") ms after the restart"
[ -n "${BEFORE:-}" ] && echo "(c) before: taken up $(median "${ct[@]}") ms, ready $(median "${cr[@]}") ms after the restart"
exit 0
