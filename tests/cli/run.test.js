'use strict';
// impact run against the local federation's WES (cwltool, requests checked against the strict WES 1.1
// spec) with real user tokens; a fault proxy for the lost submission; scripted servers for benchmarks.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { BIN, FED_STATE, federation, home, impact, impactAsync, runHome, server, startWes, userToken } = require('./helpers');
const { startProxy } = require('../federation/proxy/server');

const fed = federation();
const WORKFLOWS = path.resolve(__dirname, '../federation/wes/workflows');
const tokens = {};

test.before(async () => {
  tokens.alice = (await userToken('alice')).access_token;
  tokens.bob = (await userToken('bob')).access_token;
});

// A home with a profile for the federation's WES (or `wes`); `who` picks the user whose token impact gets.
const setup = (t, { who = 'alice', wes } = {}) => runHome(t, { token: tokens[who], wes });

const ndjson = (text) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const tag = () => `t${crypto.randomBytes(6).toString('hex')}`;

// Polls `check` (bounded in count) while a run moves on; returns its first truthy value.
async function until(check, what, { tries = 120, every = 500 } = {}) {
  for (let i = 0; i < tries; i++) {
    const v = check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('a CWL workflow with attachments in a sub-directory runs to COMPLETE, with outputs, tasks and logs', (t) => {
  const s = setup(t);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-wf-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  fs.copyFileSync(path.join(WORKFLOWS, 'count-variants.cwl'), path.join(work, 'count-variants.cwl'));
  fs.mkdirSync(path.join(work, 'data'));
  fs.copyFileSync(path.join(WORKFLOWS, 'example.vcf'), path.join(work, 'data', 'sample.vcf'));
  fs.writeFileSync(path.join(work, 'params.json'), JSON.stringify({ vcf: { class: 'File', location: 'data/sample.vcf' } }));
  const id = tag();
  const r = s.run(['submit', path.join(work, 'count-variants.cwl'), '--params', path.join(work, 'params.json'),
    '--attach', path.join(work, 'data', 'sample.vcf'), '--tag', `case=${id}`, '--wait', '--poll-interval', '1s'],
  { env: { ...s.env }, timeout: 180000 });
  assert.equal(r.code, 0, r.stderr);
  const [runId, final] = r.stdout.trim().split('\n');
  assert.match(runId, /^[0-9a-f-]{36}$/);
  assert.equal(final, `${runId}\tCOMPLETE`);

  const show = s.json(['show', runId]);
  assert.equal(show.state, 'COMPLETE');
  assert.equal(show.request.workflow_url, 'count-variants.cwl');
  assert.equal(show.request.workflow_type_version, 'v1.2', 'version read from the file');
  assert.equal(show.request.tags.case, id);
  assert.match(show.request.tags.impact_request_id, /^[0-9a-f]{32}$/);
  assert.ok(show.outputs.counts && show.outputs.total, JSON.stringify(show.outputs));
  assert.deepEqual(show.tasks.map((x) => x.name).sort(), ['sum', 'tally']);
  assert.ok(show.tasks.every((x) => x.exit_code === 0));

  const out = s.run(['logs', runId]);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(JSON.parse(out.stdout).total, 'stdout is cwltool\'s output object');
  const err = s.run(['logs', runId, '--stderr']);
  assert.match(err.stdout, /Final process status is success/);
  const task = s.run(['logs', runId, '--task', 'tally', '--stderr']);
  assert.equal(task.code, 0, task.stderr);
  assert.match(task.stdout, /\[job tally\]/);
  assert.equal(s.run(['logs', runId, '--task', 'nope']).code, 1);

  const listed = s.json(['list', '--tag', `case=${id}`]);
  assert.deepEqual(listed.runs.map((x) => x.run_id), [runId]);
  assert.equal(s.json(['list', '--tag', `case=${id}`, '--state', 'EXECUTOR_ERROR']).runs.length, 0);
  const tsv = s.run(['list', '--tag', `case=${id}`]).stdout.trim().split('\t');
  assert.deepEqual(tsv.slice(0, 2), [runId, 'COMPLETE']);
});

test('a failing workflow ends in EXECUTOR_ERROR: exit 10, NDJSON events, and the tool\'s stderr', (t) => {
  const s = setup(t);
  const j = impact(s.dir, ['--json', 'run', 'submit', path.join(WORKFLOWS, 'fails.cwl'), '--wait', '--poll-interval', '1s'],
    { env: s.env, timeout: 180000 });
  assert.equal(j.code, 10, j.stderr);
  const events = ndjson(j.stdout);
  assert.equal(events[0].event, 'submitted');
  const states = events.filter((e) => e.event === 'state').map((e) => e.state);
  assert.equal(states.at(-1), 'EXECUTOR_ERROR');
  assert.equal(new Set(states).size, states.length, 'each change reported once');
  const done = events.at(-1);
  assert.deepEqual({ event: done.event, exit_code: done.exit_code, timed_out: done.timed_out },
    { event: 'done', exit_code: 10, timed_out: false });
  const runId = events[0].run_id;
  const again = s.run(['wait', runId]);
  assert.equal(again.code, 10, 'wait on a finished run says the same');
  // in a pipe too: the end of the run's stderr on stderr, and the command that shows all of it
  assert.match(again.stderr, new RegExp(`^run ${runId} ended in EXECUTOR_ERROR; (the whole|the last \\d+ lines) of its stderr:\n {2}\\| `, 'm'));
  assert.ok(again.stderr.endsWith(`all of it: impact run logs ${runId} --stderr\n`), again.stderr);
  const tasks = s.json(['show', runId]).tasks;
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0].exit_code, 3);
  assert.match(s.run(['logs', runId, '--task', tasks[0].id, '--stderr']).stdout, /failing on purpose/);
});

test('cancel of a running workflow: CANCELING or CANCELED at once, wait exits 12; wait --timeout exits 8', async (t) => {
  const s = setup(t);
  const sub = s.run(['submit', path.join(WORKFLOWS, 'slow.cwl'), '--params', path.join(WORKFLOWS, 'slow.params.json')]);
  assert.equal(sub.code, 0, sub.stderr);
  const runId = sub.stdout.trim();
  const pending = s.run(['wait', runId, '--timeout', '1s', '--poll-interval', '1s']);
  assert.equal(pending.code, 8, pending.stderr);
  assert.match(pending.stderr, /still running after 1s/);
  assert.ok(pending.stderr.includes(`keep waiting with: impact run wait ${runId}\n`), pending.stderr);
  await until(() => s.json(['show', runId]).state === 'RUNNING', 'the run to be RUNNING');
  const c = s.json(['cancel', runId]);
  assert.deepEqual(c.failed, []);
  assert.ok(['CANCELING', 'CANCELED'].includes(c.runs[0].state), c.runs[0].state);
  const w = s.run(['wait', runId, '--poll-interval', '1s']);
  assert.equal(w.code, 12, w.stderr);
  assert.equal(w.stdout.trim(), `${runId}\tCANCELED`);
  // one known and one unknown run: partial
  const mixed = s.run(['cancel', runId, 'no-such-run']);
  assert.equal(mixed.code, 6, mixed.stderr);
  assert.match(mixed.stderr, /no-such-run/);
});

test('logs --follow prints stderr as it grows and stops when the run ends', (t) => {
  const s = setup(t);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-follow-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  fs.writeFileSync(path.join(work, 'p.json'), JSON.stringify({ seconds: 3 }));
  const sub = s.run(['submit', path.join(WORKFLOWS, 'slow.cwl'), '--params', path.join(work, 'p.json')]);
  assert.equal(sub.code, 0, sub.stderr);
  const runId = sub.stdout.trim();
  const f = s.run(['logs', runId, '--stderr', '--follow']);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /\[job slow.cwl\]/);
  assert.match(f.stdout, /Final process status is success\n$/);
  assert.equal(s.json(['show', runId]).state, 'COMPLETE', 'follow returned only once the run ended');
  assert.equal(f.stdout, s.run(['logs', runId, '--stderr']).stdout, 'nothing printed twice or lost');
});

test('submission is checked against service-info before anything is sent', (t) => {
  const s = setup(t);
  const wf = path.join(WORKFLOWS, 'fails.cwl');
  const v = s.run(['submit', wf, '--type-version', 'v9.9']);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /does not support CWL version v9\.9 \(it runs: v1\.0, v1\.1, v1\.2\)/);
  const e = s.run(['submit', wf, '--engine', 'toil']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /engine toil \(it has: cwltool\)/);
  const w = s.run(['submit', wf, '--type', 'WDL']);
  assert.equal(w.code, 2);
  assert.match(w.stderr, /workflow type WDL/);
  const up = s.run(['submit', wf, '--attach', path.join(WORKFLOWS, '..', 'server.js')]);
  assert.equal(up.code, 2);
  assert.match(up.stderr, /'\.\.' is refused/);
  const p = s.run(['submit', wf, '--params', '-'], { input: '[1, 2]' });
  assert.equal(p.code, 2);
  assert.match(p.stderr, /not a JSON object/);
});

test('another user\'s run answers 403: exit 5 for show, logs, wait and cancel', (t) => {
  const alice = setup(t);
  const sub = alice.run(['submit', path.join(WORKFLOWS, 'fails.cwl')]);
  assert.equal(sub.code, 0, sub.stderr);
  const runId = sub.stdout.trim();
  const bob = setup(t, { who: 'bob' });
  for (const args of [['show', runId], ['logs', runId], ['wait', runId], ['cancel', runId]]) {
    const r = bob.run(args);
    assert.equal(r.code, 5, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /belongs to another user/);
  }
  assert.ok(!bob.json(['list']).runs.some((x) => x.run_id === runId));
  assert.equal(alice.run(['wait', runId, '--poll-interval', '1s']).code, 10);
});

test('a submission whose connection drops after the request went out ends with exactly one run', async (t) => {
  const proxy = await startProxy({ target: new URL(fed.services.wes).origin, port: 0 });
  t.after(() => proxy.close());
  proxy.addFault({ method: 'POST', path: '^/ga4gh/wes/v1/runs$', drop_after_request: true });
  const s = setup(t, { wes: `${proxy.url}/ga4gh/wes/v1` });
  const id = tag();
  const r = await s.runAsync(['submit', path.join(WORKFLOWS, 'fails.cwl'), '--tag', `case=${id}`]);
  assert.equal(r.code, 0, r.stderr);
  const runId = r.stdout.trim();
  const posts = proxy.requests().filter((x) => x.method === 'POST');
  assert.equal(posts.length, 1, 'the POST is never re-sent blindly');
  assert.equal(posts[0].fault, 'drop_after_request');
  const direct = setup(t);
  assert.deepEqual(direct.json(['list', '--tag', `case=${id}`]).runs.map((x) => x.run_id), [runId]);
  assert.equal(direct.run(['wait', runId, '--poll-interval', '1s']).code, 10);
});

test('a WES answering every 3rd request with 500: submit, wait and list still end right, with one run', async (t) => {
  const { state, port } = await startWes(t, ['--fail-every', '3']);
  const s = setup(t, { wes: `http://127.0.0.1:${port}/ga4gh/wes/v1` });
  const id = tag();
  for (let i = 0; i < 3; i++) {
    const r = await s.runAsync(['submit', path.join(WORKFLOWS, 'fails.cwl'), '--tag', `case=${id}-${i}`, '--wait', '--poll-interval', '1s']);
    assert.equal(r.code, 10, r.stderr);
  }
  for (let i = 0; i < 3; i++) {
    const l = await s.runAsync(['list', '--tag', `case=${id}-${i}`]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout.trim().split('\n').length, 1, `one run for submission ${i}: ${l.stdout}`);
  }
  assert.ok(!fs.existsSync(path.join(state, 'violations.log')), 'no spec violations');
});

test('a batch of 20 rows, interrupted and resumed, makes 20 runs and no more', async (t) => {
  const s = setup(t);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-batch-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const sheet = path.join(work, 'samples.tsv');
  fs.writeFileSync(sheet, `seconds\n${Array.from({ length: 20 }, () => '1').join('\n')}\n`);
  const args = ['submit', path.join(WORKFLOWS, 'slow.cwl'), '--batch', sheet, '--max-in-flight', '3', '--poll-interval', '1s'];

  // First attempt: Ctrl-C once a few rows are submitted.
  const child = spawn(BIN, ['--json', 'run', ...args], {
    env: { PATH: process.env.PATH, HOME: s.dir, XDG_CONFIG_HOME: path.join(s.dir, 'config'),
      XDG_STATE_HOME: path.join(s.dir, 'state'), ...s.env },
  });
  let out = '';
  const submitted = new Set();
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('batch did not start')); }, 120000);
    child.stdout.on('data', (d) => {
      out += d;
      for (const e of ndjson(out.slice(0, out.lastIndexOf('\n') + 1))) if (e.event === 'submitted') submitted.add(e.row);
      if (submitted.size >= 4 && !child.killed) child.kill('SIGINT');
    });
    child.on('close', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.equal(code, 130);
  assert.ok(submitted.size >= 4 && submitted.size < 20, `${submitted.size} rows submitted before the interrupt`);
  const events = ndjson(out);
  const inFlight = new Set();
  let most = 0;
  for (const e of events) {
    if (e.event === 'submitted') inFlight.add(e.run_id);
    if (e.event === 'state' && ['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED'].includes(e.state)) inFlight.delete(e.run_id);
    most = Math.max(most, inFlight.size);
  }
  assert.ok(most <= 3, `at most 3 in flight, saw ${most}`);

  // Second attempt: resumes from the ledger and finishes.
  const r = await s.runAsync(args, { env: s.env, timeout: 600000 });
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
  assert.equal(rows.length, 20);
  assert.ok(rows.every((x) => x[2] === 'COMPLETE'));
  const ledgers = fs.readdirSync(path.join(s.dir, 'state', 'impact', 'batches'));
  assert.equal(ledgers.length, 1);
  const batch = path.basename(ledgers[0], '.json');
  const runs = s.json(['list', '--tag', `impact_batch=${batch}`]).runs;
  assert.equal(runs.length, 20, 'no duplicates');
  assert.deepEqual(runs.map((x) => Number(x.tags.impact_row)).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(new Set(runs.map((x) => x.run_id)), new Set(rows.map((x) => x[1])));
});

test('a dialect server: base path discovered, outputs as a list, tags echoed as strings, errors as {msg, status}', async (t) => {
  const srv = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/ga4gh/wes/v1/service-info') {
      return { status: 200, body: { id: 'd', name: 'dialect', type: { group: 'org.ga4gh', artifact: 'wes', version: '1.0.0' },
        organization: { name: 'o', url: 'https://o.example' }, version: '1', workflow_type_versions: { CWL: { workflow_type_version: ['v1.0'] } } } };
    }
    if (u.pathname === '/ga4gh/wes/v1/runs/r1') {
      return { status: 200, body: { run_id: 'r1', state: 'COMPLETE', request: { workflow_url: 'w.cwl', tags: '{"k":"v"}' },
        run_log: { stdout: 'inline output\n' }, task_logs: [{ name: 'only', exit_code: 0 }],
        outputs: [{ file_name: 'a.txt', file_url: 'https://o.example/a.txt' }] } };
    }
    if (u.pathname === '/ga4gh/wes/v1/runs/r1/tasks') return { status: 404, body: { msg: 'not here', status: 404 } };
    if (u.pathname === '/ga4gh/wes/v1/runs/r2') return { status: 500, body: { msg: 'no run r2', status: 404 } };
    return { status: 404, body: { msg: 'unknown path', status: 404 } };
  });
  const s = setup(t, { wes: srv.url });
  const env = { env: { IMPACT_TOKEN: 'test-token' } };
  const show = await impactAsync(s.dir, ['--json', 'run', 'show', 'r1'], env);
  assert.equal(show.code, 0, show.stderr);
  const j = JSON.parse(show.stdout);
  assert.deepEqual(j.outputs, { 'a.txt': 'https://o.example/a.txt' });
  assert.deepEqual(j.request.tags, { k: 'v' });
  assert.deepEqual(j.tasks.map((x) => x.name), ['only']);
  const logs = await impactAsync(s.dir, ['run', 'logs', 'r1'], env);
  assert.equal(logs.stdout, 'inline output\n');
  const missing = await impactAsync(s.dir, ['run', 'show', 'r2'], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /HTTP 404: no run r2/);
});

test('the federation\'s WES recorded no spec violation from impact', () => {
  const file = path.join(FED_STATE, 'violations.log');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => /"service":"wes"/.test(l)) : [];
  assert.deepEqual(lines, []);
});

test('run list --limit N without filters asks for pages of at most N runs; with filters, for full pages', async (t) => {
  const runs = ['r1', 'r2', 'r3'].map((id) => ({ run_id: id, state: 'COMPLETE' }));
  const wes = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/ga4gh/wes/v1/service-info')
      return { status: 200, body: { workflow_type_versions: { CWL: { workflow_type_version: ['v1.0'] } }, supported_wes_versions: ['1.0.0'] } };
    if (u.pathname === '/ga4gh/wes/v1/runs') return { status: 200, body: { runs: runs.slice(0, Number(u.searchParams.get('page_size')) || 3), next_page_token: '' } };
    return { status: 404, body: { msg: 'not found', status_code: 404 } };
  });
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'open', '--wes', `${wes.url}/ga4gh/wes/v1`]).code, 0);
  let r = await impactAsync(dir, ['--json', 'run', 'list', '--limit', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).runs.map((x) => x.run_id), ['r1']);
  const sizes = () => wes.seen.filter((s) => s.url.startsWith('/ga4gh/wes/v1/runs')).map((s) => new URL(s.url, 'http://x').searchParams.get('page_size'));
  assert.deepEqual(sizes(), ['1']);
  wes.seen.length = 0;
  r = await impactAsync(dir, ['--json', 'run', 'list', '--limit', '1', '--state', 'COMPLETE']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sizes(), ['1000'], 'a filtered list may skip runs: full pages');
});

test('run submit of a workflow file that does not exist says so and sends nothing', async (t) => {
  const wes = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/ga4gh/wes/v1/service-info')
      return { status: 200, body: { workflow_type_versions: { CWL: { workflow_type_version: ['v1.0'] } }, supported_wes_versions: ['1.0.0'] } };
    return { status: 200, body: { run_id: 'should-not-exist' } };
  });
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'open', '--wes', `${wes.url}/ga4gh/wes/v1`]).code, 0);
  const r = await impactAsync(dir, ['run', 'submit', 'nope.cwl']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^impact: nope\.cwl: no such file\nhint: .*file:PATH for a workflow installed on the server/);
  assert.equal(r.stdout, '');
  assert.deepEqual(wes.seen.filter((s) => s.method === 'POST'), [], 'nothing was submitted');
});
