'use strict';
// Tests of wes/server.js: end-to-end CWL runs with cwltool, cancel (processes really gone), paging,
// per-user visibility, request validation, the result crawler, --seed-runs and --fail-every.
//
//   cd tests/federation && node --test test/wes.test.js
//
// Identities: FED_WES_FAKE_AUTH=1 (TEST ONLY: `Bearer user:alice`) for most tests; one test gets a real
// token from oidc/server.js by the device flow + oidc/approve.js. The crawler upload test starts Ceph RGW
// (s3/start.sh) when radosgw is installed and FED_TEST_SKIP_RGW is not set; else it is skipped.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const http = require('http');
const { fork, spawn } = require('child_process');
const openapi = require('../lib/openapi');
const { tempDir, until, deviceLogin: login } = require('./helpers');

const deviceLogin = async (issuer, user) => (await login(issuer, user)).access_token;

const ROOT = path.join(__dirname, '..');
const WF = path.join(ROOT, 'wes', 'workflows');
const BASE = '/ga4gh/wes/v1';
const api = openapi.load('wes');
const ALICE = 'Bearer user:alice';
const BOB = 'Bearer user:bob';

const hasCwltool = (() => {
  try { require('child_process').execFileSync('cwltool', ['--version'], { stdio: 'ignore', timeout: 30000 }); return true; } catch (e) { return false; }
})();

// ---------------------------------------------------------------- helpers

// Start wes/server.js on a free port; resolves {url, port, child, state, stop()}.
async function startWes({ args = [], env = {}, state } = {}) {
  const dir = state || tempDir('wes-test-');
  const child = fork(path.join(ROOT, 'wes', 'server.js'), ['--port', '0', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME || dir, FED_STATE: dir, FED_WES_FAKE_AUTH: '1', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('wes did not start within 30 s')), 30000);
    child.once('message', (m) => { clearTimeout(t); resolve(m.port); });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`wes exited early (${code})`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url, port, child, state: dir,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      const t = setTimeout(() => { child.kill('SIGKILL'); }, 8000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
      return undefined;
    }),
  };
}

// fetch + JSON + validation of the response against WES 1.1 (for paths of the API).
async function call(srv, method, p, { token = ALICE, body, check = true } = {}) {
  const headers = {};
  if (token) headers.Authorization = token;
  const res = await fetch(srv.url + p, { method, headers, body, signal: AbortSignal.timeout(20000) });
  const text = await res.text();
  const ct = res.headers.get('content-type') || '';
  const json = /json/.test(ct) ? JSON.parse(text) : undefined;
  if (check && json !== undefined) {
    const errors = api.checkResponse({ method, path: p.split('?')[0], status: res.status, body: json });
    assert.deepStrictEqual(errors, [], `${method} ${p} -> ${res.status} does not conform: ${errors.join('; ')}`);
  }
  return { status: res.status, json, text, headers: res.headers };
}

function form(fields, files = []) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) f.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  for (const [name, data] of files) f.append('workflow_attachment', new Blob([data]), name);
  return f;
}

const wfFile = (name) => fs.readFileSync(path.join(WF, name));

async function submit(srv, fields, files, token = ALICE) {
  const r = await call(srv, 'POST', `${BASE}/runs`, { token, body: form({ workflow_type: 'CWL', workflow_type_version: 'v1.2', ...fields }, files) });
  assert.strictEqual(r.status, 200, r.text);
  assert.ok(r.json.run_id);
  return r.json.run_id;
}

// Poll the run status until `pred(state)` holds (bounded by `ms`).
async function waitFor(srv, runId, pred, ms = 60000, token = ALICE) {
  const end = Date.now() + ms;
  let last;
  for (let i = 0; i < 2000 && Date.now() < end; i++) {
    last = await call(srv, 'GET', `${BASE}/runs/${runId}/status`, { token });
    if (pred(last.json.state)) return last.json.state;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${runId}: condition not reached within ${ms} ms (last state ${last && last.json.state})`);
}

const TERMINAL = ['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED'];
const finished = (srv, id, ms, token) => waitFor(srv, id, (s) => TERMINAL.includes(s), ms, token);

function procs() {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(d), ppid: Number(f[1]), state: f[0], cmd });
    } catch (e) { /* gone */ }
  }
  return out;
}
function descendantsOf(pid) {
  const all = procs();
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    for (const c of all.filter((x) => x.ppid === p)) { out.push(c); todo.push(c.pid); }
  }
  return out;
}
const isAlive = (pid) => {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(s.slice(s.lastIndexOf(')') + 2).split(' ')[0]);
  } catch (e) { return false; }
};

function violations(srv) {
  try {
    return fs.readFileSync(path.join(srv.state, 'violations.log'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch (e) { return []; }
}

// ---------------------------------------------------------------- main server (fake auth, no S3)

test('WES 1.1 with cwltool', { skip: !hasCwltool && 'cwltool not installed (wes/install.sh)', timeout: 300000 }, async (t) => {
  const srv = await startWes();
  t.after(() => srv.stop());

  await t.test('service-info at both paths conforms', async () => {
    for (const p of ['/service-info', `${BASE}/service-info`]) {
      const r = await call(srv, 'GET', p, { token: null });
      assert.strictEqual(r.status, 200);
      assert.deepStrictEqual(r.json.type, { group: 'org.ga4gh', artifact: 'wes', version: '1.1.0' });
      assert.deepStrictEqual(r.json.workflow_type_versions.CWL.workflow_type_version, ['v1.0', 'v1.1', 'v1.2']);
      assert.ok(r.json.workflow_engine_versions.cwltool.workflow_engine_version[0].startsWith('3.'));
      assert.ok(r.json.supported_filesystem_protocols.includes('https'));
      assert.strictEqual(typeof r.json.system_state_counts.COMPLETE, 'number');
    }
  });

  await t.test('401 without a bearer token', async () => {
    for (const [m, p] of [['GET', `${BASE}/runs`], ['POST', `${BASE}/runs`], ['GET', `${BASE}/runs/x`], ['GET', `${BASE}/runs/x/status`]]) {
      const r = await call(srv, m, p, { token: null });
      assert.strictEqual(r.status, 401, `${m} ${p}`);
      assert.strictEqual(r.json.status_code, 401);
      assert.match(r.headers.get('www-authenticate') || '', /^Bearer/);
    }
  });

  let okRun;
  await t.test('count-variants.cwl with attachments completes, with tasks, logs and outputs', async () => {
    okRun = await submit(srv, {
      workflow_url: 'count-variants.cwl', workflow_params: { vcf: { class: 'File', location: 'data/example.vcf' } },
      tags: { purpose: 'test' }, workflow_engine: 'cwltool',
    }, [['count-variants.cwl', wfFile('count-variants.cwl')], ['data/example.vcf', wfFile('example.vcf')]]);
    assert.strictEqual(await finished(srv, okRun, 90000), 'COMPLETE');
    const log = (await call(srv, 'GET', `${BASE}/runs/${okRun}`)).json;
    assert.strictEqual(log.state, 'COMPLETE');
    assert.strictEqual(log.request.workflow_url, 'count-variants.cwl');
    assert.deepStrictEqual(log.request.tags, { purpose: 'test' });
    assert.strictEqual(log.run_log.exit_code, 0);
    assert.ok(log.run_log.start_time && log.run_log.end_time);
    assert.strictEqual(log.outputs.counts.class, 'File');
    // no FED_S3_URL: outputs stay local, the crawler says why in system_logs
    assert.ok(log.run_log.system_logs.some((l) => /crawler: upload .* failed/.test(l)), log.run_log.system_logs.join('\n'));
    assert.strictEqual(fs.readFileSync(log.outputs.counts.path, 'utf8'), '1\t3\n2\t2\nX\t1\n');
    // logs by URL, same token; not without it, not for another user
    const so = await fetch(log.run_log.stdout, { headers: { Authorization: ALICE } });
    assert.strictEqual(so.status, 200);
    assert.strictEqual(JSON.parse(await so.text()).counts.basename, 'counts.tsv');
    const se = await fetch(log.run_log.stderr, { headers: { Authorization: ALICE } });
    assert.match(await se.text(), /Final process status is success/);
    assert.strictEqual((await fetch(log.run_log.stderr)).status, 401);
    assert.strictEqual((await fetch(log.run_log.stderr, { headers: { Authorization: BOB } })).status, 403);
    // tasks: one per cwltool job, paged
    assert.strictEqual(log.task_logs_url, `${srv.url}${BASE}/runs/${okRun}/tasks`);
    const tasks = (await call(srv, 'GET', `${BASE}/runs/${okRun}/tasks`)).json;
    assert.deepStrictEqual(tasks.task_logs.map((x) => x.name), ['tally', 'sum']);
    assert.strictEqual(tasks.next_page_token, '');
    assert.ok(tasks.task_logs.every((x) => x.exit_code === 0 && x.start_time && x.end_time));
    assert.strictEqual(tasks.task_logs[1].cmd[0], 'awk');
    const p1 = (await call(srv, 'GET', `${BASE}/runs/${okRun}/tasks?page_size=1`)).json;
    assert.strictEqual(p1.task_logs.length, 1);
    assert.ok(p1.next_page_token);
    const p2 = (await call(srv, 'GET', `${BASE}/runs/${okRun}/tasks?page_size=1&page_token=${p1.next_page_token}`)).json;
    assert.deepStrictEqual(p2.task_logs.map((x) => x.name), ['sum']);
    assert.strictEqual(p2.next_page_token, '');
    const one = await call(srv, 'GET', `${BASE}/runs/${okRun}/tasks/tally`);
    assert.strictEqual(one.json.id, 'tally');
    const tse = await fetch(one.json.stderr, { headers: { Authorization: ALICE } });
    assert.match(await tse.text(), /\[job tally\] completed success/);
  });

  await t.test('fails.cwl ends in EXECUTOR_ERROR with the tool exit code', async () => {
    // JSON fields may also come as file parts (some clients do that)
    const body = form({ workflow_type: 'CWL', workflow_type_version: 'v1.0', workflow_url: `file://${path.join(WF, 'fails.cwl')}` });
    body.append('workflow_params', new Blob([wfFile('fails.params.json')]), 'fails.params.json');
    body.append('tags', new Blob(['{"kind":"failing"}']), 'tags.json');
    const sub = await call(srv, 'POST', `${BASE}/runs`, { body });
    assert.strictEqual(sub.status, 200, sub.text);
    const id = sub.json.run_id;
    assert.strictEqual(await finished(srv, id, 60000), 'EXECUTOR_ERROR');
    const log = (await call(srv, 'GET', `${BASE}/runs/${id}`)).json;
    assert.deepStrictEqual(log.request.tags, { kind: 'failing' });
    assert.notStrictEqual(log.run_log.exit_code, 0);
    const tasks = (await call(srv, 'GET', `${BASE}/runs/${id}/tasks`)).json.task_logs;
    assert.strictEqual(tasks.length, 1);
    assert.strictEqual(tasks[0].exit_code, 3);
    const out = await fetch(tasks[0].stdout, { headers: { Authorization: ALICE } });
    assert.match(await out.text(), /failing on purpose/);
  });

  await t.test('a CWL document cwltool cannot load ends in SYSTEM_ERROR', async () => {
    const id = await submit(srv, { workflow_url: 'broken.cwl' }, [['broken.cwl', 'cwlVersion: v1.2\nclass: NoSuchClass\n']]);
    assert.strictEqual(await finished(srv, id, 60000), 'SYSTEM_ERROR');
  });

  await t.test('http(s) VCF input (a DRS access URL, say) and an http workflow_url', async () => {
    const files = { '/example.vcf': wfFile('example.vcf'), '/count-variants.cwl': wfFile('count-variants.cwl') };
    const web = http.createServer((req, res) => {
      const body = files[req.url];
      res.writeHead(body ? 200 : 404);
      res.end(body || '');
    });
    await new Promise((r) => web.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${web.address().port}`;
      const id = await submit(srv, { workflow_url: `${base}/count-variants.cwl`, workflow_params: { vcf: { class: 'File', location: `${base}/example.vcf` } } }, []);
      assert.strictEqual(await finished(srv, id, 90000), 'COMPLETE');
      const log = (await call(srv, 'GET', `${BASE}/runs/${id}`)).json;
      assert.strictEqual(fs.readFileSync(log.outputs.total.path, 'utf8').trim(), '6');
    } finally {
      web.close();
    }
  });

  await t.test('cancel kills cwltool and its children; concurrency limit queues the rest', async () => {
    const slow = [['slow.cwl', wfFile('slow.cwl')]];
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await submit(srv, { workflow_url: 'slow.cwl', workflow_params: { seconds: 60 } }, slow));
    await waitFor(srv, ids[0], (s) => s === 'RUNNING', 30000);
    await waitFor(srv, ids[1], (s) => s === 'RUNNING', 30000);
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/${ids[2]}/status`)).json.state, 'QUEUED');
    // the queued one is canceled at once
    assert.strictEqual((await call(srv, 'POST', `${BASE}/runs/${ids[2]}/cancel`)).json.run_id, ids[2]);
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/${ids[2]}/status`)).json.state, 'CANCELED');
    // both running ones have a cwltool with a sleeping child under the server
    const tree = await until(() => {
      const d = descendantsOf(srv.child.pid);
      return d.filter((p) => /^sleep 60/.test(p.cmd)).length === 2 ? d : null;
    }, 30000, 'two sleep processes');
    assert.strictEqual(tree.filter((p) => /cwltool/.test(p.cmd)).length, 2);
    // bob may not cancel alice's run
    assert.strictEqual((await call(srv, 'POST', `${BASE}/runs/${ids[0]}/cancel`, { token: BOB })).status, 403);
    for (const id of ids.slice(0, 2)) assert.strictEqual((await call(srv, 'POST', `${BASE}/runs/${id}/cancel`)).status, 200);
    for (const id of ids.slice(0, 2)) assert.strictEqual(await finished(srv, id, 20000), 'CANCELED');
    const left = tree.filter((p) => isAlive(p.pid));
    assert.deepStrictEqual(left.map((p) => `${p.pid} ${p.cmd}`), [], 'processes survived the cancel');
    const log = (await call(srv, 'GET', `${BASE}/runs/${ids[0]}`)).json;
    assert.ok(log.run_log.end_time);
    // canceling a finished run changes nothing
    assert.strictEqual((await call(srv, 'POST', `${BASE}/runs/${ids[0]}/cancel`)).status, 200);
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/${ids[0]}/status`)).json.state, 'CANCELED');
  });

  await t.test('per-user visibility: 403 for another user, 404 for no run, lists are per user', async () => {
    for (const p of [`${BASE}/runs/${okRun}`, `${BASE}/runs/${okRun}/status`, `${BASE}/runs/${okRun}/tasks`]) {
      const r = await call(srv, 'GET', p, { token: BOB });
      assert.strictEqual(r.status, 403, p);
      assert.strictEqual(r.json.status_code, 403);
    }
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/no-such-run`)).status, 404);
    const bobs = (await call(srv, 'GET', `${BASE}/runs`, { token: BOB })).json;
    assert.deepStrictEqual(bobs.runs, []);
    const alices = (await call(srv, 'GET', `${BASE}/runs`)).json;
    assert.ok(alices.runs.some((r) => r.run_id === okRun));
  });

  await t.test('paging of the run list (newest first, no duplicates)', async () => {
    const all = (await call(srv, 'GET', `${BASE}/runs?page_size=1000`)).json.runs;
    assert.ok(all.length >= 7, `only ${all.length} runs`);
    assert.ok(all.every((r) => r.tags && r.run_id && r.state));
    const seen = [];
    let tok = '';
    for (let i = 0; i < 20; i++) {
      const page = (await call(srv, 'GET', `${BASE}/runs?page_size=2${tok ? `&page_token=${tok}` : ''}`)).json;
      assert.ok(page.runs.length <= 2);
      seen.push(...page.runs.map((r) => r.run_id));
      tok = page.next_page_token;
      if (!tok) break;
    }
    assert.deepStrictEqual(seen, all.map((r) => r.run_id));
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs?page_token=bogus`)).status, 400);
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs?page_size=abc`)).status, 400);
  });

  await t.test('request validation', async () => {
    const before = violations(srv).length;
    // missing workflow_url: not a conforming RunRequest -> 400 + violation
    let r = await call(srv, 'POST', `${BASE}/runs`, { body: form({ workflow_type: 'CWL', workflow_type_version: 'v1.2' }) });
    assert.strictEqual(r.status, 400);
    assert.strictEqual(r.json.status_code, 400);
    assert.match(r.json.msg, /workflow_url/);
    const v = violations(srv).slice(before);
    assert.ok(v.some((x) => x.service === 'wes' && x.kind === 'request' && /workflow_url/.test(x.errors.join(' '))), JSON.stringify(v));
    // workflow_params that is not a JSON object
    r = await call(srv, 'POST', `${BASE}/runs`, { body: form({ workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'a.cwl', workflow_params: '[1' }, [['a.cwl', 'x']]) });
    assert.strictEqual(r.status, 400);
    // not multipart at all
    r = await call(srv, 'POST', `${BASE}/runs`, { body: JSON.stringify({ workflow_url: 'x' }) });
    assert.strictEqual(r.status, 400);
    // conforming but refused: attachment paths escaping the run, unknown type, unknown relative url, file:// outside
    const bad = [
      [{ workflow_url: 'a.cwl' }, [['../a.cwl', 'x']]],
      [{ workflow_url: 'a.cwl' }, [['/etc/a.cwl', 'x']]],
      [{ workflow_url: 'a.cwl' }, []],
      [{ workflow_url: 'file:///etc/passwd' }, []],
      [{ workflow_url: 'http://example.org/a.cwl' }, []],
      [{ workflow_url: 'a.cwl', workflow_type: 'WDL', workflow_type_version: '1.0' }, [['a.cwl', 'x']]],
      [{ workflow_url: 'a.cwl', workflow_engine_parameters: { '--no-such': 'x' } }, [['a.cwl', 'x']]],
      [{ workflow_url: 'a.cwl', workflow_params: { f: { class: 'File', location: '../../x' } } }, [['a.cwl', 'x']]],
    ];
    for (const [fields, files] of bad) {
      r = await call(srv, 'POST', `${BASE}/runs`, { body: form({ workflow_type: 'CWL', workflow_type_version: 'v1.2', ...fields }, files) });
      assert.strictEqual(r.status, 400, JSON.stringify(fields));
    }
  });

  await t.test('the server produced no non-conforming responses', () => {
    const v = violations(srv).filter((x) => x.kind === 'response');
    assert.deepStrictEqual(v, []);
  });
});

// ---------------------------------------------------------------- shutdown and restart

test('SIGTERM kills active runs; a restart keeps the runs, unfinished ones as SYSTEM_ERROR', { skip: !hasCwltool && 'cwltool not installed', timeout: 120000 }, async (t) => {
  const state = tempDir('wes-restart-');
  const first = await startWes({ state });
  let stopped = false;
  t.after(() => (stopped ? undefined : first.stop()));
  const done = await submit(first, { workflow_url: 'slow.cwl', workflow_params: { seconds: 0 } }, [['slow.cwl', wfFile('slow.cwl')]]);
  assert.strictEqual(await finished(first, done, 60000), 'COMPLETE');
  const id = await submit(first, { workflow_url: 'slow.cwl', workflow_params: { seconds: 60 } }, [['slow.cwl', wfFile('slow.cwl')]]);
  await waitFor(first, id, (s) => s === 'RUNNING', 30000);
  const tree = await until(() => {
    const d = descendantsOf(first.child.pid);
    return d.some((p) => /^sleep 60/.test(p.cmd)) ? d : null;
  }, 30000, 'sleep process');
  await first.stop();
  stopped = true;
  await until(() => !tree.some((p) => isAlive(p.pid)), 5000, 'processes of the run to be gone');
  const second = await startWes({ state });
  t.after(() => second.stop());
  assert.strictEqual((await call(second, 'GET', `${BASE}/runs/${id}/status`)).json.state, 'SYSTEM_ERROR');
  assert.strictEqual((await call(second, 'GET', `${BASE}/runs/${done}/status`)).json.state, 'COMPLETE');
  assert.deepStrictEqual((await call(second, 'GET', `${BASE}/runs`)).json.runs.map((r) => r.run_id), [id, done]);
  assert.strictEqual((await call(second, 'GET', `${BASE}/runs/${id}`, { token: BOB })).status, 403);
});

// ---------------------------------------------------------------- crawler without S3

test('crawler: S3 unreachable -> run still COMPLETE, error logged', { skip: !hasCwltool && 'cwltool not installed', timeout: 120000 }, async (t) => {
  const dead = http.createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const port = dead.address().port;
  await new Promise((r) => dead.close(r)); // a port nobody listens on
  const srv = await startWes({ env: { FED_S3_URL: `http://127.0.0.1:${port}`, FED_S3_ACCESS_KEY: 'k', FED_S3_SECRET_KEY: 's' } });
  t.after(() => srv.stop());
  const id = await submit(srv, { workflow_url: 'count-variants.cwl', workflow_params: { vcf: { class: 'File', location: 'example.vcf' } } },
    [['count-variants.cwl', wfFile('count-variants.cwl')], ['example.vcf', wfFile('example.vcf')]]);
  assert.strictEqual(await finished(srv, id, 90000), 'COMPLETE');
  const log = (await call(srv, 'GET', `${BASE}/runs/${id}`)).json;
  assert.ok(log.run_log.system_logs.some((l) => /crawler: upload .* failed/.test(l)));
  assert.match(log.outputs.counts.location, /^file:/);
  assert.match(fs.readFileSync(path.join(srv.state, 'logs', 'wes.log'), 'utf8'), /crawler could not upload/);
});

// ---------------------------------------------------------------- crawler with Ceph RGW

const hasRgw = (() => {
  if (process.env.FED_TEST_SKIP_RGW) return false;
  try { require('child_process').execFileSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon'], { stdio: 'ignore' }); return true; } catch (e) { return false; }
})();

test('crawler uploads declared outputs to the results bucket (RGW)', { skip: (!hasCwltool || !hasRgw) && 'needs cwltool and Ceph RGW (s3/install.sh)', timeout: 300000 }, async (t) => {
  const state = tempDir('wes-rgw-');
  const s3port = 19000 + Math.floor(Math.random() * 800);
  const keys = { FED_S3_ACCESS_KEY: 'FEDTESTACCESSKEY0001', FED_S3_SECRET_KEY: 'fedTestSecretKey0001fedTestSecretKey0001', FED_S3_REGION: 'us-east-1', FED_RESULTS_BUCKET: 'results' };
  const rgw = spawn(path.join(ROOT, 's3', 'start.sh'), ['--port', String(s3port), '--state', path.join(state, 's3'), '--no-sts'], {
    env: { ...process.env, ...keys }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let out = '';
  rgw.stdout.on('data', (c) => { out += c; });
  rgw.stderr.on('data', (c) => { out += c; });
  t.after(() => new Promise((resolve) => {
    if (rgw.exitCode !== null) return resolve();
    const k = setTimeout(() => { try { process.kill(-rgw.pid, 'SIGKILL'); } catch (e) { /* gone */ } resolve(); }, 30000);
    rgw.once('exit', () => { clearTimeout(k); resolve(); });
    try { process.kill(-rgw.pid, 'SIGTERM'); } catch (e) { resolve(); }
    return undefined;
  }));
  await until(() => /S3 READY/.test(out) || rgw.exitCode !== null, 240000, 'S3 READY');
  assert.ok(/S3 READY/.test(out), `s3/start.sh failed:\n${out.slice(-2000)}`);
  const s3url = `http://127.0.0.1:${s3port}`;
  const srv = await startWes({ env: { FED_S3_URL: s3url, ...keys } });
  t.after(() => srv.stop());
  const id = await submit(srv, { workflow_url: 'count-variants.cwl', workflow_params: { vcf: { class: 'File', location: 'example.vcf' } } },
    [['count-variants.cwl', wfFile('count-variants.cwl')], ['example.vcf', wfFile('example.vcf')]]);
  assert.strictEqual(await finished(srv, id, 90000), 'COMPLETE');
  const log = (await call(srv, 'GET', `${BASE}/runs/${id}`)).json;
  assert.strictEqual(log.outputs.counts.location, `s3://results/runs/${id}/counts.tsv`);
  assert.strictEqual(log.outputs.total.location, `s3://results/runs/${id}/total.txt`);
  const { createClient } = require('../lib/s3');
  const s3 = createClient({ url: s3url, accessKey: keys.FED_S3_ACCESS_KEY, secretKey: keys.FED_S3_SECRET_KEY });
  const got = await s3.getObject('results', `runs/${id}/counts.tsv`);
  assert.strictEqual(got.body.toString('utf8'), '1\t3\n2\t2\nX\t1\n');
  // slow.cwl declares nothing: its done.txt is not uploaded
  const sid = await submit(srv, { workflow_url: 'slow.cwl', workflow_params: { seconds: 1 } }, [['slow.cwl', wfFile('slow.cwl')]]);
  assert.strictEqual(await finished(srv, sid, 60000), 'COMPLETE');
  assert.deepStrictEqual(await s3.listAll('results', `runs/${sid}/`), []);
});

// ---------------------------------------------------------------- scale knobs

test('--seed-runs 10000: listing is fast and pages through everything', { timeout: 120000 }, async (t) => {
  const srv = await startWes({ args: ['--seed-runs', '10000', '--seed-user', 'alice'] });
  t.after(() => srv.stop());
  let t0 = Date.now();
  const first = await call(srv, 'GET', `${BASE}/runs`);
  assert.ok(Date.now() - t0 < 1000, `first page took ${Date.now() - t0} ms`);
  assert.strictEqual(first.json.runs.length, 100);
  assert.strictEqual(first.json.runs[0].run_id, 'seed-010000');
  t0 = Date.now();
  const ids = new Set();
  let tok = '';
  let pages = 0;
  for (; pages < 20; pages++) {
    const r = await call(srv, 'GET', `${BASE}/runs?page_size=1000${tok ? `&page_token=${tok}` : ''}`, { check: pages === 0 });
    for (const x of r.json.runs) ids.add(x.run_id);
    tok = r.json.next_page_token;
    if (!tok) break;
  }
  const ms = Date.now() - t0;
  assert.strictEqual(ids.size, 10000);
  assert.strictEqual(pages, 9);
  assert.ok(ms < 5000, `paging through 10000 runs took ${ms} ms`);
  assert.deepStrictEqual((await call(srv, 'GET', `${BASE}/runs`, { token: BOB })).json.runs, []);
  const one = await call(srv, 'GET', `${BASE}/runs/seed-000001`);
  assert.strictEqual(one.json.state, 'COMPLETE');
  assert.strictEqual((await call(srv, 'GET', '/service-info', { token: null })).json.system_state_counts.COMPLETE, 10000);
});

test('--fail-every 3 answers every third WES request with 500', { timeout: 60000 }, async (t) => {
  const srv = await startWes({ args: ['--fail-every', '3'] });
  t.after(() => srv.stop());
  const codes = [];
  for (let i = 0; i < 6; i++) codes.push((await call(srv, 'GET', `${BASE}/runs`)).status);
  assert.deepStrictEqual(codes, [200, 200, 500, 200, 200, 500]);
});

// ---------------------------------------------------------------- real OIDC token

const hasOidc = fs.existsSync(path.join(ROOT, 'oidc', 'server.js')) && fs.existsSync(path.join(ROOT, 'oidc', 'approve.js'));

test('real OIDC access tokens (oidc/server.js): per-user runs', { skip: !hasOidc && 'oidc/ not there', timeout: 120000 }, async (t) => {
  const state = tempDir('wes-oidc-');
  const oidc = spawn(process.execPath, [path.join(ROOT, 'oidc', 'server.js'), '--port', '0', '--bad-port', '0', '--visa-port', '0'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME || state, FED_STATE: state, FED_DEVICE_INTERVAL: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => new Promise((resolve) => {
    if (oidc.exitCode !== null) return resolve();
    oidc.once('exit', resolve);
    oidc.kill('SIGTERM');
    return undefined;
  }));
  let out = '';
  let err = '';
  oidc.stdout.on('data', (c) => { out += c; });
  oidc.stderr.on('data', (c) => { err += c; });
  const ready = await until(() => {
    const m = /^READY (.*)$/m.exec(out);
    if (!m && oidc.exitCode !== null) throw new Error(`oidc/server.js exited: ${err}`);
    return m ? JSON.parse(m[1]) : null;
  }, 30000, 'oidc READY');
  const issuer = ready.issuer;
  const alice = `Bearer ${await deviceLogin(issuer, 'alice')}`;
  const bob = `Bearer ${await deviceLogin(issuer, 'bob')}`;
  // no fake identities on this server
  const srv = await startWes({ env: { FED_ISSUER: issuer, FED_WES_FAKE_AUTH: '0' }, args: ['--seed-runs', '3', '--seed-user', 'alice'] });
  t.after(() => srv.stop());
  assert.strictEqual((await call(srv, 'GET', `${BASE}/runs`, { token: ALICE })).status, 401);
  assert.strictEqual((await call(srv, 'GET', `${BASE}/runs`, { token: 'Bearer not-a-token' })).status, 401);
  const list = (await call(srv, 'GET', `${BASE}/runs`, { token: alice })).json;
  assert.strictEqual(list.runs.length, 3);
  assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/seed-000001`, { token: bob })).status, 403);
  if (hasCwltool) {
    const id = await submit(srv, { workflow_url: 'fails.cwl' }, [['fails.cwl', wfFile('fails.cwl')]], alice);
    assert.strictEqual(await finished(srv, id, 60000, alice), 'EXECUTOR_ERROR');
    assert.strictEqual((await call(srv, 'GET', `${BASE}/runs/${id}/status`, { token: bob })).status, 403);
  }
});
