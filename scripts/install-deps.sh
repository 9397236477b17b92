#!/usr/bin/env bash
# Installs what a fresh Debian machine with the Rust toolchain lacks to build, run and test
# Turtlemen: ffmpeg, Node.js/npm, Debian's chromium (browser tests), aiosmtpd (mail tests), moto's S3
# server (S3 storage tests), schemathesis (the OpenAPI test), and the front-end packages pinned in web/package-lock.json. Safe to
# run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The browser tests make a fresh PostgreSQL schema per server with psql.
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# S3 tests run against moto's S3 server (PyPI), a second implementation of the protocol.
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.*'
fi

# A real SMTP server for the mail tests (aiosmtpd, from PyPI).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m pip install --quiet aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-aiosmtpd >/dev/null; }
fi

# schemathesis (PyPI) runs every operation of the API's OpenAPI document against the running
# server (tests/it/openapi.rs); pinned, since its checks tighten from release to release.
SCHEMATHESIS_VERSION=4.32.5
if ! st --version 2>/dev/null | grep -qx "st, version $SCHEMATHESIS_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Front-end packages (hls.js, tus-js-client, playwright-core) from the lockfile; the build
# embeds them into the binary, so they must be present before `cargo build`.
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  npm ci --prefix web --no-audit --no-fund --loglevel=error
fi
