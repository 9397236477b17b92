#!/usr/bin/env bash
# The fault suite's recovery numbers: runs tests/it/faults (PostgreSQL restarted, Redis restarted
# and flushed, S3 unreachable, the disk full — each under steady load of the people's journeys)
# one case at a time and prints each case's `fault |` line: the time from the service's return
# to the program answering normally again and to the first successful write, the requests that
# failed (by answer), the committed writes lost and the requests that hung.
#   bash benches/faults.sh [RUNS]
# Needs what the tests need (scripts/install-deps.sh): PostgreSQL's programs, redis-server,
# moto_server, ffmpeg, and root for the tmpfs of the disk cases. PostgreSQL and Redis for the
# parts that are not broken come from TURTLEMEN_TEST_POSTGRES_URL / TURTLEMEN_TEST_REDIS_URL
# (defaults: the local servers scripts/test.sh uses); the broken ones are the cases' own.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1}"
export TURTLEMEN_TEST_POSTGRES_URL="${TURTLEMEN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TURTLEMEN_TEST_REDIS_URL="${TURTLEMEN_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TURTLEMEN_TEST_REQUIRE_EXTERNAL=1
cargo test --locked -q --test it --no-run
# The whole output goes to a log; a failing run prints the log's end (the failure) and stops.
log="$(mktemp -t turtlemen-faults.XXXXXX)"
for run in $(seq "$runs"); do
  status=0
  cargo test --locked -q --test it faults:: -- --nocapture --test-threads=1 2>&1 | tee "$log" \
    | { grep -o 'fault |.*' || true; } || status=$?
  if [ "$status" -ne 0 ]; then
    echo "run $run of the fault suite failed (exit $status); the end of its log, $log:" >&2
    tail -n 80 "$log" >&2
    exit "$status"
  fi
done
rm -f "$log"
