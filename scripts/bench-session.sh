#!/usr/bin/env bash
# `make bench`, the agent's ArgusAI credential (issue 14 §3): ArgusAI's event list (`GET
# /api/v1/events?limit=20`, ~64 KB), against the stand-in backend with ArgusAI's measured costs
# (`--like-argusai`: the list answered in 14 ms with a JWT, overlapping as in ArgusAI's thread pool;
# an `X-API-Key` check 250 ms during which the backend answers nothing else), six ways in one run:
#
#   direct-jwt     straight to the backend with a user JWT (the baseline: what a phone on the
#                  backend itself would get)
#   agent-session  through the agent's tunnel listener (edge-signed, device token), the agent
#                  sending its ArgusAI user session (`argus-relay backend login`)
#   worker-agent   through the real Worker under `wrangler dev` (workerd, on this machine) in front
#                  of that agent: the phone's device token checked and the request signed by the
#                  Worker, as a phone away from home is served
#   passthrough-agent  the same through a pass-through Worker (tests/bench/passthrough.mjs: the
#                  request forwarded as it is, no checks) under the same `wrangler dev`: what the
#                  local workerd and the extra hop cost, so that worker-agent minus this is the
#                  Worker's own work
#   direct-key     straight to the backend with an API key
#   agent-key      through an agent configured the old way, with the API key only
#
# each for one phone (1 connection: the latency added) and for 16 concurrent phones (throughput).
# Every request of a run is identical for its targets (loadgen signs every one like the Worker; the
# Worker drops those headers and signs its own); the JWT rides in the `access_token` cookie, which
# ArgusAI reads before Bearer and the Worker and the agent strip (the agent sends its own session).
# Prints Markdown tables against direct-jwt, then the added p50/p99 and the throughput ratios.
# Targets (docs/benchmarks.md): added p50 <= 2 ms at the agent on loopback; throughput through the
# agent >= 90 % of direct-jwt.
#
# Knobs: BENCH_SESSION_DURATION (10 s per target, session runs), BENCH_SESSION_KEY_DURATION (8 s,
# API-key runs: ~4 answers a second whatever the load), BENCH_SESSION_ROUNDS (5), BENCH_SESSION_PHONES (16),
# BENCH_SESSION_BUILD_WORKER (1; 0 runs the Worker already built in edge-worker/build as it is).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

DURATION=${BENCH_SESSION_DURATION:-10}
KEY_DURATION=${BENCH_SESSION_KEY_DURATION:-8}
ROUNDS=${BENCH_SESSION_ROUNDS:-5}
PHONES=${BENCH_SESSION_PHONES:-16}
TARGET_PATH=/api/v1/events?limit=20
KEY="bench-session-key-0123456789"

build_release
if [ "${BENCH_SESSION_BUILD_WORKER:-1}" = 1 ]; then
  step "the Worker (scripts/build-worker.sh)"
  bash scripts/build-worker.sh >/dev/null
fi

step "starting the stand-in backend with ArgusAI's costs"
start_backend --api-key "$KEY" --like-argusai

# A user JWT for the direct runs, as ArgusAI's login gives it.
JWT=$(curl -sf -X POST "$BACKEND/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$STANDIN_USER\",\"password\":\"$STANDIN_PASSWORD\"}" \
  | grep -oE '"access_token":"[^"]+"' | cut -d'"' -f4)
[ -n "$JWT" ] || { echo "login to the stand-in failed" >&2; exit 1; }

step "an agent signed in with a user session, the Worker and a pass-through Worker in front of it, an agent with the API key only"
init_agent session
login_agent
run_agent session
S_TUNNEL=$AGENT_TUNNEL S_ADMIN=$AGENT_ADMIN S_SECRET=$AGENT_SECRET S_CONFIG=$AGENT_CONFIG
start_worker worker
W_WORKER=$WORKER
start_worker passthrough "$ROOT/tests/bench/passthrough.mjs"
P_WORKER=$WORKER
init_agent key --backend-api-key "$KEY"
run_agent key
K_TUNNEL=$AGENT_TUNNEL K_ADMIN=$AGENT_ADMIN K_SECRET=$AGENT_SECRET K_CONFIG=$AGENT_CONFIG

# session CONNS FILE-SUFFIX WARMUP / key CONNS FILE-SUFFIX WARMUP
session() {
  "$BIN/loadgen" --target "direct-jwt-$1=$BACKEND$TARGET_PATH" \
    --target "agent-session-$1=http://$S_TUNNEL$TARGET_PATH" \
    --target "worker-agent-$1=http://$W_WORKER$TARGET_PATH" \
    --target "passthrough-agent-$1=http://$P_WORKER$TARGET_PATH" \
    --connections "$1" --duration "$DURATION" --warmup "$3" --rounds "$ROUNDS" \
    --secret "$S_SECRET" --header "cookie:access_token=$JWT" --header "mf-cf-blob:$CF_BLOB" \
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
load_start=$(loadavg)
step "one phone (1 connection), with a JWT/session: $ROUNDS rounds, ${DURATION} s per target"
session 1 -1 1
step "$PHONES phones, with a JWT/session"
session "$PHONES" "-$PHONES" 2
step "one phone, with the API key (the old way): ${KEY_DURATION} s per target"
key 1 -1 1
step "$PHONES phones, with the API key"
key "$PHONES" "-$PHONES" 2
load_end=$(loadavg)

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
d, a, w, k = runs["direct-jwt"], runs["agent-session"], runs["worker-agent"], runs["agent-key"]
p = runs["passthrough-agent"]
ratio = lambda x, y: x['rps'] / max(y['rps'], 1e-9)
print(f"{sys.argv[1]}: agent-session adds p50 {a['p50_ms'] - d['p50_ms']:+.2f} ms, "
      f"p99 {a['p99_ms'] - d['p99_ms']:+.2f} ms to direct-jwt; throughput "
      f"{ratio(a, d) * 100:.1f} % of direct-jwt, "
      f"{ratio(a, k):.0f}x the API-key agent's "
      f"(p50 {a['p50_ms']:.1f} ms vs {k['p50_ms']:.0f} ms)")
print(f"{sys.argv[1]}: worker-agent adds p50 {w['p50_ms'] - d['p50_ms']:+.2f} ms, "
      f"p99 {w['p99_ms'] - d['p99_ms']:+.2f} ms to direct-jwt; throughput "
      f"{ratio(w, d) * 100:.1f} % of direct-jwt "
      f"(over agent-session: p50 {w['p50_ms'] - a['p50_ms']:+.2f} ms, "
      f"throughput {ratio(w, a) * 100:.1f} %; over the pass-through Worker (wrangler dev alike): "
      f"p50 {w['p50_ms'] - p['p50_ms']:+.2f} ms, throughput {ratio(w, p) * 100:.1f} %)")
EOF
}
echo
summary "one phone" "$work/session-1.json" "$work/key-1.json"
summary "$PHONES phones" "$work/session-$PHONES.json" "$work/key-$PHONES.json"
