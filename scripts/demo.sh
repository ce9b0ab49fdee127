#!/usr/bin/env bash
# `make demo`: the whole stack locally. Not complete yet: the origin agent's `run` command (tunnel
# listener + router) is still being wired (see docs/architecture.md, "Status"). Until then this
# starts the stand-in ArgusAI backend so its contract can be explored.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo build -q -p e2e-tests --bin stand-in-backend
echo "argus-relay demo (partial): stand-in ArgusAI backend on http://127.0.0.1:8000"
echo "  try: curl -s -H 'X-API-Key: demo-key' 'http://127.0.0.1:8000/api/v1/events?limit=2'"
echo "  the full phone -> Worker -> agent -> backend path is not wired yet."
exec target/debug/stand-in-backend --listen 127.0.0.1:8000 --api-key demo-key
