#!/usr/bin/env bash
# Live video: glass-to-glass latency under hls.js in headless chromium (LL-HLS passthrough, with
# plain HLS from the same packager as the baseline in the same page; and the same for a transcoded
# ladder), concurrent viewers served with none falling behind (a load tool playing LL-HLS as
# hls.js does, ramped until one does), and CPU and memory per passthrough and per transcoded
# stream beside the idle server. Release build; RUNS runs of each; medians. What
# each part does is described at the top of benches/live.mjs.
#   bash benches/live.sh [RUNS]
# Needs ffmpeg, chromium, node and the web/ packages (npm ci in web/).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNS="${1:-${RUNS:-3}}"
cargo build --release --locked -q --bin turtlemen
cargo build --release --locked -q -p turtlemen-live --example viewers
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export TURTLEMEN_BIN="$target/release/turtlemen"
export VIEWERS_BIN="$target/release/examples/viewers"
# Every player holds a connection (and the server one per player).
ulimit -n "$(ulimit -Hn)"
node benches/live.mjs
