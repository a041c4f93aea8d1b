'use strict';
// proxy/server.js: each fault against a tiny local target.
const test = require('node:test');
const assert = require('node:assert');
const http = require('http');
const crypto = require('crypto');
const { spawn } = require('child_process');
const path = require('path');
const svc = require('../lib/service');
const { startProxy } = require('../proxy/server');

const TMP = require('fs').mkdtempSync(path.join(require('os').tmpdir(), 'fed-proxy-'));
process.env.FED_STATE = TMP;
test.after(() => require('fs').rmSync(TMP, { recursive: true, force: true }));

const BODY = crypto.createHash('sha256').update('x').digest(); // 32 bytes
const BIG = Buffer.alloc(20000, 7);

// A raw HTTP/1.1 GET that reports what actually arrived: status, headers, bytes, and how it ended.
function rawGet(url, { method = 'GET', body } = {}) {
  return new Promise((resolve) => {
    const out = { status: null, headers: null, bytes: Buffer.alloc(0), error: null, aborted: false };
    const req = http.request(url, { method, agent: false }, (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('aborted', () => { out.aborted = true; });
      res.on('error', (e) => { out.error = out.error || e.code || e.message; });
      res.on('close', () => { out.bytes = Buffer.concat(chunks); out.complete = res.complete; resolve(out); });
    });
    req.on('error', (e) => { out.error = e.code || e.message; resolve(out); });
    req.setTimeout(10000, () => req.destroy(new Error('client timeout')));
    if (body) req.write(body);
    req.end();
  });
}

async function waitFor(cond, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

test('fault proxy', async (t) => {
  const hits = [];
  const target = http.createServer(async (req, res) => {
    const body = await svc.readBody(req);
    hits.push({ method: req.method, url: req.url, body: body.toString(), host: req.headers.host });
    if (req.url.startsWith('/big')) { res.writeHead(200, { 'Content-Length': BIG.length }); res.end(BIG); return; }
    if (req.url.startsWith('/chunked')) { res.writeHead(200); res.write(BODY.subarray(0, 10)); res.end(BODY.subarray(10)); return; }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': BODY.length });
    res.end(BODY);
  });
  const tport = await svc.listen(target, 0);
  const p = await startProxy({ target: `http://127.0.0.1:${tport}`, port: 0 });
  t.after(async () => { await p.close(); target.close(); });
  const u = (x) => `${p.url}${x}`;

  await t.test('pass-through keeps the Host header', async () => {
    const r = await rawGet(u('/a'));
    assert.strictEqual(r.status, 200);
    assert.deepStrictEqual(r.bytes, BODY);
    assert.strictEqual(hits.at(-1).host, `127.0.0.1:${p.port}`);
    const c = await rawGet(u('/chunked'));
    assert.deepStrictEqual(c.bytes, BODY);
  });

  await t.test('status 429 with Retry-After, not forwarded, once', async () => {
    p.addFault({ path: '^/limited', status: 429, retry_after: 2 });
    const before = hits.length;
    const r = await rawGet(u('/limited'));
    assert.strictEqual(r.status, 429);
    assert.strictEqual(r.headers['retry-after'], '2');
    assert.strictEqual(JSON.parse(r.bytes).status_code, 429);
    assert.strictEqual(hits.length, before);
    const r2 = await rawGet(u('/limited'));
    assert.strictEqual(r2.status, 200);
  });

  await t.test('after / times: the second and third matching requests fail with 503', async () => {
    p.addFault({ method: 'GET', path: '^/seq', status: 503, after: 1, times: 2 });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await rawGet(u('/seq'))).status);
    assert.deepStrictEqual(codes, [200, 503, 503, 200]);
  });

  await t.test('reset_after_bytes', async () => {
    p.addFault({ path: '^/big', reset_after_bytes: 1000 });
    const r = await rawGet(u('/big'));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers['content-length'], String(BIG.length));
    assert.ok(r.bytes.length <= 1000, `got ${r.bytes.length}`);
    assert.ok(r.error || r.aborted || !r.complete);
    const ok = await rawGet(u('/big'));
    assert.strictEqual(ok.bytes.length, BIG.length);
  });

  await t.test('truncate_body', async () => {
    p.addFault({ path: '^/a', truncate_body: 5 });
    const r = await rawGet(u('/a'));
    assert.strictEqual(r.headers['content-length'], String(BODY.length));
    assert.deepStrictEqual(r.bytes, BODY.subarray(0, 5));
    assert.ok(r.error || r.aborted || !r.complete);
  });

  await t.test('corrupt_body flips a byte, length unchanged', async () => {
    p.addFault({ path: '^/a', corrupt_body: true });
    const r = await rawGet(u('/a'));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.bytes.length, BODY.length);
    assert.notDeepStrictEqual(r.bytes, BODY);
    let diff = 0;
    for (let i = 0; i < BODY.length; i++) if (r.bytes[i] !== BODY[i]) diff++;
    assert.strictEqual(diff, 1);
  });

  await t.test('stall_ms holds the response', async () => {
    p.addFault({ path: '^/a', stall_ms: 300 });
    const t0 = Date.now();
    const r = await rawGet(u('/a'));
    assert.ok(Date.now() - t0 >= 280);
    assert.deepStrictEqual(r.bytes, BODY);
  });

  await t.test('trickle slows the body down', async () => {
    p.addFault({ path: '^/a', trickle: 100 }); // 10 bytes per 100 ms -> 32 bytes take >= 300 ms
    const t0 = Date.now();
    const r = await rawGet(u('/a'));
    assert.ok(Date.now() - t0 >= 250, `${Date.now() - t0} ms`);
    assert.deepStrictEqual(r.bytes, BODY);
  });

  await t.test('set_headers adds, replaces and removes response headers; the body is untouched', async () => {
    p.addFault({ method: 'GET', path: '^/a', set_headers: { 'X-Amz-Checksum-Sha256': 'abc=', 'Content-Type': 'text/plain', 'content-length': null } });
    const r = await rawGet(u('/a'));
    assert.strictEqual(r.headers['x-amz-checksum-sha256'], 'abc=');
    assert.strictEqual(r.headers['content-type'], 'text/plain');
    assert.strictEqual(r.headers['content-length'], undefined);
    assert.deepStrictEqual(r.bytes, BODY);
    assert.strictEqual(p.requests().at(-1).fault, 'set_headers');
    assert.strictEqual((await rawGet(u('/a'))).headers['x-amz-checksum-sha256'], undefined);
    assert.throws(() => p.addFault({ path: '^/a', set_headers: { a: 1 } }), /set_headers wants/);
  });

  await t.test('drop_after_request: the target gets the request, the client no answer', async () => {
    p.addFault({ method: 'POST', path: '^/runs$', drop_after_request: true });
    const before = hits.length;
    const r = await rawGet(u('/runs'), { method: 'POST', body: 'workflow=1' });
    assert.strictEqual(r.status, null);
    assert.ok(r.error, 'client saw an error');
    assert.strictEqual(hits.length, before + 1);
    assert.strictEqual(hits.at(-1).body, 'workflow=1');
    const last = p.requests().at(-1);
    assert.strictEqual(last.fault, 'drop_after_request');
    assert.strictEqual(last.reached_target, true);
  });

  await t.test('control API over HTTP: add, list, log, reset, bad rule', async () => {
    const post = (pth, body) => fetch(`${p.controlUrl}${pth}`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    let res = await post('/__fault', { path: '^/x', status: 503, times: -1 });
    assert.strictEqual(res.status, 200);
    assert.strictEqual((await rawGet(u('/x'))).status, 503);
    assert.strictEqual((await rawGet(u('/x'))).status, 503);
    const rules = await (await fetch(`${p.controlUrl}/__fault`)).json();
    assert.strictEqual(rules.at(-1).remaining, 'always');
    res = await post('/__fault', { path: '^/x', status: 503, reset_after_bytes: 1 });
    assert.strictEqual(res.status, 400);
    const log = await (await fetch(`${p.controlUrl}/__log`)).json();
    assert.ok(log.filter((e) => e.url === '/x').length >= 2);
    await fetch(`${p.controlUrl}/__reset`, { method: 'POST' });
    assert.strictEqual((await rawGet(u('/x'))).status, 200);
    assert.strictEqual((await (await fetch(`${p.controlUrl}/__log`)).json()).length, 1);
  });

  await t.test('command line: separate control port and a faults file', async () => {
    const fs = require('fs');
    const file = path.join(TMP, 'faults.json');
    fs.writeFileSync(file, JSON.stringify([{ path: '^/from-file', status: 503, times: -1 }]));
    const ports = [];
    for (let i = 0; i < 2; i++) {
      const s = http.createServer();
      ports.push(await svc.listen(s, 0));
      await new Promise((r) => s.close(r));
    }
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'proxy', 'server.js'), '--port', String(ports[0]), '--target', `http://127.0.0.1:${tport}`, '--control-port', String(ports[1]), '--faults', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    assert.ok(await waitFor(() => out.includes('READY'), 5000), out);
    assert.strictEqual((await rawGet(`http://127.0.0.1:${ports[0]}/from-file`)).status, 503);
    assert.strictEqual((await rawGet(`http://127.0.0.1:${ports[0]}/a`)).status, 200);
    assert.strictEqual((await rawGet(`http://127.0.0.1:${ports[0]}/__log`)).status, 200); // forwarded: control is elsewhere
    const log = await (await fetch(`http://127.0.0.1:${ports[1]}/__log`)).json();
    assert.strictEqual(log.length, 3);
    await assert.rejects(startProxy({ target: 'http://example.org:80', port: 0 }), /loopback/);
    child.kill('SIGTERM');
    assert.ok(await waitFor(() => child.exitCode !== null, 5000));
  });
});
