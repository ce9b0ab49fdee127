#!/usr/bin/env bash
# `make bench`, the agent's ArgusAI credential (issue 14 §3): ArgusAI's event list (`GET
# /api/v1/events?limit=20`, ~64 KB), against the stand-in backend with ArgusAI's measured costs
# (`--like-argusai`: the list answered in 14 ms with a JWT, overlapping as in ArgusAI's thread pool;
# an `X-API-Key` check 250 ms during which the backend answers nothing else), four ways in one run:
#
#   direct-jwt     straight to the backend with a user JWT (the baseline: what a phone on the
#                  backend itself would get)
#   agent-session  through the agent's tunnel listener (edge-signed, device token), the agent
#                  sending its ArgusAI user session (`argus-relay backend login`)
#   direct-key     straight to the backend with an API key
#   agent-key      through an agent configured the old way, with the API key only
#
# each for one phone (1 connection: the latency the agent adds) and for 16 concurrent phones
# (throughput). Every request of a run is identical for its targets (loadgen signs every one like
# the Worker); the JWT rides in the `access_token` cookie, which ArgusAI reads before Bearer and the
# agent strips (it sends its own session). Prints Markdown tables against direct-jwt, then the
# added p50/p99 and the throughput ratios. Targets (docs/benchmarks.md): added p50 <= 2 ms at the
# agent on loopback; throughput through the agent >= 90 % of direct-jwt.
#
# Knobs: BENCH_SESSION_DURATION (10 s per target, session runs), BENCH_SESSION_KEY_DURATION (8 s,
# API-key runs: ~4 answers a second whatever the load), BENCH_SESSION_ROUNDS (5), BENCH_SESSION_PHONES (16).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

DURATION=${BENCH_SESSION_DURATION:-10}
KEY_DURATION=${BENCH_SESSION_KEY_DURATION:-8}
ROUNDS=${BENCH_SESSION_ROUNDS:-5}
PHONES=${BENCH_SESSION_PHONES:-16}
TARGET_PATH=/api/v1/events?limit=20
KEY="bench-session-key-0123456789"
USER_NAME=admin
USER_PASSWORD=standin-admin-password
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/release"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "release build: argus-relay, stand-in-backend, loadgen"
cargo build --release -p origin-agent --bin argus-relay -p e2e-tests --bin stand-in-backend --bin loadgen

work=$(mktemp -d /tmp/argus-bench-session.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_line() {
  for _ in $(seq 200); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for /$2/ in $1:" >&2; cat "$1" >&2; return 1
}

step "starting the stand-in backend with ArgusAI's costs"
"$BIN/stand-in-backend" --listen 127.0.0.1:0 --api-key "$KEY" --like-argusai --no-record \
  >"$work/backend.log" 2>&1 &
pids+=("$!")
BACKEND=$(wait_line "$work/backend.log" 'listening on' | grep -oE 'http://[0-9.:]+')

# A user JWT for the direct runs, as ArgusAI's login gives it.
JWT=$(curl -sf -X POST "$BACKEND/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$USER_NAME\",\"password\":\"$USER_PASSWORD\"}" \
  | grep -oE '"access_token":"[^"]+"' | cut -d'"' -f4)
[ -n "$JWT" ] || { echo "login to the stand-in failed" >&2; exit 1; }

# start_agent NAME [init args...]: sets TUNNEL, ADMIN, SECRET, CONFIG.
start_agent() {
  local name=$1; shift
  CONFIG="$work/$name/config.toml"
  "$BIN/argus-relay" init --data-dir "$work/$name/data" --config "$CONFIG" \
    --public-url https://relay.bench --backend-url "$BACKEND" "$@" >/dev/null </dev/null
  "$BIN/argus-relay" run --config "$CONFIG" \
    --tunnel-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  local ready
  ready=$(wait_line "$work/$name.out" '"listening"')
  TUNNEL=$(echo "$ready" | grep -oE '"tunnel":"[0-9.:]+"' | cut -d'"' -f4)
  ADMIN=$(echo "$ready" | grep -oE '"admin":"[0-9.:]+"' | cut -d'"' -f4)
  SECRET=$("$BIN/argus-relay" worker-config --json --config "$CONFIG" \
    | grep -oE '"RELAY_SIGNING_SECRET": *"[0-9a-f]+"' | grep -oE '[0-9a-f]{64}')
}
pair_code() {
  ARGUS_RELAY_ADMIN_URL="http://$1" "$BIN/argus-relay" pair --no-wait --json --scope viewer \
    --config "$2" | grep -oE '"code": *"[A-Z0-9]+"' | cut -d'"' -f4
}

step "an agent signed in with a user session, and one with the API key only"
start_agent session
printf '%s\n' "$USER_PASSWORD" | "$BIN/argus-relay" backend login --config "$CONFIG" \
  --username "$USER_NAME" --password-file - >/dev/null
S_TUNNEL=$TUNNEL S_ADMIN=$ADMIN S_SECRET=$SECRET S_CONFIG=$CONFIG
for _ in $(seq 100); do   # the running agent takes the new session up within ~2 s
  state=$(ARGUS_RELAY_ADMIN_URL="http://$S_ADMIN" "$BIN/argus-relay" status --json \
    --config "$S_CONFIG" || true)
  case "$state" in *'"state": "active"'* | *'"state":"active"'*) break ;; esac
  sleep 0.1
done
start_agent key --backend-api-key "$KEY"
K_TUNNEL=$TUNNEL K_ADMIN=$ADMIN K_SECRET=$SECRET K_CONFIG=$CONFIG

# session CONNS FILE-SUFFIX WARMUP / key CONNS FILE-SUFFIX WARMUP
session() {
  "$BIN/loadgen" --target "direct-jwt-$1=$BACKEND$TARGET_PATH" \
    --target "agent-session-$1=http://$S_TUNNEL$TARGET_PATH" \
    --connections "$1" --duration "$DURATION" --warmup "$3" --rounds "$ROUNDS" \
    --secret "$S_SECRET" --header "cookie:access_token=$JWT" \
    --pair-code "$(pair_code "$S_ADMIN" "$S_CONFIG")" --pair-url "http://$S_TUNNEL" \
    | tee "$work/session$2.json"
}
key() {
  "$BIN/loadgen" --target "direct-key-$1=$BACKEND$TARGET_PATH" \
    --target "agent-key-$1=http://$K_TUNNEL$TARGET_PATH" \
    --connections "$1" --duration "$KEY_DURATION" --warmup "$3" --rounds 2 \
    --secret "$K_SECRET" --header "x-api-key:$KEY" \
    --pair-code "$(pair_code "$K_ADMIN" "$K_CONFIG")" --pair-url "http://$K_TUNNEL" \
    | tee "$work/key$2.json"
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
step "one phone (1 connection), with a JWT/session: $ROUNDS rounds, ${DURATION} s per target"
session 1 -1 1
step "$PHONES phones, with a JWT/session"
session "$PHONES" "-$PHONES" 2
step "one phone, with the API key (the old way): ${KEY_DURATION} s per target"
key 1 -1 1
step "$PHONES phones, with the API key"
key "$PHONES" "-$PHONES" 2
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

printf '\n### The agent'"'"'s credential: event list (%s), %s cores, %s; load average %s at the start, %s at the end\n' \
  "$TARGET_PATH" "$(nproc)" "$(date -u +%Y-%m-%d)" "$load_start" "$load_end"
printf '\nOne phone (1 connection):\n\n'
"$BIN/loadgen" compare "$work/session-1.json" "$work/key-1.json"
printf '\n%s phones (%s connections):\n\n' "$PHONES" "$PHONES"
"$BIN/loadgen" compare "$work/session-$PHONES.json" "$work/key-$PHONES.json"

# The figures the targets are about.
summary() {
  python3 - "$@" <<'EOF'
import json, sys
runs = {}
for f in sys.argv[2:]:
    for line in open(f):
        if line.startswith('{'):
            r = json.loads(line)
            runs[r["label"].rsplit("-", 1)[0]] = r
d, a, k = runs["direct-jwt"], runs["agent-session"], runs["agent-key"]
print(f"{sys.argv[1]}: agent-session adds p50 {a['p50_ms'] - d['p50_ms']:+.2f} ms, "
      f"p99 {a['p99_ms'] - d['p99_ms']:+.2f} ms to direct-jwt; throughput "
      f"{a['rps'] / max(d['rps'], 1e-9) * 100:.1f} % of direct-jwt, "
      f"{a['rps'] / max(k['rps'], 1e-9):.0f}x the API-key agent's "
      f"(p50 {a['p50_ms']:.1f} ms vs {k['p50_ms']:.0f} ms)")
EOF
}
echo
summary "one phone" "$work/session-1.json" "$work/key-1.json"
summary "$PHONES phones" "$work/session-$PHONES.json" "$work/key-$PHONES.json"
