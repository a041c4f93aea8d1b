#!/usr/bin/env node
'use strict';
// Benchmark: `impact search` across N beacons that each take D ms must take at most 1.3x the time of the
// same search against one such beacon (the beacons are asked in parallel).
//
//   node tests/bench/beacon-search.js [--beacons 16] [--delay-ms 150] [--runs 7] [--bin build/cli/impact]
//
// Starts N reference beacons, each in its own process as in a real federation (tests/federation/beacon/
// server.js, public instance, every /api request delayed by D ms), writes a profile naming them, warms the /map cache once, then times R runs of
// `impact search individuals --filter HP:0001250` against 1 beacon and against all N, and prints the
// medians and their ratio. Exit status 1 when the ratio is over 1.3. Measure a Release build
// (cmake -B build-release -DCMAKE_BUILD_TYPE=Release; --bin build-release/cli/impact): a Debug build spends
// more of the time in JSON parsing, and the beacons' own CPU use counts too (16 Node processes on the cores).
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('beacons', 16));
const DELAY = Number(arg('delay-ms', 150));
const RUNS = Number(arg('runs', 7));
const BIN = path.resolve(arg('bin', path.join(__dirname, '../../build/cli/impact')));
const { start } = require('../federation/beacon/server');
const quiet = { info() {}, warn() {}, error() {}, debug() {}, request() {}, close: async () => {} };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// One beacon in a child process (this script with --serve); resolves to {apiUrl, close()}.
function startChild(i) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [__filename, '--serve', String(i), '--delay-ms', String(DELAY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => { child.kill(); fail(new Error('beacon did not start in 20 s')); }, 20000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      ok({ apiUrl: out.trim(), close: () => new Promise((done) => { child.once('exit', done); child.kill(); }) });
    });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`beacon exited with ${code}`)); });
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-bench-'));
  const servers = [];
  try {
    for (let i = 0; i < N; i++) servers.push(await startChild(i));
    const env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache') };
    // Asynchronous: the beacons live in this process and must keep answering while impact runs.
    const run = (args) => new Promise((ok, fail) => {
      execFile(BIN, args, { env, encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) => {
        if (err) fail(new Error(`impact ${args.join(' ')}: ${err.message}: ${stderr}`));
        else ok({ stdout, stderr });
      });
    });
    await run(['profile', 'add', 'bench', ...servers.flatMap((s, i) => ['--beacon', `b${String(i).padStart(2, '0')}=${s.apiUrl}`])]);
    const query = ['search', 'individuals', '--filter', 'HP:0001250', '--json'];
    await run(query); // warm the /map and /filtering_terms cache of every beacon
    const time = async (extra) => {
      const t0 = process.hrtime.bigint();
      const r = await run([...query, ...extra]);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const j = JSON.parse(r.stdout);
      if (j.summary.failed !== 0 || j.summary.answered !== j.summary.asked) throw new Error(`not every beacon answered: ${r.stdout}`);
      return ms;
    };
    // Interleave the two cases so that load on the machine hits both alike.
    const one = [];
    const all = [];
    for (let i = 0; i < RUNS; i++) {
      one.push(await time(['--beacon', 'b00']));
      all.push(await time([]));
    }
    const m1 = median(one);
    const mN = median(all);
    const ratio = mN / m1;
    console.log(JSON.stringify({ beacons: N, delay_ms: DELAY, runs: RUNS, one_beacon_ms: Math.round(m1), all_beacons_ms: Math.round(mN),
      ratio: Number(ratio.toFixed(3)), limit: 1.3, ok: ratio <= 1.3 }));
    process.exitCode = ratio <= 1.3 ? 0 : 1;
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--serve')) {
  start({ port: 0, instance: 'public', name: `bench-${arg('serve')}`, delayMs: DELAY, log: quiet })
    .then((b) => process.stdout.write(`${b.apiUrl}\n`));
} else {
  main().catch((e) => { console.error(e.message); process.exitCode = 2; });
}
