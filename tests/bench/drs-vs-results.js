#!/usr/bin/env node
'use strict';
// Benchmark: `impact drs download` against `impact results download` of the same bytes from the same storage
// (the federation's RGW), side by side in one run. Two cases: 200 objects of 1 MiB and one object of 256 MiB.
// The DRS side resolves every object, asks for its access URL (an RGW presigned URL) and verifies its
// SHA-256; the results side lists the bucket prefix with S3 keys and verifies the MD5 ETags. Both write to
// tmpfs (BENCH_DIR, default /dev/shm). With --baseline BIN, a second impact binary (an older build) is
// measured in the same interleaved loop, so "before" and "after" are read under the same load.
//
//   FED_STATE=DIR IMPACT_BIN=build-rel/cli/impact node tests/bench/drs-vs-results.js \
//       [--runs 3] [--baseline OLD_BIN] [--many 200] [--big-mib 256]
//
// Prints a markdown table, then one JSON line (the last line) for report.sh. Exit 1 when a target is missed:
// DRS download no slower than results download of the same bytes, for both cases.
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { opt, federationEnv, median, timed } = require('./common');

const RUNS = Number(opt('runs', 3));
const MANY = Number(opt('many', 200));
const BIG_MIB = Number(opt('big-mib', 256));
const BIN = path.resolve(process.env.IMPACT_BIN || path.join(__dirname, '../../build-rel/cli/impact'));
const BASELINE = opt('baseline', '') ? path.resolve(opt('baseline', '')) : '';
federationEnv();
const BUCKET = 'drs-bench';
process.env.FED_DATA_BUCKET = BUCKET;

function countFiles(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

async function main() {
  const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR || '/dev/shm', 'impact-bench-drs-s3-'));
  try {
    const data = path.join(root, 'data');
    const manifest = [];
    const add = (id, file, bytes) => {
      fs.mkdirSync(path.dirname(path.join(data, file)), { recursive: true });
      const fd = fs.openSync(path.join(data, file), 'w');
      for (let off = 0; off < bytes; off += 8 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(8 << 20, bytes - off)));
      fs.closeSync(fd);
      manifest.push({ id, name: path.basename(file), file, mime_type: 'application/octet-stream', access: 'public',
        aliases: [], created_time: '2024-01-01T00:00:00Z', updated_time: '2024-01-01T00:00:00Z' });
    };
    for (let i = 0; i < MANY; i++) add(`many-${String(i).padStart(4, '0')}`, `bench/many/many-${String(i).padStart(4, '0')}.bin`, 1 << 20);
    add('big', 'bench/big/big.bin', BIG_MIB << 20);
    fs.writeFileSync(path.join(data, 'drs-objects.json'), JSON.stringify(manifest));
    const drs = await require('../federation/drs/server').start({ port: 0, data, large: path.join(root, 'large'),
      log: require('../federation/lib/service').logger('drs-bench') });
    fs.rmSync(data, { recursive: true });  // the bytes now live in RGW; keep tmpfs free for the downloads
    try {
      const home = path.join(root, 'home');
      const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'c'), XDG_CACHE_HOME: path.join(home, 'k'),
        XDG_STATE_HOME: path.join(home, 's'), XDG_DATA_HOME: path.join(home, 'd'),
        AWS_ACCESS_KEY_ID: process.env.FED_S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: process.env.FED_S3_SECRET_KEY };
      fs.mkdirSync(path.join(env.XDG_CONFIG_HOME, 'impact'), { recursive: true });
      fs.mkdirSync(env.XDG_CACHE_HOME, { recursive: true });
      fs.writeFileSync(path.join(env.XDG_CONFIG_HOME, 'impact', 'config.toml'),
        `default_profile = "bench"\n[profiles.bench.drs]\nbench = "${drs.apiUrl}"\n[profiles.bench.storage]\n` +
        `url = "${process.env.FED_S3_URL}"\nbucket = "${BUCKET}"\nregion = "${process.env.FED_S3_REGION || 'us-east-1'}"\n`);
      const host = new URL(drs.url).host;
      const uris = { many: manifest.filter((o) => o.id.startsWith('many-')).map((o) => `drs://${host}/${o.id}`), big: [`drs://${host}/big`] };
      const counts = { many: MANY, big: 1 };
      const bins = [['impact', BIN], ...(BASELINE ? [['baseline', BASELINE]] : [])];
      const cmds = [];
      for (const c of ['many', 'big']) {
        for (const [who, bin] of bins) {
          cmds.push({ c, who, how: 'drs download', bin, args: (out) => ['drs', 'download', ...uris[c], '-o', out] });
          cmds.push({ c, who, how: 'results download', bin, args: (out) => ['results', 'download', `s3://${BUCKET}/bench/${c}/`, '-o', out] });
        }
      }
      const times = new Map(cmds.map((k) => [k, []]));
      for (let r = 0; r < RUNS; r++) {
        for (const k of cmds) {  // interleaved: run r of every command before run r + 1 of any
          const out = path.join(root, 'out');
          fs.rmSync(out, { recursive: true, force: true });
          const t = await timed(k.bin, k.args(out), env);
          if (countFiles(out) !== counts[k.c]) throw new Error(`${k.who} ${k.how} did not write every file`);
          fs.rmSync(out, { recursive: true, force: true });
          times.get(k).push(t);
          console.error(`run ${r + 1}: ${k.c} ${k.who} ${k.how} ${t.secs} s ${t.rss} KiB`);
        }
      }
      const med = (k) => ({ secs: median(times.get(k).map((t) => t.secs)), rss_mib: +(median(times.get(k).map((t) => t.rss)) / 1024).toFixed(1) });
      const find = (c, who, how) => cmds.find((k) => k.c === c && k.who === who && k.how === how);
      const label = { many: `${MANY} objects of 1 MiB`, big: `one object of ${BIG_MIB} MiB` };
      console.log(`DRS download vs results download of the same bytes, ${new Date().toISOString().slice(0, 16)}Z, ${os.cpus().length} CPUs, ` +
        `load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, median of ${RUNS} runs, RGW at ${process.env.FED_S3_URL}.`);
      console.log('\n| case | binary | drs download s | results download s | drs / results | drs peak RSS MiB | results peak RSS MiB |');
      console.log('|---|---|---:|---:|---:|---:|---:|');
      const summary = { runs: RUNS, cases: {} };
      let ok = true;
      for (const c of ['many', 'big']) {
        for (const [who] of bins) {
          const d = med(find(c, who, 'drs download'));
          const s = med(find(c, who, 'results download'));
          console.log(`| ${label[c]} | ${who} | ${d.secs.toFixed(2)} | ${s.secs.toFixed(2)} | ${(d.secs / s.secs).toFixed(2)} | ${d.rss_mib} | ${s.rss_mib} |`);
          summary.cases[`${c}_${who}`] = { drs_s: d.secs, results_s: s.secs, drs_rss_mib: d.rss_mib, results_rss_mib: s.rss_mib };
          if (who === 'impact' && d.secs > s.secs) ok = false;
        }
      }
      console.log(`\nTarget (issue 17): DRS download at least as fast as results download of the same bytes, both cases: ${ok ? 'met' : 'NOT met'}.`);
      summary.ok = ok;
      console.log(JSON.stringify(summary));
      process.exitCode = ok ? 0 : 1;
    } finally {
      await drs.close();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
