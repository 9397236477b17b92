#!/usr/bin/env bash
# What exporting spans (otlp_endpoint) costs a request: two `turtlemen serve` on SQLite, one
# exporting every request's span to an OTLP/HTTP receiver on loopback (a small Python server
# that reads each export and answers 200), one not; wrk (2 threads, 32 connections, DURATION s
# each, after a warm-up) loads GET /api/v1/bench (a tiny 404 JSON answer) on each in turn, RUNS
# times. Prints requests/s, p99 and the server's CPU time per request (user + system, from
# /proc) per run, the medians, the ratio exporting / not, and what the receiver got.
#   bash benches/otlp.sh            (RUNS=5 DURATION=10 by default; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10}"
. benches/lib.sh

receiver_port=$(port)
cat > "$work/receiver.py" <<'PY'
import http.server, sys, threading
exports = [0, 0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with lock:
            exports[0] += 1
            exports[1] += len(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        with lock:
            text = f"{exports[0]} {exports[1]}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/receiver.py" "$receiver_port" & receiver_pid=$!
until curl -fs "http://127.0.0.1:$receiver_port/" >/dev/null 2>&1; do sleep 0.05; done

args=()
serve "$work/plain"; plain_pid=$pid; plain="$base"
TURTLEMEN_OTLP_ENDPOINT="http://127.0.0.1:$receiver_port" serve "$work/exporting"; exporting_pid=$pid; exporting="$base"
trap 'kill $plain_pid $exporting_pid $receiver_pid 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_ns=$((1000000000 / $(getconf CLK_TCK)))
load() { # name base pid
  local out t0 t1 n rps p99
  t0=$(ticks "$3")
  out=$(wrk -t2 -c32 -d"${DURATION}s" --latency "$2/api/v1/bench")
  t1=$(ticks "$3")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$1 $rps $p99 $(( (t1 - t0) * tick_ns / n / 100 ))"
}
wrk -t2 -c32 -d2s "$plain/api/v1/bench" >/dev/null
wrk -t2 -c32 -d2s "$exporting/api/v1/bench" >/dev/null
results=$(for i in $(seq 1 "$RUNS"); do
  load plain "$plain" "$plain_pid"
  load exporting "$exporting" "$exporting_pid"
done)
echo "$results" | awk '{printf "%-9s %10s req/s  p99 %-8s  CPU/req %5.1f us\n", $1, $2, $3, $4/10}'
echo "-- medians over $RUNS runs"
for name in plain exporting; do
  rps=$(echo "$results" | awk -v n="$name" '$1==n {print $2}' | median)
  cpu=$(echo "$results" | awk -v n="$name" '$1==n {print $4}' | median)
  awk -v n="$name" -v r="$rps" -v c="$cpu" 'BEGIN {printf "%-9s %10.0f req/s  CPU/req %5.1f us\n", n, r, c/10}'
  eval "${name}_rps=$rps ${name}_cpu=$cpu"
done
awk -v a="$exporting_rps" -v b="$plain_rps" -v c="$exporting_cpu" -v d="$plain_cpu" \
  'BEGIN {printf "exporting / plain: %.3f x req/s, %.3f x CPU per request\n", a/b, c/d}'
sleep 2
read -r posts bytes < <(curl -fs "http://127.0.0.1:$receiver_port/")
echo "the receiver got $posts exports, $bytes bytes"
