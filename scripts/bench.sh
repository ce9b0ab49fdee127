#!/usr/bin/env bash
# `make bench`: every benchmark script (scripts/bench-*.sh), each printing its figures and
# ratios against a baseline measured in the same run. Numbers, not pass/fail: see docs/benchmarks.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
for script in scripts/bench-*.sh; do
  [ "$script" = scripts/bench-lib.sh ] && continue   # sourced by the others, not a benchmark
  echo "== $script"
  bash "$script"
done
