#!/usr/bin/env bash
# Upload staging: a tus upload staged on local disk against one staged in S3 (moto's server),
# each beside its own baseline, in one run on one machine.
#   local     `turtlemen serve` with file:// storage: one creation, one streamed PATCH (curl),
#             from creation to the video queued for transcoding; baseline: cp + sync of the bytes
#   s3        the same with storage_url=s3://media on moto (staged in 64 MiB segments, joined
#             at the last byte); baseline: one PUT of the same bytes straight to moto (curl)
# SIZE MiB each (default 256), RUNS times (default 3); prints every run and the medians.
#   bash benches/upload_staging.sh [RUNS] [SIZE_MIB]   (needs curl and moto_server: scripts/install-deps.sh)
#   BIN=path/to/turtlemen skips the release build (say which build in the numbers you quote).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
size="${2:-256}"
for tool in curl python3 moto_server; do
  command -v "$tool" >/dev/null || { echo "needs $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
fi
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
# `start` runs in a subshell (its output is read), so the servers' pids go to a file.
cleanup() {
  for p in "${pids[@]}" $(cat "$work/server-pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
rate() { python3 -c "print(round($size/($2-$1),1))"; }

MP=$(port)
moto_server -H 127.0.0.1 -p "$MP" >/dev/null 2>&1 & pids+=($!)
moto="http://127.0.0.1:$MP"
until curl -fs -o /dev/null -X PUT "$moto/media"; do sleep 0.05; done
head -c "${size}M" /dev/urandom > "$work/big.bin"

# Starts `serve` with storage $1 in data dir $2; prints its base URL and session cookie.
start() {
  local p base
  p=$(port); base="http://127.0.0.1:$p"
  AWS_ENDPOINT="$moto" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    TURTLEMEN_LOG_LEVEL=warn "$BIN" serve --listen "127.0.0.1:$p" --data-dir "$2" --storage-url "$1" &
  echo $! >> "$work/server-pids"
  until curl -fs "$base/healthz" >/dev/null 2>&1; do sleep 0.05; done
  echo "correct horse battery staple" | "$BIN" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$2" >/dev/null
  python3 - "$base" <<'PY'
import html, re, sys, urllib.parse, urllib.request, http.cookiejar
base = sys.argv[1]
jar = http.cookiejar.CookieJar()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = op.open(base + "/oauth2/start?rd=/").read().decode()
field = lambda n: html.unescape(re.search(rf'name="{n}" value="([^"]*)"', page).group(1))
form = urllib.parse.urlencode({"csrf": field("csrf"), "return_to": field("return_to"),
                               "username": "bench", "password": "correct horse battery staple"}).encode()
op.open(base + "/auth/login", form).read()
print(base, next(c.value for c in jar if c.name == "turtlemen_session"))
PY
}

# One upload of big.bin to $1 with cookie $2: prints seconds from creation to the last answer.
upload() {
  local h=(-H "cookie: turtlemen_session=$2" -H "tus-resumable: 1.0.0") t0 t1 path
  t0=$(now)
  path=$(curl -fs -o /dev/null -D - -X POST "${h[@]}" -H "upload-length: $((size * 1024 * 1024))" \
    -H "upload-metadata: filename $(echo -n big.bin | base64)" "$1/api/v1/uploads" \
    | awk -F': ' 'tolower($1)=="location" {gsub("\r","",$2); print $2}')
  curl -fs -o /dev/null -X PATCH "${h[@]}" -H "content-type: application/offset+octet-stream" -H "upload-offset: 0" -T "$work/big.bin" "$1$path"
  t1=$(now)
  echo "$t0 $t1"
}

read -r lbase lcookie < <(start "file://$work/local-media" "$work/local")
read -r sbase scookie < <(start "s3://media" "$work/s3")
local_=(); cp_=(); s3_=(); put_=()
for i in $(seq "$runs"); do
  t0=$(now); cp "$work/big.bin" "$work/copy.bin"; sync "$work/copy.bin"; t1=$(now); rm -f "$work/copy.bin"
  cp_+=("$(rate "$t0" "$t1")")
  read -r t0 t1 < <(upload "$lbase" "$lcookie"); local_+=("$(rate "$t0" "$t1")")
  t0=$(now); curl -fs -o /dev/null -X PUT -T "$work/big.bin" "$moto/media/baseline-$i"; t1=$(now)
  put_+=("$(rate "$t0" "$t1")")
  read -r t0 t1 < <(upload "$sbase" "$scookie"); s3_+=("$(rate "$t0" "$t1")")
  echo "run $i: local tus ${local_[-1]} MiB/s (cp ${cp_[-1]}), S3 tus ${s3_[-1]} MiB/s (one PUT ${put_[-1]})"
done
ml=$(printf '%s\n' "${local_[@]}" | median); mc=$(printf '%s\n' "${cp_[@]}" | median)
ms=$(printf '%s\n' "${s3_[@]}" | median); mp=$(printf '%s\n' "${put_[@]}" | median)
echo "median: local tus $ml MiB/s vs cp $mc (ratio $(python3 -c "print(round($ml/$mc,2))")); S3 tus $ms MiB/s vs one PUT $mp (ratio $(python3 -c "print(round($ms/$mp,2))"))"
