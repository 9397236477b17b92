#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests on SQLite + the embedded session store
# and again on PostgreSQL + Redis (the upgrade test beside the previous release's binary, built
# first by scripts/previous-release.sh), a short run of every fuzz target, then the Kubernetes manifests' check (deploy/kubernetes/check.py) and
# the browser tests in Debian's headless chromium.
#
# PostgreSQL and Redis come from TURTLEMEN_TEST_POSTGRES_URL / TURTLEMEN_TEST_REDIS_URL, or
# default to the servers on loopback (started if they are down). External-stack tests are
# required here: a missing server fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ -z "${TURTLEMEN_TEST_POSTGRES_URL:-}" ] || [ -z "${TURTLEMEN_TEST_REDIS_URL:-}" ]; then
  bash scripts/services.sh
fi
export TURTLEMEN_TEST_POSTGRES_URL="${TURTLEMEN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TURTLEMEN_TEST_REDIS_URL="${TURTLEMEN_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TURTLEMEN_TEST_REQUIRE_EXTERNAL=1

echo "== the previous release's binary, for the upgrade test (scripts/previous-release.sh)"
TURTLEMEN_PREVIOUS_BIN="$(bash scripts/previous-release.sh)"
export TURTLEMEN_PREVIOUS_BIN

echo "== Rust tests (SQLite + embedded sessions, PostgreSQL + Redis)"
cargo test --workspace --locked

echo "== fuzz targets (AFL++, a few seconds each from their corpora; scripts/fuzz.sh)"
bash scripts/fuzz.sh 8

echo "== Kubernetes manifests (rendered, validated, linted, started on loopback)"
TURTLEMEN_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/turtlemen" python3 deploy/kubernetes/check.py

echo "== browser tests (headless chromium)"
# `cargo test` built target/debug/turtlemen for the integration tests; the browser tests use it.
TURTLEMEN_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/turtlemen" \
  npm test --prefix web
