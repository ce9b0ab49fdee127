// The reference of `make bench`: sharp (libvips + libwebp, native) doing what the issue names,
// `resize(480).webp({ quality: 75 })`, on each 1920×1080 photo, in the same run as ours. Writes
// `<photo stem>.webp` and `sharp.json` ({ photo: ms }) to the output folder for main.rs and
// run.mjs. One libvips thread (`sharp.concurrency(1)`): the same single core our code gets.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sharp = require("sharp");
sharp.concurrency(1);
sharp.cache(false);
const [photos, outDir] = process.argv.slice(2);
const RUNS = 20;
const encode = (input) => sharp(input).resize(480).webp({ quality: 75 }).toBuffer();

const times = {};
console.log(`sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, libwebp ${sharp.versions.webp ?? "?"}), one thread, ${RUNS} warm runs each`);
console.log(`${"photo".padEnd(22)} ${"ms".padStart(8)} ${"bytes".padStart(7)}`);
for (const f of readdirSync(photos).filter((f) => f.endsWith("1920x1080.jpg")).sort()) {
  const input = readFileSync(join(photos, f));
  for (let i = 0; i < 3; i++) await encode(input);
  const start = performance.now();
  let out;
  for (let i = 0; i < RUNS; i++) out = await encode(input);
  const ms = (performance.now() - start) / RUNS;
  times[f] = ms;
  writeFileSync(join(outDir, f.replace(/\.jpg$/, ".webp")), out);
  console.log(`${f.padEnd(22)} ${ms.toFixed(2).padStart(6)}ms ${String(out.length).padStart(7)}`);
}
writeFileSync(join(outDir, "sharp.json"), JSON.stringify(times));
