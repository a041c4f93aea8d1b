'use strict';
// Tests of sda/server.js: the SDA download API v2 (and v1 behind --api v1) over Crypt4GH files re-encrypted
// for the caller's key: listings and paging, filters, problem details, 401/403, header + content decrypting
// to the plaintext, ranges, If-Range, and the fault switches.
//
//   cd tests/federation && node --test test/sda.test.js
//
// Identities are injected (no OIDC here): `Bearer alice` holds a ControlledAccessGrants visa for
// EGAD-CONTROLLED-1, `Bearer bob` none.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const sda = require('../sda/server');
const c4gh = require('../lib/crypt4gh');
const identityLib = require('../beacon/identity');
const { tempDir } = require('./helpers');

const quiet = { info() {}, warn() {}, error() {}, debug() {}, request() {} };
const identity = identityLib.create({
  whoami: (req) => {
    const who = (req.headers.authorization || '').replace(/^Bearer\s+/, '');
    return ['alice', 'bob'].includes(who) ? { sub: who } : null;
  },
  visasOf: (user) => (user && user.sub === 'alice'
    ? [{ iss: 'x', exp: Math.floor(Date.now() / 1000) + 3600, ga4gh_visa_v1: { type: 'ControlledAccessGrants', value: identityLib.CONTROLLED_DATASET_URL } }]
    : []),
});
const reader = c4gh.generateKeyPair();
const KEY = reader.pub.toString('base64');

let v2;
let v1;
test.before(async () => {
  v2 = await sda.start({ port: 0, data: tempDir('sda-v2-'), identity, log: quiet });
  v1 = await sda.start({ port: 0, api: 'v1', data: tempDir('sda-v1-'), identity, log: quiet });
});
test.after(async () => { await v2.close(); await v1.close(); });

async function call(srv, p, { who = 'alice', headers = {}, method = 'GET', body } = {}) {
  const res = await fetch(`${srv.url}${p}`, {
    method, headers: { ...(who ? { authorization: `Bearer ${who}` } : {}), ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(20000),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  let json;
  try { json = JSON.parse(buf.toString('utf8')); } catch (e) { json = undefined; }
  return { status: res.status, headers: res.headers, json, buf };
}
const byPath = (srv, p) => [...srv.files.values()].find((f) => f.path === p);
const plain = (f) => fs.readFileSync(f.plain);

test('datasets: only those the visas grant; 401 without a token', async () => {
  assert.deepStrictEqual((await call(v2, '/datasets')).json, { datasets: ['EGAD-CONTROLLED-1'], nextPageToken: null });
  assert.deepStrictEqual((await call(v2, '/datasets', { who: 'bob' })).json.datasets, []);
  const r = await call(v2, '/datasets', { who: null });
  assert.strictEqual(r.status, 401);
  assert.match(r.headers.get('content-type'), /application\/problem\+json/);
  assert.strictEqual(r.json.status, 401);
  assert.ok(r.json.title);
  const d = await call(v2, '/datasets/EGAD-CONTROLLED-1');
  assert.strictEqual(d.json.datasetId, 'EGAD-CONTROLLED-1');
  assert.ok(d.json.files >= 6);
});

test('files: paging with opaque tokens, filePath and pathPrefix, conflicts and bad tokens', async () => {
  const all = [];
  let token = null;
  for (let i = 0; i < 20; i++) {
    const r = await call(v2, `/datasets/EGAD-CONTROLLED-1/files?pageSize=2${token ? `&pageToken=${token}` : ''}`);
    assert.strictEqual(r.status, 200);
    assert.ok(r.json.files.length <= 2);
    all.push(...r.json.files);
    token = r.json.nextPageToken;
    if (!token) break;
  }
  const whole = (await call(v2, '/datasets/EGAD-CONTROLLED-1/files')).json.files;
  assert.deepStrictEqual(all, whole);
  const f = whole.find((x) => x.filePath === 'samples/s1.vcf');
  assert.deepStrictEqual(Object.keys(f).sort(), ['checksums', 'decryptedSize', 'downloadUrl', 'fileId', 'filePath', 'size']);
  assert.strictEqual(f.checksums[0].checksum, crypto.createHash('sha256').update(plain(byPath(v2, 'samples/s1.vcf'))).digest('hex'));
  assert.deepStrictEqual((await call(v2, '/datasets/EGAD-CONTROLLED-1/files?filePath=samples/s1.vcf')).json.files, [f]);
  assert.deepStrictEqual((await call(v2, '/datasets/EGAD-CONTROLLED-1/files?filePath=nope')).json.files, []);
  const pre = (await call(v2, '/datasets/EGAD-CONTROLLED-1/files?pathPrefix=samples/')).json.files.map((x) => x.filePath);
  assert.deepStrictEqual(pre, ['samples/s1.vcf', 'samples/s2.vcf', 'samples/segment.bin']);
  const both = await call(v2, '/datasets/EGAD-CONTROLLED-1/files?filePath=a&pathPrefix=b');
  assert.strictEqual(both.status, 400);
  assert.strictEqual(both.json.errorCode, 'FILTER_CONFLICT');
  assert.strictEqual((await call(v2, '/datasets/EGAD-CONTROLLED-1/files?pageToken=forged')).json.errorCode, 'INVALID_PAGE_TOKEN');
  assert.strictEqual((await call(v2, '/datasets/EGAD-CONTROLLED-1/files?pageSize=0')).status, 400);
  // 403 for a dataset without access and for one that does not exist, alike
  for (const ds of ['EGAD-CONTROLLED-2', 'NO-SUCH']) {
    const r = await call(v2, `/datasets/${ds}/files`);
    assert.strictEqual(r.status, 403);
    assert.strictEqual(r.json.title, 'Forbidden');
  }
});

test('header for the caller\'s key + content decrypt to the plaintext; ranges; If-Range', async () => {
  const f = byPath(v2, 'reads/sample.bam');
  const id = encodeURIComponent(f.id);
  const h = await call(v2, `/files/${id}/header`, { headers: { 'x-c4gh-public-key': KEY } });
  assert.strictEqual(h.status, 200);
  assert.ok(h.headers.get('sda-content-etag'));
  const c = await call(v2, `/files/${id}/content`);
  assert.strictEqual(c.status, 200);
  assert.strictEqual(c.buf.length, f.size);
  assert.ok(c4gh.decrypt(Buffer.concat([h.buf, c.buf]), reader.secret).equals(plain(f)));
  // the legacy form of the key (base64 of the PEM text) works too
  const pem = Buffer.from(c4gh.formatPublicKey(reader.pub)).toString('base64');
  assert.strictEqual((await call(v2, `/files/${id}/header`, { headers: { 'x-c4gh-public-key': pem } })).status, 200);
  assert.strictEqual((await call(v2, `/files/${id}/header`)).status, 400);
  // a segment-aligned range decrypts alone
  const S = c4gh.SEGMENT_SEALED;
  const r = await call(v2, `/files/${id}/content`, { headers: { range: `bytes=${S}-${3 * S - 1}`, 'if-range': c.headers.get('etag') } });
  assert.strictEqual(r.status, 206);
  assert.strictEqual(r.headers.get('content-range'), `bytes ${S}-${3 * S - 1}/${f.size}`);
  const { keys } = c4gh.readHeader(h.buf, reader.secret);
  const seg1 = crypto.createDecipheriv('chacha20-poly1305', keys[0], r.buf.subarray(0, 12), { authTagLength: 16 });
  seg1.setAuthTag(r.buf.subarray(S - 16, S));
  assert.ok(Buffer.concat([seg1.update(r.buf.subarray(12, S - 16)), seg1.final()]).equals(plain(f).subarray(65536, 131072)));
  // If-Range with another ETag: the whole content
  assert.strictEqual((await call(v2, `/files/${id}/content`, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } })).status, 200);
  assert.strictEqual((await call(v2, `/files/${id}/content`, { headers: { range: 'bytes=0-1,5-6' } })).json.errorCode, 'RANGE_INVALID');
  assert.strictEqual((await call(v2, `/files/${id}/content`, { headers: { range: `bytes=${f.size}-` } })).status, 416);
  // the combined stream
  const all = await call(v2, `/files/${id}`, { headers: { 'x-c4gh-public-key': KEY } });
  assert.ok(c4gh.decrypt(all.buf, reader.secret).equals(plain(f)));
  // 403: no access, no such file; counters
  const other = byPath(v2, 'other/secret.vcf');
  assert.strictEqual((await call(v2, `/files/${encodeURIComponent(other.id)}/content`)).status, 403);
  assert.strictEqual((await call(v2, '/files/urn:neic:nope/content')).status, 403);
  assert.strictEqual((await call(v2, `/files/${id}/content`, { who: 'bob' })).status, 403);
  const stats = (await call(v2, '/_fed/stats', { who: null })).json.files[f.id];
  assert.ok(stats.content_bytes >= f.size + 2 * S && stats.header_requests >= 2, JSON.stringify(stats));
});

test('faults: a dropped connection, 503 with Retry-After, a corrupted segment', async () => {
  const f = byPath(v2, 'reads/sample.bam');
  const id = encodeURIComponent(f.id);
  await call(v2, '/_fed/reset', { who: null, method: 'POST' });
  await call(v2, '/_fed/faults', { who: null, method: 'POST', body: { file: f.path, unavailable: 1, retry_after: 2 } });
  const u = await call(v2, `/files/${id}/content`);
  assert.strictEqual(u.status, 503);
  assert.strictEqual(u.headers.get('retry-after'), '2');
  assert.strictEqual((await call(v2, `/files/${id}/content`)).status, 200);
  await call(v2, '/_fed/faults', { who: null, method: 'POST', body: { file: f.id, drop_after_bytes: 100000 } });
  await assert.rejects(call(v2, `/files/${id}/content`));
  await call(v2, '/_fed/faults', { who: null, method: 'POST', body: { file: f.id, corrupt_segment: 3 } });
  const h = await call(v2, `/files/${id}/header`, { headers: { 'x-c4gh-public-key': KEY } });
  const bad = await call(v2, `/files/${id}/content`);
  assert.throws(() => c4gh.decrypt(Buffer.concat([h.buf, bad.buf]), reader.secret), /segment 3 failed/);
  const good = await call(v2, `/files/${id}/content`); // times: 1
  assert.ok(c4gh.decrypt(Buffer.concat([h.buf, good.buf]), reader.secret).equals(plain(f)));
});

test('v1: /metadata/datasets, files, /s3 with Client-Public-Key; v2 absent', async () => {
  assert.strictEqual((await call(v1, '/datasets')).status, 404);
  assert.deepStrictEqual((await call(v1, '/metadata/datasets')).json, ['EGAD-CONTROLLED-1']);
  const list = (await call(v1, '/metadata/datasets/EGAD-CONTROLLED-1/files')).json;
  const e = list.find((x) => x.filePath === 'samples/s1.vcf');
  assert.strictEqual(e.decryptedFileChecksumType, 'SHA256');
  const f = byPath(v1, 'samples/s1.vcf');
  const all = await call(v1, '/s3/EGAD-CONTROLLED-1/samples/s1.vcf', { headers: { 'client-public-key': KEY } });
  assert.strictEqual(all.status, 200);
  assert.ok(c4gh.decrypt(all.buf, reader.secret).equals(plain(f)));
  // ranges over the combined stream: the header's length does not change between requests
  const head = await call(v1, '/s3/EGAD-CONTROLLED-1/samples/s1.vcf', { headers: { 'client-public-key': KEY, range: 'bytes=0-1023' } });
  assert.strictEqual(head.status, 206);
  const { length } = c4gh.readHeader(head.buf, reader.secret);
  const rest = await call(v1, '/s3/EGAD-CONTROLLED-1/samples/s1.vcf', { headers: { 'client-public-key': KEY, range: `bytes=${length}-` } });
  assert.ok(c4gh.decrypt(Buffer.concat([head.buf.subarray(0, length), rest.buf]), reader.secret).equals(plain(f)));
  assert.strictEqual((await call(v1, '/s3/EGAD-CONTROLLED-2/other/secret.vcf', { headers: { 'client-public-key': KEY } })).status, 403);
});

test('large files made on demand, once', async () => {
  const a = (await call(v2, '/_fed/large', { who: null, method: 'POST', body: { size: 5 * 65536 + 7 } })).json;
  const b = (await call(v2, '/_fed/large', { who: null, method: 'POST', body: { size: 5 * 65536 + 7 } })).json;
  assert.deepStrictEqual(a, b);
  assert.strictEqual(a.filePath, `large/blob-${5 * 65536 + 7}`);
  assert.strictEqual(fs.statSync(a.plain).size, 5 * 65536 + 7);
  assert.strictEqual(path.basename(a.plain), path.basename(a.filePath));
});
