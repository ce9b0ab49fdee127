#!/usr/bin/env bash
# The edge gate's benchmarks (part of `make bench`):
# 1. CPU of one request's gate work (path, route, EdDSA verify, policy, HMAC signing) as wasm
#    under V8 (node 22) vs natively, same run, for a token seen first and for a remembered one
#    (the isolate's verified-token memory, a phone's repeat requests); target ≤ 0.2 ms in wasm.
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
const verdict = (ms) => (ms <= 0.2 ? "met" : "MISSED");
console.log("gate CPU per request (path + route + EdDSA verify + policy + HMAC sign), " + w.iterations + " iterations");
for (const [label, key] of [["token seen first", "first_sight_ms"], ["token remembered", "remembered_ms"]]) {
  console.log(`  ${label.padEnd(17)} native ${n[key].toFixed(4)} ms   wasm (V8) ${w[key].toFixed(4)} ms   wasm/native ${(w[key] / n[key]).toFixed(2)}x   target <= 0.2 ms: ${verdict(w[key])}`);
}
if (w.checksum !== n.checksum) { console.error("checksums differ"); process.exit(1); }
' "$wasm_json" "$native_json"

bash scripts/build-worker.sh >/dev/null
cargo build -q -p e2e-tests --bin bench-gate
"$TARGET/debug/bench-gate"
