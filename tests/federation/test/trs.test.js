'use strict';
// TRS part: the registry in both dialects (WorkflowHub, Dockstore) checked against the TRS 2.1 spec: ids in
// paths, paging headers and what `offset` means in each, descriptor types, file lists, checksums against the
// bytes served, and no spec violation recorded.
//   cd tests/federation && node --test test/trs.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { tempDir } = require('./helpers');

const state = tempDir('impact-fed-trs-');
process.env.FED_STATE = state;
const trs = require('../trs/server');

const servers = {};
before(async () => {
  fs.mkdirSync(path.join(state, 'logs'), { recursive: true });
  servers.workflowhub = await trs.start({ port: 0, dialect: 'workflowhub' });
  servers.dockstore = await trs.start({ port: 0, dialect: 'dockstore' });
});
after(async () => {
  for (const s of Object.values(servers)) await s.close();
});

const get = async (url) => {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = text; }
  return { status: r.status, headers: r.headers, body };
};

test('service-info says TRS, at the origin and under the API base', async () => {
  for (const s of Object.values(servers)) {
    const a = await get(`${s.url}/service-info`);
    const b = await get(`${s.apiUrl}/service-info`);
    assert.strictEqual(a.status, 200);
    assert.deepStrictEqual(a.body, b.body);
    assert.strictEqual(b.body.type.artifact, 'trs');
    assert.strictEqual(b.body.url, s.apiUrl);
  }
});

test('WorkflowHub: numeric ids, index offsets, next_page only while there is more', async () => {
  const s = servers.workflowhub;
  assert.match(s.apiUrl, /\/ga4gh\/trs\/v2$/);
  const p1 = await get(`${s.apiUrl}/tools?limit=3`);
  assert.deepStrictEqual(p1.body.map((t) => t.id), ['1', '2', '3']);
  assert.strictEqual(p1.headers.get('current_limit'), '3');
  const next = p1.headers.get('next_page');
  assert.match(next, /offset=3/);
  const p2 = await get(next);
  assert.deepStrictEqual(p2.body.map((t) => t.id), ['4']);
  assert.strictEqual(p2.headers.get('next_page'), null);
  const all = await get(`${s.apiUrl}/tools`);
  assert.strictEqual(all.body.length, 4);
  assert.strictEqual(all.headers.get('current_limit'), '1000');
  const v = await get(`${s.apiUrl}/tools/2/versions`);
  assert.deepStrictEqual(v.body.map((x) => x.name), ['1', '2']);
  const wrong = await get(`${s.apiUrl}/tools/2/versions/1/WDL/descriptor`);
  assert.strictEqual(wrong.status, 404);
  assert.strictEqual(wrong.body.message, 'Type: WDL not available');
  const files = await get(`${s.apiUrl}/tools/2/versions/1/CWL/files`);
  assert.ok(files.body.every((f) => f.checksum === undefined));
  assert.strictEqual((await get(`${s.apiUrl}/tools/2/versions/1/CWL/files?format=zip`)).status, 404);
});

test('Dockstore: encoded #workflow ids, page-number offsets capped at 100, sha-256 checksums that match', async () => {
  const s = servers.dockstore;
  assert.match(s.apiUrl, /\/api\/ga4gh\/trs\/v2$/);
  const p1 = await get(`${s.apiUrl}/tools?limit=3`);
  assert.match(p1.headers.get('next_page'), /offset=1(&|$)/);
  const p2 = await get(p1.headers.get('next_page'));
  assert.strictEqual(p2.body.length, 1);
  assert.strictEqual((await get(`${s.apiUrl}/tools?limit=500`)).headers.get('current_limit'), '100');
  const id = '#workflow/github.com/impact-fed/count-variants-multi';
  const tool = await get(`${s.apiUrl}/tools/${encodeURIComponent(id)}`);
  assert.strictEqual(tool.status, 200);
  assert.strictEqual(tool.body.id, id);
  const base = `${s.apiUrl}/tools/${encodeURIComponent(id)}/versions/main/CWL`;
  const files = await get(`${base}/files`);
  for (const f of files.body) {
    const w = await get(`${base}/descriptor/${encodeURIComponent(f.path)}`);
    assert.strictEqual(w.status, 200, f.path);
    const sum = crypto.createHash('sha256').update(w.body.content).digest('hex');
    assert.strictEqual(w.body.checksum[0].checksum, sum, f.path);
    assert.strictEqual(f.checksum.checksum, sum, f.path);
  }
  const plain = await get(`${s.apiUrl}/tools/${encodeURIComponent(id)}/versions/MAIN/PLAIN_CWL/descriptor`);
  assert.match(plain.body, /^#!\/usr\/bin\/env cwltool/);
  // the unlisted test entries are fetchable, not listed
  const listed = await get(`${s.apiUrl}/tools`);
  assert.ok(!listed.body.some((t) => /checksum-mismatch|unsafe-path/.test(t.id)));
  assert.strictEqual((await get(`${s.apiUrl}/tools/${encodeURIComponent('#workflow/github.com/impact-fed/unsafe-path')}`)).status, 200);
});

test('no request or response broke the TRS 2.1 specification', () => {
  const file = path.join(state, 'violations.log');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  assert.strictEqual(text, '');
});
