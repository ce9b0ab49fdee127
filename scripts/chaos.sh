#!/usr/bin/env bash
# `make chaos`: the whole stack under load and faults (issue 19), and docs/reliability.md
# regenerated from what it measured. The suite is tests/src/chaos/; its short version runs in
# `make test` (tests/tests/chaos.rs).
#
# Sizes (the defaults are the issue's): CHAOS_CLIENTS=64,256 (concurrent phones, one level after
# the other), CHAOS_REQUESTS=10000 (per fault window), CHAOS_SOAK_SECS=1800 (the soak; 0 = none),
# CHAOS_HOLD_SECS=3 (how long a fault lasts). A shorter trial, e.g.
#   make chaos CHAOS_REQUESTS=2000 CHAOS_SOAK_SECS=300
# writes its sizes into the report, so the figures always say what was run.
# CHAOS_MACHINE describes the machine in the report (default: CPU model and core count);
# CHAOS_REPORT writes the report elsewhere.
#
# Needs root for the "disk full" fault (a tmpfs for the agent's data) and libfaketime for the
# clock steps (bootstrap installs it); without them those rows say "not injected" and why.
# Loopback only; every process it starts belongs to the run and dies with it (Ctrl-C stops the
# run, its processes and the agent's small disk with it, and writes no report).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
# The Worker bundle the suite runs in workerd: rebuilt when missing or older than its sources.
bundle=edge-worker/build/worker/shim.mjs
if [ ! -f "$bundle" ] || [ -n "$(find edge-worker/src edge-worker/Cargo.toml shared/src -newer "$bundle" -print -quit)" ]; then
  bash scripts/build-worker.sh
fi
cargo build -p origin-agent --bin argus-relay
cargo build -p e2e-tests --bin chaos --bin stand-in-cloudflared
exec "$ROOT/target/debug/chaos"
