#!/usr/bin/env bash
# Every check and every test. Called by `make test` (after the bootstrap) and so by CI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
# A fresh clone gains nothing from incremental state; it costs ~2 GB of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p edge-worker --target wasm32-unknown-unknown -- -D warnings

step "shared/ builds for wasm32"
cargo build -p argus-shared --target wasm32-unknown-unknown

# wrangler.toml's [build] runs scripts/build-worker.sh, so this one step builds the bundle the
# end-to-end tests use and checks that it deploys.
step "edge Worker: build + wrangler deploy --dry-run"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
node "$WRANGLER" deploy --dry-run --outdir "$out"

step "tests"
cargo build -p origin-agent --bin argus-relay
cargo test --workspace --no-fail-fast
