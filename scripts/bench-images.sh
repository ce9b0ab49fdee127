#!/usr/bin/env bash
# `make bench`: the image pipeline (JPEG and WebP), natively and as wasm under Node 22 (V8, like
# workerd), with and without SIMD128, against sharp (`resize(480).webp({quality: 75})`), the
# `image` crate and a plain copy measured in the same run — times, bytes, SSIMULACRA2; then the
# size of the Worker bundle. Figures are printed; docs/benchmarks.md records a run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT/bench/images"
photos="$ROOT/../shared/testdata/photos"
target="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$target"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/sharp"

printf '\n== sharp (npm devDependency: libvips + libwebp, native)\n'
node sharp.mjs "$photos" "$out/sharp"

printf '\n== native\n'
cargo run --quiet --release --bin image-bench -- "$photos" "$out/sharp"

printf '\n== wasm32 (building: SIMD128 on, as the Worker; then off)\n'
cargo build --quiet --release --lib --target wasm32-unknown-unknown
wasm-bindgen --target nodejs --out-dir "$out/simd" "$target/wasm32-unknown-unknown/release/image_bench.wasm"
CARGO_TARGET_DIR="$target/bench-nosimd" RUSTFLAGS="-C target-feature=-simd128" \
  cargo build --quiet --release --lib --target wasm32-unknown-unknown
wasm-bindgen --target nodejs --out-dir "$out/nosimd" "$target/bench-nosimd/wasm32-unknown-unknown/release/image_bench.wasm"
node run.mjs "$photos" "$out/sharp" "simd128=$out/simd/image_bench.js" "no-simd=$out/nosimd/image_bench.js"

printf '\n== Worker bundle\n'
wasm="$ROOT/edge-worker/build/index_bg.wasm"
if [ -f "$wasm" ]; then
  printf '%s: %d bytes, %d bytes gzip (limit 3 MiB gzip)\n' "$wasm" "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"
else
  echo "not built (bash scripts/build-worker.sh)"
fi
