'use strict';
// Tests of the WES dialects of wes/server.js (--dialect sapporo | weskit; wes/README.md#dialects,
// docs/servers.md): every quirk of sapporo-service 1.7 and WESkit the federation reproduces, with plain
// HTTP requests. The WESkit tests run real Snakemake workflows and download their outputs from a real
// Ceph RGW (s3/start.sh) through the presigned URLs, with plain fetch; without radosgw or snakemake they
// FAIL (run s3/install.sh, wes/install.sh), they do not skip. One test uses the real OIDC provider
// (oidc/server.js) for WESkit's offline + online token checks.
//
//   cd tests/federation && node --test test/wes-dialects.test.js

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { fork, spawn, execFileSync } = require('child_process');
const S3 = require('../lib/s3');
const { tempDir, until, deviceLogin } = require('./helpers');

const ROOT = path.join(__dirname, '..');
const WF = path.join(ROOT, 'wes', 'workflows');
const SMK = path.join(WF, 'snakemake');
const API = '/ga4gh/wes/v1';
const ALICE = 'Bearer user:alice';
const BOB = 'Bearer user:bob';
const KEYS = { FED_S3_ACCESS_KEY: 'FEDTESTACCESSKEY0001', FED_S3_SECRET_KEY: 'fedTestSecretKey0001fedTestSecretKey0001', FED_S3_REGION: 'us-east-1', FED_RESULTS_BUCKET: 'results' };
const NAIVE_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;
const NAIVE_MICROS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/;
const SMK_VERSION = execFileSync('snakemake', ['--version'], { encoding: 'utf8', timeout: 60000 }).trim();

// ---------------------------------------------------------------- helpers

// Start wes/server.js in a dialect on a free port; resolves {url, state, stop()}.
async function startWes(dialect, { args = [], env = {}, state } = {}) {
  const dir = state || tempDir(`wes-${dialect}-`);
  const child = fork(path.join(ROOT, 'wes', 'server.js'), ['--port', '0', '--dialect', dialect, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME || dir, FED_STATE: dir, FED_WES_FAKE_AUTH: '1', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('wes did not start within 60 s')), 60000);
    child.once('message', (m) => { clearTimeout(t); resolve(m.port); });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`wes exited early (${code})`)); });
  });
  return {
    url: `http://127.0.0.1:${port}`, state: dir,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
      return undefined;
    }),
  };
}

// fetch -> {status, type, json, text}
async function call(srv, method, p, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = token;
  const res = await fetch(srv.url + p, { method, headers: h, body, signal: AbortSignal.timeout(30000) });
  const text = await res.text();
  const type = res.headers.get('content-type') || '';
  let json;
  if (/json/.test(type)) json = JSON.parse(text);
  return { status: res.status, type, json, text };
}

function form(fields, files = []) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) f.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  for (const [name, data] of files) f.append('workflow_attachment', new Blob([data]), name);
  return f;
}

const isHtml = (r, status) => {
  assert.strictEqual(r.status, status, r.text);
  assert.match(r.type, /^text\/html/);
  assert.match(r.text, /^<!doctype html>/);
};

// Poll a run's status until pred(state) holds.
async function waitState(srv, prefix, id, pred, ms, token) {
  let last;
  await until(async () => {
    last = (await call(srv, 'GET', `${prefix}/runs/${id}/status`, { token })).json;
    return pred(last.state);
  }, ms, `run ${id} (last state ${last && last.state})`);
  return last.state;
}

// One Ceph RGW for the whole file, started on first use.
let rgwPromise = null;
let rgwProc = null;
function rgw() {
  if (!rgwPromise) {
    rgwPromise = (async () => {
      assert.ok(['radosgw', 'ceph-mon', 'ceph-osd'].every((c) => { try { execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }); return true; } catch (e) { return false; } }),
        'radosgw / ceph-mon / ceph-osd are not installed: run tests/federation/s3/install.sh (the WESkit tests need the real RGW)');
      const state = tempDir('wes-dialects-rgw-');
      const port = 30000 + crypto.randomInt(0, 8000);
      rgwProc = spawn(path.join(ROOT, 's3', 'start.sh'), ['--port', String(port), '--state', state, '--no-sts'], {
        env: { ...process.env, ...KEYS }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
      });
      let out = '';
      rgwProc.stdout.on('data', (c) => { out += c; });
      rgwProc.stderr.on('data', (c) => { out += c; });
      await until(() => /S3 READY/.test(out) || rgwProc.exitCode !== null, 240000, 'S3 READY');
      assert.ok(/S3 READY/.test(out), `s3/start.sh failed:\n${out.slice(-2000)}`);
      return `http://127.0.0.1:${port}`;
    })();
  }
  return rgwPromise;
}
test.after(() => new Promise((resolve) => {
  if (!rgwProc || rgwProc.exitCode !== null) return resolve();
  const k = setTimeout(() => { try { process.kill(-rgwProc.pid, 'SIGKILL'); } catch (e) { /* gone */ } resolve(); }, 30000);
  rgwProc.once('exit', () => { clearTimeout(k); resolve(); });
  try { process.kill(-rgwProc.pid, 'SIGTERM'); } catch (e) { resolve(); }
  return undefined;
}));

const wf = (...p) => fs.readFileSync(path.join(WF, ...p));
const cwlCount = (extra = {}) => form({ workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'count-variants.cwl',
  workflow_params: { vcf: { class: 'File', location: 'data/example.vcf' } }, ...extra },
[['count-variants.cwl', wf('count-variants.cwl')], ['data/example.vcf', wf('example.vcf')]]);
const cwlSlow = (seconds, extra = {}) => form({ workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'slow.cwl',
  workflow_params: { seconds }, workflow_engine: 'cwltool', ...extra }, [['slow.cwl', wf('slow.cwl')]]);

async function sapporoSubmit(srv, body) {
  const r = await call(srv, 'POST', '/runs', { body });
  assert.strictEqual(r.status, 200, r.text);
  return r.json.run_id;
}
const sapporoFinal = (srv, id, ms = 90000) => waitState(srv, '', id, (s) => !['QUEUED', 'INITIALIZING', 'RUNNING', 'CANCELING'].includes(s), ms);

// ---------------------------------------------------------------- lib/s3 Signature V2

test('lib/s3 presignGetV2 reproduces the documented AWS Signature V2 example', () => {
  // AWS S3 developer guide, "Query string request authentication alternative" (Signature Version 2)
  const s3 = S3.createClient({ url: 'http://127.0.0.1:9', accessKey: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' });
  const url = new URL(s3.presignGetV2('johnsmith', 'photos/puppy.jpg', 1175139620 - 1175138620, { date: new Date(1175138620 * 1000) }));
  assert.strictEqual(url.pathname, '/johnsmith/photos/puppy.jpg');
  assert.strictEqual(url.searchParams.get('AWSAccessKeyId'), 'AKIAIOSFODNN7EXAMPLE');
  assert.strictEqual(url.searchParams.get('Expires'), '1175139620');
  assert.strictEqual(url.searchParams.get('Signature'), 'NpgCjnDzrM+WFzoENXmpNDUsSn8=');
  assert.match(s3.presignGetAuto('b', 'k'), /[?&]Signature=/, 'us-east-1 -> V2 (as boto3)');
  const eu = S3.createClient({ url: 'http://127.0.0.1:9', accessKey: 'A', secretKey: 'S', region: 'eu-central-1' });
  assert.match(eu.presignGetAuto('b', 'k'), /X-Amz-Signature=/, 'other regions -> V4');
});

// ---------------------------------------------------------------- sapporo

test('sapporo: service-info is WES 1.0-shaped at the origin root, no auth anywhere', async (t) => {
  const srv = await startWes('sapporo');
  t.after(() => srv.stop());
  const r = await call(srv, 'GET', '/service-info');
  assert.strictEqual(r.status, 200);
  for (const k of ['id', 'name', 'type', 'organization', 'version']) assert.ok(!(k in r.json), `service-info has ${k}`);
  assert.deepStrictEqual(r.json.supported_wes_versions, ['sapporo-wes-1.1.0']);
  assert.deepStrictEqual(Object.keys(r.json.workflow_engine_versions),
    ['cwltool', 'nextflow', 'toil (experimental)', 'cromwell', 'snakemake', 'ep3 (experimental)', 'streamflow']);
  for (const v of Object.values(r.json.workflow_engine_versions)) assert.strictEqual(typeof v, 'string');
  assert.deepStrictEqual(r.json.workflow_type_versions.CWL, { workflow_type_version: ['v1.0', 'v1.1', 'v1.2'] });
  assert.ok(!Array.isArray(r.json.default_workflow_engine_parameters), 'a dict keyed by engine');
  assert.strictEqual(r.json.tags.get_runs, true);
  assert.strictEqual((await call(srv, 'GET', `${API}/service-info`)).status, 404, 'nothing under /ga4gh/wes/v1');
  const list = await call(srv, 'GET', '/runs');
  assert.strictEqual(list.status, 200, 'no token needed');
  const tasks = await call(srv, 'GET', '/runs/x/tasks');
  assert.strictEqual(tasks.status, 404);
  assert.deepStrictEqual(Object.keys(tasks.json), ['msg', 'status_code']);
});

test('sapporo: submission rules (workflow_engine required, form only)', async (t) => {
  const srv = await startWes('sapporo');
  t.after(() => srv.stop());
  const json = await call(srv, 'POST', '/runs', { headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'x.cwl', workflow_engine: 'cwltool' }) });
  assert.strictEqual(json.status, 400);
  assert.deepStrictEqual(json.json, { msg: 'Workflow engine is required.', status_code: 400 }, 'a JSON body is not read');
  const noEngine = await call(srv, 'POST', '/runs', { body: cwlCount() });
  assert.deepStrictEqual(noEngine.json, { msg: 'Workflow engine is required.', status_code: 400 });
  assert.strictEqual(noEngine.status, 400);
  const bad = await call(srv, 'POST', '/runs', { body: cwlCount({ workflow_engine: 'toil' }) });
  assert.deepStrictEqual(bad.json, { msg: 'Workflow engine `toil` is not supported.', status_code: 400 });
  const badType = await call(srv, 'POST', '/runs', { body: cwlCount({ workflow_engine: 'cwltool', workflow_type: 'WDX' }) });
  assert.deepStrictEqual(badType.json, { msg: 'The `workflow_type` is invalid.', status_code: 400 });
  const meta = await call(srv, 'POST', '/runs', { body: cwlCount({ workflow_engine: 'cwltool', workflow_url: 'a;b.cwl' }) });
  assert.strictEqual(meta.status, 400);
  assert.match(meta.json.msg, /prohibited character `;`/);
  // unknown fields are ignored; the 1.0.1 field name still works
  const id = await sapporoSubmit(srv, cwlCount({ workflow_engine_name: 'cwltool', something_else: 'x' }));
  assert.strictEqual(await sapporoFinal(srv, id), 'COMPLETE');
});

test('sapporo: a cwltool run (naive times, inline logs, string tags, outputs served by the server)', async (t) => {
  const srv = await startWes('sapporo');
  t.after(() => srv.stop());
  const id = await sapporoSubmit(srv, cwlCount({ workflow_engine: 'cwltool', tags: { project: 'p1' } }));
  assert.strictEqual(await sapporoFinal(srv, id), 'COMPLETE');
  const log = (await call(srv, 'GET', `/runs/${id}`)).json;
  assert.strictEqual(log.request.tags, '{"project":"p1"}', 'tags as the string that was sent');
  assert.strictEqual(typeof log.request.workflow_params, 'string');
  assert.strictEqual(log.request.workflow_engine_version, '');
  assert.match(log.run_log.start_time, NAIVE_SECONDS);
  assert.match(log.run_log.end_time, NAIVE_SECONDS);
  assert.strictEqual(typeof log.run_log.cmd, 'string');
  assert.ok(log.run_log.stdout && log.run_log.stdout.counts, 'stdout: the text, JSON-decoded (cwltool output object)');
  assert.match(log.run_log.stderr, /Final process status is success/);
  assert.strictEqual(log.task_logs, null);
  const counts = log.outputs.find((o) => o.file_name === 'counts.tsv');
  assert.ok(counts, JSON.stringify(log.outputs));
  const dl = await fetch(counts.file_url);
  assert.strictEqual(dl.status, 200);
  assert.strictEqual(await dl.text(), '1\t3\n2\t2\nX\t1\n');
  const nf = await call(srv, 'GET', '/runs/00000000-0000-0000-0000-000000000000');
  assert.deepStrictEqual(nf.json, { msg: 'Run ID `00000000-0000-0000-0000-000000000000` does not exist. Please provide a valid run ID.', status_code: 404 });
  // an engine sapporo lists but that is not installed: EXECUTOR_ERROR as run.sh's would
  const nfl = await sapporoSubmit(srv, form({ workflow_type: 'NFL', workflow_type_version: 'DSL2', workflow_url: 'main.nf', workflow_engine: 'nextflow' }));
  assert.strictEqual(await sapporoFinal(srv, nfl), 'EXECUTOR_ERROR');
  assert.strictEqual((await call(srv, 'GET', `/runs/${nfl}`)).json.run_log.exit_code, 127);
});

test('sapporo: run list in directory order, every run on one page, run_id and state only', async (t) => {
  const srv = await startWes('sapporo', { args: ['--seed-runs', '30'] });
  t.after(() => srv.stop());
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await sapporoSubmit(srv, cwlCount({ workflow_engine: 'cwltool' })));
  const r = await call(srv, 'GET', '/runs?page_size=5');
  assert.strictEqual(r.json.runs.length, 33, 'page_size is ignored');
  assert.strictEqual(r.json.next_page_token, '');
  for (const e of r.json.runs) assert.deepStrictEqual(Object.keys(e).sort(), ['run_id', 'state']);
  const pos = ids.map((id) => r.json.runs.findIndex((e) => e.run_id === id));
  assert.ok(pos.every((p) => p >= 30), `the newest runs are not at the top: ${pos}`);
  assert.deepStrictEqual([...pos].sort((a, b) => a - b).map((p) => r.json.runs[p].run_id), [...ids].sort(), 'ordered by run id, not by creation');
  const again = await call(srv, 'GET', `/runs?page_token=${encodeURIComponent('anything')}`);
  assert.deepStrictEqual(again.json.runs.map((e) => e.run_id), r.json.runs.map((e) => e.run_id), 'page_token is ignored');
  for (const id of ids) await sapporoFinal(srv, id);
});

test('sapporo: cancel is ignored unless RUNNING; cancel of a finished run answers 200', async (t) => {
  const srv = await startWes('sapporo', { args: ['--max-concurrent', '1'] });
  t.after(() => srv.stop());
  // INITIALIZING (held 3 s by the test tag): 200, the run goes on and completes
  const init = await sapporoSubmit(srv, cwlSlow(1, { tags: { fed_initializing_seconds: '3' } }));
  assert.strictEqual(await waitState(srv, '', init, (s) => s === 'INITIALIZING', 10000), 'INITIALIZING');
  // QUEUED behind it (one slot)
  const queued = await sapporoSubmit(srv, cwlSlow(1));
  assert.strictEqual((await call(srv, 'GET', `/runs/${queued}/status`)).json.state, 'QUEUED');
  for (const id of [init, queued]) {
    const c = await call(srv, 'POST', `/runs/${id}/cancel`);
    assert.strictEqual(c.status, 200);
    assert.deepStrictEqual(c.json, { run_id: id });
  }
  assert.strictEqual(await sapporoFinal(srv, init), 'COMPLETE', 'a cancelled INITIALIZING run completes');
  assert.strictEqual(await sapporoFinal(srv, queued), 'COMPLETE', 'a cancelled QUEUED run completes');
  const done = await call(srv, 'POST', `/runs/${init}/cancel`);
  assert.strictEqual(done.status, 200);
  assert.strictEqual((await call(srv, 'GET', `/runs/${init}/status`)).json.state, 'COMPLETE');
  // RUNNING: really cancelled
  const running = await sapporoSubmit(srv, cwlSlow(60));
  await waitState(srv, '', running, (s) => s === 'RUNNING', 30000);
  assert.strictEqual((await call(srv, 'POST', `/runs/${running}/cancel`)).status, 200);
  assert.strictEqual(await sapporoFinal(srv, running, 30000), 'CANCELED');
});

test('sapporo: UPLOADER_ERROR when the export_output upload fails (and COMPLETE when it works, RGW)', { timeout: 400000 }, async (t) => {
  const s3url = await rgw();
  const srv = await startWes('sapporo');
  t.after(() => srv.stop());
  const closed = `http://127.0.0.1:${await freePort()}`;
  const exp = (endpoint, secret = KEYS.FED_S3_SECRET_KEY) => ({ export_output: { protocol: 's3', endpoint, access_key: KEYS.FED_S3_ACCESS_KEY,
    secret_access_key: secret, bucket_name: 'results', dirname: `sapporo-${crypto.randomUUID()}` } });
  const failing = await sapporoSubmit(srv, cwlCount({ workflow_engine: 'cwltool', tags: exp(closed) }));
  assert.strictEqual(await sapporoFinal(srv, failing), 'UPLOADER_ERROR');
  const log = (await call(srv, 'GET', `/runs/${failing}`)).json;
  assert.match(log.run_log.end_time, NAIVE_SECONDS, 'a final state: end_time set');
  const refused = await sapporoSubmit(srv, cwlCount({ workflow_engine: 'cwltool', tags: exp(s3url, 'wrong-secret') }));
  assert.strictEqual(await sapporoFinal(srv, refused), 'UPLOADER_ERROR');
  const tags = exp(s3url);
  const ok = await sapporoSubmit(srv, cwlCount({ workflow_engine: 'cwltool', tags }));
  assert.strictEqual(await sapporoFinal(srv, ok), 'COMPLETE');
  const s3 = S3.createClient({ url: s3url, accessKey: KEYS.FED_S3_ACCESS_KEY, secretKey: KEYS.FED_S3_SECRET_KEY });
  assert.strictEqual((await s3.getObject('results', `${tags.export_output.dirname}/counts.tsv`)).body.toString(), '1\t3\n2\t2\nX\t1\n');
  const info = (await call(srv, 'GET', '/service-info')).json;
  assert.strictEqual(info.system_state_counts.UPLOADER_ERROR, 2);
});

function freePort() {
  return new Promise((resolve) => {
    const s = require('net').createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// ---------------------------------------------------------------- WESkit

const smk = (name) => fs.readFileSync(path.join(SMK, name));
function smkForm(fields = {}, files) {
  return form({ workflow_type: 'SMK', workflow_type_version: SMK_VERSION, workflow_url: 'file:Snakefile',
    workflow_params: { vcf: 'data_example.vcf' }, ...fields },
  files || [['Snakefile', smk('count-variants/Snakefile')], ['data/example.vcf', wf('example.vcf')]]);
}
async function weskitSubmit(srv, body, token = ALICE) {
  const r = await call(srv, 'POST', `${API}/runs`, { token, body });
  assert.strictEqual(r.status, 200, r.text);
  return r.json.run_id;
}
const weskitFinal = (srv, id, ms = 120000, token = ALICE) => waitState(srv, API, id, (s) => !['INITIALIZING', 'RUNNING'].includes(s), ms, token);

test('weskit: WES 1.0 service-info under /ga4gh/wes/v1 only; HTML 404 elsewhere', async (t) => {
  const srv = await startWes('weskit');
  t.after(() => srv.stop());
  const r = await call(srv, 'GET', `${API}/service-info`);
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(Object.keys(r.json).sort(), ['auth_instructions_url', 'contact_info_url', 'default_workflow_engine_parameters',
    'supported_filesystem_protocols', 'supported_wes_versions', 'system_state_counts', 'tags', 'workflow_engine_versions', 'workflow_type_versions']);
  assert.deepStrictEqual(r.json.supported_wes_versions, ['1.0.0']);
  assert.deepStrictEqual(r.json.workflow_type_versions.SMK, { workflow_type_version: [SMK_VERSION] }, 'type version = engine version');
  assert.ok(r.json.workflow_type_versions.NFL);
  assert.strictEqual(r.json.workflow_engine_versions.SMK, SMK_VERSION);
  assert.strictEqual(r.json.system_state_counts.QUEUED, 0, 'zero-filled');
  assert.ok(r.json.default_workflow_engine_parameters.some((p) => p.name === `SMK|${SMK_VERSION}|cores`));
  isHtml(await call(srv, 'GET', '/service-info'), 404);
  isHtml(await call(srv, 'GET', `${API}/runs/${crypto.randomUUID()}/tasks`, { token: ALICE }), 404);
  const noTok = await call(srv, 'GET', `${API}/runs`);
  assert.strictEqual(noTok.status, 401);
  assert.deepStrictEqual(noTok.json, { msg: 'Missing Authorization Header' });
});

test('weskit: submission rules (form only, unknown fields refused, Python-repr errors, https refused, run_dir tag)', async (t) => {
  const srv = await startWes('weskit');
  t.after(() => srv.stop());
  const post = (body, headers) => call(srv, 'POST', `${API}/runs`, { token: ALICE, body, headers });
  const expect400 = async (body, msg, headers) => {
    const r = await post(body, headers);
    assert.strictEqual(r.status, 400, r.text);
    assert.deepStrictEqual(r.json, { msg, status_code: 400 });
  };
  await expect400(JSON.stringify({ workflow_type: 'SMK' }), 'Malformed request: Empty form data', { 'Content-Type': 'application/json' });
  await expect400(smkForm({ workflow_engine: 'snakemake' }), "Malformed request: [{'workflow_engine': ['unknown field']}]");
  await expect400(smkForm({ workflow_params: undefined }), "Malformed request: [{'workflow_params': ['required field']}]");
  await expect400(smkForm({ workflow_params: undefined, workflow_url: undefined }),
    "Malformed request: [{'workflow_params': ['required field'], 'workflow_url': ['required field']}]");
  await expect400(smkForm({ workflow_type: 'CWL' }), 'Malformed request: ["Unknown workflow_type \'CWL\'. Know NFL, SMK"]');
  await expect400(smkForm({ workflow_type_version: 'v1.2' }), `Malformed request: ["Unknown workflow_type_version 'v1.2'. Know ${SMK_VERSION}"]`);
  await expect400(smkForm({ workflow_url: 'https://example.org/Snakefile' }),
    'Malformed request: ["Only \'file:\' (relative) and \'trs:\' are allowed in workflow URIs: \'https://example.org/Snakefile\'"]');
  await expect400(smkForm({ workflow_url: 'file:/etc/Snakefile' }), 'Malformed request: ["Not a relative path: \'file:/etc/Snakefile\'"]');
  await expect400(smkForm({ workflow_params: '[1]' }), "Malformed request: ['workflow_params must be string with JSON dictionary']");
  const strict = await startWes('weskit', { args: ['--require-run-dir'] });
  t.after(() => strict.stop());
  const r1 = await call(strict, 'POST', `${API}/runs`, { token: ALICE, body: smkForm() });
  assert.deepStrictEqual(r1.json, { msg: 'Malformed request: ["\'run_dir\' tag is required but tags field is missing"]', status_code: 400 });
  const r2 = await call(strict, 'POST', `${API}/runs`, { token: ALICE, body: smkForm({ tags: { project: 'p1' } }) });
  assert.deepStrictEqual(r2.json, { msg: 'Malformed request: ["\'run_dir\' tag is required and missing"]', status_code: 400 });
  const id = await weskitSubmit(strict, smkForm({ tags: { run_dir: 'projects/p1/run1' } }));
  assert.strictEqual(await weskitFinal(strict, id), 'COMPLETE');
  const log = (await call(strict, 'GET', `${API}/runs/${id}`, { token: ALICE })).json;
  assert.ok(fs.existsSync(path.join(strict.state, 'wes-weskit', 'data', 'projects', 'p1', 'run1', 'results', 'counts.tsv')), 'the run directory is the run_dir tag');
  assert.deepStrictEqual(log.request.tags, { run_dir: 'projects/p1/run1' });
  assert.strictEqual((await call(srv, 'GET', `${API}/runs`, { token: ALICE })).json.runs.length, 0, 'refused requests left no runs');
});

test('weskit: engine parameters are checked after the run exists; bad workflows end in SYSTEM_ERROR behind a 200', async (t) => {
  const srv = await startWes('weskit');
  t.after(() => srv.stop());
  const forbidden = await call(srv, 'POST', `${API}/runs`, { token: ALICE, body: smkForm({ workflow_engine_parameters: { 'use-conda': 'true' } }) });
  assert.strictEqual(forbidden.status, 500);
  assert.deepStrictEqual(forbidden.json, { msg: "Parameter frozenset({'use-conda'}) is forbidden", status_code: 500 });
  isHtml(await call(srv, 'POST', `${API}/runs`, { token: ALICE, body: smkForm({ workflow_engine_parameters: { 'no-such-param': '1' } }) }), 500);
  const list = (await call(srv, 'GET', `${API}/runs`, { token: ALICE })).json.runs;
  assert.deepStrictEqual(list.map((e) => e.state), ['INITIALIZING', 'INITIALIZING'], 'two orphan runs stay behind');
  const missing = await weskitSubmit(srv, smkForm({ workflow_url: 'file:nothing/here/Snakefile' }, []));
  assert.strictEqual((await call(srv, 'GET', `${API}/runs/${missing}/status`, { token: ALICE })).json.state, 'SYSTEM_ERROR');
  isHtml(await call(srv, 'GET', `${API}/runs/${missing}`, { token: ALICE }), 500);
  const trs = await weskitSubmit(srv, smkForm({ workflow_url: 'trs://example.org/workflow/1' }, []));
  assert.strictEqual((await call(srv, 'GET', `${API}/runs/${trs}/status`, { token: ALICE })).json.state, 'SYSTEM_ERROR');
  // a subfolder in workflow_url does not find its (flattened) attachment: the run fails
  const sub = await weskitSubmit(srv, smkForm({ workflow_url: 'file:wf/Snakefile' }, [['wf/Snakefile', smk('count-variants/Snakefile')]]));
  assert.strictEqual((await call(srv, 'GET', `${API}/runs/${sub}/status`, { token: ALICE })).json.state, 'SYSTEM_ERROR');
  // installed workflows: a relative path into the server's workflows directory
  const inst = await weskitSubmit(srv, smkForm({ workflow_url: 'file:snakemake/slow/Snakefile', workflow_params: { seconds: 0 } }, []));
  assert.strictEqual(await weskitFinal(srv, inst), 'COMPLETE');
});

test('weskit: a Snakemake run: 500 and 409 until finished, flattened attachments, presigned S3 outputs (V2 and V4, RGW)', { timeout: 400000 }, async (t) => {
  const s3url = await rgw();
  const srv = await startWes('weskit', { env: { FED_S3_URL: s3url, ...KEYS } });
  t.after(() => srv.stop());
  // while a run is not finished: GET /runs/{id} is Flask's HTML 500, the logs answer 409
  const slow = await weskitSubmit(srv, smkForm({ workflow_params: { seconds: 6 } }, [['Snakefile', smk('slow/Snakefile')]]));
  const before = (await call(srv, 'GET', `${API}/runs/${slow}/status`, { token: ALICE })).json.state;
  const during = await call(srv, 'GET', `${API}/runs/${slow}`, { token: ALICE });
  const log409 = await call(srv, 'GET', `/weskit/v1/runs/${slow}/stderr`, { token: ALICE });
  const after = (await call(srv, 'GET', `${API}/runs/${slow}/status`, { token: ALICE })).json.state;
  assert.ok(['INITIALIZING', 'RUNNING'].includes(before) && ['INITIALIZING', 'RUNNING'].includes(after), `${before} / ${after}: the run finished too early for this check`);
  isHtml(during, 500);
  assert.strictEqual(log409.status, 409);
  assert.deepStrictEqual(log409.json, { msg: `Run '${slow}' is not in COMPLETED state`, status_code: 409 });
  isHtml(await call(srv, 'POST', `${API}/runs/${slow}/cancel`, { token: ALICE }), 500);

  const id = await weskitSubmit(srv, smkForm({ tags: { project: 'p1' } }));
  assert.strictEqual(await weskitFinal(srv, id), 'COMPLETE');
  assert.strictEqual(await weskitFinal(srv, slow), 'COMPLETE');
  const r = await call(srv, 'GET', `${API}/runs/${id}`, { token: ALICE });
  assert.strictEqual(r.status, 200, r.text);
  const log = r.json;
  assert.strictEqual(log.state, 'COMPLETE');
  assert.match(log.run_log.start_time, NAIVE_MICROS);
  assert.match(log.run_log.end_time, NAIVE_MICROS);
  assert.strictEqual(log.run_log.stdout, `.weskit/${log.run_log.start_time}/stdout`, 'a path on the server, relative to the run directory');
  assert.deepStrictEqual(log.run_log.cmd.slice(0, 3), ['snakemake', '--snakefile', 'Snakefile']);
  assert.ok(log.outputs.filesystem.includes('data_example.vcf'), `flattened attachment: ${log.outputs.filesystem}`);
  assert.ok(log.outputs.filesystem.includes('results/counts.tsv'));
  assert.ok(log.outputs.filesystem.includes(`${id}.yaml`));
  assert.strictEqual(log.outputs.S3.length, log.outputs.filesystem.length);
  const i = log.outputs.filesystem.indexOf('results/counts.tsv');
  const v2 = new URL(log.outputs.S3[i]);
  assert.deepStrictEqual([...v2.searchParams.keys()].sort(), ['AWSAccessKeyId', 'Expires', 'Signature'], 'Signature V2 (region us-east-1)');
  const got = await fetch(v2); // plain fetch, no Authorization
  assert.strictEqual(got.status, 200);
  assert.strictEqual(await got.text(), '1\t3\n2\t2\nX\t1\n');
  for (const u of log.outputs.S3) assert.strictEqual((await fetch(u)).status, 200, `presigned URL refused: ${u}`);
  const tampered = new URL(v2);
  tampered.searchParams.set('Expires', String(Number(v2.searchParams.get('Expires')) + 1));
  assert.strictEqual((await fetch(tampered)).status, 403, 'RGW checks the V2 signature');
  // logs of a COMPLETE run: readlines()
  const stderr = await call(srv, 'GET', `/weskit/v1/runs/${id}/stderr`, { token: ALICE });
  assert.strictEqual(stderr.status, 200);
  assert.strictEqual(stderr.json.content[0], 'Building DAG of jobs...\n');
  // list: everything on one page
  const list = await call(srv, 'GET', `${API}/runs?page_size=1`, { token: ALICE });
  assert.deepStrictEqual(list.json, { runs: [{ run_id: slow, state: 'COMPLETE' }, { run_id: id, state: 'COMPLETE' }], next_page_token: '' });
  const ext = (await call(srv, 'GET', '/weskit/v1/runs', { token: ALICE })).json;
  assert.ok(Array.isArray(ext));
  assert.deepStrictEqual(ext.find((e) => e.run_id === id).request.tags, { project: 'p1' });
  assert.strictEqual(ext.find((e) => e.run_id === id).run_stage, 'FINISHED_EXECUTION');
  // run ids: syntax, unknown, another user's
  assert.deepStrictEqual((await call(srv, 'GET', `${API}/runs/nope`, { token: ALICE })).json, { msg: "Syntactically invalid run ID: 'nope'", status_code: 500 });
  isHtml(await call(srv, 'GET', `${API}/runs/${crypto.randomUUID()}`, { token: ALICE }), 500);
  const unknownCancel = crypto.randomUUID();
  assert.deepStrictEqual((await call(srv, 'POST', `${API}/runs/${unknownCancel}/cancel`, { token: ALICE })).json, { msg: `Could not find '${unknownCancel}'`, status_code: 404 });
  assert.strictEqual((await call(srv, 'GET', `${API}/runs/${id}`, { token: BOB })).status, 403);
  // a failing workflow: EXECUTOR_ERROR with its run log, but its logs are never served (409)
  const bad = await weskitSubmit(srv, smkForm({ workflow_params: {} }, [['Snakefile', smk('fails/Snakefile')]]));
  assert.strictEqual(await weskitFinal(srv, bad), 'EXECUTOR_ERROR');
  assert.strictEqual((await call(srv, 'GET', `${API}/runs/${bad}`, { token: ALICE })).json.run_log.exit_code, 1);
  assert.strictEqual((await call(srv, 'GET', `/weskit/v1/runs/${bad}/stdout`, { token: ALICE })).status, 409);
  // Signature V4 when configured so (another region, or --s3-signature v4)
  const v4srv = await startWes('weskit', { env: { FED_S3_URL: s3url, ...KEYS }, args: ['--s3-signature', 'v4'] });
  t.after(() => v4srv.stop());
  const id4 = await weskitSubmit(v4srv, smkForm());
  assert.strictEqual(await weskitFinal(v4srv, id4), 'COMPLETE');
  const log4 = (await call(v4srv, 'GET', `${API}/runs/${id4}`, { token: ALICE })).json;
  const v4 = new URL(log4.outputs.S3[log4.outputs.filesystem.indexOf('results/total.txt')]);
  assert.strictEqual(v4.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
  assert.strictEqual(await (await fetch(v4)).text(), '6\n');
});

// ---------------------------------------------------------------- WESkit with the real OIDC provider

test('weskit: tokens are checked offline (JWT against the JWKS) and online (introspection)', { timeout: 120000 }, async (t) => {
  const state = tempDir('wes-weskit-oidc-');
  const oidc = spawn(process.execPath, [path.join(ROOT, 'oidc', 'server.js'), '--port', '0', '--bad-port', '0', '--visa-port', '0'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME || state, FED_STATE: state, FED_DEVICE_INTERVAL: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => new Promise((resolve) => { if (oidc.exitCode !== null) return resolve(); oidc.once('exit', resolve); oidc.kill('SIGTERM'); return undefined; }));
  let out = '';
  oidc.stdout.on('data', (c) => { out += c; });
  const ready = await until(() => { const m = /^READY (.*)$/m.exec(out); assert.ok(m || oidc.exitCode === null, 'oidc/server.js exited'); return m && JSON.parse(m[1]); }, 30000, 'oidc READY');
  const issuer = ready.issuer;
  const alice = await deviceLogin(issuer, 'alice', 'openid profile');
  // same state dir: the server reads impact-ci.secret (its introspection client) from there
  const srv = await startWes('weskit', { state, env: { FED_ISSUER: issuer, FED_WES_FAKE_AUTH: '0' } });
  t.after(() => srv.stop());
  const ok = await call(srv, 'GET', `${API}/runs`, { token: `Bearer ${alice.access_token}` });
  assert.strictEqual(ok.status, 200, ok.text);
  const fake = await call(srv, 'GET', `${API}/runs`, { token: ALICE });
  assert.deepStrictEqual([fake.status, fake.json], [401, { msg: 'Online validation failed' }], 'no fake identities here');
  // a JWT from the provider (the ID token) passes the offline check, and is not an active access token
  const idt = await call(srv, 'GET', `${API}/runs`, { token: `Bearer ${alice.id_token}` });
  assert.deepStrictEqual([idt.status, idt.json], [401, { msg: 'Online validation failed' }]);
  // a JWT signed by another key fails the offline check (flask-jwt-extended: 422)
  const jose = await import('jose');
  const { privateKey } = await jose.generateKeyPair('RS256');
  const forged = await new jose.SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: 'x' }).setIssuer(issuer).setExpirationTime('5m').sign(privateKey);
  const f = await call(srv, 'GET', `${API}/runs`, { token: `Bearer ${forged}` });
  assert.deepStrictEqual([f.status, f.json], [422, { msg: 'Signature verification failed' }]);
  // a revoked access token: online validation fails
  const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const rev = await fetch(disc.revocation_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: alice.access_token, client_id: 'impact-cli' }).toString() });
  assert.strictEqual(rev.status, 200);
  const gone = await call(srv, 'GET', `${API}/runs`, { token: `Bearer ${alice.access_token}` });
  assert.deepStrictEqual([gone.status, gone.json], [401, { msg: 'Online validation failed' }]);
  // --jwt-only: as WESkit, opaque tokens are refused before any introspection
  const strict = await startWes('weskit', { state, args: ['--jwt-only'], env: { FED_ISSUER: issuer, FED_WES_FAKE_AUTH: '0' } });
  t.after(() => strict.stop());
  const again = await deviceLogin(issuer, 'alice', 'openid profile');
  const o = await call(strict, 'GET', `${API}/runs`, { token: `Bearer ${again.access_token}` });
  assert.deepStrictEqual([o.status, o.json], [422, { msg: 'Not enough segments' }]);
});
