'use strict';
// DRS part: objects, checksums against the bytes served (RGW presigned URLs), inline access_url with
// headers, percent-encoded ids, bundles + expand, OPTIONS, bulk + 413, 202 Retry-After, access control
// (public / registered / controlled: 401, 403, 200), request and response validation.
// Needs the S3 store: uses $FED_S3_URL when it answers, else starts s3/start.sh on free ports
// (skips when neither is possible). Identity: beacon/fake-issuer.js (real signatures through
// lib/auth.js + lib/visas.js); one test uses the real OIDC provider when present.
//   cd tests/federation && node --test test/drs.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const { startOidc } = require('./helpers');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const openapi = require('../lib/openapi');

const ROOT = path.join(__dirname, '..');
const BASE = '/ga4gh/drs/v1';
const ACCESS_ID = 'https-presigned';
const DATASET_URL = 'https://ega-archive.org/datasets/EGAD-CONTROLLED-1';

let state;
let fake;
let drs;
let s3child = null;
let skipReason = null;
const api = openapi.load('drs');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function answers(url) {
  try { await fetch(url, { signal: AbortSignal.timeout(2000) }); return true; } catch (e) { return false; }
}

function haveRgw() {
  try { execFileSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon'], { stdio: 'ignore' }); return true; } catch (e) { return false; }
}

// Start s3/start.sh (own process group) and wait for "S3 READY" (bounded).
async function startS3(dir) {
  const port = await freePort();
  const mon = await freePort();
  const child = spawn('bash', [path.join(ROOT, 's3', 'start.sh'), '--port', String(port), '--mon-port', String(mon), '--state', dir, '--no-sts'], {
    cwd: ROOT, env: { ...process.env, FED_STATE: dir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`S3 not ready in 150 s:\n${out.slice(-2000)}`)), 150000);
    const check = () => { if (/S3 READY/.test(out)) { clearTimeout(timer); resolve(); } };
    child.stdout.on('data', check);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`s3/start.sh exited ${code}:\n${out.slice(-2000)}`)); });
  });
  const info = JSON.parse(fs.readFileSync(path.join(dir, 's3.json'), 'utf8'));
  return { child, env: { FED_S3_URL: info.url, FED_S3_ACCESS_KEY: info.access_key, FED_S3_SECRET_KEY: info.secret_key, FED_S3_REGION: info.region } };
}

async function stopChild(child, { group = false } = {}) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((ok) => { setTimeout(ok, 20000).unref(); })]);
  if (child.exitCode === null) {
    try { if (group) process.kill(-child.pid, 'SIGKILL'); else child.kill('SIGKILL'); } catch (e) { /* gone */ }
  }
}

before(async () => {
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-drs-'));
  process.env.FED_STATE = state;
  process.env.FED_DATA_BUCKET = process.env.FED_DATA_BUCKET || 'drs-data';
  if (!(process.env.FED_S3_URL && await answers(process.env.FED_S3_URL))) {
    if (!fs.existsSync(path.join(ROOT, 's3', 'start.sh')) || !haveRgw()) { skipReason = 'no S3 store: FED_S3_URL unset and s3/start.sh or radosgw missing'; return; }
    const s3 = await startS3(path.join(state, 's3'));
    s3child = s3.child;
    Object.assign(process.env, s3.env);
  }
  fake = await require('../beacon/fake-issuer').start();
  Object.assign(process.env, fake.env);
  drs = await require('../drs/server').start({ port: 0 });
});

after(async () => {
  if (drs) await drs.close();
  if (fake) await fake.close();
  await stopChild(s3child, { group: true });
  fs.rmSync(state, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

async function call(method, p, { token, body, headers } = {}) {
  const res = await fetch(`${drs.url}${BASE}${p}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  const errors = api.checkResponse({ method, path: `${BASE}${p.split('?')[0]}`, status: res.status, body: json, contentType: res.headers.get('content-type') || 'application/json' });
  assert.deepStrictEqual(errors, [], `${method} ${p} -> ${res.status}: response does not conform`);
  return { status: res.status, json, text, headers: res.headers };
}
const enc = encodeURIComponent;
async function bytesOf(accessUrl) {
  const res = await fetch(accessUrl.url, { headers: Object.fromEntries((accessUrl.headers || []).map((h) => { const i = h.indexOf(':'); return [h.slice(0, i).trim(), h.slice(i + 1).trim()]; })), signal: AbortSignal.timeout(30000) });
  assert.strictEqual(res.status, 200, `${accessUrl.url} -> ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}
function assertChecksums(obj, buf) {
  assert.strictEqual(buf.length, obj.size, `${obj.id}: size`);
  const want = Object.fromEntries(obj.checksums.map((c) => [c.type, c.checksum]));
  assert.strictEqual(crypto.createHash('sha256').update(buf).digest('hex'), want['sha-256'], `${obj.id}: sha-256`);
  assert.strictEqual(crypto.createHash('md5').update(buf).digest('hex'), want.md5, `${obj.id}: md5`);
}
function violations() {
  const f = path.join(state, 'violations.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}
const skip = (t) => { if (skipReason) { t.skip(skipReason); return true; } return false; };

// ------------------------------------------------------------------ tests

test('service-info', async (t) => {
  if (skip(t)) return;
  const r = await call('GET', '/service-info');
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(r.json.type, { group: 'org.ga4gh', artifact: 'drs', version: '1.5.0' });
  assert.strictEqual(r.json.maxBulkRequestLength, 50);
  assert.strictEqual(r.json.drs.maxBulkRequestLength, 50);
  const root = await (await fetch(`${drs.url}/service-info`)).json();
  assert.deepStrictEqual(root.type, r.json.type);
});

test('public objects: metadata, and checksums match the bytes served via RGW presigned URLs', async (t) => {
  if (skip(t)) return;
  for (const id of ['ds-public-1.vcf', 'ds-public-1.tsv', 'blob-empty', 'blob-1k', 'blob-64k', 'blob-8m']) {
    const o = await call('GET', `/objects/${enc(id)}`);
    assert.strictEqual(o.status, 200, o.text);
    const d = o.json;
    assert.strictEqual(d.id, id);
    for (const k of ['self_uri', 'size', 'created_time', 'updated_time', 'checksums', 'access_methods', 'aliases']) assert.ok(k in d, `${id}: ${k}`);
    assert.deepStrictEqual(d.checksums.map((c) => c.type).sort(), ['md5', 'sha-256']);
    const m = d.access_methods.find((x) => x.access_id === ACCESS_ID);
    assert.strictEqual(m.type, 'https');
    const a = await call('GET', `/objects/${enc(id)}/access/${ACCESS_ID}`);
    assert.strictEqual(a.status, 200, a.text);
    assert.ok(a.json.url.startsWith(process.env.FED_S3_URL), a.json.url);
    assert.match(a.json.url, /X-Amz-Signature=/);
    assertChecksums(d, await bytesOf(a.json));
  }
  assert.strictEqual((await call('GET', '/objects/blob-8m')).json.size, 8 * 1024 * 1024);
  const nf = await call('GET', '/objects/no-such-object');
  assert.strictEqual(nf.status, 404);
  const na = await call('GET', `/objects/blob-1k/access/nope`);
  assert.strictEqual(na.status, 404);
});

test('inline access_url with headers: bytes only with the header', async (t) => {
  if (skip(t)) return;
  const d = (await call('GET', '/objects/blob-1k')).json;
  const inline = d.access_methods.find((m) => m.access_url);
  assert.ok(inline && inline.access_url.headers.length > 0, JSON.stringify(d.access_methods));
  assertChecksums(d, await bytesOf(inline.access_url));
  const without = await fetch(inline.access_url.url);
  assert.strictEqual(without.status, 403);
  await without.arrayBuffer();
  const ranged = await fetch(inline.access_url.url, { headers: { ...Object.fromEntries(inline.access_url.headers.map((h) => h.split(/:\s*/))), Range: 'bytes=10-19' } });
  assert.strictEqual(ranged.status, 206);
  assert.strictEqual((await ranged.text()).length, 10);
});

test('an id that needs percent-encoding, and drs:// self URIs', async (t) => {
  if (skip(t)) return;
  const id = 'blob odd/id#1+ä';
  const r = await call('GET', `/objects/${enc(id)}`);
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.json.id, id);
  const u = new URL(r.json.self_uri.replace(/^drs:/, 'http:'));
  assert.strictEqual(r.json.self_uri.slice(0, 6), 'drs://');
  assert.strictEqual(decodeURIComponent(u.pathname.slice(1)), id);
  const a = await call('GET', `/objects/${enc(id)}/access/${ACCESS_ID}`);
  assertChecksums(r.json, await bytesOf(a.json));
  const raw = await fetch(`${drs.url}${BASE}/objects/${id.replace(/ /g, '%20')}`); // '/' and '#' unencoded: not this id
  assert.strictEqual(raw.status, 404);
  await raw.arrayBuffer();
});

test('bundle: contents, expand, size and checksums', async (t) => {
  if (skip(t)) return;
  const flat = (await call('GET', '/objects/bundle-public-1')).json;
  assert.deepStrictEqual(flat.contents.map((c) => c.id), ['ds-public-1.vcf', 'ds-public-1.tsv', 'bundle-blobs']);
  assert.ok(flat.contents.every((c) => !c.contents));
  assert.ok(!flat.access_methods);
  const deep = (await call('GET', '/objects/bundle-public-1?expand=true')).json;
  const nested = deep.contents.find((c) => c.id === 'bundle-blobs');
  assert.deepStrictEqual(nested.contents.map((c) => c.id), ['blob-1k', 'blob-64k']);
  const post = await call('POST', '/objects/bundle-public-1', { body: { expand: true } });
  assert.deepStrictEqual(post.json.contents, deep.contents);
  let size = 0;
  for (const id of ['ds-public-1.vcf', 'ds-public-1.tsv', 'blob-1k', 'blob-64k']) size += (await call('GET', `/objects/${id}`)).json.size;
  assert.strictEqual(deep.size, size);
  assert.ok(deep.contents[0].drs_uri[0].startsWith('drs://'));
});

test('OPTIONS: authorizations per object', async (t) => {
  if (skip(t)) return;
  const pub = await call('OPTIONS', '/objects/blob-1k');
  assert.strictEqual(pub.status, 200);
  assert.deepStrictEqual(pub.json.supported_types, ['None']);
  const reg = await call('OPTIONS', '/objects/blob-registered');
  assert.deepStrictEqual(reg.json.supported_types, ['BearerAuth']);
  assert.deepStrictEqual(reg.json.bearer_auth_issuers, [process.env.FED_ISSUER]);
  const ctl = await call('OPTIONS', '/objects/egad-controlled-1.vcf');
  assert.deepStrictEqual(ctl.json.supported_types, ['PassportAuth', 'BearerAuth']);
  assert.deepStrictEqual(ctl.json.passport_auth_issuers, [process.env.FED_ISSUER, process.env.FED_VISA_ISSUER]);
  assert.strictEqual((await call('OPTIONS', '/objects/nope')).status, 404);
});

test('bulk: objects, access, options; more than maxBulkRequestLength is 413', async (t) => {
  if (skip(t)) return;
  const b = await call('POST', '/objects', { body: { bulk_object_ids: ['blob-1k', 'no-such', 'egad-controlled-1.tsv', 'ds-public-1.vcf'] } });
  assert.strictEqual(b.status, 200, b.text);
  assert.deepStrictEqual(b.json.summary, { requested: 4, resolved: 2, unresolved: 2 });
  assert.deepStrictEqual(b.json.resolved_drs_object.map((o) => o.id), ['blob-1k', 'ds-public-1.vcf']);
  assert.deepStrictEqual(b.json.unresolved_drs_objects.map((u) => u.error_code).sort(), [401, 404]);
  const ids50 = Array.from({ length: 50 }, (_, i) => (i % 2 ? 'blob-1k' : 'blob-64k'));
  assert.strictEqual((await call('POST', '/objects', { body: { bulk_object_ids: ids50 } })).json.summary.resolved, 50);
  const big = await call('POST', '/objects', { body: { bulk_object_ids: [...ids50, 'blob-1k'] } });
  assert.strictEqual(big.status, 413);
  assert.match(big.json.msg, /maxBulkRequestLength 50/);
  const bigAccess = await call('POST', '/objects/access', { body: { bulk_object_access_ids: [...ids50, 'x'].map((id) => ({ bulk_object_id: id, bulk_access_ids: [ACCESS_ID] })) } });
  assert.strictEqual(bigAccess.status, 413);
  const bigOptions = await call('OPTIONS', '/objects', { body: { bulk_object_ids: [...ids50, 'x'] } });
  assert.strictEqual(bigOptions.status, 413);
  const opts = await call('OPTIONS', '/objects', { body: { bulk_object_ids: ['blob-1k', 'egad-controlled-1.vcf', 'zzz'] } });
  assert.strictEqual(opts.status, 200, opts.text);
  assert.deepStrictEqual(opts.json.resolved_drs_object.map((a) => a.drs_object_id), ['blob-1k', 'egad-controlled-1.vcf']);
  const acc = await call('POST', '/objects/access', { body: { bulk_object_access_ids: [{ bulk_object_id: 'blob-64k', bulk_access_ids: [ACCESS_ID] }, { bulk_object_id: 'blob-1k', bulk_access_ids: [ACCESS_ID] }] } });
  assert.strictEqual(acc.status, 200, acc.text);
  assert.deepStrictEqual(acc.json.resolved_drs_object_access_urls.map((u) => u.drs_object_id), ['blob-64k', 'blob-1k']);
  const meta = (await call('GET', '/objects/blob-64k')).json;
  assertChecksums(meta, await bytesOf(acc.json.resolved_drs_object_access_urls[0]));
  // controlled objects in bulk, with alice's passport
  const ctl = await call('POST', '/objects', { body: { bulk_object_ids: ['egad-controlled-1.vcf', 'egad-controlled-1.tsv'], passports: [fake.passport('alice')] } });
  assert.strictEqual(ctl.json.summary.resolved, 2);
});

test('access endpoint answers 202 with Retry-After first, then 200', async (t) => {
  if (skip(t)) return;
  const first = await call('GET', `/objects/blob-slow/access/${ACCESS_ID}`);
  assert.strictEqual(first.status, 202);
  assert.strictEqual(first.headers.get('retry-after'), '1');
  let r = first;
  for (let i = 0; i < 5 && r.status === 202; i++) { // honour Retry-After, bounded
    await new Promise((ok) => { setTimeout(ok, Number(r.headers.get('retry-after')) * 1000); });
    r = await call('GET', `/objects/blob-slow/access/${ACCESS_ID}`);
  }
  assert.strictEqual(r.status, 200, r.text);
  assertChecksums((await call('GET', '/objects/blob-slow')).json, await bytesOf(r.json));
  assert.strictEqual((await call('GET', `/objects/blob-slow/access/${ACCESS_ID}`)).status, 202); // next client waits again
});

test('controlled objects: 401 without credentials, 403 with the wrong visa, 200 with the right one', async (t) => {
  if (skip(t)) return;
  const id = 'egad-controlled-1.vcf';
  const anon = await call('GET', `/objects/${id}`);
  assert.strictEqual(anon.status, 401);
  assert.match(anon.json.msg, /passport/);
  assert.strictEqual((await call('POST', `/objects/${id}`, { body: {} })).status, 401);
  assert.strictEqual((await call('GET', `/objects/${id}/access/${ACCESS_ID}`)).status, 401);
  const bob = await call('POST', `/objects/${id}`, { body: { passports: [fake.passport('bob')] } });
  assert.strictEqual(bob.status, 403);
  assert.ok(bob.json.msg.includes('ControlledAccessGrants') && bob.json.msg.includes(DATASET_URL), bob.json.msg);
  const forged = await call('POST', `/objects/${id}`, { body: { passports: [fake.passport('alice', { badSignature: true })] } });
  assert.strictEqual(forged.status, 401, forged.text);
  const alice = await call('POST', `/objects/${id}`, { body: { passports: [fake.passport('alice')] } });
  assert.strictEqual(alice.status, 200, alice.text);
  const acc = await call('POST', `/objects/${id}/access/${ACCESS_ID}`, { body: { passports: [fake.passport('alice')] } });
  assert.strictEqual(acc.status, 200, acc.text);
  assertChecksums(alice.json, await bytesOf(acc.json));
  const accBob = await call('POST', `/objects/${id}/access/${ACCESS_ID}`, { body: { passports: [fake.passport('bob')] } });
  assert.strictEqual(accBob.status, 403);
  // the bearer token's userinfo passport counts too
  assert.strictEqual((await call('GET', `/objects/${id}`, { token: fake.token('alice') })).status, 200);
  assert.strictEqual((await call('GET', `/objects/${id}`, { token: fake.token('bob') })).status, 403);
  assert.strictEqual((await call('GET', `/objects/${id}`, { token: 'garbage' })).status, 401);
});

test('registered objects need a valid bearer token', async (t) => {
  if (skip(t)) return;
  assert.strictEqual((await call('GET', '/objects/blob-registered')).status, 401);
  assert.strictEqual((await call('GET', '/objects/blob-registered', { token: 'garbage' })).status, 401);
  const ok = await call('GET', '/objects/blob-registered', { token: fake.token('bob') });
  assert.strictEqual(ok.status, 200);
  const a = await call('GET', `/objects/blob-registered/access/${ACCESS_ID}`, { token: fake.token('bob') });
  assertChecksums(ok.json, await bytesOf(a.json));
  assert.strictEqual((await call('GET', '/objects/ds-registered-1.vcf', { token: fake.token('alice') })).status, 200);
});

test('non-conforming requests: 400 and a recorded violation', async (t) => {
  if (skip(t)) return;
  const n = violations().filter((v) => v.kind === 'request').length;
  const r = await call('POST', '/objects', { body: { bulk_object_ids: 'blob-1k' } });
  assert.strictEqual(r.status, 400);
  const r2 = await call('POST', '/objects/blob-1k', { body: { passports: 'x' } });
  assert.strictEqual(r2.status, 400);
  assert.strictEqual(violations().filter((v) => v.kind === 'request').length, n + 2);
});

test('real OIDC provider: token exchange passport of alice opens a controlled object, bob\'s does not', { timeout: 90000 }, async (t) => {
  if (skip(t)) return;
  if (!fs.existsSync(path.join(ROOT, 'oidc', 'server.js')) || !fs.existsSync(path.join(ROOT, 'oidc', 'approve.js'))) {
    t.skip('oidc/server.js or oidc/approve.js not present');
    return;
  }
  const oidc = await startOidc('fed-drs-oidc-');
  const { urls, state: ostate } = oidc;
  try {
    const form = (o, h = {}) => ({ method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...h }, body: new URLSearchParams(o).toString(), signal: AbortSignal.timeout(10000) });
    const passportOf = async (user) => {
      const da = await (await fetch(`${urls.issuer}/device/auth`, form({ client_id: 'impact-cli', scope: 'openid ga4gh_passport_v1' }))).json();
      execFileSync(process.execPath, ['oidc/approve.js', '--issuer', urls.issuer, '--user-code', da.user_code, '--user', user], { cwd: ROOT, timeout: 30000, stdio: 'ignore' });
      const tok = await (await fetch(`${urls.issuer}/token`, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'impact-cli', device_code: da.device_code }))).json();
      const secret = fs.readFileSync(path.join(ostate, 'impact-ci.secret'), 'utf8').trim();
      const ex = await (await fetch(`${urls.issuer}/token`, form({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: tok.access_token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', requested_token_type: 'urn:ga4gh:params:oauth:token-type:passport',
      }, { Authorization: `Basic ${Buffer.from(`impact-ci:${secret}`).toString('base64')}` }))).json();
      assert.ok(ex.access_token, JSON.stringify(ex));
      return { passport: ex.access_token, token: tok.access_token };
    };
    const alice = await passportOf('alice');
    const bob = await passportOf('bob');
    const id = 'egad-controlled-1.tsv';
    const ok = await call('POST', `/objects/${id}/access/${ACCESS_ID}`, { body: { passports: [alice.passport] } });
    assert.strictEqual(ok.status, 200, ok.text);
    assert.strictEqual((await call('POST', `/objects/${id}/access/${ACCESS_ID}`, { body: { passports: [bob.passport] } })).status, 403);
    assert.strictEqual((await call('GET', `/objects/${id}`, { token: alice.token })).status, 200);
    assert.strictEqual((await call('GET', `/objects/${id}`, { token: bob.token })).status, 403);
  } finally {
    await oidc.stop();
  }
});

test('no response violations were recorded', (t) => {
  if (skip(t)) return;
  assert.deepStrictEqual(violations().filter((v) => v.kind === 'response'), []);
});
