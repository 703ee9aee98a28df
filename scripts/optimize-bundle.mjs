// Optimises the lazily loaded chunks of the browser bundle with binaryen
// (npm `binaryen`, the library behind its `wasm-opt`) in one process, then
// writes a gzip and a brotli copy of every asset in the bundle directory, which
// the server sends to browsers that accept them. `scripts/build.sh` runs it:
//
//   node scripts/optimize-bundle.mjs PKG_DIR
//
// One process matters: the split produces hundreds of small chunks, and
// starting `wasm-opt` (binaryen compiled to JavaScript) once per chunk took
// six minutes on two cores where this takes about one.
import binaryen from 'binaryen';
import { readFileSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node scripts/optimize-bundle.mjs PKG_DIR');
  process.exit(2);
}

// The same optimisation as `wasm-opt -Oz` with the features the main module is built with.
binaryen.setOptimizeLevel(2);
binaryen.setShrinkLevel(2);
const F = binaryen.Features;
const features =
  F.BulkMemory | (F.BulkMemoryOpt ?? 0) | F.NontrappingFPToInt | F.ReferenceTypes |
  F.Multivalue | F.SignExt | F.MutableGlobals;

const names = readdirSync(dir);
let before = 0;
let after = 0;
for (const name of names.filter((n) => /^(chunk_\d+|split_\w+)\.wasm$/.test(n))) {
  const path = join(dir, name);
  const input = readFileSync(path);
  const module = binaryen.readBinary(input);
  module.setFeatures(features);
  module.optimize();
  const output = module.emitBinary();
  module.dispose();
  writeFileSync(path, output);
  before += input.length;
  after += output.length;
}

for (const name of readdirSync(dir).filter((n) => /\.(gz|br)$/.test(n))) {
  unlinkSync(join(dir, name));
}
let compressed = 0;
for (const name of readdirSync(dir)) {
  if (!/\.(wasm|js|css)$/.test(name)) continue;
  const path = join(dir, name);
  const body = readFileSync(path);
  const gz = gzipSync(body, { level: 9 });
  writeFileSync(`${path}.gz`, gz);
  writeFileSync(
    `${path}.br`,
    brotliCompressSync(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    }),
  );
  compressed += gz.length;
}
console.log(
  `chunks optimised: ${before} -> ${after} bytes; bundle gzip total ${compressed} bytes`,
);
