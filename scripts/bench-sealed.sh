#!/usr/bin/env bash
# `make bench`, sealed mode: the CPU (phone and agent) and bytes one Oblivious HTTP request adds
# to an event-list page and a thumbnail, beside the plain path in the same run
# (tests/src/bin/sealed-cost.rs). Figures in docs/benchmarks.md ("Sealed mode").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo run --quiet --release -p e2e-tests --bin sealed-cost
