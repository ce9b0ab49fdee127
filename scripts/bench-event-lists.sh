#!/usr/bin/env bash
# `make bench`, event lists: the bytes of one 20-event page as ArgusAI sends it and as the relay
# sends it on (projected with `fields=`, gzip on the tunnel hop, both), through the agent's own
# code against the stand-in backend (tests/src/bin/event-list-bytes.rs). The phone's last hop is
# re-encoded by the Worker (br where accepted): tests/tests/images.rs prints those figures.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo run --quiet --release -p e2e-tests --bin event-list-bytes
