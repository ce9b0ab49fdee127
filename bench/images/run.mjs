// Wasm half of `make bench`: the same operations as src/lib.rs, compiled to wasm32 (with and
// without SIMD128) and run under Node 22's V8 — the engine workerd uses.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [photos, ...pkgs] = process.argv.slice(2);
const RUNS = 20;

function time(fn, input) {
  for (let i = 0; i < 3; i++) fn(input);
  const start = performance.now();
  let out;
  for (let i = 0; i < RUNS; i++) out = fn(input);
  return [(performance.now() - start) / RUNS, out];
}

const files = readdirSync(photos).filter((f) => f.endsWith("1920x1080.jpg")).sort();
for (const spec of pkgs) {
  const [label, path] = spec.split("=");
  const m = require(path);
  console.log(`wasm ${label} (Node ${process.version}, ${RUNS} warm runs each)`);
  console.log(
    `${"photo".padEnd(22)} ${"pipeline".padStart(9)} ${"image".padStart(9)} ${"copy".padStart(8)} ${"ratio".padStart(7)} ${"bytes in".padStart(9)} ${"out".padStart(7)}`,
  );
  for (const f of files) {
    const input = new Uint8Array(readFileSync(join(photos, f)));
    const [tp, out] = time(m.pipeline, input);
    const [tb] = time(m.baseline, input);
    const [tc] = time(m.copy, input);
    console.log(
      `${f.padEnd(22)} ${tp.toFixed(2).padStart(7)}ms ${tb.toFixed(2).padStart(7)}ms ${tc.toFixed(3).padStart(6)}ms ${(tb / tp).toFixed(1).padStart(6)}x ${String(input.length).padStart(9)} ${String(out.length).padStart(7)}`,
    );
  }
}
