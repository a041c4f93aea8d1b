'use strict';
// Fault and load tests (issue 9), on loopback against the local federation, with the federation's fault
// proxy (tests/federation/proxy) and its servers' own fault switches. Each case goes beyond a single-fault
// test elsewhere: results.test.js and drs.test.js inject one fault per download and kill once, auth.test.js
// runs 32 concurrent `impact token`, search.test.js has one hanging beacon, run.test.js a WES failing every
// 3rd request for one run at a time.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const {
  BIN, federation, home, impact, impactAsync, runHome, startWes, userToken,
  oidcStats, resetOidcStats, userinfo, expireAccessToken, loggedIn,
} = require('./helpers');
const S3 = require('../federation/lib/s3');
const { startProxy } = require('../federation/proxy/server');

const fed = federation();
process.env.FED_ISSUER = fed.issuer; // for the in-process beacons' token checks
const s3cfg = fed.s3;
const BUCKET = s3cfg.results_bucket || 'results';
const RUN = `r${process.pid}`;
const s3 = S3.createClient({ url: s3cfg.url, accessKey: s3cfg.access_key, secretKey: s3cfg.secret_key, region: s3cfg.region, timeoutMs: 120000 });
const KEYS = { AWS_ACCESS_KEY_ID: s3cfg.access_key, AWS_SECRET_ACCESS_KEY: s3cfg.secret_key };
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const leftovers = (dir) => fs.readdirSync(dir, { recursive: true }).filter((f) => /\.impact-(part|state)|\.tmp/.test(f));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A home whose profile 'fed' has the storage at `url` (the RGW or a proxy in front of it).
function storageHome(t, url) {
  const dir = home(t);
  fs.mkdirSync(path.join(dir, 'config', 'impact'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'impact', 'config.toml'),
    `default_profile = "fed"\n[profiles.fed]\nissuer = "${fed.issuer}"\n[profiles.fed.storage]\n` +
    `url = "${url}"\nbucket = "${BUCKET}"\nregion = "${s3cfg.region}"\nsts = "${s3cfg.sts_url}"\n`);
  return dir;
}

// An error line of impact: one line, saying what failed; never a crash or a sanitizer report.
function assertCleanStderr(stderr) {
  assert.doesNotMatch(stderr, /terminate called|Segmentation|Sanitizer|Assertion|std::|what\(\)/);
  for (const line of stderr.split('\n').filter(Boolean)) assert.ok(line.length < 600, `a long stderr line: ${line}`);
}

const SMALL = Array.from({ length: 100 }, (_, i) => ({
  key: `runs/${RUN}-small/${String(i).padStart(3, '0')}.bin`,
  bytes: crypto.randomBytes(i % 10 === 0 ? i : 1 + crypto.randomInt(96 << 10)),
}));
const BIG = crypto.randomBytes(128 << 20);

test.before(async () => {
  for (let i = 0; i < SMALL.length; i += 20) await Promise.all(SMALL.slice(i, i + 20).map((o) => s3.putObject(BUCKET, o.key, o.bytes)));
  await s3.putObject(BUCKET, `runs/${RUN}-big/big.bin`, BIG);
});

// One random fault for one object's GET, or none (about 40 % of the objects get one).
function randomFault(o) {
  const faults = [
    { reset_after_bytes: crypto.randomInt(o.bytes.length + 1) },
    { truncate_body: crypto.randomInt(o.bytes.length + 1) },
    { status: [500, 502, 503, 504][crypto.randomInt(4)], retry_after: crypto.randomInt(2) },
    { status: 429, retry_after: 1 },
    { stall_ms: 200 + crypto.randomInt(1300) },
    { corrupt_body: o.bytes.length > 0 ? crypto.randomInt(o.bytes.length) : true },
    { drop_after_request: true },
  ];
  if (crypto.randomInt(10) >= 4) return null;
  const name = path.basename(o.key).replace('.', '\\.');
  return { method: 'GET', path: `/${RUN}-small/${name}($|\\?)`, times: 1 + crypto.randomInt(2), ...faults[crypto.randomInt(faults.length)] };
}

test('100 small downloads under random injected faults: no corrupt file, every failure a one-line error', async (t) => {
  const proxy = await startProxy({ target: s3cfg.url, port: 0 });
  t.after(() => proxy.close());
  const dir = storageHome(t, proxy.url);
  const out = path.join(dir, 'out');
  const want = new Map(SMALL.map((o) => [path.basename(o.key), sha256(o.bytes)]));
  // Each round: new random faults (the listing too, now and then); whatever is on disk must be exact.
  let injected = 0;
  for (let round = 0; round < 3; round++) {
    proxy.clearFaults();
    proxy.clearLog();
    if (round === 1) proxy.addFault({ method: 'GET', path: 'list-type=2', status: 503, retry_after: 1 });
    const rules = SMALL.filter((o) => !fs.existsSync(path.join(out, path.basename(o.key)))).map(randomFault).filter(Boolean);
    for (const r of rules) proxy.addFault(r);
    const r = await impactAsync(dir, ['results', 'download', `${RUN}-small`, '-o', out, '--parallel', '8', '--json'], { env: KEYS, timeout: 120000 });
    injected += proxy.requests().filter((q) => q.fault).length;
    assertCleanStderr(r.stderr);
    const s = JSON.parse(r.stdout);
    const failed = s.files.filter((f) => f.error);
    assert.equal(r.code === 0, failed.length === 0, `exit ${r.code} with ${failed.length} failures: ${r.stderr}`);
    for (const f of failed) {
      assert.ok(f.error.length > 0 && !f.error.includes('\n'), `one-line error: ${JSON.stringify(f)}`);
      assert.ok(!fs.existsSync(path.join(out, f.path)), `nothing at the final path of failed ${f.path}`);
    }
    for (const name of fs.readdirSync(out)) {
      if (!want.has(name)) continue;
      assert.equal(sha256(fs.readFileSync(path.join(out, name))), want.get(name), `${name} is byte-identical`);
    }
    assert.deepEqual(leftovers(out), []);
    t.diagnostic(`round ${round}: ${rules.length} faulty objects, ${failed.length} failed (exit ${r.code}), ${s.files.length - failed.length} done`);
    for (const e of new Set(failed.map((f) => f.error.replace(/[0-9a-f]{16,}/g, 'HEX')))) t.diagnostic(`  ${e}`);
  }
  assert.ok(injected >= 20, `faults were injected (${injected})`);
  proxy.clearFaults();
  const last = await impactAsync(dir, ['results', 'download', `${RUN}-small`, '-o', out, '--json'], { env: KEYS, timeout: 120000 });
  assert.equal(last.code, 0, last.stderr);
  assert.deepEqual(fs.readdirSync(out).sort(), [...want.keys()].sort());
  for (const [name, sum] of want) assert.equal(sha256(fs.readFileSync(path.join(out, name))), sum, name);
});

test('kill -9 at ten random points of a 128 MiB download, then resume: byte-identical', async (t) => {
  const dir = storageHome(t, s3cfg.url);
  const out = path.join(dir, 'out');
  const state = path.join(out, 'big.bin.impact-state');
  const args = ['results', 'download', `s3://${BUCKET}/runs/${RUN}-big/big.bin`, '-o', out, '--part-size', '4M', '--parallel', '2'];
  const parts = BIG.length / (4 << 20);
  // ten stopping points (parts done), increasing, the first may be before any part is written
  const stops = Array.from({ length: 10 }, (_, i) => Math.floor((i * (parts - 8)) / 10) + crypto.randomInt(3));
  const done = () => { try { return JSON.parse(fs.readFileSync(state, 'utf8')).done.length; } catch { return 0; } };
  const at = [];
  for (const stop of stops) {
    const child = spawn(BIN, args, { env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache'), ...KEYS }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    await sleep(crypto.randomInt(40));
    for (let i = 0; i < 3000 && child.exitCode === null && done() < stop; i++) await sleep(10);  // at most 30 s
    child.kill('SIGKILL');
    const e = await exited;
    assert.equal(e.sig, 'SIGKILL', `killed before the end (stop ${stop}, exit ${e.code})`);
    at.push(done());
    assert.ok(!fs.existsSync(path.join(out, 'big.bin')), 'nothing at the final path after a kill');
  }
  t.diagnostic(`parts done at the ten kills: ${at.join(' ')} (of ${parts})`);
  assert.ok(at.at(-1) > 0, 'the kills came during the download');
  const r = await impactAsync(dir, [...args, '--json'], { env: KEYS, timeout: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.files[0].resumed, true);
  assert.ok(s.bytes < BIG.length, 'only the missing parts were fetched');
  assert.equal(sha256(fs.readFileSync(path.join(out, 'big.bin'))), sha256(BIG));
  assert.deepEqual(leftovers(out), []);
});

test('64 concurrent `impact token` on an expired access token: all succeed, one refresh, grant alive', async (t) => {
  await fetch(`${fed.issuer}/__control`, { method: 'POST', body: JSON.stringify({ deviceInterval: 1 }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) });
  const dir = await loggedIn(t);
  expireAccessToken(dir);
  await resetOidcStats();
  const runs = await Promise.all(Array.from({ length: 64 }, () => impactAsync(dir, ['token'], { timeout: 120000 })));
  const failed = runs.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, failed.map((r) => r.stderr).join('\n'));
  assert.equal(new Set(runs.map((r) => r.stdout.trim())).size, 1, 'every process printed the same fresh token');
  assert.deepEqual(await oidcStats(), { 'success:refresh_token': 1 });
  expireAccessToken(dir);
  const next = impact(dir, ['token']);
  assert.equal(next.code, 0, next.stderr);
  assert.equal((await userinfo(next.stdout.trim())).json.sub, 'alice');
});

test('a Beacon federation where a third of the beacons hang: the search returns within its timeout, exit 6', async (t) => {
  const beaconServer = require('../federation/beacon/server');
  const extra = await Promise.all(Array.from({ length: 6 }, (_, i) => beaconServer.start({
    port: 0, instance: ['public', 'registered', 'controlled'][i % 3], name: `extra-${i}`, delayMs: i < 3 ? 20000 : 0,
  })));
  t.after(() => Promise.all(extra.map((b) => b.close())));
  const dir = home(t);
  const p = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry, ...extra.flatMap((b, i) => ['--beacon', `${i < 3 ? 'hang' : 'ok'}${i}=${b.apiUrl}`])]);
  assert.equal(p.code, 0, p.stderr);
  const env = { IMPACT_TOKEN: (await userToken('alice')).access_token };
  const started = Date.now();
  const r = await impactAsync(dir, ['search', 'individuals', '--filter', 'HP:0001250', '--timeout', '3s', '--json'], { env, timeout: 60000 });
  const took = Date.now() - started;
  assert.equal(r.code, 6, r.stderr);
  assert.ok(took < 3000 + 4000, `the search took ${took} ms with a 3 s timeout`);
  const j = JSON.parse(r.stdout);
  assert.equal(j.summary.asked, 9);
  assert.equal(j.summary.answered, 6);
  assert.equal(j.summary.failed, 3);
  for (const b of j.beacons) {
    if (b.name.startsWith('hang')) assert.equal(b.error.kind, 'timeout', JSON.stringify(b));
    else assert.equal(b.answered, true, JSON.stringify(b));
  }
  assertCleanStderr(r.stderr);
});

test('run wait on 50 runs of a WES failing every 10th request: the right states and exit code 10', async (t) => {
  // 10 finished (seeded) runs and 40 real ones that fail, queued behind the WES's 2 slots, so the wait polls
  // for a while; the 500s hit the submissions and the polls alike.
  const { port } = await startWes(t, ['--seed-runs', '10', '--fail-every', '10']);
  const s = runHome(t, { token: (await userToken('alice')).access_token, wes: `http://127.0.0.1:${port}/ga4gh/wes/v1` });
  const real = [];
  for (let i = 0; i < 40; i++) {
    const r = await s.runAsync(['submit', path.resolve(__dirname, '../federation/wes/workflows/fails.cwl')]);
    assert.equal(r.code, 0, r.stderr);
    real.push(r.stdout.trim());
  }
  assert.equal(new Set(real).size, 40);
  const ids = [...Array.from({ length: 10 }, (_, i) => `seed-${String(i + 1).padStart(6, '0')}`), ...real];
  // -v and --json are global options: they go before `run`
  const w = await impactAsync(s.dir, ['-v', '--json', 'run', 'wait', ...ids, '--poll-interval', '1s', '--timeout', '3m'], { env: s.env, timeout: 240000 });
  assert.equal(w.code, 10, w.stderr);
  const events = w.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const j = events.at(-1);
  assert.equal(j.event, 'done');
  assert.equal(j.exit_code, 10);
  assert.equal(j.timed_out, false);
  assert.equal(j.runs.length, 50);
  const states = Object.fromEntries(j.runs.map((x) => [x.run_id, x.state]));
  for (const id of ids) assert.equal(states[id], real.includes(id) ? 'EXECUTOR_ERROR' : 'COMPLETE', id);
  assert.ok(events.some((e) => e.event === 'state' && real.includes(e.run_id)), 'the wait saw runs change');
  const fivehundreds = w.stderr.split('\n').filter((l) => / 500 /.test(l)).length;
  t.diagnostic(`run wait: ${w.stderr.split('\n').filter((l) => l.startsWith('* ')).length} requests, ${fivehundreds} answered 500`);
  assert.ok(fivehundreds >= 1, 'the WES failed some of the polls');
  assert.equal(s.json(['list']).runs.length, 50, 'no submission was duplicated');
  // The first failed runs show their stderr; the others are named in one bounded line.
  assert.match(w.stderr, new RegExp(`^${real.length - 3} more runs failed \\(their ids are in the states above\\); .* run logs RUN_ID --stderr`, 'm'));
  assertCleanStderr(w.stderr);
});
