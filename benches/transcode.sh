#!/usr/bin/env bash
# Transcoding cost of the media pipeline on a 20 s 1080p30 clip (testsrc2 + sine, made here
# with lavfi), x264 veryfast, median of RUNS runs each (interleaved, so load hits all alike):
#   (a) one ffmpeg run per rendition, 1080p down to 144p (how PeerTube transcodes);
#   (b) the bare single-pass ladder: our ffmpeg command without poster and storyboard;
#   (c) Turtlemen's whole processing: probe, the one ffmpeg run with poster and storyboard,
#       publishing to a local store (the `process` example); also when it became playable.
# The commands in (a) and (b) are printed by the same code that builds (c)'s, so encoder
# settings match. Prints each run, the medians, and the ratios c/b (target ≤ 1.1) and b/a.
#   bash benches/transcode.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
cargo build --release --locked -q -p turtlemen-media --example process
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target/release/examples/process"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clip="$work/clip.mp4"
ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=20 \
  -f lavfi -i sine=frequency=440:duration=20 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$clip"

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
a=(); b=(); c=(); playable=()
for i in $(seq 1 "$runs"); do
  rm -rf "$work/a"; mapfile -t per < <("$bin" --print-rendition-commands "$work/a" "$clip")
  t0=$(date +%s%N)
  for cmd in "${per[@]}"; do eval "$cmd" >/dev/null; done
  a+=("$(ms_since "$t0")")

  rm -rf "$work/b"; ladder=$("$bin" --print-ladder-command "$work/b" "$clip")
  t0=$(date +%s%N)
  eval "$ladder" >/dev/null
  b+=("$(ms_since "$t0")")

  out=$("$bin" "$clip" | tail -1)
  total=$(sed -E 's/.*total_ms=([0-9]+).*/\1/' <<<"$out")
  play=$(sed -E 's/.*playable_ms=([0-9]+).*/\1/' <<<"$out")
  c+=("$total"); playable+=("$play")
  echo "run $i: (a) per rendition ${a[-1]} ms, (b) single-pass ladder ${b[-1]} ms, (c) turtlemen ${total} ms (playable after ${play} ms)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}"); mc=$(median "${c[@]}"); mp=$(median "${playable[@]}")
echo "median over $runs runs: (a) ${ma} ms, (b) ${mb} ms, (c) ${mc} ms, playable after ${mp} ms"
awk -v a="$ma" -v b="$mb" -v c="$mc" 'BEGIN { printf "c/b = %.3f (target <= 1.1)   b/a = %.3f\n", c / b, b / a }'
