#!/usr/bin/env bash
# Installs what a fresh Debian machine with the Rust toolchain lacks to build, run and test
# Turtlemen: ffmpeg, Node.js/npm, Debian's chromium (browser tests), HAProxy (the load balancer of
# the multi-replica test), PostgreSQL's server programs and Redis (the fault suite's own servers), aiosmtpd (mail tests), moto's S3
# server (S3 storage tests), schemathesis (the OpenAPI test), kubectl, kubernetes-validate,
# checkov and Prometheus (the Kubernetes manifests' and the monitoring's checks), cargo-afl and
# AFL++ (the fuzz targets), and the front-end packages pinned in web/package-lock.json. Safe to
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
# The multi-replica test (tests/it/scale_out.rs) puts the gateways behind HAProxy.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The browser tests make a fresh PostgreSQL schema per server with psql.
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# The fault suite (tests/it/faults) starts PostgreSQL clusters (initdb, pg_ctl) and Redis
# servers of its own, to stop and start them.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# The Kubernetes manifests are rendered with `kubectl kustomize` (deploy/kubernetes/check.py).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# Prometheus and promtool: the alert rules' checks and a real scrape of every role.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
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

# The Kubernetes manifests' checks (deploy/kubernetes/check.py): the Kubernetes schemas
# (kubernetes-validate), a security linter (checkov) and a YAML reader; pinned.
pip_has() { python3 -m pip show "$1" 2>/dev/null | grep -qx "Version: $2"; }
if ! pip_has kubernetes-validate 1.37.0 || ! pip_has checkov 3.3.30 || ! pip_has PyYAML 6.0.3; then
  K8S_TOOLS=("kubernetes-validate==1.37.0" "checkov==3.3.30" "PyYAML==6.0.3")
  python3 -m pip install --quiet --disable-pip-version-check "${K8S_TOOLS[@]}" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${K8S_TOOLS[@]}"
fi

# Coverage-guided fuzzing (scripts/fuzz.sh): cargo-afl from crates.io, then the AFL++ it builds
# from the source it carries (`cargo afl config --build`, once per Rust toolchain).
CARGO_AFL_VERSION=0.18.2
if ! cargo afl --version 2>/dev/null | grep -q "$CARGO_AFL_VERSION"; then
  cargo install --locked --quiet cargo-afl --version "$CARGO_AFL_VERSION"
fi
# `afl-fuzz -h` prints its usage and exits 1 once AFL++ is built; before, cargo-afl says it is missing.
if ! (cargo afl fuzz -h 2>&1 || true) | grep -q "Required parameters"; then
  cargo afl config --build
fi

# Front-end packages (hls.js, tus-js-client, playwright-core) from the lockfile; the build
# embeds them into the binary, so they must be present before `cargo build`.
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  npm ci --prefix web --no-audit --no-fund --loglevel=error
fi
