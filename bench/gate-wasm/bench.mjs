// Times the gate's CPU work in wasm under V8: node bench.mjs <pkg dir> <iterations>
// Prints the per-request time with a first-seen token and with a remembered one (see lib.rs).
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const [dir, iters] = [process.argv[2], Number(process.argv[3] || 2000)];
const { run } = require(`${dir}/bench_gate_wasm.js`);
function perRequestMs(remembered) {
  run(200, remembered); // warm up (JIT tiers, caches)
  const t0 = performance.now();
  const sum = run(iters, remembered);
  return [(performance.now() - t0) / iters, sum];
}
const [first, sum] = perRequestMs(false);
const [remembered, sum2] = perRequestMs(true);
console.log(JSON.stringify({
  iterations: iters,
  first_sight_ms: first,
  remembered_ms: remembered,
  checksum: (sum + sum2) >>> 0,
}));
