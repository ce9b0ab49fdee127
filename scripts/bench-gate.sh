#!/usr/bin/env bash
# The edge gate's benchmarks (part of `make bench`):
# 1. CPU of one request's gate work (path, route, EdDSA verify, policy, HMAC signing) as wasm
#    under V8 (node 22) vs natively, same run; target ≤ 0.2 ms per request in wasm.
# 2. Latency the gate adds in workerd: the real Worker vs a pass-through Worker, same origin.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ITERS="${BENCH_ITERATIONS:-3000}"

cargo build -q --release -p bench-gate-wasm --target wasm32-unknown-unknown --lib
wasm-bindgen --target nodejs --out-dir "$TARGET/bench-gate-wasm" \
  "$TARGET/wasm32-unknown-unknown/release/bench_gate_wasm.wasm"
cargo build -q --release -p bench-gate-wasm --bin gate-native
wasm_json=$(node bench/gate-wasm/bench.mjs "$TARGET/bench-gate-wasm" "$ITERS")
native_json=$("$TARGET/release/gate-native" "$ITERS")
node -e '
const w = JSON.parse(process.argv[1]), n = JSON.parse(process.argv[2]);
console.log("gate CPU per request (path + route + EdDSA verify + policy + HMAC sign), " + w.iterations + " iterations");
console.log(`  native        ${n.per_request_ms.toFixed(4)} ms`);
console.log(`  wasm (V8)     ${w.per_request_ms.toFixed(4)} ms   ratio wasm/native ${(w.per_request_ms / n.per_request_ms).toFixed(2)}x   target <= 0.2 ms: ${w.per_request_ms <= 0.2 ? "met" : "MISSED"}`);
if (w.checksum !== n.checksum) { console.error("checksums differ"); process.exit(1); }
' "$wasm_json" "$native_json"

bash scripts/build-worker.sh >/dev/null
cargo build -q -p e2e-tests --bin bench-gate
"$TARGET/debug/bench-gate"
