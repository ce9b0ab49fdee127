// Times the gate's CPU work in wasm under V8: node bench.mjs <pkg dir> <iterations>
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const [dir, iters] = [process.argv[2], Number(process.argv[3] || 2000)];
const { run } = require(`${dir}/bench_gate_wasm.js`);
run(200); // warm up (JIT tiers, caches)
const t0 = performance.now();
const sum = run(iters);
const ms = performance.now() - t0;
console.log(JSON.stringify({ iterations: iters, total_ms: ms, per_request_ms: ms / iters, checksum: sum }));
