#!/usr/bin/env bash
# Token-endpoint refreshes and userinfo requests per second, on SQLite + the embedded session
# store and on PostgreSQL + Redis, the auth service run alone (release build).
#
# Signs one user in, runs the authorization-code flow (PKCE) once per wrk connection to get one
# refresh-token family each, then:
#   refresh   POST /auth/token grant_type=refresh_token, each connection presenting the refresh
#             token its last answer rotated to (benches/auth_refresh.lua), CONNS connections,
#             one request in flight per family (a reused token would revoke the family, and
#             shows up as non-2xx answers);
#   userinfo  GET /auth/userinfo with one access token, 2 threads, 32 connections.
# 10 s each after a 3 s warm-up; prints requests/s, p99 latency and failed answers.
#   bash benches/auth_tokens.sh [CONNS]    (needs wrk; PostgreSQL and Redis as in DESIGN.md)
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-8}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -q --bin turtlemen
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/turtlemen"
pg_base="${TURTLEMEN_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
redis="${TURTLEMEN_BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
work=$(mktemp -d)
pid=""
schema="bench_$$"
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql "$pg_base" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Signs in, then runs one code flow (PKCE) per connection: refresh tokens to FILE, one access
# token on stdout.   mint.py PORT N FILE
cat > "$work/mint.py" <<'PY'
import base64, hashlib, html, json, re, secrets, sys, urllib.parse, urllib.request, http.cookiejar
base, n, out = f"http://127.0.0.1:{sys.argv[1]}/auth", int(sys.argv[2]), sys.argv[3]
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
page = op.open(base + "/login").read().decode()
csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
try:
    op.open(base + "/login", urllib.parse.urlencode({"csrf": csrf, "username": "bench", "password": "correct horse battery staple", "return_to": "/"}).encode())
except urllib.error.HTTPError as e:
    assert e.code == 303, e.code
refresh, access = [], None
for _ in range(n):
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": "bench", "redirect_uri": "http://127.0.0.1:9/cb",
        "scope": "openid profile email offline_access", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    try:
        op.open(f"{base}/authorize?{q}")
        raise SystemExit("no redirect from /authorize")
    except urllib.error.HTTPError as e:
        code = urllib.parse.parse_qs(urllib.parse.urlparse(e.headers["location"]).query)["code"][0]
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb",
        "code_verifier": verifier, "client_id": "bench"}).encode()
    t = json.load(urllib.request.urlopen(base + "/token", body))
    refresh.append(t["refresh_token"]); access = t["access_token"]
open(out, "w").write("\n".join(refresh) + "\n")
print(access)
PY
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_stack() { # name [database_url session_url]
  local name=$1 data="$work/$1" p
  p=$(port)
  export TURTLEMEN_PUBLIC_URL="http://127.0.0.1:$p" TURTLEMEN_LOG_LEVEL=warn TURTLEMEN_DATA_DIR="$data"
  unset TURTLEMEN_DATABASE_URL TURTLEMEN_SESSION_URL
  if [ -n "${2:-}" ]; then
    export TURTLEMEN_DATABASE_URL="$2" TURTLEMEN_SESSION_URL="$3"
    "$bin" migrate >/dev/null
  fi
  echo "correct horse battery staple" | "$bin" admin create-user --username bench --email bench@example.org --password-stdin >/dev/null
  "$bin" admin create-client --client-id bench --public --first-party --redirect-uri http://127.0.0.1:9/cb >/dev/null
  "$bin" auth --listen "127.0.0.1:$p" & pid=$!
  until curl -fs "http://127.0.0.1:$p/healthz" >/dev/null 2>&1; do sleep 0.05; done

  mint() { python3 "$work/mint.py" "$p" "$conns" "$work/tokens" > "$work/access"; }
  mint
  local access; access=$(cat "$work/access")
  load() { # label wrk-args…
    local label=$1; shift
    local out rps p99 bad
    out=$(wrk "$@")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    printf '%-10s %-9s %10s req/s  p99 %8s  failed %s\n' "$name" "$label" "$rps" "$p99" "${bad:-0}"
  }
  export TOKENS="$work/tokens"
  wrk -t"$conns" -c"$conns" -d3s -s benches/auth_refresh.lua "http://127.0.0.1:$p/auth/token" >/dev/null
  mint # the warm-up rotated the tokens: fresh families for the measured run
  load refresh -t"$conns" -c"$conns" -d10s --latency -s benches/auth_refresh.lua "http://127.0.0.1:$p/auth/token"
  wrk -t2 -c32 -d3s -H "authorization: Bearer $access" "http://127.0.0.1:$p/auth/userinfo" >/dev/null
  load userinfo -t2 -c32 -d10s --latency -H "authorization: Bearer $access" "http://127.0.0.1:$p/auth/userinfo"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=""
}

run_stack sqlite
psql "$pg_base" -qc "CREATE SCHEMA $schema" >/dev/null
sep='?'; case "$pg_base" in *\?*) sep='&';; esac
run_stack postgres "${pg_base}${sep}options[search_path]=$schema" "$redis"
