#!/usr/bin/env node
'use strict';
// Benchmark: `impact archive download` of one Crypt4GH file (header re-encrypted for impact's key, segments
// decrypted on the fly, SHA-256 of the plaintext verified) against `impact results download` of a plaintext
// object of the same size from the federation's RGW, side by side in one run. Targets (issue 18): the archive
// download takes at most 1.2 x the results download; peak memory under 64 MiB for both.
//
//   FED_STATE=DIR IMPACT_BIN=build-rel/cli/impact node tests/bench/archive.js [--runs 3] [--size-mib 1024]
//
// The SDA service runs in this process (tests/federation/sda/server.js, identity injected: no OIDC needed);
// the federation must have its S3 store up (FED_STATE's federation.env). Downloads go to BENCH_DIR (default
// /dev/shm). Prints a markdown table, then one JSON line. Exit 1 when a target is missed.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { opt, federationEnv, median, timed: timedBin } = require('./common');

const RUNS = Number(opt('runs', 3));
const SIZE = Number(opt('size-mib', 1024)) << 20;
const BIN = path.resolve(process.env.IMPACT_BIN || path.join(__dirname, '../../build-rel/cli/impact'));
federationEnv();
const BUCKET = 'archive-bench';
const DS = 'EGAD-CONTROLLED-1';
const timed = (args, env) => timedBin(BIN, args, env, 900000);

async function main() {
  const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR || '/dev/shm', 'impact-bench-archive-'));
  const identityLib = require('../federation/beacon/identity');
  const identity = identityLib.create({
    whoami: (req) => ((req.headers.authorization || '') === 'Bearer bench' ? { sub: 'bench' } : null),
    visasOf: () => [{ exp: Math.floor(Date.now() / 1000) + 86400, ga4gh_visa_v1: { type: 'ControlledAccessGrants', value: identityLib.CONTROLLED_DATASET_URL } }],
  });
  const quiet = { info() {}, warn() {}, error() {}, debug() {}, request() {} };
  const data = path.join(os.tmpdir(), 'impact-bench-archive-data');  // kept between runs: made once
  const sda = await require('../federation/sda/server').start({ port: 0, data, identity, log: quiet });
  try {
    const made = await (await fetch(`${sda.url}/_fed/large`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ size: SIZE }) })).json();
    const s3 = require('../federation/lib/s3').createClient();
    await s3.createBucket(BUCKET).catch(() => {});
    const head = await s3.headObject(BUCKET, 'plain/blob');
    if (!head || head.contentLength !== SIZE) await s3.putObject(BUCKET, 'plain/blob', fs.readFileSync(made.plain), { contentType: 'application/octet-stream' });
    const home = path.join(root, 'home');
    const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'c'), XDG_CACHE_HOME: path.join(home, 'k'),
      XDG_STATE_HOME: path.join(home, 's'), XDG_DATA_HOME: path.join(home, 'd'), IMPACT_TOKEN: 'bench',
      AWS_ACCESS_KEY_ID: process.env.FED_S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: process.env.FED_S3_SECRET_KEY };
    fs.mkdirSync(path.join(env.XDG_CONFIG_HOME, 'impact'), { recursive: true });
    fs.mkdirSync(env.XDG_CACHE_HOME, { recursive: true });
    fs.writeFileSync(path.join(env.XDG_CONFIG_HOME, 'impact', 'config.toml'),
      `default_profile = "bench"\n[profiles.bench]\narchive = "${sda.url}"\n[profiles.bench.storage]\n` +
      `url = "${process.env.FED_S3_URL}"\nbucket = "${BUCKET}"\nregion = "${process.env.FED_S3_REGION || 'us-east-1'}"\n`);
    await timed(['keys', 'generate', 'bench', '--no-passphrase'], env);
    const cmds = [
      { how: 'archive download', args: (out) => ['archive', 'download', DS, made.filePath, '-o', out], file: made.filePath },
      { how: 'results download', args: (out) => ['results', 'download', `s3://${BUCKET}/plain/blob`, '-o', out], file: 'blob' },
    ];
    const times = new Map(cmds.map((k) => [k, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const k of cmds) {
        const out = path.join(root, 'out');
        fs.rmSync(out, { recursive: true, force: true });
        const t = await timed(k.args(out), env);
        if (fs.statSync(path.join(out, k.file)).size !== SIZE) throw new Error(`${k.how} did not write the file`);
        fs.rmSync(out, { recursive: true, force: true });
        times.get(k).push(t);
        console.error(`run ${r + 1}: ${k.how} ${t.secs} s ${t.rss} KiB`);
      }
    }
    const med = (k) => ({ secs: median(times.get(k).map((t) => t.secs)), rss_mib: +(Math.max(...times.get(k).map((t) => t.rss)) / 1024).toFixed(1) });
    const a = med(cmds[0]);
    const s = med(cmds[1]);
    const ratio = a.secs / s.secs;
    const ok = ratio <= 1.2 && a.rss_mib < 64 && s.rss_mib < 64;
    console.log(`archive download vs results download of ${SIZE >> 20} MiB, ${new Date().toISOString().slice(0, 16)}Z, ${os.cpus().length} CPUs, ` +
      `load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, median of ${RUNS} runs (peak RSS: the largest).`);
    console.log('\n| command | seconds | peak RSS MiB |\n|---|---:|---:|');
    console.log(`| impact archive download (decrypt + sha256) | ${a.secs.toFixed(2)} | ${a.rss_mib} |`);
    console.log(`| impact results download (plaintext, md5) | ${s.secs.toFixed(2)} | ${s.rss_mib} |`);
    console.log(`\nratio ${ratio.toFixed(2)} (target <= 1.2); peak memory target < 64 MiB: ${ok ? 'met' : 'NOT met'}.`);
    console.log(JSON.stringify({ runs: RUNS, size: SIZE, archive_s: a.secs, results_s: s.secs, ratio, archive_rss_mib: a.rss_mib, results_rss_mib: s.rss_mib, ok }));
    process.exitCode = ok ? 0 : 1;
  } finally {
    await sda.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
