#!/usr/bin/env bash
# `make fuzz`: libFuzzer on the parsers that face the internet (fuzz/fuzz_targets/*), each for
# FUZZ_SECS seconds (default 60). Needs a nightly toolchain (rustup) and cargo-fuzz, which this
# script installs when missing. The same properties run on stable in `make test`
# (shared/tests/fuzz_smoke.rs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT/fuzz"
SECS="${FUZZ_SECS:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
for target in token_parser policy_parser path_canonicalize; do
  echo "== fuzz $target for ${SECS}s"
  mkdir -p "corpus/$target"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECS" -rss_limit_mb=2048
done
