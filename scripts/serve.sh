#!/usr/bin/env bash
# Installs what is missing, builds the release binary and runs `turtlemen serve`
# (http://127.0.0.1:8080, data in ./turtlemen-data). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release
exec "${CARGO_TARGET_DIR:-target}/release/turtlemen" serve "$@"
