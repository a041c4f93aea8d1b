'use strict';
// WES servers that behave as WESkit and sapporo do (issue 16), as small servers inside the test: request
// shaping from their refusals, WESkit's log endpoints, `run show` on their outputs, and a run's presigned
// S3 outputs downloaded with no storage profile. docs/servers.md lists the rules.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { federation, home, impact, impactAsync, server, serviceInfo, userToken } = require('./helpers');

const TOKEN = 'weskit-test-token-0123456789';
const RUN = '6f1c2e0a-1b2c-4d3e-8f40-5a6b7c8d9e01';

// The fields of a multipart/form-data body: name -> {value, filename}.
function formFields(req, body) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(req.headers['content-type'] || '');
  if (!m) return null;
  const fields = {};
  for (const part of body.split(`--${m[1] || m[2]}`)) {
    const head = /^\r\n([\s\S]*?)\r\n\r\n([\s\S]*)\r\n$/.exec(part);
    if (!head) continue;
    const name = /name="([^"]*)"/.exec(head[1]);
    const filename = /filename="([^"]*)"/.exec(head[1]);
    if (!name) continue;
    const entry = { value: head[2], filename: filename ? filename[1] : undefined };
    if (name[1] === 'workflow_attachment') (fields.workflow_attachment = fields.workflow_attachment || []).push(entry);
    else fields[name[1]] = entry;
  }
  return fields;
}

// A WESkit-like WES: WES 1.0 service-info, form fields only, unknown fields refused, run_dir required,
// logs at /weskit/v1 (409 until COMPLETE), no task endpoint, outputs {filesystem, S3: [presigned V2]}.
async function weskit(t) {
  const st = { state: 'RUNNING', posts: [] };
  const files = { 'out/result.txt': 'snakemake says hello\n', 'out/sub/table.tsv': 'a\tb\n1\t2\n' };
  const s = await server(t, (req, body) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/ga4gh/wes/v1/service-info') {
      return { status: 200, body: { ...serviceInfo('weskit', 'wes', st.url),
        workflow_type_versions: { SMK: { workflow_type_version: ['7.9.0', '7.21.0'] } },
        supported_wes_versions: ['1.0.0'], supported_filesystem_protocols: ['file', 'S3'],
        workflow_engine_versions: { SMK: '7.21.0' }, default_workflow_engine_parameters: [], system_state_counts: {},
        auth_instructions_url: 'https://example.org', tags: {} } };
    }
    if (req.method === 'POST' && url.pathname === '/ga4gh/wes/v1/runs') {
      const f = formFields(req, body);
      st.posts.push(f);
      const errors = [];
      if (!f) return { status: 400, body: { msg: 'Malformed request: Empty form data', status_code: 400 } };
      for (const k of Object.keys(f)) {
        if (!['workflow_params', 'workflow_type', 'workflow_type_version', 'tags', 'workflow_engine_parameters',
          'workflow_url', 'workflow_attachment'].includes(k)) errors.push({ [k]: ['unknown field'] });
        else if (k !== 'workflow_attachment' && f[k].filename !== undefined) errors.push({ [k]: ['must be a form field'] });
      }
      if (!f.workflow_params) errors.push({ workflow_params: ['required field'] });
      if (!f.workflow_url || !f.workflow_url.value.startsWith('file:')) errors.push("Only 'file:' (relative) URIs are allowed");
      const tags = f.tags ? JSON.parse(f.tags.value) : {};
      if (!tags.run_dir) errors.push("'run_dir' tag is required and missing");
      else if (tags.run_dir.includes('..')) errors.push(`Normalized path points outside allowed root: '${tags.run_dir}'`);
      if (errors.length) {
        const shown = errors.map((e) => (typeof e === 'string' ? `'${e}'` : JSON.stringify(e).replace(/"/g, "'")));
        return { status: 400, body: { msg: `Malformed request: [${shown.join(', ')}]`, status_code: 400 } };
      }
      st.request = f;
      return { status: 200, body: { run_id: RUN } };
    }
    if (url.pathname === `/ga4gh/wes/v1/runs/${RUN}` && st.state !== 'COMPLETE') {  // WESkit: no details before the end
      return { status: 500, headers: { 'Content-Type': 'text/html' }, body: '<!doctype html><title>500 Internal Server Error</title><h1>Internal Server Error</h1>' };
    }
    if (url.pathname === `/ga4gh/wes/v1/runs/${RUN}`) {
      const presigned = Object.keys(files).map((k) => `${st.url}/results/runs/${RUN}/${k}?AWSAccessKeyId=AKIDWESKIT&Signature=c2lnbmF0dXJl%2BdjI%3D&Expires=4102444800`);
      return { status: 200, body: {
        run_id: RUN, state: st.state, request: { workflow_url: 'file:Snakefile', workflow_type: 'SMK', tags: { run_dir: 'x' } },
        run_log: { name: 'file:Snakefile', cmd: ['snakemake'], start_time: '2026-12-04T16:07:47Z', end_time: null,
          stdout: '.weskit/2026-12-04T16:07:47.123456/stdout', stderr: '.weskit/2026-12-04T16:07:47.123456/stderr', exit_code: null },
        task_logs: [], user_id: 'alice',
        outputs: st.state === 'COMPLETE' ? { filesystem: Object.keys(files).map((k) => `/data/runs/6f/${RUN}/${k}`), S3: presigned } : {},
      } };
    }
    if (url.pathname === `/ga4gh/wes/v1/runs/${RUN}/status`) return { status: 200, body: { run_id: RUN, state: st.state } };
    if (url.pathname.startsWith(`/weskit/v1/runs/${RUN}/`)) {
      if (st.state !== 'COMPLETE') return { status: 409, body: { msg: `Run '${RUN}' is not in COMPLETED state`, status_code: 409 } };
      return { status: 200, body: { content: url.pathname.endsWith('stdout') ? ['Building DAG of jobs...\n', 'Finished job 0.\n'] : [] } };
    }
    if (url.pathname.startsWith(`/results/runs/${RUN}/`)) {
      const key = decodeURIComponent(url.pathname.slice(`/results/runs/${RUN}/`.length));
      if (url.searchParams.get('Signature') !== 'c2lnbmF0dXJl+djI=' || !(key in files)) {
        return { status: 403, headers: { 'Content-Type': 'application/xml' }, body: '<Error><Code>AccessDenied</Code></Error>' };
      }
      const data = Buffer.from(files[key]);
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range || '');
      if (range) {
        const end = Math.min(Number(range[2]), data.length - 1);
        return { status: 206, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${range[1]}-${end}/${data.length}` },
          body: data.subarray(Number(range[1]), end + 1).toString() };
      }
      return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: files[key] };
    }
    return { status: 404, headers: { 'Content-Type': 'text/html' }, body: '<!doctype html><title>404 Not Found</title><h1>Not Found</h1>' };
  });
  st.url = s.url;
  return { ...s, st, files };
}

function profileFor(t, url, extra = []) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--wes', `${url}/ga4gh/wes/v1`, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

const run = (dir, args, env = {}) => impactAsync(dir, args, { env: { IMPACT_TOKEN: TOKEN, ...env }, timeout: 60000 });

test('WESkit: a local Snakefile is submitted as form fields, as file:Snakefile, with workflow_params and a run_dir tag', async (t) => {
  const w = await weskit(t);
  const dir = profileFor(t, w.url, ['--wes-engine', 'snakemake']);
  const wf = path.join(dir, 'wf');
  fs.mkdirSync(path.join(wf, 'data'), { recursive: true });
  fs.writeFileSync(path.join(wf, 'Snakefile'), 'rule all:\n  output: "out/result.txt"\n');
  fs.writeFileSync(path.join(wf, 'data', 'x.txt'), 'x\n');
  const r = await run(dir, ['run', 'submit', path.join(wf, 'Snakefile'), '--attach', path.join(wf, 'data', 'x.txt')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), RUN);
  assert.equal(w.st.posts.length, 2, 'one resubmission, for the run_dir tag');
  for (const f of w.st.posts) {
    assert.equal(f.workflow_engine, undefined, 'no workflow_engine to a WES 1.0 server, whatever the profile says');
    assert.equal(f.workflow_url.value, 'file:Snakefile');
    assert.equal(f.workflow_params.value, '{}');
    assert.equal(f.workflow_type_version.value, '7.21.0');
    assert.deepEqual(f.workflow_attachment.map((a) => a.filename), ['Snakefile', 'data/x.txt']);
  }
  const tags = JSON.parse(w.st.request.tags.value);
  assert.equal(tags.run_dir, `impact-${tags.impact_request_id}`);
  assert.match(r.stderr, new RegExp(`requires a run_dir tag: sent again with run_dir=impact-${tags.impact_request_id}`));
  assert.match(r.stderr, /data\/x\.txt is in a sub-folder; some WES 1\.0 services store it as data_x\.txt/);

  // An explicit --engine is refused before anything is sent, with what to do.
  const before = w.st.posts.length;
  const e = await run(dir, ['run', 'submit', path.join(wf, 'Snakefile'), '--engine', 'snakemake']);
  assert.equal(e.code, 2, e.stderr);
  assert.match(e.stderr, /WES 1\.0, whose requests have no engine field/);
  assert.match(e.stderr, /leave out --engine/);
  assert.equal(w.st.posts.length, before);
});

test('WESkit: a refusal nothing can answer shows the server\'s reason on one line', async (t) => {
  const w = await weskit(t);
  const dir = profileFor(t, w.url);
  const wf = path.join(dir, 'Snakefile');
  fs.writeFileSync(wf, 'rule all:\n');
  const r = await run(dir, ['run', 'submit', wf, '--tag', 'run_dir=../../etc\u001b[2J']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /submitting the run failed: HTTP 400: Malformed request: \['Normalized path points outside allowed root: '\.\.\/\.\.\/etc\\x1b\[2J''\]/);
  assert.doesNotMatch(r.stderr, /\u001b/);
  assert.equal(w.st.posts.length, 1);
});

test('WESkit: logs are held back until the run completes (exit 8), a server path is never printed as the log', async (t) => {
  const w = await weskit(t);
  const dir = profileFor(t, w.url);
  let r = await run(dir, ['run', 'logs', RUN]);
  assert.equal(r.code, 8, r.stderr);
  assert.match(r.stderr, /the stdout of run .* is not available until the run completes \(it is RUNNING\)/);
  assert.doesNotMatch(r.stdout, /\.weskit/);
  w.st.state = 'EXECUTOR_ERROR';
  r = await run(dir, ['run', 'logs', RUN]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /gives the stdout of a run only once it has completed; run .* is EXECUTOR_ERROR/);
  w.st.state = 'COMPLETE';
  r = await run(dir, ['run', 'logs', RUN]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Building DAG of jobs...\nFinished job 0.\n');
  const logReq = w.seen.filter((q) => q.url === `/weskit/v1/runs/${RUN}/stdout`).pop();
  assert.equal(logReq.headers.authorization, `Bearer ${TOKEN}`);
});

test('WESkit: logs --follow waits for the held-back log and prints it once the run completes', async (t) => {
  const w = await weskit(t);
  const dir = profileFor(t, w.url);
  const pending = run(dir, ['run', 'logs', RUN, '--follow']);
  // Complete the run once impact has been told the log is held back.
  const deadline = Date.now() + 20000;
  while (!w.seen.some((q) => q.url.startsWith('/weskit/v1/')) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  w.st.state = 'COMPLETE';
  const r = await pending;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Building DAG of jobs...\nFinished job 0.\n');
});

test('WESkit: run show copes with {filesystem, S3} outputs and no task endpoint; signatures are redacted', async (t) => {
  const w = await weskit(t);
  w.st.state = 'COMPLETE';
  const dir = profileFor(t, w.url);
  const r = await run(dir, ['run', 'show', RUN]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^output\tfilesystem: \/data\/runs\/6f\/.*\/out\/result\.txt$/m);
  assert.match(r.stdout, /^output\tS3: http:\/\/127\.0\.0\.1:\d+\/results\/runs\/.*\/out\/result\.txt\?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=4102444800$/m);
  assert.doesNotMatch(r.stdout, /c2lnbmF0dXJl/);
  const j = await run(dir, ['--json', 'run', 'show', RUN]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).outputs.S3.length, 2);
});

test('WESkit: results of a run with presigned S3 outputs are listed and downloaded with no storage profile and no token', async (t) => {
  const w = await weskit(t);
  w.st.state = 'COMPLETE';
  const dir = profileFor(t, w.url);
  const ls = await run(dir, ['--format', 'tsv', 'results', 'ls', RUN]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`^results/runs/${RUN}/out/result\\.txt\t21\t`, 'm'));  // keys: the URL paths
  assert.match(ls.stdout, new RegExp(`^results/runs/${RUN}/out/sub/table\\.tsv\t8\t`, 'm'));
  const out = path.join(dir, 'out');
  const r = await run(dir, ['results', 'download', RUN, '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).downloaded, 2);
  assert.equal(fs.readFileSync(path.join(out, 'result.txt'), 'utf8'), w.files['out/result.txt']);
  assert.equal(fs.readFileSync(path.join(out, 'sub', 'table.tsv'), 'utf8'), w.files['out/sub/table.tsv']);
  const storage = w.seen.filter((q) => q.url.startsWith('/results/'));
  assert.ok(storage.length >= 2);
  for (const q of storage) assert.equal(q.headers.authorization, undefined, 'no token to the storage');
  // -v shows the storage requests without their signatures.
  const v = await run(dir, ['-v', 'results', 'ls', RUN]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, /Signature=REDACTED/);
  assert.doesNotMatch(v.stderr, /c2lnbmF0dXJl/);
});

// A sapporo-like WES: requires workflow_engine (400 {msg, status_code}); no supported_wes_versions here, so
// impact learns it from the refusal.
async function sapporo(t, engines) {
  const posts = [];
  const s = await server(t, (req, body) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/ga4gh/wes/v1/service-info') {
      return { status: 200, body: { ...serviceInfo('sapporo', 'wes', 'http://x'),
        workflow_type_versions: { CWL: { workflow_type_version: ['v1.0', 'v1.2'] }, WDL: { workflow_type_version: ['1.0'] } },
        supported_filesystem_protocols: ['http', 'https', 'file', 's3'], workflow_engine_versions: engines } };
    }
    if (req.method === 'POST' && url.pathname === '/ga4gh/wes/v1/runs') {
      const f = formFields(req, body);
      posts.push(f);
      if (!f.workflow_engine) return { status: 400, body: { msg: 'Workflow engine is required.', status_code: 400 } };
      if (!(f.workflow_engine.value in engines)) return { status: 400, body: { msg: `Workflow engine \`${f.workflow_engine.value}\` is not supported.`, status_code: 400 } };
      return { status: 200, body: { run_id: 'sapporo-run-1' } };
    }
    return { status: 404, body: { msg: 'not found', status_code: 404 } };
  });
  return { ...s, posts };
}

test('sapporo: the engine it requires is chosen for the language, the profile\'s wes_engine first; else the engines are named', async (t) => {
  const s = await sapporo(t, { 'toil (experimental)': '4.1.0', cwltool: '3.1', nextflow: '22.04.4' });
  const dir = profileFor(t, s.url);
  let r = await run(dir, ['run', 'submit', 'https://example.org/wf.cwl']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'sapporo-run-1');
  assert.equal(s.posts.length, 2);
  assert.equal(s.posts[1].workflow_engine.value, 'cwltool');
  assert.match(r.stderr, /requires a workflow engine: sent again with cwltool/);

  const mine = profileFor(t, s.url, ['--wes-engine', 'toil (experimental)']);
  r = await run(mine, ['run', 'submit', 'https://example.org/wf.cwl']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.posts[3].workflow_engine.value, 'toil (experimental)');

  r = await run(dir, ['run', 'submit', 'https://example.org/wf.wdl']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /requires a workflow engine, and none of its engines is known to run WDL \(it has: cwltool, nextflow, toil \(experimental\)\)/);
  assert.match(r.stderr, /wes_engine/);
});

// ---- against the federation's WESkit-mode WES (tests/federation/wes/dialects/weskit.js): real Snakemake
// runs, real token checks (introspection), outputs in the federation's RGW behind presigned URLs.

const SMK = path.resolve(__dirname, '../federation/wes/workflows/snakemake');

async function weskitHome(t) {
  const url = federation().services['wes-weskit'];
  assert.ok(url, 'the federation runs its WESkit-mode WES');
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'spe4hd', '--wes', url]);
  assert.equal(r.code, 0, r.stderr);
  const token = (await userToken('alice')).access_token;
  const go = (args) => impactAsync(dir, args, { env: { IMPACT_TOKEN: token }, timeout: 240000 });
  return { dir, go };
}

test('federation WESkit: a Snakemake run with a sub-folder attachment: warned, file: URL, logs after completion, outputs from RGW', { timeout: 400000 }, async (t) => {
  const { dir, go } = await weskitHome(t);
  const wf = path.join(dir, 'wf');
  fs.mkdirSync(path.join(wf, 'data'), { recursive: true });
  fs.copyFileSync(path.join(SMK, 'count-variants', 'Snakefile'), path.join(wf, 'Snakefile'));
  fs.copyFileSync(path.resolve(SMK, '..', 'example.vcf'), path.join(wf, 'data', 'example.vcf'));
  // The workflow names the VCF by the flat name WESkit stores it under, as the warning says.
  fs.writeFileSync(path.join(wf, 'params.json'), JSON.stringify({ vcf: 'data_example.vcf' }));
  const sub = await go(['run', 'submit', path.join(wf, 'Snakefile'), '--params', path.join(wf, 'params.json'),
    '--attach', path.join(wf, 'data', 'example.vcf'), '--wait', '--poll-interval', '1s', '--timeout', '5m']);
  assert.equal(sub.code, 0, sub.stderr);
  assert.match(sub.stderr, /data\/example\.vcf is in a sub-folder; some WES 1\.0 services store it as data_example\.vcf/);
  const runId = sub.stdout.split('\n')[0].trim();
  assert.match(runId, /^[0-9a-f-]{36}$/);

  const logs = await go(['run', 'logs', runId, '--stderr']);
  assert.equal(logs.code, 0, logs.stderr);
  assert.doesNotMatch(logs.stdout, /^\.weskit\//, 'the path is not the log');
  assert.ok(logs.stdout.length > 0, 'Snakemake\'s log');

  const show = await go(['run', 'show', runId]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^output\tS3: \S+results\/counts\.tsv\?\S*(Signature|X-Amz-Signature)=REDACTED/m);
  assert.doesNotMatch(show.stdout, /(Signature|X-Amz-Signature)=(?!REDACTED)/);

  const out = path.join(dir, 'out');
  const dl = await go(['--json', 'results', 'download', runId, '-o', out, '--include', 'results/*']);
  assert.equal(dl.code, 0, dl.stderr);
  assert.equal(JSON.parse(dl.stdout).downloaded, 2);
  const vcf = fs.readFileSync(path.join(wf, 'data', 'example.vcf'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.equal(Number(fs.readFileSync(path.join(out, 'results', 'total.txt'), 'utf8')), vcf.length);
});

test('federation WESkit: logs of a running run are held back (exit 8); --follow prints them once it completes', { timeout: 300000 }, async (t) => {
  const { dir, go } = await weskitHome(t);
  const wf = path.join(dir, 'wf');
  fs.mkdirSync(wf);
  fs.copyFileSync(path.join(SMK, 'slow', 'Snakefile'), path.join(wf, 'Snakefile'));
  fs.writeFileSync(path.join(wf, 'params.json'), JSON.stringify({ seconds: 8 }));
  const sub = await go(['run', 'submit', path.join(wf, 'Snakefile'), '--params', path.join(wf, 'params.json')]);
  assert.equal(sub.code, 0, sub.stderr);
  const runId = sub.stdout.trim();
  const held = await go(['run', 'logs', runId]);
  assert.equal(held.code, 8, held.stderr);
  assert.match(held.stderr, /not available until the run completes/);
  const follow = await go(['run', 'logs', runId, '--stderr', '--follow']);
  assert.equal(follow.code, 0, follow.stderr);
  assert.ok(follow.stdout.length > 0);
  const state = await go(['run', 'wait', runId, '--timeout', '2m']);
  assert.equal(state.code, 0, state.stderr);
});
