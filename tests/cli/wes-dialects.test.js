'use strict';
// `impact run` against WES servers that behave as sapporo-service 1.7 and WESkit do (their source is
// described in docs/servers.md): each test has its own small loopback server, so that what is checked
// is impact's handling of the dialect, not a particular federation.
const test = require('node:test');
const assert = require('node:assert/strict');
const { home, impact, impactAsync, server } = require('./helpers');

// A sapporo-like WES at the origin root: WES-only service-info, no login, GET /runs with every run at
// once, only run_id and state, in no particular order; the run log echoes tags as the string sent.
// `opts.hooks` may answer a request first ({status, body, headers}, or 'drop' to close without answer).
async function sapporo(t, runs, opts = {}) {
  return server(t, (req, body) => {
    const hooked = opts.hooks && opts.hooks(req, body, runs);
    if (hooked === 'drop') return hooked;
    if (hooked) return { status: hooked.status, body: hooked.body, headers: hooked.type ? { 'Content-Type': hooked.type } : {} };
    const url = req.url.split('?')[0];
    if (url === '/service-info') {
      return {
        status: 200,
        body: {
          workflow_type_versions: { CWL: { workflow_type_version: ['v1.0', 'v1.2'] } },
          supported_wes_versions: ['sapporo-wes-1.1.0'],
          workflow_engine_versions: { cwltool: '3.1.20240112164112' },
          tags: { 'wes-name': 'sapporo' },
        },
      };
    }
    if (req.method === 'GET' && url === '/runs') {
      const ids = Object.keys(runs).sort().reverse();
      return { status: 200, body: { runs: ids.map((id) => ({ run_id: id, state: runs[id].state })), next_page_token: '' } };
    }
    if (req.method === 'POST' && url === '/runs') {
      const m = /name="tags"\r\n\r\n([^\r]*)/.exec(body);
      const id = `new-${Object.keys(runs).length}`;
      runs[id] = { state: 'QUEUED', tags: m ? m[1] : '{}' };
      return { status: 200, body: { run_id: id } };
    }
    const r = /^\/runs\/([^/]+)(\/status|\/cancel)?$/.exec(url);
    if (r && runs[r[1]]) {
      const run = runs[r[1]];
      if (r[2] === '/status') return { status: 200, body: { run_id: r[1], state: run.state } };
      if (r[2] === '/cancel') return { status: 200, body: { run_id: r[1] } };  // and does nothing, as sapporo for QUEUED
      return {
        status: 200,
        body: {
          run_id: r[1], state: run.state, request: { tags: run.tags, workflow_url: 'wf.cwl' },
          run_log: { start_time: run.start || null, end_time: null, stdout: '', stderr: '', exit_code: null },
          outputs: null,
        },
      };
    }
    return { status: 404, body: { msg: 'not found', status_code: 404 } };
  });
}

function anonHome(t, url) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'open', '--wes', url]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

const run = (dir, args, o) => impactAsync(dir, args, { timeout: 60000, ...o });

test('an open WES with WES-only service-info: service-info, doctor and run commands work anonymously', async (t) => {
  const runs = { a: { state: 'COMPLETE', tags: '{"project":"p1"}', start: '2026-12-04T16:07:47' } };
  const srv = await sapporo(t, runs);
  const dir = anonHome(t, srv.url);
  let r = await run(dir, ['service-info', 'wes']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /without the GA4GH service-info fields/);
  r = await run(dir, ['--json', 'doctor']);
  const checks = JSON.parse(r.stdout).checks.filter((c) => c.service === 'wes' && c.check === 'api');
  assert.equal(checks.length, 1);
  assert.equal(checks[0].status, 'ok', JSON.stringify(checks));
  r = await run(dir, ['run', 'list']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^a\tCOMPLETE/m);
  assert.ok(srv.seen.every((q) => !q.headers.authorization), 'no token is sent for an anonymous profile');
});

test('a WES that answers 401 to an anonymous profile: says it needs a login and how to add an issuer', async (t) => {
  const srv = await sapporo(t, {}, { hooks: (req) => (req.url.startsWith('/runs') ? { status: 401, body: { msg: 'Missing Authorization Header' } } : null) });
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'list']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /needs a login/);
  assert.match(r.stderr, /Missing Authorization Header/);
  assert.match(r.stderr, /no identity provider: add one with: impact profile add open --force --wes/);
});

test('run list --tag reads runs whose list entries carry no tags; --json leaves out empty times', async (t) => {
  const runs = {
    a: { state: 'COMPLETE', tags: '{"project":"p1"}', start: '2026-12-04T16:07:47' },
    b: { state: 'RUNNING', tags: '{"project":"p2"}' },
    c: { state: 'QUEUED', tags: '{"project":"p1"}' },
  };
  const srv = await sapporo(t, runs);
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['--json', 'run', 'list', '--tag', 'project=p1']);
  assert.equal(r.code, 0, r.stderr);
  const listed = JSON.parse(r.stdout).runs;
  assert.deepEqual(listed.map((x) => x.run_id), ['c', 'a']);  // newest first, the one not started leads
  assert.equal(listed[1].start_time, '2026-12-04T16:07:47Z');
  assert.equal('start_time' in listed[0], false);
  assert.equal('end_time' in listed[1], false);
  assert.deepEqual(listed[0].tags, { project: 'p1' });
});

test('run list --tag refuses, rather than printing nothing, when too many runs would have to be read', async (t) => {
  const runs = {};
  for (let i = 0; i < 205; i++) runs[`r${i}`] = { state: 'COMPLETE', tags: '{}' };
  const srv = await sapporo(t, runs);
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'list', '--tag', 'project=p1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /carries no tags/);
  assert.equal(srv.seen.filter((q) => /^\/runs\/r/.test(q.url)).length, 0);
});

test('states outside the spec are shown verbatim; wait ends on them with 14 (*_ERROR) or 9', async (t) => {
  const runs = { u: { state: 'UPLOADER_ERROR', tags: '{}' }, d: { state: 'DELETING', tags: '{}' } };
  const srv = await sapporo(t, runs);
  const dir = anonHome(t, srv.url);
  let r = await run(dir, ['run', 'wait', 'u']);  // no --timeout: it must end by itself
  assert.equal(r.code, 14, r.stderr);
  assert.match(r.stdout, /u\tUPLOADER_ERROR/);
  assert.match(r.stderr, /outside the WES specification that names an error/);
  r = await run(dir, ['--json', 'run', 'wait', 'd']);
  assert.equal(r.code, 9);
  const done = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'done');
  assert.deepEqual(done.runs, [{ run_id: 'd', state: 'DELETING' }]);
  r = await run(dir, ['--json', 'run', 'list']);
  assert.deepEqual(JSON.parse(r.stdout).runs.map((x) => x.state).sort(), ['DELETING', 'UPLOADER_ERROR']);
  r = await run(dir, ['run', 'show', 'u']);
  assert.match(r.stdout, /UPLOADER_ERROR/);
});

test('run wait: a failed run outranks one still running at --timeout (10, not 8)', async (t) => {
  const runs = { x: { state: 'EXECUTOR_ERROR', tags: '{}' }, y: { state: 'RUNNING', tags: '{}' } };
  const srv = await sapporo(t, runs);
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'wait', 'x', 'y', '--timeout', '2s', '--poll-interval', '1s'],
    { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '80', NO_COLOR: '1' } });
  assert.equal(r.code, 10, r.stderr);
  // On a terminal: one line of runs done of all and a count per state, from the first frame to the closing line.
  assert.match(r.stderr, /^\rruns 1\/2 {2}1 failed {2}1 RUNNING {2}1 EXECUTOR_ERROR\x1b\[K(\r[^\r\n]*\x1b\[K)*\n/);
  assert.match(r.stderr, /\rruns 1\/2 {2}1 failed {2}1 RUNNING {2}1 EXECUTOR_ERROR\x1b\[K\nimpact: still running after 2s\n/);
  const p = await run(dir, ['run', 'wait', 'y', '--poll-interval', '500ms']);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /--poll-interval: invalid duration '500ms': the shortest unit is s \(seconds\); write whole seconds, e\.g\. 1s/);
});

test('cancel: an ignored cancel and a finished run exit 6; a server without cancel is said plainly, once', async (t) => {
  const runs = { q: { state: 'QUEUED', tags: '{}' }, c: { state: 'COMPLETE', tags: '{}' }, w: { state: 'RUNNING', tags: '{}' } };
  const srv = await sapporo(t, runs, {
    hooks: (req) => (req.url === '/runs/w/cancel'
      ? { status: 500, type: 'text/html', body: '<h1>Internal Server Error</h1><p>The server encountered an internal error and was unable to complete your request.</p>' }
      : null),
  });
  const dir = anonHome(t, srv.url);
  let r = await run(dir, ['run', 'cancel', 'q']);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /ignored it: the run is still QUEUED/);
  r = await run(dir, ['run', 'cancel', 'c']);
  assert.equal(r.code, 6);
  assert.match(r.stderr, /already ended \(COMPLETE\)/);
  assert.equal(srv.seen.filter((q) => q.url === '/runs/c/cancel').length, 0);
  r = await run(dir, ['run', 'cancel', 'w']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.match(/does not implement cancel/g).length, 1, r.stderr);
});

test('run show: a run whose details answer 500 until it finishes is shown from its status', async (t) => {
  const runs = { s: { state: 'RUNNING', tags: '{}' } };
  const srv = await sapporo(t, runs, {
    hooks: (req) => (req.url === '/runs/s' ? { status: 500, type: 'text/html', body: '<h1>Internal Server Error</h1>' } : null),
  });
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'show', 's']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^state\tRUNNING$/m, 'in a pipe each line names what it holds');
  assert.match(r.stderr, /available once the run finishes/);
});

test('submit: a lost answer with 30 runs listed without tags makes one run, found by its tag', async (t) => {
  const runs = {};
  for (let i = 0; i < 30; i++) runs[`old${i}`] = { state: 'COMPLETE', tags: '{"impact_request_id":"x"}' };
  let posts = 0;
  const srv = await sapporo(t, runs, {
    hooks: (req, body, all) => {
      if (req.method !== 'POST') return null;
      posts++;
      const m = /name="tags"\r\n\r\n([^\r]*)/.exec(body);
      all.made = { state: 'QUEUED', tags: m[1] };
      return 'drop';
    },
  });
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'submit', 'https://example.org/wf.cwl', '--type', 'CWL', '--type-version', 'v1.0', '--engine', 'cwltool']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'made');
  assert.equal(posts, 1);
  assert.equal(srv.seen.filter((q) => /^\/runs\/old/.test(q.url)).length, 0);
});

test('submit: a 500 refusal with no run made shows the server reason once, after checked re-sends', async (t) => {
  let posts = 0;
  const srv = await sapporo(t, {}, {
    hooks: (req) => {
      if (req.method !== 'POST') return null;
      posts++;
      return { status: 500, body: { msg: "Parameter frozenset({'cores'}) is forbidden", status_code: 500 } };
    },
  });
  const dir = anonHome(t, srv.url);
  const r = await run(dir, ['run', 'submit', 'https://example.org/wf.cwl', '--type', 'CWL', '--type-version', 'v1.0', '--engine', 'cwltool']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.match(/Parameter frozenset\(\{'cores'\}\) is forbidden/g).length, 1, r.stderr);
  assert.equal(posts, 3);
});

// ---- against the local federation's sapporo-like WES (tests/federation/wes/dialects/sapporo.js)

test('federation sapporo: anonymous submit, wait, list --tag and cancel of a finished run', { timeout: 240000 }, async (t) => {
  const { federation } = require('./helpers');
  const path = require('node:path');
  const url = federation().services['wes-sapporo'];
  assert.ok(url, 'federation.json names the sapporo WES');
  const dir = anonHome(t, url);
  const W = path.resolve(__dirname, '../federation/wes/workflows');
  let r = await run(dir, ['service-info', 'wes']);
  assert.equal(r.code, 0, r.stderr);
  const tag = `fed-${process.pid}-${Date.now()}`;
  r = await run(dir, ['run', 'submit', path.join(W, 'count-variants.cwl'), '--params', path.join(W, 'count-variants.params.json'),
    '--attach', path.join(W, 'example.vcf'), '--engine', 'cwltool', '--tag', `project=${tag}`, '--wait', '--timeout', '180s'],
  { timeout: 200000 });
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim().split('\n')[0];
  r = await run(dir, ['--json', 'run', 'list', '--tag', `project=${tag}`]);
  assert.equal(r.code, 0, r.stderr);
  const runs = JSON.parse(r.stdout).runs;
  assert.deepEqual(runs.map((x) => x.run_id), [id]);
  assert.match(runs[0].start_time || '', /Z$/);  // read from the run log, zone-less there, UTC here
  r = await run(dir, ['run', 'cancel', id]);
  assert.equal(r.code, 6);
  assert.match(r.stderr, /already ended \(COMPLETE\)/);
});
