'use strict';
// Tests for the object storage part: s3/start.sh (Ceph RGW single node + STS front) and lib/s3.js.
// One real RGW is started for the whole file (~10-20 s) on free loopback ports with a temp state dir.
// If radosgw is not installed the tests FAIL (run s3/install.sh), they do not skip.
//
// The STS tests use a small fake OIDC issuer started here (discovery, userinfo, JWKS).
// One test also runs the real oidc/server.js (device flow + oidc/approve.js) against a second STS
// instance. TODO(lead): impact's own S3/STS tests should do the same through `up`.

const test = require('node:test');
const assert = require('node:assert');
const http = require('http');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawn, execFileSync } = require('child_process');
const S3 = require('../lib/s3');

const ROOT = path.join(__dirname, '..');
const START = path.join(ROOT, 's3', 'start.sh');
const ACCESS = 'TESTS3ACCESSKEY00001';
const SECRET = 'testS3secretKey0001testS3secretKey0001xx';

let fed = null; // { proc, port, stsPort, dir, info, output }
let issuer = null; // { url, server, sign(claims), badSign(claims) }

function commandExists(cmd) {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

// P (rgw), P+1 (sts), P+1069 (mon) all free; bounded number of tries.
async function pickPorts() {
  for (let i = 0; i < 50; i++) {
    const p = 30000 + crypto.randomInt(0, 8000);
    if (await portFree(p) && await portFree(p + 1) && await portFree(p + 1069)) return p;
  }
  throw new Error('no free port triple found');
}

async function startIssuer() {
  const jose = await import('jose');
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
  const other = await jose.generateKeyPair('ES256');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const tokens = new Map([['opaque-alice', { sub: 'alice', email: 'alice@example.org' }], ['opaque-bob', { sub: 'bob' }]]);
  let url;
  const server = http.createServer((req, res) => {
    const json = (status, obj) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };
    if (req.url === '/.well-known/openid-configuration') {
      return json(200, { issuer: url, userinfo_endpoint: `${url}/me`, jwks_uri: `${url}/jwks` });
    }
    if (req.url === '/jwks') return json(200, { keys: [jwk] });
    if (req.url === '/me') {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
      const claims = m && tokens.get(m[1]);
      return claims ? json(200, claims) : json(401, { error: 'invalid_token' });
    }
    json(404, { error: 'not found' });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}`;
  const mk = (key, claims, exp = '10m') => new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(url).setAudience('impact-cli').setIssuedAt().setExpirationTime(exp).sign(key);
  return { url, server, sign: (c, exp) => mk(privateKey, c, exp), badSign: (c) => mk(other.privateKey, c) };
}

function startFederationS3(port, dir, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn('bash', [START, '--port', String(port), '--state', dir], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    let output = '';
    const t0 = Date.now();
    const timer = setTimeout(() => { done(new Error(`start.sh not ready after 150 s:\n${output.slice(-3000)}`)); }, 150000);
    const done = (err) => {
      clearTimeout(timer);
      if (err) { try { process.kill(-proc.pid, 'SIGTERM'); } catch {} reject(err); } else resolve({ proc, output: () => output, startupMs: Date.now() - t0 });
    };
    const onData = (d) => { output += d; if (/S3 READY/.test(output)) done(); };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => done(new Error(`start.sh exited with ${code} before ready:\n${output.slice(-3000)}`)));
  });
}

const client = (opts = {}) => S3.createClient({ url: `http://127.0.0.1:${fed.port}`, accessKey: ACCESS, secretKey: SECRET, region: 'us-east-1', ...opts });

async function expectS3Error(promise, code, status) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof S3.S3Error, `expected S3Error, got ${e}`);
    assert.strictEqual(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (status) assert.strictEqual(e.status, status);
    return true;
  });
}

// bounded parallel map
async function pool(items, n, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) { const k = i++; await fn(items[k], k); } }));
}

test.before(async () => {
  assert.ok(commandExists('radosgw') && commandExists('ceph-mon') && commandExists('ceph-osd'),
    'radosgw / ceph-mon / ceph-osd are not installed: run tests/federation/s3/install.sh (the S3 tests need the real RGW)');
  issuer = await startIssuer();
  const port = await pickPorts();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-s3-test-'));
  const started = await startFederationS3(port, dir, {
    FED_STATE: dir, FED_ISSUER: issuer.url, FED_S3_ACCESS_KEY: ACCESS, FED_S3_SECRET_KEY: SECRET, FED_STS_MIN_DURATION: '1',
  });
  fed = { ...started, port, stsPort: port + 1, dir, info: JSON.parse(fs.readFileSync(path.join(dir, 's3.json'), 'utf8')) };
  console.log(`# RGW ready in ${(fed.startupMs / 1000).toFixed(1)} s on 127.0.0.1:${port}`);
});

test.after(async () => {
  if (fed && fed.proc.exitCode === null) { try { process.kill(-fed.proc.pid, 'SIGKILL'); } catch {} }
  if (issuer) { issuer.server.closeAllConnections(); issuer.server.close(); }
  if (fed) fs.rmSync(fed.dir, { recursive: true, force: true });
});

test('s3.json describes the endpoint, keys and buckets', () => {
  assert.strictEqual(fed.info.url, `http://127.0.0.1:${fed.port}`);
  assert.strictEqual(fed.info.sts_url, `http://127.0.0.1:${fed.stsPort}`);
  assert.strictEqual(fed.info.access_key, ACCESS);
  assert.strictEqual(fed.info.secret_key, SECRET);
  assert.deepStrictEqual(fed.info.buckets, ['results', 'drs-data']);
  assert.strictEqual(fs.statSync(path.join(fed.dir, 's3.json')).mode & 0o077, 0, 's3.json must not be world-readable');
});

test('buckets exist and signature checking is on', async () => {
  const s3 = client();
  for (const b of ['results', 'drs-data']) assert.ok(Array.isArray((await s3.listObjectsV2(b)).contents));
  await s3.putObject('results', 'sig/probe.txt', 'x');
  await expectS3Error(client({ secretKey: 'wrong-secret' }).getObject('results', 'sig/probe.txt'), 'SignatureDoesNotMatch', 403);
  await expectS3Error(client({ accessKey: 'NOSUCHACCESSKEY00000' }).getObject('results', 'sig/probe.txt'), 'InvalidAccessKeyId', 403);
  const anon = await fetch(`http://127.0.0.1:${fed.port}/results/sig/probe.txt`);
  assert.strictEqual(anon.status, 403, 'anonymous GET must be refused');
  await expectS3Error(s3.createBucket('results').then(() => s3.getObject('results', 'sig/missing')), 'NoSuchKey', 404);
});

test('put / get / head, metadata, unicode keys, streamed body', async () => {
  const s3 = client();
  const key = 'dir one/ünïcode + plus&amp=~.txt';
  const body = Buffer.from('hello object storage\n');
  const put = await s3.putObject('results', key, body, { contentType: 'text/plain', metadata: { origin: 'test' } });
  assert.match(put.etag, /^"[0-9a-f]{32}"$/);
  const got = await s3.getObject('results', key);
  assert.strictEqual(got.status, 200);
  assert.deepStrictEqual(got.body, body);
  assert.strictEqual(got.contentType, 'text/plain');
  const head = await s3.headObject('results', key);
  assert.strictEqual(head.contentLength, body.length);
  assert.strictEqual(head.etag, put.etag);
  assert.strictEqual(head.metadata.origin, 'test');
  assert.strictEqual(await s3.headObject('results', 'no/such/key'), null);

  const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const { Readable } = require('stream');
  await s3.putObject('drs-data', 'streamed.bin', Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]), { contentLength: big.length });
  const back = await s3.getObject('drs-data', 'streamed.bin');
  assert.strictEqual(crypto.createHash('sha256').update(back.body).digest('hex'), crypto.createHash('sha256').update(big).digest('hex'));
  // sha256 payload signing works too
  await client({ signPayload: true }).putObject('results', 'signed-payload.txt', 'signed');
  assert.strictEqual((await s3.getObject('results', 'signed-payload.txt')).body.toString(), 'signed');
});

test('Range requests, including suffix ranges', async () => {
  const s3 = client();
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => 'abcdefghij'[i % 10]).join(''));
  await s3.putObject('results', 'range/1000.txt', data);
  const cases = [
    ['bytes=0-9', 0, 9],
    ['bytes=990-', 990, 999],
    ['bytes=-100', 900, 999],
    ['bytes=100-199', 100, 199],
    ['bytes=-5000', 0, 999], // suffix longer than the object: whole object
    ['bytes=995-2000', 995, 999], // end past the object: clipped
  ];
  for (const [range, from, to] of cases) {
    const r = await s3.getObject('results', 'range/1000.txt', { range });
    assert.strictEqual(r.status, 206, range);
    assert.strictEqual(r.headers['content-range'], `bytes ${from}-${to}/1000`, range);
    assert.deepStrictEqual(r.body, data.subarray(from, to + 1), range);
  }
  await expectS3Error(s3.getObject('results', 'range/1000.txt', { range: 'bytes=1000-' }), 'InvalidRange', 416);
  // a presigned URL honours Range as well (what impact does for resumable downloads)
  const r = await fetch(s3.presignGet('results', 'range/1000.txt', 60), { headers: { range: 'bytes=-10' } });
  assert.strictEqual(r.status, 206);
  assert.strictEqual(await r.text(), data.subarray(990).toString());
});

test('listObjectsV2 paginates past 1000 keys', async () => {
  const s3 = client();
  const keys = Array.from({ length: 1205 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
  await pool(keys, 24, (k) => s3.putObject('results', k, k));
  const first = await s3.listObjectsV2('results', 'many/');
  assert.strictEqual(first.contents.length, 1000);
  assert.strictEqual(first.isTruncated, true);
  assert.ok(first.nextContinuationToken);
  const second = await s3.listObjectsV2('results', 'many/', first.nextContinuationToken);
  assert.strictEqual(second.contents.length, 205);
  assert.strictEqual(second.isTruncated, false);
  const all = await s3.listAll('results', 'many/');
  assert.deepStrictEqual(all.map((o) => o.key), keys);
  assert.strictEqual(all[7].size, keys[7].length);
  const small = await s3.listObjectsV2('results', 'many/k0000', undefined, { maxKeys: 3 });
  assert.deepStrictEqual(small.contents.map((o) => o.key), keys.slice(0, 3));
  const delim = await s3.listObjectsV2('results', '', undefined, { delimiter: '/' });
  assert.ok(delim.commonPrefixes.includes('many/'));
});

test('presigned GET works, expires, and is tamper-proof', async () => {
  const s3 = client();
  await s3.putObject('drs-data', 'presign/obj.txt', 'presigned content', { contentType: 'text/plain' });
  const url = s3.presignGet('drs-data', 'presign/obj.txt', 120);
  const ok = await fetch(url);
  assert.strictEqual(ok.status, 200);
  assert.strictEqual(await ok.text(), 'presigned content');
  // signed 10 minutes ago, valid for 60 s: expired
  const old = s3.presignGet('drs-data', 'presign/obj.txt', 60, { date: new Date(Date.now() - 600000) });
  const expired = await fetch(old);
  assert.strictEqual(expired.status, 403);
  assert.match(await expired.text(), /AccessDenied|Expired/);
  const tampered = await fetch(url.replace('presign/obj.txt', 'presign/other.txt'));
  assert.strictEqual(tampered.status, 403);
  assert.match(await tampered.text(), /SignatureDoesNotMatch/);
  const wrong = await fetch(client({ secretKey: 'nope' }).presignGet('drs-data', 'presign/obj.txt', 60));
  assert.strictEqual(wrong.status, 403);
});

async function sts(form) {
  const r = await fetch(`http://127.0.0.1:${fed.stsPort}/`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(),
  });
  return { status: r.status, type: r.headers.get('content-type'), xml: await r.text() };
}
const stsForm = (token, extra = {}) => ({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', WebIdentityToken: token,
  RoleArn: 'arn:aws:iam::123456789012:role/impact', RoleSessionName: 'impact-test', DurationSeconds: '900', ...extra });

test('STS: AssumeRoleWithWebIdentity with an opaque access token gives working credentials', async () => {
  const r = await sts(stsForm('opaque-alice'));
  assert.strictEqual(r.status, 200, r.xml);
  assert.match(r.type, /xml/);
  assert.match(r.xml, /<AssumeRoleWithWebIdentityResponse[^>]*><AssumeRoleWithWebIdentityResult>/);
  const creds = Object.fromEntries(['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration'].map((t) => [t, S3.xmlTag(S3.xmlTag(r.xml, 'Credentials'), t)]));
  for (const v of Object.values(creds)) assert.ok(v);
  assert.strictEqual(S3.xmlTag(r.xml, 'SubjectFromWebIdentityToken'), 'alice');
  const exp = Date.parse(creds.Expiration);
  assert.ok(Math.abs(exp - (Date.now() + 900000)) < 60000, `Expiration ${creds.Expiration} should be ~15 min from now`);
  const s3 = client({ accessKey: creds.AccessKeyId, secretKey: creds.SecretAccessKey, sessionToken: creds.SessionToken });
  await s3.putObject('results', 'sts/alice.txt', 'from alice');
  assert.strictEqual((await client().getObject('results', 'sts/alice.txt')).body.toString(), 'from alice');
  const pre = await fetch(s3.presignGet('results', 'sts/alice.txt', 60));
  assert.strictEqual(pre.status, 200);
  // the helper in lib/s3.js parses the same response
  const c2 = await S3.assumeRoleWithWebIdentity(fed.info.sts_url, { token: 'opaque-bob', durationSeconds: 900 });
  assert.ok(c2.accessKeyId && c2.secretAccessKey && c2.sessionToken && c2.expiration);
  assert.strictEqual((await client({ accessKey: c2.accessKeyId, secretKey: c2.secretAccessKey, sessionToken: c2.sessionToken })
    .getObject('results', 'sts/alice.txt')).body.toString(), 'from alice');
});

test('STS: a JWT (ID token) signed by the issuer is accepted, a forged one is not', async () => {
  const good = await sts(stsForm(await issuer.sign({ sub: 'carol' })));
  assert.strictEqual(good.status, 200, good.xml);
  assert.strictEqual(S3.xmlTag(good.xml, 'SubjectFromWebIdentityToken'), 'carol');
  const forged = await sts(stsForm(await issuer.badSign({ sub: 'carol' })));
  assert.strictEqual(forged.status, 400);
  assert.strictEqual(S3.xmlTag(forged.xml, 'Code'), 'InvalidIdentityToken');
  const expired = await sts(stsForm(await issuer.sign({ sub: 'carol' }, Math.floor(Date.now() / 1000) - 60)));
  assert.strictEqual(S3.xmlTag(expired.xml, 'Code'), 'InvalidIdentityToken');
});

test('STS: errors are AWS XML', async () => {
  const bad = await sts(stsForm('not-a-valid-token'));
  assert.strictEqual(bad.status, 400);
  assert.match(bad.xml, /<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>InvalidIdentityToken<\/Code><Message>[^<]+<\/Message><\/Error>/);
  await assert.rejects(S3.assumeRoleWithWebIdentity(fed.info.sts_url, { token: 'nope' }), (e) => e.code === 'InvalidIdentityToken');
  const missing = await sts({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15' });
  assert.strictEqual(S3.xmlTag(missing.xml, 'Code'), 'MissingParameter');
  const action = await sts({ Action: 'AssumeRole' });
  assert.strictEqual(S3.xmlTag(action.xml, 'Code'), 'InvalidAction');
  const dur = await sts(stsForm('opaque-alice', { DurationSeconds: '999999' }));
  assert.strictEqual(S3.xmlTag(dur.xml, 'Code'), 'ValidationError');
});

test('STS: credentials stop working when they expire', async () => {
  // FED_STS_MIN_DURATION=1 in this test run, so a 2 s session is allowed
  const c = await S3.assumeRoleWithWebIdentity(fed.info.sts_url, { token: 'opaque-alice', durationSeconds: 2 });
  const s3 = client({ accessKey: c.accessKeyId, secretKey: c.secretAccessKey, sessionToken: c.sessionToken });
  await s3.putObject('results', 'sts/short.txt', 'short-lived');
  const deadline = Date.now() + 30000;
  let lastErr = null;
  while (Date.now() < deadline) {
    try { await s3.getObject('results', 'sts/short.txt'); } catch (e) { lastErr = e; break; }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(lastErr, 'credentials still worked 30 s after a 2 s session');
  assert.strictEqual(lastErr.code, 'InvalidAccessKeyId');
});

// spawn a node program, resolve when `ready(output)` returns a truthy value (bounded)
function spawnUntil(args, env, ready, ms = 30000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let settled = false;
    const finish = (err, val) => { if (settled) return; settled = true; clearInterval(poll); clearTimeout(timer); if (err) { proc.kill('SIGKILL'); reject(err); } else resolve({ proc, value: val }); };
    const check = () => { let v; try { v = ready(out); } catch { v = null; } if (v) finish(null, v); };
    const timer = setTimeout(() => finish(new Error(`${args[0]} not ready in ${ms} ms:\n${out.slice(-2000)}`)), ms);
    const poll = setInterval(check, 200);
    proc.stdout.on('data', (d) => { out += d; check(); });
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('exit', (c) => finish(new Error(`${args[0]} exited with ${c}:\n${out.slice(-2000)}`)));
  });
}

test('STS with the real OIDC provider: device-flow access token and ID token both work', async () => {
  const oidcState = path.join(fed.dir, 'oidc-state');
  fs.mkdirSync(oidcState);
  const readyFile = path.join(oidcState, 'oidc', 'ready.json');
  const procs = [];
  try {
    const oidc = await spawnUntil(['oidc/server.js', '--port', '0', '--bad-port', '0', '--visa-port', '0'],
      { FED_STATE: oidcState, FED_ISSUER: '', FED_BAD_ISSUER: '', FED_VISA_ISSUER: '' },
      () => fs.existsSync(readyFile) && JSON.parse(fs.readFileSync(readyFile, 'utf8')).issuer);
    procs.push(oidc.proc);
    const iss = oidc.value;
    const st = await spawnUntil(['s3/sts.js', '--port', '0', '--uid', 'fed', '--ceph-conf', fed.info.ceph_conf, '--issuer', iss],
      { FED_STATE: oidcState }, (out) => { const m = /sts listening on 127\.0\.0\.1:(\d+)/.exec(out); return m && `http://127.0.0.1:${m[1]}`; });
    procs.push(st.proc);
    const stsUrl = st.value;

    const form = (o) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o).toString() });
    const dev = await (await fetch(`${iss}/device/auth`, form({ client_id: 'impact-cli', scope: 'openid profile' }))).json();
    assert.ok(dev.device_code && dev.user_code, JSON.stringify(dev));
    execFileSync(process.execPath, ['oidc/approve.js', '--issuer', iss, '--user-code', dev.user_code, '--user', 'alice'],
      { cwd: ROOT, stdio: 'ignore', timeout: 30000 });
    let tok = null;
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      tok = await (await fetch(`${iss}/token`, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dev.device_code, client_id: 'impact-cli' }))).json();
      if (tok.access_token || (tok.error && tok.error !== 'authorization_pending' && tok.error !== 'slow_down')) break;
      await new Promise((r) => setTimeout(r, (dev.interval || 1) * 1000));
    }
    assert.ok(tok && tok.access_token && tok.id_token, `no tokens: ${JSON.stringify(tok)}`);
    for (const token of [tok.access_token, tok.id_token]) {
      const c = await S3.assumeRoleWithWebIdentity(stsUrl, { token, durationSeconds: 900 });
      assert.strictEqual(S3.xmlTag(c.xml, 'SubjectFromWebIdentityToken'), 'alice');
      const s3 = client({ accessKey: c.accessKeyId, secretKey: c.secretAccessKey, sessionToken: c.sessionToken });
      assert.ok(Array.isArray((await s3.listObjectsV2('drs-data')).contents));
    }
    await assert.rejects(S3.assumeRoleWithWebIdentity(stsUrl, { token: tok.access_token + 'x' }), (e) => e.code === 'InvalidIdentityToken');
  } finally {
    for (const p of procs) p.kill('SIGTERM');
  }
});

test('SIGTERM to start.sh stops every daemon it started', async () => {
  const pids = fed.info.pids;
  assert.ok(pids.length >= 4, `expected mon, osd, rgw, sts pids, got ${pids}`);
  const exited = new Promise((r) => fed.proc.once('exit', r));
  process.kill(fed.proc.pid, 'SIGTERM');
  let timer;
  const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 30000); })]);
  clearTimeout(timer);
  assert.notStrictEqual(code, 'timeout', 'start.sh did not exit within 30 s of SIGTERM');
  const alive = pids.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
  assert.deepStrictEqual(alive, [], `daemons survived: ${alive}`);
  assert.strictEqual(await portFree(fed.port), true, 'RGW port still bound');
});
