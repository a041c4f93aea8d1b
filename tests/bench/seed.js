'use strict';
// Puts the benchmark objects into the federation's results bucket (idempotent):
//   bench/big.bin        one 1 GiB object of random bytes, uploaded with a single PUT (so its ETag is its MD5)
//   bench/small/NNNN.bin 1000 objects of 64 KiB
// Usage: node tests/bench/seed.js   (with federation.env sourced: FED_S3_URL, FED_S3_ACCESS_KEY, ...)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const S3 = require('../federation/lib/s3');

const BUCKET = process.env.FED_RESULTS_BUCKET || 'results';
const BIG = Number(process.env.BENCH_BIG_BYTES || 1 << 30);
const SMALL_N = Number(process.env.BENCH_SMALL_COUNT || 1000);
const SMALL = Number(process.env.BENCH_SMALL_BYTES || 64 << 10);

async function main() {
  const s3 = S3.createClient({ timeoutMs: 600000 });
  const head = await s3.headObject(BUCKET, 'bench/big.bin');
  if (!head || head.contentLength !== BIG) {
    const file = path.join(os.tmpdir(), `impact-bench-${process.pid}.bin`);
    const fd = fs.openSync(file, 'w');
    for (let off = 0; off < BIG; off += 8 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(8 << 20, BIG - off)));
    fs.closeSync(fd);
    await s3.putObject(BUCKET, 'bench/big.bin', fs.createReadStream(file), { contentLength: BIG });
    fs.rmSync(file);
    console.log(`seeded bench/big.bin (${BIG} bytes)`);
  }
  const have = new Set((await s3.listAll(BUCKET, 'bench/small/')).map((o) => o.key));
  const todo = [];
  for (let i = 0; i < SMALL_N; i++) {
    const key = `bench/small/${String(i).padStart(4, '0')}.bin`;
    if (!have.has(key)) todo.push(key);
  }
  for (let i = 0; i < todo.length; i += 16)
    await Promise.all(todo.slice(i, i + 16).map((k) => s3.putObject(BUCKET, k, crypto.randomBytes(SMALL))));
  if (todo.length) console.log(`seeded ${todo.length} objects under bench/small/`);
}
main().catch((e) => { console.error(e); process.exit(1); });
