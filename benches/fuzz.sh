#!/usr/bin/env bash
# The long fuzz run: every target of fuzz/ under AFL++ for SECONDS each (default 60), printing
# executions per second and in all per target (scripts/fuzz.sh does the work; the short run in
# CI is the same with a few seconds each). Executions per second depend on the machine and on
# what else runs on it: compare targets within one run, not across machines.
#
# Usage: benches/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
bash scripts/fuzz.sh "$seconds" "$@"
