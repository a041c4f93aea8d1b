'use strict';
// impact archive against the federation's SDA download service (tests/federation/sda/server.js): listings,
// downloads decrypted on the fly and byte-identical to the plaintexts, --keep-encrypted checked with the
// independent reference implementation, a user without the visa (exit 5), faults (a dropped connection, 503,
// a corrupted segment), kill -9 and resume counting what the archive served again, and the v1 fallback.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const { BIN, federation, home, impact, impactAsync, userToken, loggedIn, expireAccessToken, resetOidcStats, oidcStats } = require('./helpers');

const DS = 'EGAD-CONTROLLED-1';
const REFERENCE = path.join(__dirname, '../crypt4gh_reference.py');
const fed = federation();
const SDA = fed.services.sda;
const plainDir = path.join(fed.state, 'data', 'sda', 'plain', DS);
const tokens = {};
const token = async (who) => { tokens[who] = tokens[who] || (await userToken(who)).access_token; return tokens[who]; };

async function control(p, body) {
  const r = await fetch(`${SDA}${p}`, { method: body === undefined ? 'GET' : 'POST', headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(120000) });
  assert.strictEqual(r.status, 200, `${p}: ${r.status}`);
  return r.json();
}
const served = async (id) => ((await control('/_fed/stats')).files[id] || { content_bytes: 0 }).content_bytes;

// A home with the profile 'local' from the registry and an unprotected Crypt4GH key 'me'.
async function setup(t, who = 'alice', profileArgs = null) {
  const dir = home(t);
  const p = impact(dir, ['profile', 'add', 'local', ...(profileArgs || ['--registry', fed.registry])]);
  assert.strictEqual(p.code, 0, p.stderr);
  assert.strictEqual(impact(dir, ['keys', 'generate', 'me', '--no-passphrase']).code, 0);
  const env = { IMPACT_TOKEN: await token(who) };
  return { dir, env, run: (args, o = {}) => impactAsync(dir, args, { env, timeout: 180000, ...o }) };
}
const same = (file, rel) => assert.ok(fs.readFileSync(file).equals(fs.readFileSync(path.join(plainDir, rel))), `${rel} differs`);

test.beforeEach(() => control('/_fed/reset', {}));

test('the archive is found through the registry; datasets, files, service-info', async (t) => {
  const { dir, run } = await setup(t);
  assert.ok(fs.readFileSync(path.join(dir, 'config', 'impact', 'config.toml'), 'utf8').includes(`archive = '${SDA}'`));
  let r = await run(['--json', 'archive', 'datasets']);
  assert.strictEqual(r.code, 0, r.stderr);
  assert.deepStrictEqual(JSON.parse(r.stdout), { api: 'v2', datasets: [DS] });
  r = await run(['--json', 'archive', 'files', DS, '--prefix', 'samples/']);
  assert.strictEqual(r.code, 0, r.stderr);
  const files = JSON.parse(r.stdout).files;
  assert.deepStrictEqual(files.map((f) => f.path), ['samples/s1.vcf', 'samples/s2.vcf', 'samples/segment.bin']);
  const s1 = files[0];
  assert.strictEqual(s1.decryptedSize, fs.statSync(path.join(plainDir, 'samples/s1.vcf')).size);
  assert.strictEqual(s1.checksums[0].checksum, crypto.createHash('sha256').update(fs.readFileSync(path.join(plainDir, 'samples/s1.vcf'))).digest('hex'));
  r = await run(['archive', 'files', DS]);
  assert.match(r.stdout, /reads\/sample\.bam/);
  r = await run(['--json', 'service-info', 'archive']);
  assert.strictEqual(r.code, 0, r.stderr);
  assert.match(JSON.parse(r.stdout).services[0].id, /sda\.download$/);
});

test('download: every file decrypted on the fly, byte-identical, sha256 verified; a second run skips them', async (t) => {
  const { dir, run } = await setup(t);
  const out = path.join(dir, 'out');
  let r = await run(['--json', 'archive', 'download', DS, '-o', out, '--prefix', 'samples/', 'reads/sample.bam', 'README.txt', 'empty.txt']);
  assert.strictEqual(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.strictEqual(res.files.length, 6);
  for (const f of res.files) {
    assert.strictEqual(f.status, 'downloaded', JSON.stringify(f));
    if (f.size > 0) assert.strictEqual(f.verified, 'size,sha256');
    same(path.join(out, f.path), f.path);
  }
  assert.deepStrictEqual(fs.readdirSync(out).sort(), ['README.txt', 'empty.txt', 'reads', 'samples']);
  r = await run(['--json', 'archive', 'download', DS, 'reads/sample.bam', '-o', out]);
  assert.strictEqual(JSON.parse(r.stdout).files[0].status, 'skipped');
  // a path that is not there
  r = await run(['archive', 'download', DS, 'nope.txt', '-o', out]);
  assert.strictEqual(r.code, 1);
  assert.match(r.stderr, /has no file nope\.txt/);
});

test('--keep-encrypted: the Crypt4GH file as served, which the independent implementation decrypts', async (t) => {
  const { dir, run } = await setup(t);
  const out = path.join(dir, 'enc');
  const r = await run(['archive', 'download', DS, 'samples/s1.vcf', 'reads/sample.bam', '--keep-encrypted', '-o', out]);
  assert.strictEqual(r.code, 0, r.stderr);
  const key = path.join(dir, '.local', 'share', 'impact', 'keys', 'me.sec');
  for (const rel of ['samples/s1.vcf', 'reads/sample.bam']) {
    const enc = fs.readFileSync(path.join(out, rel));
    assert.strictEqual(enc.subarray(0, 8).toString(), 'crypt4gh');
    const d = spawnSync('python3', [REFERENCE, 'decrypt', key], { input: enc, maxBuffer: 64 << 20 });
    assert.strictEqual(d.status, 0, String(d.stderr));
    assert.ok(d.stdout.equals(fs.readFileSync(path.join(plainDir, rel))), rel);
  }
});

test('a user without the visa: no datasets, and 403 said as "no access or no such file" with exit 5', async (t) => {
  const { dir, run } = await setup(t, 'bob');
  let r = await run(['--json', 'archive', 'datasets']);
  assert.strictEqual(r.code, 0, r.stderr);
  assert.deepStrictEqual(JSON.parse(r.stdout).datasets, []);
  r = await run(['archive', 'files', DS]);
  assert.strictEqual(r.code, 5, r.stderr);
  assert.match(r.stderr, /403/);
  assert.match(r.stderr, /no access/);
  r = await run(['archive', 'download', DS, '-o', path.join(dir, 'out')]);
  assert.strictEqual(r.code, 5, r.stderr);
  assert.ok(!fs.existsSync(path.join(dir, 'out', 'README.txt')));
});

test('faults: a dropped connection and a 503 are retried; a corrupted segment is named and leaves no file', async (t) => {
  const { dir, run } = await setup(t);
  const out = path.join(dir, 'out');
  await control('/_fed/faults', { file: 'reads/sample.bam', drop_after_bytes: 500000 });
  await control('/_fed/faults', { file: 'samples/s1.vcf', unavailable: 1, retry_after: 1 });
  let r = await run(['archive', 'download', DS, 'reads/sample.bam', 'samples/s1.vcf', '-o', out]);
  assert.strictEqual(r.code, 0, r.stderr);
  same(path.join(out, 'reads/sample.bam'), 'reads/sample.bam');
  same(path.join(out, 'samples/s1.vcf'), 'samples/s1.vcf');
  await control('/_fed/faults', { file: 'samples/segment.bin', corrupt_segment: 0, times: 20 });
  r = await run(['archive', 'download', DS, 'samples/segment.bin', '-o', out]);
  assert.strictEqual(r.code, 1, r.stderr);
  assert.match(r.stderr, /segment 0 .*failed authentication/);
  assert.ok(!fs.existsSync(path.join(out, 'samples/segment.bin')));
});

test('kill -9 in the middle of 200 MB, then resume: what is on disk is not fetched again', async (t) => {
  const SIZE = 200 * 1000 * 1000;
  const big = await control('/_fed/large', { size: SIZE });
  const { dir, env } = await setup(t);
  const out = path.join(dir, 'out');
  const args = ['archive', 'download', DS, big.filePath, '-o', out, '--parallel', '2'];
  const state = path.join(out, `${big.filePath}.impact-state`);
  const child = spawn(BIN, args, { env: { ...process.env, ...env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache') }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 120000;
  let done = [];
  while (Date.now() < deadline) {
    try { done = JSON.parse(fs.readFileSync(state, 'utf8')).done; } catch (e) { done = []; }
    if (done.length >= 4) break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(done.length >= 4, 'parts were recorded before the kill');
  const st = JSON.parse(fs.readFileSync(state, 'utf8'));
  assert.ok(st.done.length < Math.ceil(SIZE / st.part_size), 'the kill came before the end');
  const before = await served(big.fileId);
  const r = await impactAsync(dir, args, { env, timeout: 300000 });
  assert.strictEqual(r.code, 0, r.stderr);
  const again = (await served(big.fileId)) - before;
  const kept = st.done.length * st.part_size;
  const sealed = (n) => n + Math.ceil(n / 65536) * 28;
  // the second run fetched what was missing (whole segments around each part's ends), not what was kept
  assert.ok(again <= sealed(SIZE - kept) + 2 * 65564 * (Math.ceil(SIZE / st.part_size) - st.done.length),
    `served again ${again} bytes with ${kept} of ${SIZE} kept`);
  assert.ok(fs.readFileSync(path.join(out, big.filePath)).equals(fs.readFileSync(big.plain)));
  fs.rmSync(out, { recursive: true, force: true });
});

test('v1: an archive without v2 is used through /metadata and /s3 with Client-Public-Key', async (t) => {
  process.env.FED_ISSUER = fed.issuer;
  process.env.FED_VISA_ISSUER = fed.visa_issuer;
  const data = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'impact-sda-v1-'));
  t.after(() => fs.rmSync(data, { recursive: true, force: true }));
  const quiet = { info() {}, warn() {}, error() {}, debug() {}, request() {} };
  const v1 = await require('../federation/sda/server').start({ port: 0, api: 'v1', data, log: quiet });
  t.after(() => v1.close());
  const { dir, run } = await setup(t, 'alice', ['--archive', v1.url]);
  let r = await run(['--json', 'archive', 'datasets']);
  assert.strictEqual(r.code, 0, r.stderr);
  assert.deepStrictEqual(JSON.parse(r.stdout), { api: 'v1', datasets: [DS] });
  const out = path.join(dir, 'out');
  r = await run(['--json', 'archive', 'download', DS, 'samples/s1.vcf', 'reads/sample.bam', '-o', out]);
  assert.strictEqual(r.code, 0, r.stderr);
  for (const rel of ['samples/s1.vcf', 'reads/sample.bam'])
    assert.ok(fs.readFileSync(path.join(out, rel)).equals(fs.readFileSync(path.join(data, 'plain', DS, rel))), rel);
  assert.deepStrictEqual(JSON.parse(r.stdout).files.map((f) => f.verified), ['size,sha256', 'size,sha256']);
});

test('a login whose access token has expired is refreshed once for a download, not per request', async (t) => {
  const dir = await loggedIn(t);
  assert.strictEqual(impact(dir, ['keys', 'generate', 'me', '--no-passphrase']).code, 0);
  expireAccessToken(dir);
  await resetOidcStats();
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['archive', 'download', DS, '--prefix', 'samples/', 'reads/sample.bam', '-o', out], { timeout: 120000 });
  assert.strictEqual(r.code, 0, r.stderr);
  same(path.join(out, 'reads/sample.bam'), 'reads/sample.bam');
  assert.deepStrictEqual(await oidcStats(), { 'success:refresh_token': 1 });
});
