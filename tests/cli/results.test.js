'use strict';
// impact results ls|download against the federation's Ceph RGW (SigV4 checked) and its STS, directly and
// through the fault-injection proxy.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
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
// With `wes`, the profile has the federation's WES too; `prefix` ('' = none) replaces the result_prefix template.
function setup(t, { url = s3cfg.url, sts = s3cfg.sts_url, prefix, wes = false } = {}) {
  const dir = home(t);
  fs.mkdirSync(path.join(dir, 'config', 'impact'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'impact', 'config.toml'),
    `default_profile = "fed"\n[profiles.fed]\nissuer = "${fed.issuer}"\n` + (wes ? `wes = "${fed.services.wes}"\n` : '') +
    `[profiles.fed.storage]\nurl = "${url}"\nbucket = "${BUCKET}"\nregion = "${s3cfg.region}"\nsts = "${sts}"\n` +
    (prefix !== undefined ? `result_prefix = "${prefix}"\n` : ''));
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
  await s3.putObject(BUCKET, `runs/${RUN}-empty/empty.txt`, '');
  for (const k of ['../../escape.txt', 'ok.txt', 'a\x01b', '//x', 'sub/../../up.txt'])
    await s3.putObject(BUCKET, `runs/${RUN}-hostile/${k}`, `content of ${k}`);
  await s3.putObject(BUCKET, `runs/${RUN}-links/one.bin`, MID);
  for (const k of ['small.txt', 'sub/evil.txt', 'deep/er/evil.txt', 'ok.txt'])
    await s3.putObject(BUCKET, `runs/${RUN}-links/${k}`, `content of ${k}`);
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

test('1,005 objects under a hard limit of 200 open files: all downloaded, none left behind', () => {
  const dir = setup(null);
  try {
    const out = path.join(dir, 'many');
    // The shell lowers the hard limit, so impact cannot raise it: the download has to fit its work under it.
    const r = impact(dir, ['-c', 'ulimit -n 200 && exec "$0" "$@"', BIN, 'results', 'download', `${RUN}-many`, '-o', out, '--json'],
      { env: KEYS, timeout: 120000, bin: '/bin/bash' });
    assert.equal(r.code, 0, r.stderr);
    const files = JSON.parse(r.stdout).files;
    assert.equal(files.filter((f) => f.status === 'downloaded').length, 1005);
    assert.equal(fs.readFileSync(path.join(out, '0417.txt'), 'utf8'), `runs/${RUN}-many/0417.txt`);
    assert.deepEqual(noLeftovers(out), []);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

// A disk that is too small, made for real: a 16 MiB tmpfs mounted in a private mount namespace (root, or
// unprivileged user namespaces). The shell runs impact on it, then lists what is left there. As root (CI) the
// test always runs, so a machine that cannot mount fails it rather than skipping it.
const canMount = process.getuid() === 0 || spawnSync('unshare', ['-rm', 'true']).status === 0;
test('a full disk: a ranged download fails before it starts, a single GET when the disk fills; nothing at the final path',
  { skip: canMount ? false : 'needs a private mount namespace (unshare -rm) to mount a small tmpfs' }, () => {
    const dir = setup(null);
    try {
      const small = path.join(dir, 'small');
      fs.mkdirSync(small);
      const onSmallDisk = (args) => {
        const r = impact(dir, ['-rm', 'bash', '-c',
          'mount -t tmpfs -o size=16m tmpfs "$1" || exit 99; shift; "$@"; code=$?; find "$0" -type f -printf "%P %s\\n" | sort >&2; exit $code',
          small, small, BIN, ...args], { env: KEYS, timeout: 60000, bin: 'unshare' });
        assert.notEqual(r.code, 99, r.stderr);
        return r;
      };
      // 32 MiB in 8 MiB parts onto 16 MiB: refused at once, with how much is missing.
      const ranged = onSmallDisk(['results', 'download', `${RUN}-mid`, '-o', small, '--part-size', '8M']);
      assert.equal(ranged.code, 1, ranged.stderr);
      assert.match(ranged.stderr, /not enough free space for .*mid\.bin: 33554432 bytes to write, \d+ free/);
      assert.match(ranged.stderr, /free some space or download to another folder/);
      assert.doesNotMatch(ranged.stderr, /^mid\.bin /m, 'nothing at the final path');
      assert.doesNotMatch(ranged.stderr, /^mid\.bin\.impact-part /m, 'no sparse temporary left behind');
      // One GET of 32 MiB: the disk fills part way through the transfer.
      const single = onSmallDisk(['results', 'download', `${RUN}-mid`, '-o', small, '--part-size', '64M']);
      assert.equal(single.code, 1, single.stderr);
      assert.match(single.stderr, /No space left on device/);
      assert.match(single.stderr, /check free disk space/);
      assert.doesNotMatch(single.stderr, /^mid\.bin /m, 'nothing at the final path');
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

test('the STS refuses a bad IMPACT_TOKEN: exit 4, and the hint says that token was refused', async (t) => {
  const dir = setup(t);
  const r = await impactAsync(dir, ['results', 'ls', RUN], { env: { IMPACT_TOKEN: 'not-a-valid-token' }, timeout: 30000 });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /STS did not accept/);
  assert.match(r.stderr, /hint: the token in IMPACT_TOKEN was refused/);
});

// Starts a ranged download of the 256 MiB object and stops it with `signal` once `stopAt` parts are on
// disk; then runs it again. Returns the first run's exit and the second run's summary.
async function interruptAndResume(t, signal, stopAt) {
  const dir = setup(t);
  const out = path.join(dir, 'out');
  const state = path.join(out, 'big.bin.impact-state');
  const args = ['results', 'download', `s3://${BUCKET}/runs/${RUN}/out/big.bin`, '-o', out];
  const child = spawn(BIN, [...args, '--part-size', '8M', '--parallel', '2'],
    { env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache'), ...KEYS,
      IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '80' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig, stderr })));
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
  // On a terminal: the last progress figures stay on their line, then the message and the command to resume.
  assert.match(first.stderr, /MiB \/ 256\.0 MiB[^\r\n]*files 0\/1\x1b\[K\n(\x1b\[31m)?impact:(\x1b\[0m)? interrupted\nhint: rerun the same command to resume: impact results download s3:\/\/\S+\/big\.bin -o \S+ --part-size 8M --parallel 2\n$/);
});

test('hostile keys are refused one by one; the rest is downloaded (exit 6)', async (t) => {
  const dir = setup(t);
  const out = path.join(dir, 'dest', 'out');
  const r = await impactAsync(dir, ['results', 'download', `${RUN}-hostile`, '-o', out, '--json'], { env: KEYS });
  assert.equal(r.code, 6, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.downloaded, 1);
  assert.equal(s.failed, 4);
  for (const f of s.files.filter((x) => x.status === 'failed')) assert.match(f.error, /^refusing the name /);
  assert.equal(fs.readFileSync(path.join(out, 'ok.txt'), 'utf8'), 'content of ok.txt');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'dest')), ['out']);
  assert.deepEqual(fs.readdirSync(out), ['ok.txt']);
  assert.ok(!/[\x00-\x08\x0b-\x1f]/.test(r.stderr), 'no control characters from keys reach the terminal');
  const ls = await impactAsync(dir, ['results', 'ls', `${RUN}-hostile`], { env: KEYS });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /a\?b\t/);
  assert.ok(!/[\x00-\x08\x0b-\x1f]/.test(ls.stdout));
});

// Issue 22, finding 1: another user plants links in a shared destination folder.
test('links planted in the destination (temporaries, the final name, folders on the way) are refused; nothing outside changes', async (t) => {
  const dir = setup(t);
  const out = path.join(dir, 'out');
  const elsewhere = path.join(dir, 'elsewhere');
  const victim = path.join(dir, 'victim');       // smaller than one.bin: a ranged download grew it before
  const big = path.join(dir, 'big-victim');      // larger than small.txt: truncated to it before
  fs.mkdirSync(path.join(out, 'deep'), { recursive: true });
  fs.mkdirSync(elsewhere);
  fs.writeFileSync(victim, 'twelve bytes');
  fs.writeFileSync(big, 'v'.repeat(20000));
  fs.symlinkSync(victim, path.join(out, 'one.bin.impact-part'));
  fs.symlinkSync(big, path.join(out, 'small.txt.impact-part'));
  fs.symlinkSync('../elsewhere', path.join(out, 'sub'));
  fs.symlinkSync(elsewhere, path.join(out, 'deep', 'er'));
  const r = await impactAsync(dir, ['results', 'download', `${RUN}-links`, '-o', out, '--part-size', '8M', '--json'], { env: KEYS });
  assert.equal(r.code, 6, r.stderr);
  const s = JSON.parse(r.stdout);
  const byPath = Object.fromEntries(s.files.map((f) => [f.path, f]));
  assert.equal(byPath['ok.txt'].status, 'downloaded');
  assert.equal(fs.readFileSync(path.join(out, 'ok.txt'), 'utf8'), 'content of ok.txt');
  for (const [p, link] of [['one.bin', 'one.bin.impact-part'], ['small.txt', 'small.txt.impact-part'], ['sub/evil.txt', 'sub'],
    ['deep/er/evil.txt', 'deep/er']]) {
    assert.equal(byPath[p].status, 'failed', p);
    assert.match(byPath[p].error, new RegExp(`^${link.replace(/\./g, '\\.')} is a symbolic link; impact does not follow links`));
  }
  assert.equal(fs.readFileSync(victim, 'utf8'), 'twelve bytes');
  assert.equal(fs.statSync(victim).size, 12);
  assert.equal(fs.readFileSync(big, 'utf8'), 'v'.repeat(20000));
  assert.deepEqual(fs.readdirSync(elsewhere), []);
  assert.ok(fs.lstatSync(path.join(out, 'one.bin.impact-part')).isSymbolicLink(), 'the planted link is left for the user to see');
  // Without --json: one error line per refused object, naming the path below the destination, exit 1 when all fail.
  fs.rmSync(path.join(out, 'ok.txt'));
  const only = await impactAsync(dir, ['results', 'download', `${RUN}-links`, '-o', out, '--include', 'one.bin'], { env: KEYS });
  assert.equal(only.code, 1, only.stderr);
  assert.match(only.stderr, /one\.bin\.impact-part is a symbolic link/);
  assert.equal(fs.statSync(victim).size, 12);
});

test('progress on a terminal (bytes, rate, ETA, files); one summary line otherwise', async (t) => {
  const dir = setup(t);
  const tty = await impactAsync(dir, ['results', 'download', RUN, '-o', path.join(dir, 'a')], { env: { ...KEYS, IMPACT_FORCE_TTY: '1' }, timeout: 120000 });
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(tty.stderr, /MiB \/ 256\.0 MiB .*\/s .*files \d\/3/);
  assert.match(tty.stderr, /\r256\.0 MiB {2}in \d+\w+ {2}\(\S+ \w+\/s\) {2}files 3\/3\x1b\[K\n$/);  // the closing line
  for (const line of tty.stderr.split(/[\r\n]/)) assert.ok(line.replace(/\x1b\[K/g, '').length < 200, line);
  // Resumed with one file missing: the two already there count as done (files 3/3, never 3/1).
  const gone = fs.readdirSync(path.join(dir, 'a'), { recursive: true }).map(String).find((f) => f.endsWith('.txt'));
  fs.rmSync(path.join(dir, 'a', gone));
  const again = await impactAsync(dir, ['results', 'download', RUN, '-o', path.join(dir, 'a')], { env: { ...KEYS, IMPACT_FORCE_TTY: '1' }, timeout: 120000 });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /files 3\/3\x1b\[K\n$/);
  for (const [, done, all] of again.stderr.matchAll(/files (\d+)\/(\d+)/g)) assert.ok(Number(done) <= Number(all) && Number(all) === 3, again.stderr);
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

test('fault: corrupted body -> md5 checksum mismatch, nothing at the final path; the next run succeeds', async (t) => {
  const proxy = await startProxy({ target: s3cfg.url, port: 0 });
  t.after(() => proxy.close());
  proxy.addFault({ method: 'GET', path: `mid\\.bin`, after: 2, corrupt_body: true });
  const dir = setup(t, { url: proxy.url });
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', `${RUN}-mid`, '-o', out, '--part-size', '8M', '--json'], { env: KEYS, timeout: 120000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(JSON.parse(r.stdout).files[0].error, /md5 checksum mismatch/);
  assert.ok(!fs.existsSync(path.join(out, 'mid.bin')));
  assert.deepEqual(noLeftovers(out), []);
  const again = await impactAsync(dir, ['results', 'download', `${RUN}-mid`, '-o', out], { env: KEYS, timeout: 120000 });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(sha256File(path.join(out, 'mid.bin')), sha256(MID));
});

test('a presigned URL of an empty object downloads as an empty file', async (t) => {
  const dir = setup(t);
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', s3.presignGet(BUCKET, `runs/${RUN}-empty/empty.txt`, 300), '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout).files[0];
  assert.deepEqual([f.path, f.size, f.status, f.verified], ['empty.txt', 0, 'downloaded', 'size,md5']);
  assert.equal(fs.statSync(path.join(out, 'empty.txt')).size, 0);
  assert.deepEqual(noLeftovers(out), []);
});

// Ceph 16's RGW sends no x-amz-checksum-* at all: the proxy adds them, as a newer S3 would.
const MID_SHA256 = crypto.createHash('sha256').update(MID).digest('base64');
for (const [name, method, headers, expect] of [
  ['HeadObject gives a full-object checksum: checked after the ranged parts', 'HEAD',
    { 'x-amz-checksum-sha256': MID_SHA256, 'x-amz-checksum-type': 'FULL_OBJECT' }, { verified: 'size,md5,sha256' }],
  ['a composite checksum is noted, not checked', 'HEAD',
    { 'x-amz-checksum-sha256': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-4' }, { verified: 'size,md5,sha256(composite: not checked)' }],
  ['a wrong full-object checksum fails the object and leaves nothing', 'HEAD',
    { 'x-amz-checksum-sha256': crypto.createHash('sha256').update('other').digest('base64') }, { error: /sha256 checksum mismatch/ }],
  ['a ranged response that declares a full-object checksum is checked', 'GET',
    { 'x-amz-checksum-sha256': MID_SHA256, 'x-amz-checksum-type': 'FULL_OBJECT' }, { verified: 'size,md5,sha256' }],
]) {
  test(`checksum: ${name}`, async (t) => {
    const proxy = await startProxy({ target: s3cfg.url, port: 0 });
    t.after(() => proxy.close());
    proxy.addFault({ method: `^${method}$`, path: 'mid\\.bin', times: -1, set_headers: headers });
    const dir = setup(t, { url: proxy.url });
    const out = path.join(dir, 'out');
    const r = await impactAsync(dir, ['results', 'download', `s3://${BUCKET}/runs/${RUN}-mid/mid.bin`, '-o', out, '--part-size', '8M', '--json'],
      { env: KEYS, timeout: 120000 });
    const f = JSON.parse(r.stdout).files[0];
    assert.ok(proxy.requests().some((q) => q.fault === 'set_headers' && q.method === method), 'the headers were added');
    if (expect.error) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(f.error, expect.error);
      assert.ok(!fs.existsSync(path.join(out, 'mid.bin')));
      assert.deepEqual(noLeftovers(out), []);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal(f.verified, expect.verified);
    assert.equal(sha256File(path.join(out, 'mid.bin')), sha256(MID));
  });
}

// A workflow with outputs of every shape: Files, an empty File, a Directory with a sub-folder, an array of
// Files, and one output that is not declared non-sensitive (it stays on the WES server).
const OUTPUTS_CWL = `cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments:
  - >-
    mkdir -p dir/sub parts && printf 'report\\n' > report.txt && : > empty.txt && printf a > dir/a.txt &&
    printf b > dir/sub/b.txt && printf 1 > parts/1.txt && printf 2 > parts/2.txt && printf secret > secret.txt
inputs: []
outputs:
  report: {type: File, outputBinding: {glob: report.txt}}
  empty: {type: File, outputBinding: {glob: empty.txt}}
  dir: {type: Directory, outputBinding: {glob: dir}}
  parts: {type: 'File[]', outputBinding: {glob: 'parts/*.txt'}}
  secret: {type: File, outputBinding: {glob: secret.txt}}
`;

// Submits OUTPUTS_CWL with `impact run submit --wait`; returns the run id.
async function submitOutputsRun(dir, env, tags) {
  const wf = path.join(dir, 'outputs.cwl');
  fs.writeFileSync(wf, OUTPUTS_CWL);
  const r = await impactAsync(dir, ['run', 'submit', wf, ...tags.flatMap((x) => ['--tag', x]), '--wait', '--poll-interval', '1s'], { env, timeout: 180000 });
  assert.equal(r.code, 0, r.stderr);
  const [id, final] = r.stdout.trim().split('\n');
  assert.equal(final, `${id}\tCOMPLETE`);
  return id;
}

test('a run id without a result_prefix: the objects its WES outputs name, and what they leave out', async (t) => {
  const dir = setup(t, { prefix: '', wes: true });
  const env = { IMPACT_TOKEN: (await userToken('alice')).access_token, ...KEYS };
  const id = await submitOutputsRun(dir, env, ['non_sensitive_outputs=report,empty,dir,parts']);
  // The Directory output is a folder in the bucket: whatever is under it belongs to it.
  await s3.putObject(BUCKET, `runs/${id}/dir/extra.txt`, 'added later');
  const expected = ['1.txt', '2.txt', 'dir/a.txt', 'dir/extra.txt', 'dir/sub/b.txt', 'empty.txt', 'report.txt'];

  const ls = await impactAsync(dir, ['results', 'ls', id, '--json'], { env });
  assert.equal(ls.code, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout);
  assert.equal(listed.prefix, `runs/${id}/`);
  assert.deepEqual(listed.objects.map((o) => o.key), expected.map((k) => `runs/${id}/${k}`));
  assert.equal(listed.skipped_outputs.length, 1);
  assert.match(listed.skipped_outputs[0].url, /^file:\/\/.*\/outdir\/secret\.txt$/);
  assert.match(listed.skipped_outputs[0].reason, /a file on the WES server/);

  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['results', 'download', id, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^downloaded 7 files/);
  assert.match(r.stderr, /not fetched: file:\/\/\S*secret\.txt: a file on the WES server, not in the object storage/);
  assert.deepEqual(fs.readdirSync(out, { recursive: true }).filter((f) => fs.statSync(path.join(out, f)).isFile()).sort(), expected);
  assert.equal(fs.readFileSync(path.join(out, 'dir', 'sub', 'b.txt'), 'utf8'), 'b');
  assert.equal(fs.readFileSync(path.join(out, 'report.txt'), 'utf8'), 'report\n');
  assert.equal(fs.statSync(path.join(out, 'empty.txt')).size, 0);

  // A template whose prefix holds nothing falls back to the outputs too.
  const other = setup(t, { prefix: 'elsewhere/{run_id}/', wes: true });
  const fb = await impactAsync(other, ['results', 'ls', id, '--json'], { env });
  assert.equal(fb.code, 0, fb.stderr);
  assert.equal(JSON.parse(fb.stdout).objects.length, expected.length);

  // Nothing crawled (no output declared non-sensitive): a clear error naming what was looked at.
  const bare = await submitOutputsRun(dir, env, []);
  const e = await impactAsync(other, ['results', 'download', bare, '-o', out], { env });
  assert.equal(e.code, 1, e.stderr);
  assert.match(e.stderr, new RegExp(`nothing to download for run ${bare}: nothing under s3://${BUCKET}/elsewhere/${bare}/, and its outputs name no object in the storage \\(7 elsewhere\\)`));
  assert.match(e.stderr, new RegExp(`hint: see the run's outputs: impact run show ${bare}`));
});

test('a run that has not finished: the hint says to wait for it', async (t) => {
  const dir = setup(t, { prefix: '', wes: true });
  const env = { IMPACT_TOKEN: (await userToken('alice')).access_token, ...KEYS };
  const wf = path.resolve(__dirname, '../federation/wes/workflows');
  const sub = await impactAsync(dir, ['run', 'submit', path.join(wf, 'slow.cwl'), '--params', path.join(wf, 'slow.params.json')], { env, timeout: 60000 });
  assert.equal(sub.code, 0, sub.stderr);
  const id = sub.stdout.trim();
  t.after(() => impactAsync(dir, ['run', 'cancel', id], { env, timeout: 60000 }));
  const r = await impactAsync(dir, ['results', 'download', id, '-o', path.join(dir, 'out')], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^impact: nothing to download for run ${id}: its outputs name no object in the storage\\n`));
  assert.match(r.stderr, new RegExp(`hint: the run is (QUEUED|INITIALIZING|RUNNING): wait for it \\(impact run wait ${id}\\)`));
  assert.ok(!fs.existsSync(path.join(dir, 'out')), 'nothing written');
});
