#!/usr/bin/env node
'use strict';
// Benchmark: `impact drs download` of N objects of SIZE bytes (default 200 x 1 MiB) from a DRS 1.5 server
// (the federation's own server code, bytes in the federation's RGW), against a plain sequential `curl` loop
// over the same presigned URLs. impact's time includes resolving the objects, getting the access URLs and
// verifying every checksum; curl's only the transfers.
//
//   FED_STATE=DIR node tests/bench/drs-download.js [--count 200] [--size 1048576] [--parallel 8] [--runs 3]
//
// Needs a running federation (tests/federation/up --state DIR) for RGW. Exit 1 when impact is not faster.
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const COUNT = arg('count', 200);
const SIZE = arg('size', 1 << 20);
const PARALLEL = arg('parallel', 8);
const RUNS = arg('runs', 3);
const BIN = process.env.IMPACT_BIN || path.resolve(__dirname, '../../build/cli/impact');
const STATE = process.env.FED_STATE;
if (!STATE) { console.error('set FED_STATE to the state folder of a running federation'); process.exit(2); }
for (const line of fs.readFileSync(path.join(STATE, 'federation.env'), 'utf8').split('\n')) {
  const m = /^(?:export )?(FED_[A-Z0-9_]+)=['"]?(.*?)['"]?$/.exec(line.trim());
  if (m && !process.env[m[1]]) process.env[m[1]] = m[2];
}
process.env.FED_DATA_BUCKET = 'drs-bench';

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-bench-drs-'));
  try {
    const data = path.join(work, 'data');
    fs.mkdirSync(path.join(data, 'bench'), { recursive: true });
    const manifest = [];
    for (let i = 0; i < COUNT; i++) {
      const id = `bench-${String(i).padStart(4, '0')}`;
      fs.writeFileSync(path.join(data, 'bench', `${id}.bin`), crypto.randomBytes(SIZE));
      manifest.push({ id, name: `${id}.bin`, file: `bench/${id}.bin`, mime_type: 'application/octet-stream', access: 'public',
        aliases: [], created_time: '2024-01-01T00:00:00Z', updated_time: '2024-01-01T00:00:00Z' });
    }
    fs.writeFileSync(path.join(data, 'drs-objects.json'), JSON.stringify(manifest));
    const drs = await require('../federation/drs/server').start({ port: 0, data, large: path.join(work, 'large'), log: require('../federation/lib/service').logger('drs-bench') });
    try {
      const home = path.join(work, 'home');
      const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'c'), XDG_CACHE_HOME: path.join(home, 'k'), XDG_STATE_HOME: path.join(home, 's') };
      // Asynchronous: the DRS server lives in this process, so its event loop must keep running.
      const run = (args) => new Promise((resolve, reject) => {
        const child = spawn(BIN, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => { err += d; });
        const timer = setTimeout(() => child.kill('SIGKILL'), 600000);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (code === 0) resolve();
          else reject(new Error(`impact ${args[0]} ${args[1]}: exit ${code} ${signal || ''} ${err}`));
        });
      });
      await run(['profile', 'add', 'bench', '--drs', `bench=${drs.apiUrl}`]);
      const uris = manifest.map((o) => `drs://${new URL(drs.url).host}/${o.id}`);

      // The presigned URLs for the curl loop (valid 900 s), fetched before any timing.
      const urls = [];
      for (let i = 0; i < COUNT; i += 50) {
        const body = { bulk_object_access_ids: manifest.slice(i, i + 50).map((o) => ({ bulk_object_id: o.id, bulk_access_ids: ['https-presigned'] })) };
        const r = await fetch(`${drs.apiUrl}/objects/access`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        urls.push(...(await r.json()).resolved_drs_object_access_urls.map((a) => a.url));
      }
      const impactTimes = [];
      for (let k = 0; k < RUNS; k++) {
        const out = path.join(work, `impact-${k}`);
        const t0 = process.hrtime.bigint();
        await run(['drs', 'download', ...uris, '-o', out, '--parallel', String(PARALLEL)]);
        impactTimes.push(Number(process.hrtime.bigint() - t0) / 1e9);
        if (fs.readdirSync(out).length !== COUNT) throw new Error('impact did not write every file');
        fs.rmSync(out, { recursive: true });
      }

      const curlTimes = [];
      for (let k = 0; k < RUNS; k++) {
        const out = path.join(work, `curl-${k}`);
        fs.mkdirSync(out);
        const t0 = process.hrtime.bigint();
        urls.forEach((u, i) => {
          const r = spawnSync('curl', ['-sSf', '-o', path.join(out, `${i}.bin`), u]);
          if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
        });
        curlTimes.push(Number(process.hrtime.bigint() - t0) / 1e9);
        fs.rmSync(out, { recursive: true });
      }
      const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      const mi = median(impactTimes);
      const mc = median(curlTimes);
      console.log(JSON.stringify({ objects: COUNT, bytes_each: SIZE, parallel: PARALLEL, runs: RUNS,
        impact_s: impactTimes.map((x) => +x.toFixed(3)), curl_loop_s: curlTimes.map((x) => +x.toFixed(3)),
        impact_median_s: +mi.toFixed(3), curl_median_s: +mc.toFixed(3), speedup: +(mc / mi).toFixed(2) }));
      process.exitCode = mi < mc ? 0 : 1;
    } finally {
      await drs.close();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e.stack || String(e), e.cause || ''); process.exit(1); });
