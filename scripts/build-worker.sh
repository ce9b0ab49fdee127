#!/usr/bin/env bash
# Builds the edge Worker (release wasm + JS shim) into edge-worker/build/ and prints its size.
# Offline: worker-build is given every tool it would otherwise download.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT/edge-worker"
worker-build --release
wasm=$(find build -name '*.wasm' | head -n 1)
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
printf 'edge-worker: %s %d bytes, %d bytes gzip (Cloudflare limit: 3 MiB gzip on free plans)\n' "$wasm" "$raw" "$gz"
