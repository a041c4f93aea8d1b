'use strict';
// Puts COUNT small objects (BYTES each, default 4 KiB) under bench/many-COUNT/ in the federation's results
// bucket (idempotent: what is there already is kept), for many.sh.
// Usage: node tests/bench/seed-many.js COUNT [BYTES]   (with federation.env sourced)
const crypto = require('node:crypto');
const S3 = require('../federation/lib/s3');

const BUCKET = process.env.FED_RESULTS_BUCKET || 'results';
const COUNT = Number(process.argv[2]);
const BYTES = Number(process.argv[3] || 4096);

async function main() {
  if (!(COUNT > 0 && COUNT <= 1e6)) throw new Error('usage: seed-many.js COUNT [BYTES] (1..1000000 objects)');
  const s3 = S3.createClient({ timeoutMs: 600000 });
  const prefix = `bench/many-${COUNT}/`;
  const have = new Set((await s3.listAll(BUCKET, prefix)).map((o) => o.key));
  const todo = [];
  // Two levels of folders, as a pipeline's outputs would be: 100 files per folder.
  for (let i = 0; i < COUNT; i++) {
    const key = `${prefix}d${String(Math.floor(i / 100)).padStart(4, '0')}/${String(i).padStart(7, '0')}.txt`;
    if (!have.has(key)) todo.push(key);
  }
  const body = crypto.randomBytes(BYTES);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) await s3.putObject(BUCKET, todo[next++], body);
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  console.log(`${prefix}: ${COUNT - todo.length} there, ${todo.length} seeded`);
}
main().catch((e) => { console.error(e); process.exit(1); });
