#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes bytes from outside (fuzz/, docs/fuzzing.md).
#
# Builds the targets with cargo-afl's instrumentation and runs each under AFL++ for SECONDS
# (default 10) from its seeds in fuzz/corpus/<target>, then prints executions per second and in
# all per target. Fails when a target crashed (a property broke, or it panicked); the crashing
# inputs are left under the output folder it names. Hangs (an input over the time limit) are
# reported with their folder.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (no TARGET: every folder of fuzz/corpus)
# The instrumented build has its own target folder, FUZZ_TARGET_DIR (default
# "${CARGO_TARGET_DIR:-target}/afl"), since its compiler flags differ from the normal build's.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for dir in fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
target_dir="${FUZZ_TARGET_DIR:-$(realpath -m "${CARGO_TARGET_DIR:-target}")/afl}"
out_root="${FUZZ_OUT:-$target_dir/runs}"

# Optimisation level of the instrumented build (cargo-afl's default is 3): 1 builds the whole
# dependency tree several times faster, and the targets still run thousands of inputs a second.
export AFL_OPT_LEVEL="${AFL_OPT_LEVEL:-1}"
CARGO_TARGET_DIR="$target_dir" cargo afl build --locked -p turtlemen-fuzz --features afl --bin fuzz
bin="$target_dir/debug/fuzz"

# No screen, no CPU binding or frequency check (a shared machine), no core-pattern check (crashes
# are caught in the target's own process by AFL++'s fork server either way), short calibration.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1 AFL_SKIP_CRASHES=0

failed=()
printf '%-12s %10s %12s %8s %6s %6s\n' target execs/s execs paths crash hang
for t in "${targets[@]}"; do
  out="$out_root/$t"
  rm -rf "$out"
  mkdir -p "$out"
  # -V: stop after SECONDS; -t: a single input over 2 s is a hang (generous: the machine is shared).
  if ! cargo afl fuzz -V "$seconds" -t 2000 -i "fuzz/corpus/$t" -o "$out" -- "$bin" "$t" >"$out/afl.log" 2>&1; then
    echo "$t: afl-fuzz failed; its log:" >&2
    tail -n 30 "$out/afl.log" >&2
    failed+=("$t")
    continue
  fi
  stats="$out/default/fuzzer_stats"
  stat() { sed -n "s/^$1 *: *//p" "$stats"; }
  execs=$(stat execs_done)
  rate=$(stat execs_per_sec)
  crashes=$(stat saved_crashes)
  hangs=$(stat saved_hangs)
  printf '%-12s %10s %12s %8s %6s %6s\n' "$t" "$rate" "$execs" "$(stat corpus_count)" "$crashes" "$hangs"
  if [ "$crashes" != "0" ]; then
    echo "$t: $crashes crashing input(s) in $out/default/crashes" >&2
    failed+=("$t")
  fi
  if [ "$hangs" != "0" ]; then
    echo "$t: $hangs input(s) over the time limit in $out/default/hangs" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
