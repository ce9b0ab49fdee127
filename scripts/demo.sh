#!/usr/bin/env bash
# `make demo`: build everything, then run the whole stack locally (stand-in ArgusAI backend,
# origin agent, the Worker under `wrangler dev`) until Ctrl-C. See tests/src/bin/demo.rs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/build-worker.sh
cargo build -q -p origin-agent --bin argus-relay
cargo build -q -p e2e-tests --bin demo
exec "${CARGO_TARGET_DIR:-target}/debug/demo"
