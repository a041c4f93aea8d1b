'use strict';
// Benchmarks of impact run, run by hand or by tests/bench (not part of ctest: speed is measured, not asserted in the suite):
// the federation's WES code, and waiting on 200 runs of a scripted server. Figures go to the TAP output.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { BIN, impact, runHome, server, startWes, userToken } = require('../cli/helpers');

let token;
test.before(async () => { token = (await userToken('alice')).access_token; });
const setup = (t, wes) => runHome(t, { token, wes });

test('benchmark: run list over 10,000 runs in under 1 s (optimised build) and under 64 MiB', async (t) => {
  const { state, port } = await startWes(t, ['--seed-runs', '10000', '--seed-user', 'alice']);
  const s = setup(t, `http://127.0.0.1:${port}/ga4gh/wes/v1`);
  s.run(['list', '--limit', '1']);  // warm the token check
  const timeFile = path.join(state, 'time.txt');
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, BIN, '--json', 'run', 'list'], {
    env: { PATH: process.env.PATH, HOME: s.dir, XDG_CONFIG_HOME: path.join(s.dir, 'config'), ...s.env }, encoding: 'utf8',
    maxBuffer: 64 << 20, timeout: 60000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.equal(r.status, 0, r.stderr);
  const runs = JSON.parse(r.stdout).runs;
  assert.equal(runs.length, 10000);
  assert.equal(runs[0].run_id, 'seed-010000', 'newest first');
  const rssMiB = Number(fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()) / 1024;
  // The bound is for an optimised build; an unoptimised (Debug) one spends about 6x the CPU in the JSON code (0.65 s against 0.1 s).
  const debug = JSON.parse(impact(s.dir, ['--json', 'version']).stdout).build_type === 'Debug';
  t.diagnostic(`run list over 10,000 runs: ${seconds.toFixed(3)} s, peak RSS ${rssMiB.toFixed(1)} MiB (${debug ? 'Debug' : 'optimised'} build)`);
  assert.ok(seconds < (debug ? 4 : 1), `${seconds} s`);
  assert.ok(rssMiB < 64, `${rssMiB} MiB`);
  assert.ok(!fs.existsSync(path.join(state, 'violations.log')), 'no spec violations');
});

test('benchmark: wait on 200 runs keeps its request rate bounded and returns within one interval of the end', async (t) => {
  const t0 = Date.now();
  const ends = Array.from({ length: 200 }, (_, i) => t0 + 3000 + i * 20);  // the last ends ~7 s in
  const stateOf = (i) => (Date.now() >= ends[i] ? 'COMPLETE' : 'RUNNING');
  const srv = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/ga4gh/wes/v1/runs') {
      return { status: 200, body: { runs: ends.map((_, i) => ({ run_id: `r${i}`, state: stateOf(i), tags: {} })), next_page_token: '' } };
    }
    const m = /^\/ga4gh\/wes\/v1\/runs\/r(\d+)\/status$/.exec(u.pathname);
    if (m) return { status: 200, body: { run_id: `r${m[1]}`, state: stateOf(Number(m[1])) } };
    return { status: 404, body: { msg: 'no', status_code: 404 } };
  });
  const s = setup(t, `${srv.url}/ga4gh/wes/v1`);
  const ids = ends.map((_, i) => `r${i}`);
  const r = await s.runAsync(['wait', ...ids, '--poll-interval', '1s'], { env: { IMPACT_TOKEN: 'test-token' } });
  const done = Date.now();
  assert.equal(r.code, 0, r.stderr);
  const lastEnd = ends.at(-1);
  const seconds = (done - t0) / 1000;
  const requests = srv.seen.length;
  t.diagnostic(`wait on 200 runs: ${requests} requests in ${seconds.toFixed(1)} s (${(requests / seconds).toFixed(2)}/s); returned ${(done - lastEnd)} ms after the last run ended`);
  assert.ok(requests / seconds <= 2, `${requests} requests in ${seconds} s`);
  // within one polling interval (the interval resets to 1 s on every change) plus process start-up
  assert.ok(done - lastEnd < 2500, `returned ${done - lastEnd} ms after the end`);
});
