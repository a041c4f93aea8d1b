'use strict';
// up / down / registry: start on a random base port with a temp state dir, check, stop, check nothing is left.
// FED_TEST_SKIP_FULL=1 skips the second test (everything that exists, including Ceph when installed).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { execFile } = require('child_process');
const svc = require('../lib/service');

const ROOT = path.join(__dirname, '..');

function run(cmd, args, timeoutMs = 180000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, FED_STATE: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function portFree(port) {
  const s = http.createServer();
  try { await svc.listen(s, port); } catch (e) { return false; }
  await new Promise((r) => s.close(r));
  return true;
}

// A base port B with B..B+40 (and B+1030, the Ceph monitor) free.
async function randomBase() {
  for (let i = 0; i < 30; i++) {
    const b = 20000 + 100 * Math.floor(Math.random() * 300);
    let ok = true;
    for (const off of [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 30, 31, 1030]) if (!(await portFree(b + off))) { ok = false; break; }
    if (ok) return b;
  }
  throw new Error('no free base port found');
}

function groupAlive(pgid) {
  try { process.kill(-pgid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

function readPids(state) {
  return fs.readFileSync(path.join(state, 'pids'), 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([name, pid]) => ({ name, pid: Number(pid) }));
}

async function getJson(url) {
  const res = await fetch(url);
  assert.strictEqual(res.status, 200, `${url} -> ${res.status}`);
  return res.json();
}

test('up --only registry, down, idempotent down, port in use', async (t) => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-base-'));
  const base = await randomBase();
  t.after(async () => { await run(path.join(ROOT, 'down'), ['--state', state, '--quiet']); fs.rmSync(state, { recursive: true, force: true }); });

  const up = await run(path.join(ROOT, 'up'), ['--base-port', String(base), '--state', state, '--only', 'registry', '--no-install']);
  assert.strictEqual(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, /registry\s+http:\/\/127\.0\.0\.1:\d+/);

  const pids = readPids(state);
  assert.deepStrictEqual(pids.map((p) => p.name), ['registry']);
  const reg = `http://127.0.0.1:${base}`;
  const own = await getJson(`${reg}/service-info`);
  assert.deepStrictEqual(own.type, { group: 'org.ga4gh', artifact: 'service-registry', version: '1.0.0' });
  assert.deepStrictEqual(require('../lib/openapi').load('service-info').checkResponse({ method: 'GET', path: '/service-info', status: 200, body: own }), []);
  assert.deepStrictEqual(await getJson(`${reg}/services`), []);
  assert.deepStrictEqual(await getJson(`${reg}/services/types`), []);
  assert.strictEqual((await fetch(`${reg}/services/nope`)).status, 404);

  const fed = JSON.parse(fs.readFileSync(path.join(state, 'federation.json'), 'utf8'));
  assert.strictEqual(fed.registry, reg);
  assert.strictEqual(fed.services.registry, reg);
  const env = fs.readFileSync(path.join(state, 'federation.env'), 'utf8');
  assert.match(env, new RegExp(`export FED_REGISTRY_URL=http://127.0.0.1:${base}\\n`));
  assert.match(env, new RegExp(`export FED_WES_URL=http://127.0.0.1:${base + 20}\\n`));
  assert.match(env, /export FED_S3_REGION=us-east-1/);
  assert.ok(fs.existsSync(path.join(state, 'logs', 'registry.log')));

  // a second up on the same state refuses; an up on the same ports refuses with a clear error
  const again = await run(path.join(ROOT, 'up'), ['--base-port', String(base), '--state', state, '--only', 'registry', '--no-install']);
  assert.notStrictEqual(again.code, 0);
  assert.match(again.stderr, /already running/);
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-base-other-'));
  t.after(() => fs.rmSync(other, { recursive: true, force: true }));
  const clash = await run(path.join(ROOT, 'up'), ['--base-port', String(base), '--state', other, '--only', 'registry', '--no-install']);
  assert.notStrictEqual(clash.code, 0);
  assert.match(clash.stderr, new RegExp(`port 127.0.0.1:${base} .*already in use`));
  assert.ok(!fs.existsSync(path.join(other, 'pids')) || fs.readFileSync(path.join(other, 'pids'), 'utf8') === '');

  const down = await run(path.join(ROOT, 'down'), ['--state', state]);
  assert.strictEqual(down.code, 0, down.stderr);
  for (const p of pids) assert.ok(!groupAlive(p.pid), `${p.name} (${p.pid}) still alive`);
  assert.ok(!fs.existsSync(path.join(state, 'pids')));
  assert.ok(fs.existsSync(path.join(state, 'federation.json')), 'down removes nothing but the pid file');
  const down2 = await run(path.join(ROOT, 'down'), ['--state', state]);
  assert.strictEqual(down2.code, 0);
  assert.match(down2.stdout, /nothing running/);
  assert.ok(await portFree(base));

  const bad = await run(path.join(ROOT, 'up'), ['--only', 'nonsense', '--state', other, '--no-install']);
  assert.notStrictEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown part 'nonsense'/);
});

test('up with every part that exists, registry lists them, down leaves no process', { skip: process.env.FED_TEST_SKIP_FULL === '1' }, async (t) => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-full-'));
  const base = await randomBase();
  t.after(async () => { await run(path.join(ROOT, 'down'), ['--state', state, '--quiet']); fs.rmSync(state, { recursive: true, force: true }); });
  const parts = [];
  if (fs.existsSync(path.join(ROOT, 'oidc/server.js'))) parts.push('oidc');
  // Ceph takes a while and needs its packages; use it only when installed
  if (fs.existsSync(path.join(ROOT, 's3/start.sh')) && fs.existsSync('/usr/bin/radosgw')) parts.push('s3');
  for (const p of ['beacon', 'drs', 'wes', 'trs', 'tes', 'htsget']) if (fs.existsSync(path.join(ROOT, p, 'server.js'))) parts.push(p);
  const args = ['--base-port', String(base), '--state', state, '--no-install', '--timeout', '120'];
  if (parts.length) args.push('--only', parts.join(','));
  else args.push('--only', 'registry');
  const up = await run(path.join(ROOT, 'up'), args, 240000);
  if (up.code !== 0) {
    // show what went wrong (up already stopped what it started)
    assert.fail(`up failed (${up.code}):\n${up.stdout}\n${up.stderr}`);
  }
  const pids = readPids(state);
  const fed = JSON.parse(fs.readFileSync(path.join(state, 'federation.json'), 'utf8'));
  const listed = await getJson(`${fed.registry}/services`);
  const si = require('../lib/openapi').load('service-info');
  for (const s of listed) {
    assert.ok(s.url && s.url.startsWith('http://127.0.0.1:'), JSON.stringify(s));
    const { url, ...info } = s; // eslint-disable-line no-unused-vars
    assert.deepStrictEqual(si.checkResponse({ method: 'GET', path: '/service-info', status: 200, body: info }), [], s.id);
  }
  const names = pids.map((p) => p.name);
  if (names.includes('oidc')) assert.ok(listed.some((s) => s.url === fed.issuer));
  if (names.includes('s3')) assert.ok(listed.some((s) => s.type.artifact === 's3' && s.url === fed.s3.url));
  for (const n of ['beacon-public', 'beacon-registered', 'beacon-controlled', 'drs', 'wes', 'trs-workflowhub', 'trs-dockstore', 'tes']) {
    if (names.includes(n)) assert.ok(listed.some((s) => s.url === fed.services[n]), `${n} not listed: ${JSON.stringify(listed.map((s) => s.url))}`);
  }
  // htsget: one entry per data type, url = the ticket endpoint without the id (htsget.md); the block origin is not listed
  if (names.includes('htsget')) {
    for (const n of ['htsget-reads', 'htsget-variants']) {
      const s = listed.find((x) => x.url === fed.services[n]);
      assert.ok(s, `${n} not listed`);
      assert.strictEqual(s.htsget.datatype, n.slice(7));
    }
    assert.strictEqual(fed.services['htsget-reads'], `http://127.0.0.1:${base + 14}/reads`);
    assert.strictEqual(fed.services['htsget-blocks'], `http://127.0.0.1:${base + 15}`);
    assert.ok(!listed.some((s) => s.url.startsWith(fed.services['htsget-blocks'])));
  }
  // the WES dialects (wes/README.md#dialects): started with wes, at their own ports, not in the registry
  if (names.includes('wes')) {
    assert.ok(names.includes('wes-sapporo') && names.includes('wes-weskit'), names.join(' '));
    assert.strictEqual(fed.services['wes-sapporo'], `http://127.0.0.1:${base + 21}`);
    assert.strictEqual(fed.services['wes-weskit'], `http://127.0.0.1:${base + 22}/ga4gh/wes/v1`);
    assert.deepStrictEqual((await getJson(`${fed.services['wes-sapporo']}/service-info`)).supported_wes_versions, ['sapporo-wes-1.1.0']);
    assert.deepStrictEqual((await getJson(`${fed.services['wes-weskit']}/service-info`)).supported_wes_versions, ['1.0.0']);
    const env = fs.readFileSync(path.join(state, 'federation.env'), 'utf8');
    assert.match(env, new RegExp(`FED_WES_SAPPORO_URL=http://127\\.0\\.0\\.1:${base + 21}\n`));
    assert.match(env, new RegExp(`FED_WES_WESKIT_URL=http://127\\.0\\.0\\.1:${base + 22}\n`));
    for (const n of ['wes-sapporo', 'wes-weskit']) assert.ok(!listed.some((s) => s.url === fed.services[n]), `${n} is in the registry`);
  }
  const types = await getJson(`${fed.registry}/services/types`);
  assert.strictEqual(types.length, new Set(listed.map((s) => JSON.stringify(s.type))).size);
  const one = await getJson(`${fed.registry}/services/${encodeURIComponent(listed.length ? listed[0].id : 'x')}`).catch(() => null);
  if (listed.length) assert.strictEqual(one.id, listed[0].id);

  const down = await run(path.join(ROOT, 'down'), ['--state', state], 60000);
  assert.strictEqual(down.code, 0, down.stderr);
  for (const p of pids) assert.ok(!groupAlive(p.pid), `${p.name} (${p.pid}) still alive`);
});

test('registry in-process: lists live services with url, drops dead ones, S3 custom type', async (t) => {
  const { createRegistry, parseServices, s3Entry } = require('../registry/server');
  const info = svc.serviceInfo({ id: 'org.test.wes', name: 'w', type: { group: 'org.ga4gh', artifact: 'wes', version: '1.1.0' } });
  const r = svc.router();
  r.get('/ga4gh/wes/v1/service-info', (req, res) => svc.sendJson(res, 200, info));
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, { ...info, id: 'org.test.other' }));
  const fake = http.createServer(r.handler());
  const port = await svc.listen(fake, 0);
  const dead = http.createServer();
  const deadPort = await svc.listen(dead, 0);
  await new Promise((ok) => dead.close(ok));
  const services = parseServices([`wes=http://127.0.0.1:${port}/ga4gh/wes/v1/`, `origin=http://127.0.0.1:${port}/nothing-here`, `gone=http://127.0.0.1:${deadPort}`]);
  assert.throws(() => parseServices(['x=http://example.org']), /loopback/);
  const reg = createRegistry({ services, s3: s3Entry({ s3: 'http://127.0.0.1:1', sts: 'http://127.0.0.1:2' }) });
  const server = http.createServer(reg.handler);
  const rport = await svc.listen(server, 0);
  t.after(() => { fake.close(); server.close(); });
  const list = await getJson(`http://127.0.0.1:${rport}/services`);
  assert.deepStrictEqual(list.map((s) => [s.id, s.url]), [
    ['org.test.wes', `http://127.0.0.1:${port}/ga4gh/wes/v1`],
    ['org.test.other', `http://127.0.0.1:${port}/nothing-here`], // fell back to the origin's /service-info
    ['org.impact.federation.s3', 'http://127.0.0.1:1'],
  ]);
  const s3 = list[2];
  assert.deepStrictEqual(s3.type, { group: 'org.impact', artifact: 's3', version: '1.0.0' });
  assert.strictEqual(s3.sts_url, 'http://127.0.0.1:2');
  assert.strictEqual(s3.results_bucket, 'results');
  assert.strictEqual((await getJson(`http://127.0.0.1:${rport}/services/org.test.wes`)).url, `http://127.0.0.1:${port}/ga4gh/wes/v1`);
  assert.strictEqual((await getJson(`http://127.0.0.1:${rport}/services/types`)).length, 2);
});
