# Sourced by the benchmark scripts that run the stand-in backend, agents and the Worker on loopback
# (scripts/bench-proxy.sh, scripts/bench-session.sh): the release build, a work directory removed
# on exit with every process started here, and starting the stand-in, agents and the Worker.
# Not a benchmark itself (scripts/bench.sh skips it).
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/release"
# The stand-in's ArgusAI admin (tests/src/backend.rs), as whom agents sign in.
STANDIN_USER=admin
STANDIN_PASSWORD=standin-admin-password

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

build_release() {
  step "release build: argus-relay, stand-in-backend, loadgen"
  cargo build --release -p origin-agent --bin argus-relay -p e2e-tests --bin stand-in-backend --bin loadgen
}

# $work: scratch space for this run. Processes in $pids are killed on exit, process groups in
# $groups (wrangler and its workerd) as a whole.
work=$(mktemp -d "/tmp/argus-$(basename "$0" .sh).XXXXXX")
pids=()
groups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null || true; done
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

# A loopback port nothing listens on (the kernel's choice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_backend [stand-in args...]: sets BACKEND (its URL) and BACKEND_PID.
start_backend() {
  "$BIN/stand-in-backend" --listen 127.0.0.1:0 --no-record "$@" >"$work/backend.log" 2>&1 &
  BACKEND_PID=$!
  pids+=("$BACKEND_PID")
  BACKEND=$(wait_line "$work/backend.log" 'listening on' | grep -oE 'http://[0-9.:]+')
}

# init_agent NAME [init args...]: an agent's configuration and data in $work/NAME, in front of
# $BACKEND; sets AGENT_CONFIG.
init_agent() {
  local name=$1; shift
  AGENT_CONFIG="$work/$name/config.toml"
  "$BIN/argus-relay" init --data-dir "$work/$name/data" --config "$AGENT_CONFIG" \
    --public-url https://relay.bench --backend-url "$BACKEND" "$@" >/dev/null </dev/null
}

# login_agent: signs the agent of $AGENT_CONFIG in to the stand-in as its admin (the agent's ArgusAI
# session, `argus-relay backend login`), before it runs.
login_agent() {
  printf '%s\n' "$STANDIN_PASSWORD" | "$BIN/argus-relay" backend login --config "$AGENT_CONFIG" \
    --username "$STANDIN_USER" --password-file - >/dev/null
}

# run_agent NAME: runs the agent of $AGENT_CONFIG on loopback ports; sets AGENT_PID, AGENT_TUNNEL,
# AGENT_ADMIN (ip:port each) and AGENT_SECRET (the edge signing secret, hex).
run_agent() {
  "$BIN/argus-relay" run --config "$AGENT_CONFIG" \
    --tunnel-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/$1.out" 2>"$work/$1.log" &
  AGENT_PID=$!
  pids+=("$AGENT_PID")
  local ready
  ready=$(wait_line "$work/$1.out" '"listening"')
  AGENT_TUNNEL=$(echo "$ready" | grep -oE '"tunnel":"[0-9.:]+"' | cut -d'"' -f4)
  AGENT_ADMIN=$(echo "$ready" | grep -oE '"admin":"[0-9.:]+"' | cut -d'"' -f4)
  AGENT_SECRET=$("$BIN/argus-relay" worker-config --json --config "$AGENT_CONFIG" \
    | grep -oE '"RELAY_SIGNING_SECRET": *"[0-9a-f]+"' | grep -oE '[0-9a-f]{64}')
}

# pair_code ADMIN CONFIG: a viewer pairing code from the agent whose admin API is at ADMIN.
pair_code() {
  ARGUS_RELAY_ADMIN_URL="http://$1" "$BIN/argus-relay" pair --no-wait --json --scope viewer \
    --config "$2" | grep -oE '"code": *"[A-Z0-9]+"' | cut -d'"' -f4
}

# The `request.cf` a phone's requests carry at the Worker (workerd takes it from `MF-CF-Blob`; the
# agent and the backend ignore the header). No `clientAcceptEncoding`: the phone gets the same
# uncompressed bytes through the Worker as from the backend directly.
CF_BLOB='{"country":"US","asn":64500,"tlsVersion":"TLSv1.3","colo":"AMS","httpProtocol":"HTTP/2","clientAcceptEncoding":""}'

# start_worker NAME [MAIN]: the real Worker (edge-worker/build, see scripts/build-worker.sh), or
# the Worker script MAIN, under `wrangler dev` (workerd) on loopback, in front of the agent of
# $AGENT_CONFIG at $AGENT_TUNNEL, configured as `argus-relay worker-config` says (as
# tests/src/worker.rs does), the per-device rate limit raised out of the way of a benchmark;
# sets WORKER (ip:port).
start_worker() {
  local dir="$work/$1" shim=${2:-$ROOT/edge-worker/build/worker/shim.mjs} port inspector
  [ -f "$shim" ] || { echo "$shim is missing: bash scripts/build-worker.sh" >&2; return 1; }
  mkdir -p "$dir"
  "$BIN/argus-relay" worker-config --json --config "$AGENT_CONFIG" \
    | python3 -c '
import json, sys
settings, shim, origin, out = json.load(sys.stdin), sys.argv[1], sys.argv[2], sys.argv[3]
settings["vars"]["ORIGIN_URL"] = origin
toml = [f"name = \"argus-relay-bench\"\nmain = {json.dumps(shim)}\ncompatibility_date = \"2026-08-01\"\n\n[vars]"]
toml += [f"{k} = {json.dumps(v)}" for k, v in settings["vars"].items()]
for name, ns, limit in [("PAIRING_LIMITER", 7301, 60), ("DEVICE_LIMITER", 7302, 10_000_000)]:
    toml.append(f"\n[[ratelimits]]\nname = \"{name}\"\nnamespace_id = \"{ns}\"\nsimple = {{ limit = {limit}, period = 60 }}")
open(f"{out}/wrangler.toml", "w").write("\n".join(toml) + "\n")
open(f"{out}/.dev.vars", "w").write("".join(f"{k}={v}\n" for k, v in settings["secrets"].items()))
' "$shim" "http://$AGENT_TUNNEL" "$dir"
  port=$(free_port)
  inspector=$(free_port)
  # Its own process group (setsid), so that cleanup ends workerd with wrangler.
  (cd "$dir" && NO_COLOR=1 CI=true WRANGLER_LOG_PATH="$dir/logs" exec setsid node "$WRANGLER" dev \
    --config wrangler.toml --ip 127.0.0.1 --local --port "$port" --inspector-port "$inspector" \
    --persist-to state --log-level warn --show-interactive-dev-session=false) >"$work/$1.log" 2>&1 &
  groups+=("$!")
  WORKER="127.0.0.1:$port"
  # Ready when the Worker itself answers (any HTTP status), up to 120 s on a loaded machine.
  for _ in $(seq 1200); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$WORKER/__argus_ready_probe")" != 000 ]; then
      return 0
    fi
    kill -0 "${groups[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "wrangler dev did not start:" >&2; cat "$work/$1.log" >&2; return 1
}
