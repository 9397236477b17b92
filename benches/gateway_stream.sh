#!/usr/bin/env bash
# Streaming through the gateway, and the cost of forward auth, same run, same machine.
#
# 1. 1 GiB through the gateway vs straight to the upstream (Debian's nginx serving a file and
#    discarding uploads), download and upload, RUNS times each, with curl:
#    throughput ratio (target ≥ 0.9) and the gateway's peak RSS growth (VmHWM from /proc before
#    and after; target < 32 MiB). The gateway runs alone with a [[routes]] entry for /stream.
#    The gateway splices bodies of known length from socket to socket (splice(2)). For
#    reference, in the same runs: Debian's HAProxy with `option splice-request` and
#    `splice-response`, the established proxy that splices, both ways (skipped when haproxy is
#    not installed); and the download through a second nginx with proxy_pass (buffering off, so
#    it streams): what a proxy that copies through user space reaches here. (No nginx upload
#    reference: the sink answers 204 before reading, and nginx as a proxy then discards the rest
#    of the body instead of forwarding it, which is not comparable.)
# 2. GET /oauth2/auth with a signed-in session (wrk, 2 threads, 32 connections, 10 s): one
#    gateway on the embedded session store, one on Redis (needs redis on 127.0.0.1:6379).
#   bash benches/gateway_stream.sh [RUNS]     (needs curl, wrk, nginx, redis; haproxy optional)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
for tool in curl wrk nginx python3; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
cargo build --release --locked -q
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PN=$(port); PX=$(port); PH=$(port); PG=$(port); PA=$(port); PB=$(port); PE=$(port); PR=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export TURTLEMEN_COOKIE_SECRET="bench-cookie-secret-shared-by-every-role" TURTLEMEN_LOG_LEVEL=warn

# The upstream: nginx with a 1 GiB file, and a location that reads and drops request bodies.
mkdir -p "$work/nginx/files/stream"
head -c $((1024 * 1024 * 1024)) /dev/urandom > "$work/nginx/files/stream/1g.bin"
# The work dir is private (0700): nginx's workers run as the same user as this script.
cat > "$work/nginx/nginx.conf" <<CONF
user $(id -un);
worker_processes 1;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$PN;
    root $work/nginx/files;
    location = /stream/upload { client_body_buffer_size 1m; return 204; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' & pids+=($!)
mkdir -p "$work/proxy"
cat > "$work/proxy/nginx.conf" <<CONF
user $(id -un);
worker_processes 1;
error_log $work/proxy/error.log;
pid $work/proxy/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_max_body_size 0;
  upstream files { server 127.0.0.1:$PN; keepalive 8; }
  server {
    listen 127.0.0.1:$PX;
    location / {
      proxy_pass http://files; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; proxy_buffer_size 256k; proxy_buffers 4 256k; proxy_busy_buffers_size 256k;
    }
  }
}
CONF
nginx -c "$work/proxy/nginx.conf" -p "$work/proxy" -g 'daemon off;' & pids+=($!)
if command -v haproxy >/dev/null; then
  cat > "$work/haproxy.cfg" <<CONF
global
  maxconn 256
  tune.pipesize 1048576
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option splice-request
  option splice-response
frontend bench
  bind 127.0.0.1:$PH
  default_backend files
backend files
  server files 127.0.0.1:$PN
CONF
  haproxy -f "$work/haproxy.cfg" -db & pids+=($!)
else
  PH=""
fi

cat > "$work/gateway.toml" <<CONF
[[routes]]
name = "stream"
path = "/stream"
upstream = "files"
auth = "none"
max_body_bytes = 2147483648
timeout_secs = 0

[upstreams.files]
urls = ["http://127.0.0.1:$PN"]
CONF
"$bin" gateway --config "$work/gateway.toml" --listen "127.0.0.1:$PG" --data-dir "$work/gw" \
  --public-url "http://127.0.0.1:$PG" --upstream-auth "http://127.0.0.1:$PN" --upstream-api "http://127.0.0.1:$PN" & gw=$!; pids+=($gw)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$PG/healthz" >/dev/null 2>&1 && curl -fs -o /dev/null "http://127.0.0.1:$PN/stream/1g.bin" -r 0-0 && break; sleep 0.05; done
curl -fs -o /dev/null "http://127.0.0.1:$PN/stream/1g.bin" -r 0-0 || { echo "nginx cannot serve the file: $(tail -1 "$work/nginx/error.log")" >&2; exit 1; }

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
down() { curl -fs -o /dev/null -w '%{speed_download}' "$1"; }
up() { curl -fs -o /dev/null -w '%{speed_upload}' -X POST -H 'content-type: application/octet-stream' -T "$work/nginx/files/stream/1g.bin" "$1"; }
# Warm up (the page cache holds the file from now on), then measure.
down "http://127.0.0.1:$PN/stream/1g.bin" >/dev/null; down "http://127.0.0.1:$PG/stream/1g.bin" >/dev/null
down "http://127.0.0.1:$PX/stream/1g.bin" >/dev/null
[ -z "$PH" ] || down "http://127.0.0.1:$PH/stream/1g.bin" >/dev/null
hwm_before=$(hwm $gw)
results=$(for i in $(seq 1 "$runs"); do
  echo "download-direct $(down "http://127.0.0.1:$PN/stream/1g.bin")"
  echo "download-gateway $(down "http://127.0.0.1:$PG/stream/1g.bin")"
  echo "upload-direct $(up "http://127.0.0.1:$PN/stream/upload")"
  echo "upload-gateway $(up "http://127.0.0.1:$PG/stream/upload")"
  echo "download-nginx $(down "http://127.0.0.1:$PX/stream/1g.bin")"
  if [ -n "$PH" ]; then
    echo "download-haproxy $(down "http://127.0.0.1:$PH/stream/1g.bin")"
    echo "upload-haproxy $(up "http://127.0.0.1:$PH/stream/upload")"
  fi
done)
hwm_after=$(hwm $gw)
echo "$results" | awk '{printf "%-17s %8.1f MiB/s\n", $1, $2/1048576}'
median() { echo "$results" | awk -v n="$1" '$1==n {print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "-- medians over $runs runs of 1 GiB"
for dir in download upload; do
  d=$(median "$dir-direct"); g=$(median "$dir-gateway"); x=$(median "$dir-nginx"); h=$(median "$dir-haproxy")
  awk -v dir="$dir" -v d="$d" -v g="$g" -v x="$x" -v h="$h" 'BEGIN {printf "%-8s direct %8.1f MiB/s  gateway %8.1f MiB/s  ratio %.2f", dir, d/1048576, g/1048576, g/d;
    if (h != "") printf "  (haproxy splicing %.1f MiB/s, ratio %.2f)", h/1048576, h/d;
    if (x != "") printf "  (nginx proxy %.1f MiB/s, ratio %.2f)", x/1048576, x/d; printf "\n"}'
done
echo "gateway VmHWM before ${hwm_before} KiB, after ${hwm_after} KiB, growth $(( (hwm_after - hwm_before) / 1024 )) MiB"

# 2. Forward auth with a session, embedded store vs Redis.
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "redis is not running on 127.0.0.1:6379; skipping /oauth2/auth" >&2; exit 0; }
"$bin" auth --listen "127.0.0.1:$PA" --data-dir "$work/data" --public-url "http://127.0.0.1:$PE" & pids+=($!)
until curl -fs "http://127.0.0.1:$PA/healthz" >/dev/null 2>&1; do sleep 0.05; done
"$bin" api --listen "127.0.0.1:$PB" --data-dir "$work/data" --upstream-auth "http://127.0.0.1:$PA" --public-url "http://127.0.0.1:$PE" & pids+=($!)
echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin --data-dir "$work/data" >/dev/null
# Both gateways share one public URL (the issuer's); each is reached at its own port.
"$bin" gateway --listen "127.0.0.1:$PE" --data-dir "$work/gw-embedded" --public-url "http://127.0.0.1:$PE" \
  --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" & pids+=($!)
"$bin" gateway --listen "127.0.0.1:$PR" --data-dir "$work/gw-redis" --public-url "http://127.0.0.1:$PE" \
  --session-url "redis://127.0.0.1:6379" --upstream-auth "http://127.0.0.1:$PA" --upstream-api "http://127.0.0.1:$PB" & pids+=($!)
until curl -fs "http://127.0.0.1:$PB/healthz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$PE/healthz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$PR/healthz" >/dev/null 2>&1; do sleep 0.05; done
sign_in() { # port → session cookie value
python3 - "$1" <<'PY'
import html, re, sys, urllib.parse, urllib.request, http.cookiejar
base = f"http://127.0.0.1:{sys.argv[1]}"
jar = http.cookiejar.CookieJar()
class Rewrite(urllib.request.HTTPRedirectHandler):
    # The issuer sends the browser back to the public URL: keep it on this gateway.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        u = urllib.parse.urlsplit(newurl)
        newurl = urllib.parse.urlunsplit(("http", f"127.0.0.1:{sys.argv[1]}", u.path, u.query, u.fragment))
        return super().redirect_request(req, fp, code, msg, headers, newurl)
op = urllib.request.build_opener(Rewrite, urllib.request.HTTPCookieProcessor(jar))
page = op.open(base + "/oauth2/start?rd=/").read().decode()
field = lambda n: html.unescape(re.search(rf'name="{n}" value="([^"]*)"', page).group(1))
form = urllib.parse.urlencode({"csrf": field("csrf"), "return_to": field("return_to"),
                               "username": "bench", "password": "correct horse battery staple"}).encode()
op.open(base + "/auth/login", form).read()
print(next(c.value for c in jar if c.name == "turtlemen_session"))
PY
}
ce=$(sign_in "$PE"); cr=$(sign_in "$PR")
for name in embedded redis; do
  if [ $name = embedded ]; then p=$PE; c=$ce; else p=$PR; c=$cr; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: turtlemen_session=$c" "http://127.0.0.1:$p/oauth2/auth")
  [ "$code" = 202 ] || { echo "forward auth on the $name gateway answered $code" >&2; exit 1; }
  wrk -t2 -c32 -d2s -H "cookie: turtlemen_session=$c" "http://127.0.0.1:$p/oauth2/auth" >/dev/null
done
fwd=$(for i in $(seq 1 "$runs"); do
  for name in embedded redis; do
    if [ $name = embedded ]; then p=$PE; c=$ce; else p=$PR; c=$cr; fi
    out=$(wrk -t2 -c32 -d10s --latency -H "cookie: turtlemen_session=$c" "http://127.0.0.1:$p/oauth2/auth")
    echo "fwd-auth-$name $(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
  done
done)
echo "$fwd" | awk '{printf "%-17s %10s req/s  p99 %s\n", $1, $2, $3}'
echo "-- medians over $runs runs"
for name in fwd-auth-embedded fwd-auth-redis; do
  echo "$fwd" | awk -v n="$name" '$1==n {print $2}' | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-17s %10.0f req/s\n", n, a[int((NR+1)/2)]}'
done
