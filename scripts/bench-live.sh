#!/usr/bin/env bash
# `make bench`: the adaptive live preview — agent CPU and bytes per frame for each re-encode
# level (1080p source), and the frame-age distribution at 500 kbit/s, 1.5 Mbit/s and 30 Mbit/s
# (tc in a network namespace of its own; root needed) through the relay against a plain
# pass-through measured in the same run. docs/benchmarks.md ("Live preview") records a run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo build --quiet --release -p origin-agent --bin argus-relay
export ARGUS_RELAY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/argus-relay"
cargo test --quiet --release -p e2e-tests --test live_preview bench_ -- --ignored --nocapture --test-threads=1 2>&1 \
  | grep -vE '^(running|test |$)'
