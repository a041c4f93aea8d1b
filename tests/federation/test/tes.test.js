'use strict';
// Tests of tes/server.js: tasks run without containers (paths mapped into the task's folder), the TES 1.1
// schema on requests and answers, views, filters and paging, per-user visibility, cancel, failures.
//
//   cd tests/federation && node --test test/tes.test.js
//
// Identities: FED_TES_FAKE_AUTH=1 (TEST ONLY: `Bearer user:alice`). No S3 here: an output upload fails,
// which is what the SYSTEM_ERROR test checks (uploads to RGW are covered by tests/cli/task.test.js).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');
const openapi = require('../lib/openapi');
const { tempDir, until } = require('./helpers');

const ROOT = path.join(__dirname, '..');
const BASE = '/ga4gh/tes/v1';
const api = openapi.load('tes');
const ALICE = 'Bearer user:alice';
const BOB = 'Bearer user:bob';

let srv;

test.before(async () => {
  const dir = tempDir('tes-test-');
  const child = fork(path.join(ROOT, 'tes', 'server.js'), ['--port', '0'], {
    env: { PATH: process.env.PATH, HOME: dir, FED_STATE: dir, FED_TES_FAKE_AUTH: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    child.once('exit', (c) => reject(new Error(`tes exited (${c})`)));
  });
  srv = { url: `http://127.0.0.1:${port}${BASE}`, child, dir };
});

test.after(() => new Promise((resolve) => { srv.child.once('exit', resolve); srv.child.kill('SIGTERM'); }));

async function call(method, p, { who = ALICE, body } = {}) {
  const res = await fetch(`${srv.url}${p}`, {
    method, headers: { authorization: who, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  return { status: res.status, json, text };
}

const finished = (id, who = ALICE) => until(async () => {
  const r = await call('GET', `/tasks/${id}?view=FULL`, { who });
  return ['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'PREEMPTED'].includes(r.json.state) ? r.json : null;
}, 20000, `task ${id} to end`);

const violations = () => {
  try { return fs.readFileSync(path.join(srv.dir, 'violations.log'), 'utf8').split('\n').filter(Boolean).map(JSON.parse); } catch (e) { return []; }
};

test('service-info is a TES 1.1 service-info, also at the origin', async () => {
  const r = await call('GET', '/service-info');
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(api.validate('tesServiceInfo', r.json), []);
  assert.strictEqual(r.json.type.artifact, 'tes');
});

test('a task runs without a container: content input, declared paths mapped, stdout in FULL only, answers valid', async () => {
  const c = await call('POST', '/tasks', { body: {
    name: 'map', tags: { k: 'v' },
    inputs: [{ path: '/data/in.txt', content: 'x\ny\n' }],
    executors: [{ image: 'alpine', command: ['/bin/sh', '-c', 'wc -l < /data/in.txt; cat /data/in.txt > /work/copy; ls /work'], workdir: '/work' }],
  } });
  assert.strictEqual(c.status, 200, c.text);
  assert.match(c.json.id, /^task-[0-9a-f]{8}$/);
  const t = await finished(c.json.id);
  assert.strictEqual(t.state, 'COMPLETE', JSON.stringify(t));
  assert.strictEqual(t.logs[0].logs[0].stdout, '2\ncopy\n');
  assert.strictEqual(t.logs[0].logs[0].exit_code, 0);
  assert.ok(t.logs[0].system_logs.some((l) => /image 'alpine' ignored/.test(l)));
  assert.deepStrictEqual(api.validate('tesTask', t), []);
  const basic = await call('GET', `/tasks/${c.json.id}?view=BASIC`);
  assert.strictEqual(basic.json.logs[0].logs[0].stdout, undefined);
  assert.strictEqual(basic.json.inputs[0].content, undefined);
  const min = await call('GET', `/tasks/${c.json.id}`);
  assert.deepStrictEqual(min.json, { id: c.json.id, state: 'COMPLETE' });
  assert.deepStrictEqual(violations().filter((v) => v.kind === 'response'), []);
});

test('requests that do not conform are refused with 400 and recorded; unknown views and states too', async () => {
  const bad = await call('POST', '/tasks', { body: { executors: [{ image: 'x' }], outputs: [{ path: 'rel', url: 'https://elsewhere.example/x' }] } });
  assert.strictEqual(bad.status, 400);
  assert.match(bad.json.msg, /command/);
  assert.match(bad.json.msg, /outputs\[0\]\.path must be absolute/);
  assert.strictEqual((await call('POST', '/tasks', { body: { executors: [{ image: 'x', command: ['true'] }], state: 'COMPLETE' } })).status, 400);
  assert.strictEqual((await call('GET', '/tasks?view=HUGE')).status, 400);
  assert.strictEqual((await call('GET', '/tasks?state=DONE')).status, 400);
  assert.ok(violations().some((v) => v.kind === 'request'));
});

test('filters and paging: name prefix, state, tags (empty value = any), page tokens to the end', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await call('POST', '/tasks', { body: { name: `page-${i}`, tags: { batch: 'p', n: String(i) }, executors: [{ image: 'x', command: ['true'] }] } });
    ids.push(r.json.id);
  }
  for (const id of ids) await finished(id);
  const seen = [];
  let token = '';
  for (let i = 0; i < 10; i++) {
    const r = await call('GET', `/tasks?view=BASIC&page_size=2&tag_key=batch&tag_value=p${token ? `&page_token=${token}` : ''}`);
    assert.strictEqual(r.status, 200);
    seen.push(...r.json.tasks.map((t) => t.id));
    token = r.json.next_page_token || '';
    if (!token) break;
  }
  assert.deepStrictEqual(seen, ids.slice().reverse());
  const any = await call('GET', '/tasks?tag_key=n&tag_key=batch&tag_value=&tag_value=p&name_prefix=page-3');
  assert.deepStrictEqual(any.json.tasks.map((t) => t.id), [ids[3]]);
  assert.strictEqual((await call('GET', '/tasks?state=RUNNING&tag_key=batch&tag_value=p')).json.tasks.length, 0);
});

test('tasks are their owner\'s: another user gets 403 and does not list them', async () => {
  const c = await call('POST', '/tasks', { body: { executors: [{ image: 'x', command: ['true'] }], tags: { owner: 'alice' } } });
  assert.strictEqual((await call('GET', `/tasks/${c.json.id}`, { who: BOB })).status, 403);
  assert.strictEqual((await call('GET', '/tasks?tag_key=owner&tag_value=alice', { who: BOB })).json.tasks.length, 0);
  assert.strictEqual((await call('GET', '/tasks', { who: '' })).status, 401);
});

test('cancel stops the process: CANCELING then CANCELED', async () => {
  const c = await call('POST', '/tasks', { body: { executors: [{ image: 'x', command: ['sleep', '60'] }] } });
  await until(async () => (await call('GET', `/tasks/${c.json.id}`)).json.state === 'RUNNING', 10000, 'running');
  const r = await call('POST', `/tasks/${c.json.id}:cancel`);
  assert.strictEqual(r.status, 200);
  const t = await finished(c.json.id);
  assert.strictEqual(t.state, 'CANCELED');
});

test('failures: a failing executor is EXECUTOR_ERROR (ignore_error goes on), an upload that fails SYSTEM_ERROR', async () => {
  const f = await call('POST', '/tasks', { body: { executors: [
    { image: 'x', command: ['/bin/sh', '-c', 'exit 4'], ignore_error: true },
    { image: 'x', command: ['/bin/sh', '-c', 'exit 5'] }] } });
  const t = await finished(f.json.id);
  assert.strictEqual(t.state, 'EXECUTOR_ERROR');
  assert.deepStrictEqual(t.logs[0].logs.map((l) => l.exit_code), [4, 5]);
  const u = await call('POST', '/tasks', { body: { outputs: [{ path: '/o/x', url: 's3://results/x' }],
    executors: [{ image: 'x', command: ['/bin/sh', '-c', 'echo hi > /o/x'] }] } });
  const t2 = await finished(u.json.id);
  assert.strictEqual(t2.state, 'SYSTEM_ERROR');
  assert.ok(t2.logs[0].system_logs.some((l) => /uploading outputs failed/.test(l)));
});
