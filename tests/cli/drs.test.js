'use strict';
// impact drs info|download against the federation's DRS 1.5 server (real tokens of alice and bob, request
// validation on), and against small scripted servers behind the fault proxy for kills, corruption, 413s,
// compact identifiers and hostile names.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { BIN, FED_STATE, federation, home, impact, impactAsync, server, serviceInfo, userToken } = require('./helpers');
const { startProxy } = require('../federation/proxy/server');

const fed = federation();
const DRS = fed.services.drs;                       // …/ga4gh/drs/v1
const HOST = new URL(DRS).host;                     // 127.0.0.1:PORT
const uri = (id) => `drs://${HOST}/${encodeURIComponent(id)}`;
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const violations = () => {
  const f = path.join(FED_STATE, 'violations.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
};
const before = violations();

let tokens;
async function token(user) {
  tokens = tokens || {};
  if (!tokens[user]) tokens[user] = (await userToken(user)).access_token;
  return tokens[user];
}

function localProfile(t) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

function fileSha(file) { return sha256(fs.readFileSync(file)); }

test('info shows size, checksums, access methods, times and aliases, also for an id that needs encoding', (t) => {
  const dir = localProfile(t);
  const odd = 'blob odd/id#1+ä';
  const r = impact(dir, ['drs', 'info', uri('ds-public-1.vcf'), uri(odd), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.failed, []);
  assert.equal(j.objects.length, 2);
  const vcf = j.objects[0];
  assert.equal(vcf.id, 'ds-public-1.vcf');
  assert.ok(vcf.size > 0);
  assert.deepEqual(vcf.checksums.map((c) => c.type), ['sha-256', 'md5']);
  assert.deepEqual(vcf.aliases, ['DS-PUBLIC-1/vcf']);
  assert.equal(vcf.access_methods[0].type, 'https');
  assert.match(vcf.created_time, /^\d{4}-\d\d-\d\dT/);
  assert.equal(j.objects[1].id, odd);
  assert.equal(j.objects[1].uri, uri(odd));
  // TSV: one line per object, the size in bytes
  const tsv = impact(dir, ['drs', 'info', uri('blob-64k')]);
  assert.equal(tsv.code, 0);
  const cols = tsv.stdout.trim().split('\t');
  assert.equal(cols[0], uri('blob-64k'));
  assert.equal(cols[2], '65536');
});

test('a controlled object: 401 without a token, 403 naming the visa for bob, downloaded for alice', async (t) => {
  const dir = localProfile(t);
  const id = uri('egad-controlled-1.vcf');
  const none = impact(dir, ['drs', 'info', id]);
  assert.equal(none.code, 4, none.stderr);
  assert.match(none.stderr, /HTTP 401: .*controlled-access/);
  assert.match(none.stderr, /hint: run: impact login/);

  const bob = await impactAsync(dir, ['drs', 'download', id, '-o', path.join(dir, 'out')], { env: { IMPACT_TOKEN: await token('bob') } });
  assert.equal(bob.code, 5, bob.stderr);
  assert.match(bob.stderr, /HTTP 403: .*requires a ControlledAccessGrants visa for https:\/\/ega-archive\.org\/datasets\/EGAD-CONTROLLED-1/);
  assert.match(bob.stderr, /hint: your passport lacks the visa named above \(passports accepted from: /);
  assert.ok(!fs.existsSync(path.join(dir, 'out', 'EGAD-CONTROLLED-1.vcf')));

  const alice = await impactAsync(dir, ['--debug', 'drs', 'download', id, '-o', path.join(dir, 'out'), '--json'],
    { env: { IMPACT_TOKEN: await token('alice') } });
  assert.equal(alice.code, 0, alice.stderr);
  const f = JSON.parse(alice.stdout).files[0];
  assert.equal(f.status, 'downloaded');
  assert.equal(f.verified, 'size,sha256');
  assert.equal(f.resumed, false);
  const info = JSON.parse(impact(dir, ['drs', 'info', id, '--json'], { env: { IMPACT_TOKEN: await token('alice') } }).stdout);
  assert.equal(fileSha(path.join(dir, 'out', f.path)), info.objects[0].checksums.find((c) => c.type === 'sha-256').checksum);
  // The token went to the DRS API (redacted in the log) and never to the signed URL's host.
  const blocks = alice.stderr.split(/^(?=\* )/m);
  const api = blocks.filter((b) => b.startsWith(`* GET ${DRS}/objects/`));
  assert.ok(api.some((b) => /^> Authorization: Bearer REDACTED$/m.test(b)), alice.stderr);
  const signed = blocks.filter((b) => /^\* GET \S+X-Amz-Signature=REDACTED/.test(b));
  assert.equal(signed.length, 1, alice.stderr);
  assert.doesNotMatch(signed[0], /^> Authorization/m);
  assert.ok(!alice.stderr.includes(await token('alice')));
});

test('several objects and a bundle: bulk requests, folders, verified files; a second run keeps them', async (t) => {
  const dir = localProfile(t);
  const out = path.join(dir, 'out');
  const ids = ['bundle-public-1', 'blob-1k', 'blob-64k', 'blob-empty', 'blob odd/id#1+ä', 'ds-registered-1.tsv'];
  const env = { IMPACT_TOKEN: await token('bob') };
  const r = await impactAsync(dir, ['-v', 'drs', 'download', ...ids.map(uri), '-o', out, '--parallel', '3', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const files = JSON.parse(r.stdout).files;
  assert.equal(JSON.parse(r.stdout).destination, out);
  assert.deepEqual(files.map((f) => f.path).sort(), [
    'DS-PUBLIC-1/DS-PUBLIC-1.tsv', 'DS-PUBLIC-1/DS-PUBLIC-1.vcf', 'DS-PUBLIC-1/blobs/blob-1k.txt',
    'DS-PUBLIC-1/blobs/blob-64k.bin', 'DS-REGISTERED-1.tsv', 'blob-1k.txt', 'blob-64k.bin', 'empty.bin', 'odd id.txt']);
  assert.ok(files.every((f) => f.status === 'downloaded' && f.verified === 'size,sha256'), r.stdout);
  assert.equal(fs.statSync(path.join(out, 'empty.bin')).size, 0);
  assert.equal(fs.statSync(path.join(out, 'blob-64k.bin')).size, 65536);
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('.impact-')), []);
  // one bulk round for the objects (per credential form) and one for access URLs, no per-object GETs
  assert.match(r.stderr, /^\* OPTIONS \S+\/objects 200/m);
  assert.match(r.stderr, /^\* POST \S+\/objects 200/m);
  assert.match(r.stderr, /^\* POST \S+\/objects\/access 200/m);
  assert.doesNotMatch(r.stderr, /^\* GET \S+\/objects\/(blob|ds)/m);
  // blob-1k's inline access_url worked only because its header was sent
  assert.match(r.stderr, /^\* GET \S+\/download\/blobs\/blob-1k\.txt 200/m);

  const again = await impactAsync(dir, ['drs', 'download', ...ids.map(uri), '-o', out, '--json'], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.ok(JSON.parse(again.stdout).files.every((f) => f.status === 'skipped'));
});

test('202 Accepted with Retry-After is waited for, then the object is fetched', async (t) => {
  const dir = localProfile(t);
  const r = await impactAsync(dir, ['-v', 'drs', 'download', uri('blob-slow'), '-o', path.join(dir, 'o')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /access\/https-presigned 202 .*\n(.*\n)*.*access\/https-presigned 200/);
  assert.equal(fs.readFileSync(path.join(dir, 'o', 'blob-slow.txt')).length > 0, true);
});

test('a .impact-part the earlier DRS engine appended to is resumed with Range and verified', async (t) => {
  const dir = localProfile(t);
  const full = path.join(dir, 'full');
  assert.equal((await impactAsync(dir, ['drs', 'download', uri('blob-8m'), '-o', full])).code, 0);
  const bytes = fs.readFileSync(path.join(full, 'blob-8m.bin'));
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'blob-8m.bin.impact-part'), bytes.subarray(0, 3000000));
  const r = await impactAsync(dir, ['--debug', 'drs', 'download', uri('blob-8m'), '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^> Range: bytes=3000000-8388607$/m);
  assert.match(r.stderr, /^< Content-Range: bytes 3000000-8388607\/8388608$/m);
  const f = JSON.parse(r.stdout).files[0];
  assert.equal(f.resumed, true);
  assert.equal(f.verified, 'size,sha256');
  assert.equal(fileSha(path.join(out, 'blob-8m.bin')), sha256(bytes));
  assert.ok(!fs.existsSync(path.join(out, 'blob-8m.bin.impact-part')));
});

// ------------------------------------------------------------------ scripted servers

// A data server with Range support, behind the fault proxy; a DRS server whose objects point at it.
async function scripted(t, objects, { maxBulk, bulkLimit } = {}) {
  const data = http.createServer((req, res) => {
    const o = objects.find((x) => `/data/${x.key}` === req.url);
    if (!o) { res.writeHead(404); return res.end(); }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Number(m[2]) + 1 : undefined;
    const body = (o.sent || o.bytes).subarray(start, end);  // `sent`: a server that sends other bytes than it declares
    res.writeHead(m ? 206 : 200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes',
      ...(m ? { 'Content-Range': `bytes ${start}-${start + body.length - 1}/${o.bytes.length}` } : {}) });
    res.end(body);
  });
  await new Promise((ok) => data.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise((ok) => { data.closeAllConnections(); data.close(ok); }));
  const proxy = await startProxy({ target: `http://127.0.0.1:${data.address().port}`, port: 0 });
  t.after(() => proxy.close());
  const accessUrl = (o) => ({ url: `${proxy.url}/data/${o.key}`, headers: ['X-Test-Auth: s3cr3t-header-value'] });
  const render = (o) => ({
    id: o.id, name: o.name, self_uri: `drs://x/${o.id}`, size: o.bytes.length, created_time: '2024-01-01T00:00:00Z',
    checksums: o.checksums || [{ type: 'sha-256', checksum: o.sha || sha256(o.bytes) }],
    access_methods: [o.viaAccessId ? { type: 'https', access_id: 'a1' } : { type: 'https', access_url: accessUrl(o) }],
  });
  const srv = await server(t, (req, body) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/drs/service-info') {
      return { status: 200, body: { ...serviceInfo('t.drs', 'drs', ''), ...(maxBulk ? { maxBulkRequestLength: maxBulk } : {}) } };
    }
    if (u.pathname === '/drs/objects' && req.method === 'POST') {
      const ids = JSON.parse(body).bulk_object_ids;
      if (ids.length > bulkLimit) return { status: 413, body: { msg: 'too many', status_code: 413 } };
      return { status: 200, body: { summary: { requested: ids.length, resolved: ids.length, unresolved: 0 },
        resolved_drs_object: ids.map((id) => render(objects.find((o) => o.id === id))) } };
    }
    if (u.pathname === '/drs/objects' && req.method === 'OPTIONS') return { status: 405, body: {} };
    const access = /^\/drs\/objects\/([^/]+)\/access\/a1$/.exec(u.pathname);
    if (access) return { status: 200, body: accessUrl(objects.find((x) => x.id === decodeURIComponent(access[1]))) };
    const id = decodeURIComponent(u.pathname.replace(/^\/drs\/objects\//, ''));
    const o = objects.find((x) => x.id === id);
    if (!o) return { status: 404, body: { msg: 'no such object', status_code: 404 } };
    if (req.method === 'OPTIONS') return { status: 200, body: { supported_types: ['None'] } };
    return { status: 200, body: render(o) };
  });
  return { drs: `${srv.url}/drs`, seen: srv.seen, proxy };
}

function blob(id, n, extra = {}) {
  const bytes = crypto.randomBytes(n);
  return { id, key: id.replace(/[^a-z0-9]/gi, '_'), name: `${id}.bin`, bytes, ...extra };
}

test('a one-request download killed mid-way resumes from its .impact-part file', async (t) => {
  const dir = home(t);
  const o = blob('big', 400000);
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  s.proxy.addFault({ path: '^/data/', trickle: 40000, times: 1 });
  const out = path.join(dir, 'out');
  const part = path.join(out, 'big.bin.impact-part');
  const child = spawn(BIN, ['drs', 'download', `drs://${new URL(s.drs).host}/big`, '-o', out],
    { env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache') } });
  const exited = new Promise((ok) => child.on('close', ok));
  // wait (bounded) until some bytes are on disk, then kill it hard
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && !(fs.existsSync(part) && fs.statSync(part).size >= 40000)) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  child.kill('SIGKILL');
  await exited;
  const kept = fs.statSync(part).size;
  assert.ok(kept >= 40000 && kept < o.bytes.length, `kept ${kept}`);
  assert.ok(!fs.existsSync(path.join(out, 'big.bin')), 'no half-written file at the final name');
  s.proxy.clearLog();
  const r = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/big`, '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout).files[0];
  assert.equal(f.resumed, true);
  assert.equal(fileSha(path.join(out, 'big.bin')), sha256(o.bytes));
  const fetched = s.proxy.requests();
  assert.equal(fetched.length, 1);
  assert.equal(fetched[0].status, 206);
});

test('a download in ranged parts killed with SIGKILL resumes from its state: only the missing parts are fetched', async (t) => {
  const dir = home(t);
  const o = blob('parts', 3 << 20);
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  // The first part trickles; the other two arrive at once and are recorded in the state.
  s.proxy.addFault({ path: '^/data/', trickle: 20000, times: 1 });
  const out = path.join(dir, 'out');
  const part = path.join(out, 'parts.bin.impact-part');
  const state = path.join(out, 'parts.bin.impact-state');
  const args = ['drs', 'download', `drs://${new URL(s.drs).host}/parts`, '-o', out, '--part-size', '1M', '--parallel', '3'];
  const child = spawn(BIN, args,
    { env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache') } });
  const exited = new Promise((ok) => child.on('close', ok));
  const done = () => { try { return JSON.parse(fs.readFileSync(state, 'utf8')).done.length; } catch { return 0; } };
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && done() < 2) await new Promise((ok) => setTimeout(ok, 50));
  child.kill('SIGKILL');
  await exited;
  assert.equal(done(), 2, 'two parts recorded, the trickling one missing');
  assert.equal(fs.statSync(part).size, o.bytes.length, 'written in place, at full size');
  assert.ok(!fs.existsSync(path.join(out, 'parts.bin')), 'no half-written file at the final name');
  s.proxy.clearLog();
  const r = await impactAsync(dir, [...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout).files[0];
  assert.deepEqual([f.status, f.resumed, f.verified], ['downloaded', true, 'size,sha256']);
  assert.equal(fileSha(path.join(out, 'parts.bin')), sha256(o.bytes));
  assert.deepEqual(s.proxy.requests().map((x) => x.status), [206], 'only the missing part again');
  assert.deepEqual(fs.readdirSync(out), ['parts.bin']);
});

test('a checksum mismatch injected by the fault proxy fails clearly and leaves nothing behind', async (t) => {
  const dir = home(t);
  const o = blob('c', 5000);
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
  s.proxy.addFault({ path: '^/data/', corrupt_body: true, times: 1 });
  const r = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/c`, '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /c: sha256 checksum mismatch \(got [0-9a-f]{64}, expected [0-9a-f]{64}\)/);
  assert.match(r.stderr, /hint: the data was corrupted in transit/);
  assert.deepEqual(fs.readdirSync(out), ['keep.txt']);
  // the access URL's header went to the data server and nowhere in the output
  assert.ok(!r.stderr.includes('s3cr3t-header-value'));
  const again = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/c`, '-o', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fileSha(path.join(out, 'c.bin')), sha256(o.bytes));
});

test('a signed URL refused with 403 (expired) is asked for again, once', async (t) => {
  const dir = home(t);
  const o = blob('e', 3000, { viaAccessId: true });
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  s.proxy.addFault({ path: '^/data/', status: 403, body: { msg: 'Request has expired' }, times: 1 });
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/e`, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fileSha(path.join(out, 'e.bin')), sha256(o.bytes));
  assert.equal(s.seen.filter((x) => x.url === '/drs/objects/e/access/a1').length, 2);
  assert.deepEqual(s.proxy.requests().map((x) => x.status), [403, 200]);
  // refused twice: a clear error, no second refresh
  s.proxy.addFault({ path: '^/data/', status: 403, body: { msg: 'Request has expired' }, times: 2 });
  const bad = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/e`, '-o', path.join(dir, 'o2')]);
  assert.equal(bad.code, 5, bad.stderr);
  assert.match(bad.stderr, /downloading drs:\/\/\S+ failed: HTTP 403: Request has expired/);
});

// Issue 22, finding 1: another user plants links in a shared download folder.
test('links planted in the download folder are refused (exit 1 when all fail); the victims are unchanged', async (t) => {
  const dir = home(t);
  const objects = [blob('good', 1000), blob('app', 1000), blob('dang', 10), blob('fine', 100)];
  const s = await scripted(t, objects);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const host = new URL(s.drs).host;
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const victim = path.join(dir, 'victim');     // larger than good.bin: truncated to it before
  const small = path.join(dir, 'small');       // smaller than app.bin: resumed into (Range: bytes=12-) before
  fs.writeFileSync(victim, 'v'.repeat(5000));
  fs.writeFileSync(small, 'twelve bytes');
  fs.symlinkSync(victim, path.join(out, 'good.bin.impact-part'));
  fs.symlinkSync(small, path.join(out, 'app.bin.impact-part'));
  fs.symlinkSync(path.join(dir, 'created'), path.join(out, 'dang.bin.impact-part'));
  const links = ['good', 'app', 'dang'];
  const r = await impactAsync(dir, ['drs', 'download', ...links.map((id) => `drs://${host}/${id}`), '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  for (const id of links) assert.match(r.stderr, new RegExp(`/${id}: ${id}\\.bin\\.impact-part is a symbolic link; impact does not follow links`));
  assert.doesNotMatch(r.stdout, /downloaded/);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'v'.repeat(5000));
  assert.equal(fs.readFileSync(small, 'utf8'), 'twelve bytes');
  assert.ok(!fs.existsSync(path.join(dir, 'created')), 'a dangling link\'s target is not created');
  assert.ok(!fs.existsSync(path.join(out, 'good.bin')), 'nothing at the final name');
  assert.ok(!s.proxy.requests().length, 'nothing was fetched for them');
  // with a good object beside them: it is downloaded, the others still refused (exit 6)
  const mixed = await impactAsync(dir, ['drs', 'download', `drs://${host}/good`, `drs://${host}/fine`, '-o', out, '--json']);
  assert.equal(mixed.code, 6, mixed.stderr);
  const files = JSON.parse(mixed.stdout).files;
  assert.equal(files[0].status, 'failed');
  assert.equal(files[0].kind, 'io');
  assert.equal(files[1].status, 'downloaded');
  assert.equal(fileSha(path.join(out, 'fine.bin')), sha256(objects[3].bytes));
  assert.equal(fs.readFileSync(victim, 'utf8'), 'v'.repeat(5000));
});

// Issue 22, finding 4.
test('a server that keeps sending past the declared size fails the object; nothing beyond the size is written', async (t) => {
  const dir = home(t);
  const o = blob('endless', 1000, { sent: crypto.randomBytes(8 << 20) });
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const out = path.join(dir, 'out');
  const r = await impactAsync(dir, ['drs', 'download', `drs://${new URL(s.drs).host}/endless`, '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /endless: the server sent more data than the object's size/);
  assert.deepEqual(fs.readdirSync(out), [], 'no final file and no oversized .impact-part');
});

// Issue 22, finding 7: SECURITY.md promises no unverified file under a final name.
test('an object with no checksum impact can verify is not fetched unless --allow-unverified', async (t) => {
  const dir = home(t);
  const o = blob('nosum', 500, { checksums: [{ type: 'etag', checksum: 'abc' }] });
  const s = await scripted(t, [o]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const out = path.join(dir, 'out');
  const u = `drs://${new URL(s.drs).host}/nosum`;
  const r = await impactAsync(dir, ['drs', 'download', u, '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no checksum impact can verify \(offered: etag\); not downloaded/);
  assert.match(r.stderr, /hint: .*--allow-unverified/);
  assert.ok(!fs.existsSync(out) || fs.readdirSync(out).length === 0, 'nothing written');
  assert.equal(s.proxy.requests().length, 0, 'no byte was fetched');
  const ok = await impactAsync(dir, ['drs', 'download', u, '-o', out, '--allow-unverified', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const f = JSON.parse(ok.stdout).files[0];
  assert.equal(f.status, 'downloaded');
  assert.equal(f.verified, 'size');
  assert.equal(fileSha(path.join(out, 'nosum.bin')), sha256(o.bytes));
  const warned = await impactAsync(dir, ['drs', 'download', u, '-o', path.join(dir, 'o2'), '--allow-unverified']);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /nosum\.bin: not verified/);
});

test('names from the server cannot leave the folder: unsafe ones are refused, as S3 keys are', async (t) => {
  const dir = home(t);
  const s = await scripted(t, [blob('evil', 10, { name: '../../escape.txt' }), blob('dot', 10, { name: '..' })]);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const out = path.join(dir, 'a', 'b');
  const host = new URL(s.drs).host;
  const r = await impactAsync(dir, ['drs', 'download', `drs://${host}/evil`, `drs://${host}/dot`, '-o', out, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const files = JSON.parse(r.stdout).files;
  assert.deepEqual(files.map((f) => [f.status, f.kind]), [['failed', 'protocol'], ['failed', 'protocol']]);
  assert.match(files[0].error, /refusing the name '\.\.\/\.\.\/escape\.txt': it contains '\.\.'/);
  assert.ok(!fs.existsSync(out) || fs.readdirSync(out).length === 0);
  assert.ok(!fs.existsSync(path.join(dir, 'escape.txt')) && !fs.existsSync(path.join(dir, 'a', 'escape.txt')));
});

test('bulk requests are chunked by maxBulkRequestLength and halved on 413', async (t) => {
  const dir = home(t);
  const objects = ['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => blob(id, 100));
  const s = await scripted(t, objects, { maxBulk: 4, bulkLimit: 2 });
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${s.drs}`]).code, 0);
  const host = new URL(s.drs).host;
  const r = await impactAsync(dir, ['drs', 'info', ...objects.map((o) => `drs://${host}/${o.id}`), '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).objects.map((o) => o.id), ['b1', 'b2', 'b3', 'b4', 'b5']);
  const bulk = s.seen.filter((x) => x.method === 'POST' && x.url === '/drs/objects').map((x) => JSON.parse(x.body).bulk_object_ids.length);
  assert.deepEqual(bulk, [4, 2, 2, 1]);  // 4 refused (413), then halves
  assert.ok(!s.seen.some((x) => x.method === 'GET' && x.url.startsWith('/drs/objects/')), 'no per-object fallback');
});

test('compact ids are resolved through the profile resolver, once per prefix', async (t) => {
  const dir = home(t);
  const resolver = await server(t, (req) => {
    const m = /^\/fed\.drs:(.+)$/.exec(req.url);
    if (!m) return { status: 404, body: {} };
    return { status: 200, body: { payload: { resolvedResources: [{ compactIdentifierResolvedUrl: `${DRS}/objects/${m[1]}` }] } } };
  });
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `fed=${DRS}`, '--drs-resolver', resolver.url]).code, 0);
  const r = await impactAsync(dir, ['drs', 'info', 'drs://fed.drs:blob-1k', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).objects[0].id, 'blob-1k');
  const r2 = await impactAsync(dir, ['drs', 'info', 'drs://fed.drs:blob-64k', '--json']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).objects[0].size, 65536);
  assert.equal(resolver.seen.length, 1, 'the prefix was cached');
  const none = home(t);
  assert.equal(impact(none, ['profile', 'add', 'y', '--drs', `fed=${DRS}`]).code, 0);
  const bad = impact(none, ['drs', 'info', 'drs://fed.drs:blob-1k']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /compact identifier, and profile 'y' has no DRS resolver/);
});

test('a DRS server outside the profile never receives the token', async (t) => {
  const dir = localProfile(t);
  const other = await server(t, (req) => (req.method === 'OPTIONS'
    ? { status: 200, body: { supported_types: ['BearerAuth'] } }
    : { status: 401, body: { msg: 'send a token', status_code: 401 } }));
  const r = await impactAsync(dir, ['drs', 'info', `drs://${new URL(other.url).host}/x`], { env: { IMPACT_TOKEN: await token('alice') } });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /is not a DRS server of profile 'local', so impact sends it no token or passport/);
  assert.ok(other.seen.length >= 2);
  assert.ok(other.seen.every((x) => !x.headers.authorization));
  const bad = impact(dir, ['drs', 'info', 'https://example.org/x', 'drs://nohost']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a DRS URI: https:\/\/example\.org\/x/);
});

test('on a terminal: a progress line on stderr and a table on stdout', async (t) => {
  const dir = localProfile(t);
  const r = await impactAsync(dir, ['drs', 'download', uri('blob-64k'), uri('blob-1k'), '-o', path.join(dir, 'o')],
    { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '200', NO_COLOR: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\r65\.0 KiB {2}in \d+s {2}(\(\S+ \w+\/s\) {2})?files 2\/2\x1b\[K\n$/);  // the closing line
  assert.match(r.stdout, /^STATUS\s+PATH\s+SIZE\s+VERIFIED\s+URI/);
  assert.match(r.stdout, /downloaded\s+\S+blob-64k\.bin\s+64\.0 KiB\s+size,sha256/);
});

test('the DRS server saw no request that violates the specification', () => {
  assert.equal(violations(), before);
});
