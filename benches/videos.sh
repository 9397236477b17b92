#!/usr/bin/env bash
# Videos, measured against their baselines in one run on one machine (release build, `turtlemen
# serve` on SQLite + embedded sessions + local storage, signed in through the gateway):
#   upload    a 1 GiB tus upload over loopback (one creation, one streamed PATCH with curl) vs a
#             raw copy of the same bytes on the same disk (cp + sync); throughput ratio, and the
#             server's peak RSS (VmHWM): its peak since start (the sign-in's Argon2 hash included),
#             then the peak during the uploads alone (the mark reset with /proc/PID/clear_refs)
#   playable  a 60 s 1280x720 clip uploaded: seconds from the upload's last byte to the video
#             being playable (first segments of every rendition published) and to ready
#   segments  requests/s for one HLS segment through Turtlemen's signed media URL vs Debian's
#             nginx serving the same file from the same folder (wrk, 2 threads, 32 connections)
# RUNS times each (default 3); prints every run and the medians.
#   bash benches/videos.sh [RUNS]     (needs ffmpeg, wrk and nginx: apt-get install ffmpeg wrk nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
for tool in ffmpeg wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install ffmpeg wrk nginx curl)" >&2; exit 1; }
done
cargo build --release --locked -q
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); PN=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
base="http://127.0.0.1:$P"
TURTLEMEN_LOG_LEVEL=warn "$bin" serve --listen "127.0.0.1:$P" --data-dir "$work/data" & server=$!; pids+=($server)
until curl -fs "$base/healthz" >/dev/null 2>&1; do sleep 0.05; done
echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null

cookie=$(python3 benches/sign_in.py "$base")
H=(-H "cookie: turtlemen_session=$cookie" -H "tus-resumable: 1.0.0")
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$server/status"; }
now() { date +%s.%N; }

# Creates an upload of file $1; prints its path and video id.
create() {
  local size name
  size=$(stat -c %s "$1"); name=$(basename "$1" | base64 -w0)
  curl -fs -o /dev/null -D - -X POST "${H[@]}" -H "upload-length: $size" -H "upload-metadata: filename $name,privacy $(echo -n public | base64)" "$base/api/v1/uploads" \
    | awk -F': ' 'tolower($1)=="location" {l=$2} tolower($1)=="video-id" {v=$2} END {gsub("\r","",l); gsub("\r","",v); print l, v}'
}
send() { # upload path, file
  curl -fs -o /dev/null -X PATCH "${H[@]}" -H "content-type: application/offset+octet-stream" -H "upload-offset: 0" -T "$2" "$base$1"
}
video() { curl -fs -H "cookie: turtlemen_session=$cookie" "$base/api/v1/videos/$1"; }

echo "== upload: 1 GiB tus over loopback vs cp + sync"
head -c 1G /dev/urandom > "$work/big.bin"
rss_before=$(hwm)
rss_rest=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$server/status")
echo 5 > "/proc/$server/clear_refs"
up=(); cp_=()
for i in $(seq "$runs"); do
  t0=$(now); cp "$work/big.bin" "$work/copy.bin"; sync "$work/copy.bin"; t1=$(now); rm -f "$work/copy.bin"
  cp_+=("$(python3 -c "print(1024/($t1-$t0))")")
  read -r path id < <(create "$work/big.bin")
  t0=$(now); send "$path" "$work/big.bin"; t1=$(now)
  up+=("$(python3 -c "print(1024/($t1-$t0))")")
  curl -fs -o /dev/null -X DELETE -H "cookie: turtlemen_session=$cookie" "$base/api/v1/videos/$id"
  echo "run $i: tus ${up[-1]} MiB/s, cp ${cp_[-1]} MiB/s"
done
rss_after=$(hwm)
mu=$(printf '%s\n' "${up[@]}" | median); mc=$(printf '%s\n' "${cp_[@]}" | median)
echo "median: tus $mu MiB/s, cp $mc MiB/s, ratio $(python3 -c "print(round($mu/$mc,2))")"
echo "server RSS: peak ${rss_before} MiB since start (sign-in included), ${rss_rest} MiB before the uploads, peak ${rss_after} MiB during them"
rm -f "$work/big.bin"

echo "== playable: 60 s 1280x720 clip, from last byte to playable and to ready"
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 -t 60 \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$work/clip.mp4"
first=(); full=(); seg_url=""
for i in $(seq "$runs"); do
  read -r path id < <(create "$work/clip.mp4")
  send "$path" "$work/clip.mp4"; t0=$(now); tp=""
  while :; do
    v=$(video "$id")
    state=$(echo "$v" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["state"], v["playable"])')
    [ -z "$tp" ] && [ "${state#* }" = "True" ] && tp=$(now)
    case "$state" in ready*|failed*) break ;; esac
    sleep 0.1
  done
  t1=$(now)
  [ "${state%% *}" = "ready" ] || { echo "processing failed: $v" >&2; exit 1; }
  first+=("$(python3 -c "print(round($tp-$t0,2))")"); full+=("$(python3 -c "print(round($t1-$t0,2))")")
  echo "run $i: playable after ${first[-1]} s, ready after ${full[-1]} s"
  seg_id=$id
  [ "$i" -lt "$runs" ] && curl -fs -o /dev/null -X DELETE -H "cookie: turtlemen_session=$cookie" "$base/api/v1/videos/$id"
done
echo "median: playable $(printf '%s\n' "${first[@]}" | median) s, ready $(printf '%s\n' "${full[@]}" | median) s"

echo "== segments: one HLS segment, Turtlemen's signed URL vs nginx on the same file"
hls=$(video "$seg_id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hls_url"])')
seg_path="${hls%master.m3u8}720p/seg-00002.m4s"
curl -fs -o /dev/null "$base$seg_path"
mkdir -p "$work/nginx"
# The data dir is private (0700): nginx's workers run as the same user as this script.
cat > "$work/nginx/nginx.conf" <<CONF
user $(id -un);
worker_processes 2;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$PN;
    location /videos/ { root $work/data/media; types { video/iso.segment m4s; } }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$PN/videos/$seg_id/hls/720p/seg-00002.m4s" && break; sleep 0.05; done
curl -fs -o /dev/null "http://127.0.0.1:$PN/videos/$seg_id/hls/720p/seg-00002.m4s" || { echo "nginx cannot serve the segment: $(cat "$work/nginx/error.log")" >&2; exit 1; }
rps() { wrk -t2 -c32 -d10s "$1" | awk '/Requests\/sec/ {print $2}'; }
tm=(); ng=()
for i in $(seq "$runs"); do
  tm+=("$(rps "$base$seg_path")"); ng+=("$(rps "http://127.0.0.1:$PN/videos/$seg_id/hls/720p/seg-00002.m4s")")
  echo "run $i: turtlemen ${tm[-1]} req/s, nginx ${ng[-1]} req/s"
done
mt=$(printf '%s\n' "${tm[@]}" | median); mn=$(printf '%s\n' "${ng[@]}" | median)
echo "median: turtlemen $mt req/s, nginx $mn req/s, ratio $(python3 -c "print(round($mt/$mn,2))")"
echo "segment size: $(stat -c %s "$work/data/media/videos/$seg_id/hls/720p/seg-00002.m4s") bytes"
