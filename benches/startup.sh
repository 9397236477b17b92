#!/usr/bin/env bash
# Cold start and idle memory of `turtlemen serve`: for each run, a fresh empty data folder, the
# time from exec to the first answered /healthz, then the resident set size after the server
# has idled for two seconds. Prints each run and the median.
#   bash benches/startup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-7}"
cargo build --release --locked -q
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
starts=(); rss=()
for i in $(seq 1 "$runs"); do
  dir=$(mktemp -d)
  t0=$(date +%s%N)
  (cd "$dir" && exec "$bin" serve --listen "127.0.0.1:$port" --log-level warn) &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.002; done
  t1=$(date +%s%N)
  sleep 2
  kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
  ms=$(( (t1 - t0) / 1000000 ))
  echo "run $i: ready in ${ms} ms, idle RSS $(( kb / 1024 )) MiB"
  starts+=("$ms"); rss+=("$kb")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: ready in $(median "${starts[@]}") ms, idle RSS $(( $(median "${rss[@]}") / 1024 )) MiB (over $runs runs)"
