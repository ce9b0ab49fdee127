// Wasm half of `make bench`: the same operations as src/lib.rs, compiled to wasm32 (with and
// without SIMD128) and run under Node 22's V8 — the engine workerd uses. Compared with sharp's
// times from sharp.mjs in the same run (`sharp.json` in the folder given as SHARP_DIR).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [photos, sharpDir, ...pkgs] = process.argv.slice(2);
const sharpMs = JSON.parse(readFileSync(join(sharpDir, "sharp.json"), "utf8"));
const RUNS = 20;
// Variant::MOBILE's qualities (shared/src/image/mod.rs).
const JPEG_QUALITY = 70;
const WEBP_QUALITY = 86;

function time(fn, input) {
  for (let i = 0; i < 3; i++) fn(input);
  const start = performance.now();
  let out;
  for (let i = 0; i < RUNS; i++) out = fn(input);
  return [(performance.now() - start) / RUNS, out];
}

const files = readdirSync(photos).filter((f) => f.endsWith("1920x1080.jpg")).sort();
const col = (s, n) => String(s).padStart(n);
for (const spec of pkgs) {
  const [label, path] = spec.split("=");
  const m = require(path);
  console.log(`wasm ${label} (Node ${process.version}, ${RUNS} warm runs each; target ≤ 10 ms)`);
  console.log(
    `${"photo".padEnd(22)} ${col("jpeg", 9)} ${col("webp", 9)} ${col("webp 1/4", 9)} ${col("jpeg small", 10)} ${col("image", 9)} ${col("copy", 8)} ${col("sharp", 9)} ${col("webp/sharp", 10)} ${col("bytes in", 9)} ${col("jpeg", 7)} ${col("webp", 7)}`,
  );
  for (const f of files) {
    const input = new Uint8Array(readFileSync(join(photos, f)));
    const [tj, jpeg] = time(m.pipeline, input);
    const [tw, webp] = time(m.pipeline_webp, input);
    const [tw4] = time((i) => m.pipeline_webp_at(i, WEBP_QUALITY, 1), input);
    const [tj4] = time((i) => m.pipeline_jpeg_at(i, false, JPEG_QUALITY, 2), input);
    const [tb] = time(m.baseline, input);
    const [tc] = time(m.copy, input);
    const ts = sharpMs[f];
    const ms = (t) => `${t.toFixed(2)}ms`;
    console.log(
      `${f.padEnd(22)} ${col(ms(tj), 9)} ${col(ms(tw), 9)} ${col(ms(tw4), 9)} ${col(ms(tj4), 10)} ${col(ms(tb), 9)} ${col(tc.toFixed(3) + "ms", 8)} ${col(ts ? ms(ts) : "-", 9)} ${col(ts ? (tw / ts).toFixed(1) + "x" : "-", 10)} ${col(input.length, 9)} ${col(jpeg.length, 7)} ${col(webp.length, 7)}`,
    );
  }
}
for (const spec of pkgs.slice(0, 1)) {
  const [label, path] = spec.split("=");
  const m = require(path);
  console.log(`\nwasm ${label}: JPEG sweep, ms per photo (small: progressive + trellis; fast: baseline, optimised Huffman)`);
  for (const f of files) {
    const input = new Uint8Array(readFileSync(join(photos, f)));
    for (const [fast, name] of [[false, "small"], [true, "fast"]]) {
      for (const oversample of [2, 1]) {
        let line = `${f.padEnd(22)} ${name.padEnd(5)} ${oversample === 2 ? "1/2" : "1/4"} `;
        for (const q of [70, 75, 80]) {
          const [t, out] = time((i) => m.pipeline_jpeg_at(i, fast, q, oversample), input);
          line += `  q${q}: ${col(t.toFixed(2) + "ms", 8)} ${col(out.length, 6)}`;
        }
        console.log(line);
      }
    }
  }
}
