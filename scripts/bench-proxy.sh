#!/usr/bin/env bash
# `make bench`, proxy part: the stand-in ArgusAI backend straight, through nginx (Debian's package,
# a plain reverse proxy) and through the agent's tunnel listener (every request edge-signed and
# carrying a device token, as the Worker forwards them), all on loopback, measured by the same
# load generator (tests/src/bin/loadgen.rs) in one run: saturated (64 connections each: throughput),
# then light (1 connection each: latency added per request). Then the agent's memory with 1,000
# concurrent keep-alive connections. Prints Markdown tables; ratios are against the direct run.
#
# Knobs: BENCH_CONNECTIONS (64), BENCH_DURATION (10 s per target), BENCH_ROUNDS (5),
# BENCH_TARGET (/api/v1/events?limit=1), BENCH_BIG_CONNECTIONS (1000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

CONNS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=2
ROUNDS=${BENCH_ROUNDS:-5}
BIG=${BENCH_BIG_CONNECTIONS:-1000}
TARGET_PATH=${BENCH_TARGET:-/api/v1/events?limit=1}
KEY="bench-backend-key-0123456789"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/release"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# nginx from Debian, once.
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  step "installing nginx (Debian package nginx-light)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y nginx-light >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y nginx-light >/dev/null; }
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

step "release build: argus-relay, stand-in-backend, loadgen"
cargo build --release -p origin-agent --bin argus-relay -p e2e-tests --bin stand-in-backend --bin loadgen

work=$(mktemp -d /tmp/argus-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits up to 20 s for a line matching $2 in file $1, prints it.
wait_line() {
  for _ in $(seq 200); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for /$2/ in $1:" >&2; cat "$1" >&2; return 1
}
free_port() {
  for p in $(seq 18080 18999); do
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

step "starting the stand-in backend, the agent and nginx"
"$BIN/stand-in-backend" --listen 127.0.0.1:0 --api-key "$KEY" --no-record >"$work/backend.log" 2>&1 &
pids+=($!)
BACKEND=$(wait_line "$work/backend.log" 'listening on' | grep -oE 'http://[0-9.:]+')
BACKEND_PORT=${BACKEND##*:}

"$BIN/argus-relay" init --data-dir "$work/agent/data" --config "$work/agent/config.toml" \
  --public-url https://relay.bench --backend-url "$BACKEND" --backend-api-key "$KEY" >/dev/null
# Room for the 1,000-connection run.
sed -i 's/^max_connections = .*/max_connections = 4096/' "$work/agent/config.toml"
"$BIN/argus-relay" run --config "$work/agent/config.toml" \
  --tunnel-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/agent.out" 2>"$work/agent.log" &
AGENT_PID=$!
pids+=("$AGENT_PID")
ready=$(wait_line "$work/agent.out" '"listening"')
TUNNEL=$(echo "$ready" | grep -oE '"tunnel":"[0-9.:]+"' | cut -d'"' -f4)
ADMIN=$(echo "$ready" | grep -oE '"admin":"[0-9.:]+"' | cut -d'"' -f4)
SECRET=$("$BIN/argus-relay" worker-config --json --config "$work/agent/config.toml" \
  | grep -oE '"RELAY_SIGNING_SECRET": *"[0-9a-f]+"' | grep -oE '[0-9a-f]{64}')
owner_code() {
  ARGUS_RELAY_ADMIN_URL="http://$ADMIN" "$BIN/argus-relay" pair --no-wait --json --scope viewer \
    --config "$work/agent/config.toml" | grep -oE '"code": *"[A-Z0-9]+"' | cut -d'"' -f4
}

NGINX_PORT=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream argusai { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://argusai;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
EOF
"$NGINX" -c "$work/nginx.conf" -p "$work/nginx"
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done

# One load generator, the three targets taking turns in $ROUNDS slices (so the machine's background
# load hits them alike), every request identical: signed like the Worker, with a device token and
# the backend key (the agent strips both client credentials and sends its own key).
common=(--secret "$SECRET" --header "x-api-key:$KEY")
step "direct vs nginx vs agent: $CONNS connections each, $ROUNDS rounds, ${DURATION} s per target"
"$BIN/loadgen" --target "direct=$BACKEND$TARGET_PATH" \
  --target "nginx=http://127.0.0.1:$NGINX_PORT$TARGET_PATH" \
  --target "agent=http://$TUNNEL$TARGET_PATH" \
  --connections "$CONNS" --duration "$DURATION" --warmup "$WARMUP" --rounds "$ROUNDS" \
  "${common[@]}" --pair-code "$(owner_code)" --pair-url "http://$TUNNEL" | tee "$work/runs.json"
step "the same, light load: 1 connection each (latency added per request)"
"$BIN/loadgen" --target "direct-1=$BACKEND$TARGET_PATH" \
  --target "nginx-1=http://127.0.0.1:$NGINX_PORT$TARGET_PATH" \
  --target "agent-1=http://$TUNNEL$TARGET_PATH" \
  --connections 1 --duration "$DURATION" --warmup 1 --rounds "$ROUNDS" \
  "${common[@]}" --pair-code "$(owner_code)" --pair-url "http://$TUNNEL" | tee "$work/light.json"
idle_rss=$(grep VmRSS "/proc/$AGENT_PID/status" | grep -oE '[0-9]+')
step "the agent with $BIG concurrent keep-alive connections"
"$BIN/loadgen" --target "agent-$BIG=http://$TUNNEL$TARGET_PATH" --connections "$BIG" \
  --duration "$DURATION" --warmup "$WARMUP" "${common[@]}" --pair-code "$(owner_code)" \
  --rss-pid "$AGENT_PID" --hold 3 | tee "$work/big.json"

printf '\n### Proxy: GET %s, %s s per target in %s rounds, %s cores, %s\n\n' \
  "$TARGET_PATH" "$DURATION" "$ROUNDS" "$(nproc)" "$(date -u +%Y-%m-%d)"
"$BIN/loadgen" compare "$work/runs.json" "$work/big.json"
printf '\n'
"$BIN/loadgen" compare "$work/light.json"
peak=$(grep -oE '"rss_peak_kib":[0-9]+' "$work/big.json" | cut -d: -f2)
hold=$(grep -oE '"rss_hold_kib":[0-9]+' "$work/big.json" | cut -d: -f2)
printf '\nagent RSS: %s KiB idle; %s KiB peak under load with %s connections; %s KiB with the %s connections open and idle\n' \
  "$idle_rss" "$peak" "$BIG" "$hold" "$BIG"
