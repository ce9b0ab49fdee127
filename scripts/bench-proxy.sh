#!/usr/bin/env bash
# `make bench`, proxy part: the stand-in ArgusAI backend straight, through nginx (Debian's package,
# a plain reverse proxy) and through the agent's tunnel listener (every request edge-signed and
# carrying a device token, as the Worker forwards them), all on loopback, measured by the same
# load generator (tests/src/bin/loadgen.rs) in one run, for two requests: a tiny one
# (`/api/v1/events?limit=1`, ~3 KB answer) and an ArgusAI-shaped one (`/api/v1/events?limit=20`,
# the app's event list: ~64 KB of JSON). For each: saturated (64 connections per target:
# throughput) and light (1 connection: the latency a proxy adds per request). Then the agent's
# memory with 1,000 concurrent keep-alive connections, after the runs above, and that of a second,
# fresh agent driven straight to 1,000 connections. Then the tiny request again, saturated,
# with the processes pinned (taskset): load generator and backend on CPU 0, the proxy under test
# on CPU 1 — the proxy's CPU no longer taken from the backend's, as on a machine with a core to
# spare. Prints Markdown tables; ratios are against the direct run of the same table (and nginx).
#
# Knobs: BENCH_CONNECTIONS (64), BENCH_DURATION (10 s per target), BENCH_ROUNDS (5),
# BENCH_TARGET (/api/v1/events?limit=1), BENCH_REAL_TARGET (/api/v1/events?limit=20),
# BENCH_BIG_CONNECTIONS (1000), BENCH_PIN (1; 0 skips the pinned run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

CONNS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=2
ROUNDS=${BENCH_ROUNDS:-5}
BIG=${BENCH_BIG_CONNECTIONS:-1000}
TARGET_PATH=${BENCH_TARGET:-/api/v1/events?limit=1}
REAL_PATH=${BENCH_REAL_TARGET:-/api/v1/events?limit=20}
PIN=${BENCH_PIN:-1}
KEY="bench-backend-key-0123456789"

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

build_release

step "starting the stand-in backend, the agent and nginx"
start_backend --api-key "$KEY"
BACKEND_PORT=${BACKEND##*:}

# Starts an agent signed in to the stand-in, with its data in $work/$1 and room for the
# 1,000-connection run; sets AGENT_* (scripts/bench-lib.sh).
start_agent() {
  init_agent "$1"
  login_agent
  sed -i 's/^max_connections = .*/max_connections = 4096/' "$AGENT_CONFIG"
  run_agent "$1"
}
start_agent agent
MAIN_PID=$AGENT_PID TUNNEL=$AGENT_TUNNEL ADMIN=$AGENT_ADMIN SECRET=$AGENT_SECRET
MAIN_CONFIG=$AGENT_CONFIG
owner_code() { pair_code "$ADMIN" "$MAIN_CONFIG"; }

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
pids+=("$(cat "$work/nginx.pid")")

# One load generator, the three targets taking turns in $ROUNDS slices (so the machine's background
# load hits them alike), every request identical: signed like the Worker, with a device token and
# the backend key (the agent strips both client credentials and sends its own).
common=(--secret "$SECRET" --header "x-api-key:$KEY")
LOADGEN=("$BIN/loadgen")
# three NAME-SUFFIX PATH CONNECTIONS WARMUP: direct, nginx and the agent, in turns.
three() {
  "${LOADGEN[@]}" --target "direct$1=$BACKEND$2" \
    --target "nginx$1=http://127.0.0.1:$NGINX_PORT$2" \
    --target "agent$1=http://$TUNNEL$2" \
    --connections "$3" --duration "$DURATION" --warmup "$4" --rounds "$ROUNDS" \
    "${common[@]}" --pair-code "$(owner_code)" --pair-url "http://$TUNNEL"
}
load_start=$(loadavg)
step "tiny request ($TARGET_PATH): $CONNS connections each, $ROUNDS rounds, ${DURATION} s per target"
three "" "$TARGET_PATH" "$CONNS" "$WARMUP" | tee "$work/runs.json"
step "ArgusAI-shaped request ($REAL_PATH): $CONNS connections each"
three "" "$REAL_PATH" "$CONNS" "$WARMUP" | tee "$work/real.json"
step "light load, 1 connection each (latency added per request): tiny, then ArgusAI-shaped"
three "-1" "$TARGET_PATH" 1 1 | tee "$work/light.json"
three "-1" "$REAL_PATH" 1 1 | tee "$work/light-real.json"
idle_rss=$(grep VmRSS "/proc/$MAIN_PID/status" | grep -oE '[0-9]+')
step "the agent with $BIG concurrent keep-alive connections"
"$BIN/loadgen" --target "agent-$BIG=http://$TUNNEL$TARGET_PATH" --connections "$BIG" \
  --duration "$DURATION" --warmup "$WARMUP" "${common[@]}" --pair-code "$(owner_code)" \
  --rss-pid "$MAIN_PID" --hold 3 | tee "$work/big.json"

# A second agent, fresh (nothing served before), driven straight to $BIG connections: the figure
# without what the runs above leave in the first agent's heap (glibc keeps freed memory) and
# replay cache (nonces of the last minute).
start_agent fresh
FRESH_PID=$AGENT_PID FRESH_TUNNEL=$AGENT_TUNNEL FRESH_SECRET=$AGENT_SECRET
fresh_code=$(pair_code "$AGENT_ADMIN" "$AGENT_CONFIG")
fresh_start_rss=$(grep VmRSS "/proc/$FRESH_PID/status" | grep -oE '[0-9]+')
step "a fresh agent straight to $BIG concurrent keep-alive connections"
"$BIN/loadgen" --target "agent-fresh-$BIG=http://$FRESH_TUNNEL$TARGET_PATH" --connections "$BIG" \
  --duration "$DURATION" --warmup "$WARMUP" --secret "$FRESH_SECRET" --header "x-api-key:$KEY" \
  --pair-code "$fresh_code" --rss-pid "$FRESH_PID" --hold 3 | tee "$work/fresh.json"
kill "$FRESH_PID" 2>/dev/null || true

# Pinned: every thread of a process (taskset -a), nginx's master and workers.
pin() {
  local cpu=$1; shift
  for p in "$@"; do taskset -a -p -c "$cpu" "$p" >/dev/null; done
}
pinned=""
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  nginx_pids=("$(cat "$work/nginx.pid")")
  mapfile -t -O 1 nginx_pids < <(pgrep -P "${nginx_pids[0]}")
  pin 0 "$BACKEND_PID"
  pin 1 "$MAIN_PID" "${nginx_pids[@]}"
  LOADGEN=(taskset -c 0 "$BIN/loadgen")
  step "pinned (load generator and backend on CPU 0, proxy on CPU 1): tiny request"
  three "-pinned" "$TARGET_PATH" "$CONNS" "$WARMUP" | tee "$work/pinned.json"
  pinned=1
  all="0-$(($(nproc) - 1))"
  pin "$all" "$BACKEND_PID" "$MAIN_PID" "${nginx_pids[@]}"
  LOADGEN=("$BIN/loadgen")
fi
load_end=$(loadavg)

printf '\n### Proxy: %s s per target in %s rounds, %s cores, %s; load average %s at the start, %s at the end\n' \
  "$DURATION" "$ROUNDS" "$(nproc)" "$(date -u +%Y-%m-%d)" "$load_start" "$load_end"
printf '\nTiny request, GET %s, saturated:\n\n' "$TARGET_PATH"
"$BIN/loadgen" compare "$work/runs.json" "$work/big.json"
printf '\nArgusAI-shaped request, GET %s, saturated:\n\n' "$REAL_PATH"
"$BIN/loadgen" compare "$work/real.json"
printf '\nLight load (1 connection), tiny request:\n\n'
"$BIN/loadgen" compare "$work/light.json"
printf '\nLight load (1 connection), ArgusAI-shaped request:\n\n'
"$BIN/loadgen" compare "$work/light-real.json"
if [ -n "$pinned" ]; then
  printf '\nPinned (load generator + backend on CPU 0, proxy on CPU 1), tiny request, saturated:\n\n'
  "$BIN/loadgen" compare "$work/pinned.json"
fi
peak=$(grep -oE '"rss_peak_kib":[0-9]+' "$work/big.json" | cut -d: -f2)
hold=$(grep -oE '"rss_hold_kib":[0-9]+' "$work/big.json" | cut -d: -f2)
printf '\nagent RSS: %s KiB idle; %s KiB peak under load with %s connections; %s KiB with the %s connections open and idle\n' \
  "$idle_rss" "$peak" "$BIG" "$hold" "$BIG"
fresh_peak=$(grep -oE '"rss_peak_kib":[0-9]+' "$work/fresh.json" | cut -d: -f2)
fresh_rps=$(grep -oE '"rps":[0-9.]+' "$work/fresh.json" | head -1 | cut -d: -f2)
printf 'fresh agent RSS: %s KiB at start; %s KiB peak under load with %s connections (%.0f req/s), nothing served before\n' \
  "$fresh_start_rss" "$fresh_peak" "$BIG" "$fresh_rps"
