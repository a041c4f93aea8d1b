'use strict';
// impact results ls|download against the federation's Ceph RGW (SigV4 checked) and its STS, directly and
// through the fault-injection proxy.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { BIN, federation, home, impact, impactAsync, userToken } = require('./helpers');
const S3 = require('../federation/lib/s3');
const { startProxy } = require('../federation/proxy/server');

const fed = federation();
const s3cfg = fed.s3;
const BUCKET = s3cfg.results_bucket || 'results';
const RUN = `t${process.pid}`;           // this file's objects live under runs/<RUN>*/
const s3 = S3.createClient({ url: s3cfg.url, accessKey: s3cfg.access_key, secretKey: s3cfg.secret_key, region: s3cfg.region, timeoutMs: 120000 });
const KEYS = { AWS_ACCESS_KEY_ID: s3cfg.access_key, AWS_SECRET_ACCESS_KEY: s3cfg.secret_key };

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const sha256File = (f) => sha256(fs.readFileSync(f));

// A temporary home with a profile whose storage is `url` (the RGW, or a proxy in front of it).
function setup(t, { url = s3cfg.url, sts = s3cfg.sts_url, prefix } = {}) {
  const dir = home(t);
  fs.mkdirSync(path.join(dir, 'config', 'impact'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'impact', 'config.toml'),
    `default_profile = "fed"\n[profiles.fed]\nissuer = "${fed.issuer}"\n[profiles.fed.storage]\n` +
    `url = "${url}"\nbucket = "${BUCKET}"\nregion = "${s3cfg.region}"\nsts = "${sts}"\n` +
    (prefix ? `result_prefix = "${prefix}"\n` : ''));
  return dir;
}
const noLeftovers = (dir) => fs.readdirSync(dir, { recursive: true }).filter((f) => /\.impact-(part|state)/.test(f));

const BIG = crypto.randomBytes(256 << 20);   // 256 MiB, single PUT: its ETag is its MD5
const MID = crypto.randomBytes(32 << 20);

test.before(async () => {
  await s3.putObject(BUCKET, `runs/${RUN}/out/big.bin`, BIG);
  await s3.putObject(BUCKET, `runs/${RUN}-mid/mid.bin`, MID);
  await s3.putObject(BUCKET, `runs/${RUN}/out/small.txt`, 'hello\n');
  await s3.putObject(BUCKET, `runs/${RUN}/notes.md`, '# notes\n');
  for (const k of ['../../escape.txt', 'ok.txt', 'a\x01b', '//x', 'sub/../../up.txt'])
    await s3.putObject(BUCKET, `runs/${RUN}-hostile/${k}`, `content of ${k}`);
  const many = Array.from({ length: 1005 }, (_, i) => `runs/${RUN}-many/${String(i).padStart(4, '0')}.txt`);
  for (let i = 0; i < many.length; i += 32) await Promise.all(many.slice(i, i + 32).map((k) => s3.putObject(BUCKET, k, k)));
});

test('ls lists every object across pages (more than 1,000 keys)', () => {
  const dir = setup(null);
  try {
    const r = impact(dir, ['results', 'ls', `${RUN}-many`, '--json'], { env: KEYS });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.prefix, `runs/${RUN}-many/`);
    assert.equal(out.objects.length, 1005);
    assert.equal(new Set(out.objects.map((o) => o.key)).size, 1005);
    assert.equal(out.objects[1004].key, `runs/${RUN}-many/1004.txt`);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('download with temporary keys from the STS for the user\'s token, cached 0600 and reused', async (t) => {
  const dir = setup(t);
  const token = (await userToken('alice')).access_token;
  const env = { IMPACT_TOKEN: token };
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', RUN, '-o', out, '--part-size', '16M', '--json'], { env, timeout: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.downloaded, 3);
  assert.equal(sha256File(path.join(out, 'out', 'big.bin')), sha256(BIG));
  assert.equal(fs.readFileSync(path.join(out, 'out', 'small.txt'), 'utf8'), 'hello\n');
  assert.equal(s.files.find((f) => f.path === 'out/big.bin').verified, 'size,md5');
  assert.deepEqual(noLeftovers(out), []);
  const cache = path.join(dir, 'cache', 'impact', 's3', 'fed.json');
  assert.equal(fs.statSync(cache).mode & 0o777, 0o600);
  const cached = JSON.parse(fs.readFileSync(cache, 'utf8'));
  assert.match(cached.access_key, /^STS/);
  assert.ok(!fs.readFileSync(cache, 'utf8').includes(token), 'the OIDC token itself is not cached');
  // Second run: every file is already there and identical; the cached keys are used (no new STS issue).
  const stsLog = path.join(process.env.FED_STATE, 'logs', 'sts.log');
  const issued = () => fs.readFileSync(stsLog, 'utf8').split('\n').filter((l) => l.includes('issued ')).length;
  const before = issued();
  const again = await impactAsync(dir, ['results', 'download', RUN, '-o', out, '--json'], { env, timeout: 60000 });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).skipped, 3);
  assert.equal(issued(), before);
});

test('the STS refuses a bad token: exit 4 with a login hint', async (t) => {
  const dir = setup(t);
  const r = await impactAsync(dir, ['results', 'ls', RUN], { env: { IMPACT_TOKEN: 'not-a-valid-token' }, timeout: 30000 });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /STS did not accept/);
  assert.match(r.stderr, /impact login/);
});

// Starts a ranged download of the 256 MiB object and stops it with `signal` once `stopAt` parts are on
// disk; then runs it again. Returns the first run's exit and the second run's summary.
async function interruptAndResume(t, signal, stopAt) {
  const dir = setup(t);
  const out = path.join(dir, 'out');
  const state = path.join(out, 'big.bin.impact-state');
  const args = ['results', 'download', `s3://${BUCKET}/runs/${RUN}/out/big.bin`, '-o', out];
  const child = spawn(BIN, [...args, '--part-size', '8M', '--parallel', '2'],
    { env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache'), ...KEYS }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
  let sent = false;
  for (let i = 0; i < 6000 && !sent && child.exitCode === null; i++) {   // at most 60 s
    try {
      if (JSON.parse(fs.readFileSync(state, 'utf8')).done.length >= stopAt) { child.kill(signal); sent = true; }
    } catch { /* not written yet */ }
    if (!sent) await new Promise((r) => setTimeout(r, 10));
  }
  const first = await exited;
  assert.ok(sent, `stopped mid-way (stopAt ${stopAt}, exit ${JSON.stringify(first)})`);
  assert.ok(!fs.existsSync(path.join(out, 'big.bin')), 'nothing at the final path after the interruption');
  const r = await impactAsync(dir, [...args, '--json'], { env: KEYS, timeout: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.files[0].resumed, true);
  assert.ok(summary.bytes < BIG.length, 'only the missing parts were fetched');
  assert.equal(sha256File(path.join(out, 'big.bin')), sha256(BIG));
  assert.deepEqual(noLeftovers(out), []);
  return first;
}

test('resume after kill -9 at a random point: byte-identical result', async (t) => {
  const first = await interruptAndResume(t, 'SIGKILL', 1 + crypto.randomInt(20));
  assert.equal(first.signal, 'SIGKILL');
});

test('Ctrl-C (SIGINT) stops with exit 130 and the next run resumes', async (t) => {
  const first = await interruptAndResume(t, 'SIGINT', 1 + crypto.randomInt(20));
  assert.equal(first.code, 130);
});

test('hostile keys are refused one by one; the rest is downloaded (exit 6)', async (t) => {
  const dir = setup(t);
  const out = path.join(dir, 'dest', 'out');
  const r = await impactAsync(dir, ['results', 'download', `${RUN}-hostile`, '-o', out, '--json'], { env: KEYS });
  assert.equal(r.code, 6, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.downloaded, 1);
  assert.equal(s.failed, 4);
  for (const f of s.files.filter((x) => x.status === 'failed')) assert.match(f.error, /^refusing object key/);
  assert.equal(fs.readFileSync(path.join(out, 'ok.txt'), 'utf8'), 'content of ok.txt');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'dest')), ['out']);
  assert.deepEqual(fs.readdirSync(out), ['ok.txt']);
  assert.ok(!/[\x00-\x08\x0b-\x1f]/.test(r.stderr), 'no control characters from keys reach the terminal');
  const ls = await impactAsync(dir, ['results', 'ls', `${RUN}-hostile`], { env: KEYS });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /a\?b\t/);
  assert.ok(!/[\x00-\x08\x0b-\x1f]/.test(ls.stdout));
});

test('progress on a terminal (bytes, rate, ETA, files); one summary line otherwise', async (t) => {
  const dir = setup(t);
  const tty = await impactAsync(dir, ['results', 'download', RUN, '-o', path.join(dir, 'a')], { env: { ...KEYS, IMPACT_FORCE_TTY: '1' }, timeout: 120000 });
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(tty.stderr, /MiB \/ 256\.0 MiB .*\/s .*files \d\/3/);
  assert.match(tty.stderr, /files 3\/3/);
  const plain = await impactAsync(dir, ['results', 'download', RUN, '-o', path.join(dir, 'b')], { env: KEYS, timeout: 120000 });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stderr, '');
  assert.match(plain.stdout, /^downloaded 3 files \(256\.0 MiB\) in [\d.]+ s \([\d.]+ \w+\/s\); skipped 0 identical; 0 failed\n$/);
});

test('--include / --exclude globs', async (t) => {
  const dir = setup(t);
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', RUN, '-o', out, '--include', '*.txt', '--include', '*.md', '--exclude', 'notes*', '--json'], { env: KEYS });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).files.map((f) => f.path), ['out/small.txt']);
});

test('static keys from the profile: a 0600 file of two lines, refused when others can read it', async (t) => {
  const dir = setup(t, { sts: '' });
  const keys = path.join(dir, 'keys');
  fs.writeFileSync(keys, `${s3cfg.access_key}\n${s3cfg.secret_key}\n`, { mode: 0o600 });
  fs.appendFileSync(path.join(dir, 'config', 'impact', 'config.toml'), `keys_file = "${keys}"\n`);
  const r = impact(dir, ['results', 'ls', RUN]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /small\.txt/);
  fs.chmodSync(keys, 0o644);
  const open = impact(dir, ['results', 'ls', RUN]);
  assert.equal(open.code, 1);
  assert.match(open.stderr, /readable by other users\nhint: run: chmod 600 /);
  assert.ok(!open.stderr.includes(s3cfg.secret_key));
});

test('S3 errors: missing object, wrong secret (clock hint), missing credentials', async (t) => {
  const dir = setup(t, { sts: '' });
  let r = impact(dir, ['results', 'download', `s3://${BUCKET}/runs/${RUN}/nope.bin`, '-o', path.join(dir, 'o')], { env: KEYS });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nothing at s3:\/\/results\/runs\/.*nope\.bin\//);
  r = impact(dir, ['results', 'ls', RUN], { env: { AWS_ACCESS_KEY_ID: s3cfg.access_key, AWS_SECRET_ACCESS_KEY: 'wrong-secret' } });
  assert.equal(r.code, 4);
  assert.match(r.stderr, /SignatureDoesNotMatch/);
  assert.match(r.stderr, /clock/);
  assert.ok(!r.stderr.includes('wrong-secret'));
  r = impact(dir, ['results', 'ls', RUN]);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /no credentials for the object storage/);
});

test('a presigned URL downloads without any keys; an expired one is a clear 403', async (t) => {
  const dir = setup(t);
  const url = s3.presignGet(BUCKET, `runs/${RUN}-mid/mid.bin`, 300);
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', url, '-o', out, '--part-size', '8M', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256File(path.join(out, 'mid.bin')), sha256(MID));
  assert.ok(!r.stdout.includes('X-Amz-Signature='), 'the signature is not echoed');
  const expired = s3.presignGet(BUCKET, `runs/${RUN}-mid/mid.bin`, 60, { date: new Date(Date.now() - 3600e3) });
  const e = await impactAsync(dir, ['results', 'download', expired, '-o', out]);
  assert.equal(e.code, 5, e.stderr);
  assert.match(e.stderr, /AccessDenied/);
});

// Faults from the proxy, each on one ranged part of a 32 MiB object: the download recovers and the file
// is byte-identical; a corrupted body is caught by the MD5 check and leaves nothing behind.
for (const [name, fault] of [
  ['connection reset mid-part', { reset_after_bytes: 100000 }],
  ['503 with Retry-After', { status: 503, retry_after: 1, times: 2 }],
  ['truncated body', { truncate_body: 5000 }],
  ['stalled response', { stall_ms: 1500 }],
]) {
  test(`fault: ${name}`, async (t) => {
    const proxy = await startProxy({ target: s3cfg.url, port: 0 });
    t.after(() => proxy.close());
    proxy.addFault({ method: 'GET', path: `mid\\.bin`, after: 1, ...fault });
    const dir = setup(t, { url: proxy.url });
    const out = path.join(dir, 'out');
    const r = await impactAsync(dir, ['results', 'download', `${RUN}-mid`, '-o', out, '--part-size', '8M', '--parallel', '2', '--json'], { env: KEYS, timeout: 120000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256File(path.join(out, 'mid.bin')), sha256(MID));
    assert.ok(proxy.requests().some((q) => q.fault), 'the fault was injected');
    assert.deepEqual(noLeftovers(out), []);
  });
}

test('fault: corrupted body -> MD5 mismatch, nothing at the final path; the next run succeeds', async (t) => {
  const proxy = await startProxy({ target: s3cfg.url, port: 0 });
  t.after(() => proxy.close());
  proxy.addFault({ method: 'GET', path: `mid\\.bin`, after: 2, corrupt_body: true });
  const dir = setup(t, { url: proxy.url });
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', `${RUN}-mid`, '-o', out, '--part-size', '8M', '--json'], { env: KEYS, timeout: 120000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(JSON.parse(r.stdout).files[0].error, /MD5 mismatch/);
  assert.ok(!fs.existsSync(path.join(out, 'mid.bin')));
  assert.deepEqual(noLeftovers(out), []);
  const again = await impactAsync(dir, ['results', 'download', `${RUN}-mid`, '-o', out], { env: KEYS, timeout: 120000 });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(sha256File(path.join(out, 'mid.bin')), sha256(MID));
});
