'use strict';
// impact task submit|list|show|logs|cancel|wait against the federation's TES (tes/server.js: no containers,
// inputs from loopback URLs or content, outputs to the federation's S3/RGW).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { federation, home, impact, impactAsync, server, userToken } = require('./helpers');
const S3 = require('../federation/lib/s3');

const fed = federation();
const s3cfg = fed.s3;
const BUCKET = s3cfg.results_bucket || 'results';
const s3 = S3.createClient({ url: s3cfg.url, accessKey: s3cfg.access_key, secretKey: s3cfg.secret_key, region: s3cfg.region, timeoutMs: 60000 });
const RUN = `tes${process.pid}`;
let token;

test.before(async () => {
  token = (await userToken('alice')).access_token;
});

// A home whose profile comes from the registry (which lists the TES); `task` runs impact task ... there.
function taskHome(t) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
  assert.equal(r.code, 0, r.stderr);
  const env = { IMPACT_TOKEN: token };
  return {
    dir,
    task: (a, o = {}) => impact(dir, ['task', ...a], { env, timeout: 120000, ...o }),
    taskAsync: (a, o = {}) => impactAsync(dir, ['task', ...a], { env, timeout: 120000, ...o }),
    json: (a) => {
      const r2 = impact(dir, ['--json', 'task', ...a], { env, timeout: 120000 });
      assert.equal(r2.code, 0, r2.stderr);
      return JSON.parse(r2.stdout);
    },
  };
}

test('the registry gives the profile its TES', (t) => {
  const h = taskHome(t);
  const r = impact(h.dir, ['--json', 'profile', 'show']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tes, fed.services.tes);
});

test('submit with flags: a loopback input, an output to storage, wait, logs, show, list by tag', async (t) => {
  const h = taskHome(t);
  const src = await server(t, (req) => (req.url === '/in.txt' ? { status: 200, body: 'one\ntwo\nthree\n', headers: { 'Content-Type': 'text/plain' } } : null));
  const key = `${RUN}/count.txt`;
  const sub = h.task(['submit', '--name', `count-${RUN}`, '--image', 'alpine:3', '--cmd', 'wc -l < /data/in.txt > /out/n.txt; echo counted; echo note >&2',
    '--input', `${src.url}/in.txt=/data/in.txt`, '--output', `/out/n.txt=s3://${BUCKET}/${key}`, '--cpu', '1', '--ram', '0.5', '--tag', `suite=${RUN}`]);
  assert.equal(sub.code, 0, sub.stderr);
  const id = sub.stdout.trim();
  assert.match(id, /^task-[0-9a-f]{8}$/);
  // the TES server fetches the input from this process's server while impact waits: asynchronously
  const w = await h.taskAsync(['wait', id, '--poll-interval', '1s', '--timeout', '60s']);
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, new RegExp(`^${id}\\tCOMPLETE$`, 'm'));  // TSV in a pipe, the id whole
  assert.equal(src.seen.length, 1);
  assert.equal(src.seen[0].headers.authorization, undefined, 'the user token never goes to an input URL');
  const obj = await s3.getObject(BUCKET, key);
  assert.equal(obj.body.toString('utf8').trim(), '3');
  const out = h.task(['logs', id]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, 'counted\n');
  assert.equal(h.task(['logs', id, '--stderr']).stdout, 'note\n');
  const shown = h.json(['show', id]);
  assert.equal(shown.state, 'COMPLETE');
  assert.equal(shown.tags.suite, RUN);
  assert.match(shown.tags.impact_request_id, /^[0-9a-f]{32}$/);
  assert.ok(shown.logs[0].system_logs.some((l) => /image 'alpine:3' ignored/.test(l)));
  assert.equal(shown.resources.cpu_cores, 1);
  assert.ok(!JSON.stringify(shown).includes(token));
  const text = h.task(['show', id], { env: { IMPACT_TOKEN: token, IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '200', NO_COLOR: '1' } });
  assert.match(text.stdout, /^State\s+COMPLETE$/m);
  assert.match(text.stdout, /^Exit code\s+0 \(executor 0\)$/m);
  assert.match(text.stdout, new RegExp(`^Output\\s+/out/n.txt -> s3://${BUCKET}/${key}$`, 'm'));
  const listed = h.json(['list', '--tag', `suite=${RUN}`, '--view', 'BASIC']);
  assert.deepEqual(listed.tasks.map((x) => x.id), [id]);
  assert.equal(h.json(['list', '--name-prefix', `count-${RUN}`]).tasks.length, 1);
  assert.equal(h.json(['list', '--name-prefix', `nothing-${RUN}`]).tasks.length, 0);
  // a narrow terminal shortens other columns, never the id
  const narrow = h.task(['list', '--tag', `suite=${RUN}`], { env: { IMPACT_TOKEN: token, IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '40', NO_COLOR: '1' } });
  assert.equal(narrow.code, 0, narrow.stderr);
  assert.match(narrow.stdout, new RegExp(`^${id}  `, 'm'));
  const tsv = h.task(['list', '--state', 'COMPLETE', '--tag', `suite=${RUN}`]);
  assert.equal(tsv.code, 0, tsv.stderr);
  assert.match(tsv.stdout, new RegExp(`^${id}\\tCOMPLETE\\tcount-${RUN}\\t`, 'm'));
  // the server kept the document impact sent: no token in it
  const stored = fs.readFileSync(path.join(fed.state, 'tes', 'tasks', id, 'task.json'), 'utf8');
  assert.ok(!stored.includes(token));
});

test('TASK.json with content input; wait exit codes per final state, as run wait: 10, 13, 12', async (t) => {
  const h = taskHome(t);
  const doc = {
    name: `fail-${RUN}`,
    inputs: [{ path: '/in/x', content: 'hello\n' }],
    executors: [{ image: 'busybox', command: ['/bin/sh', '-c', 'cat /in/x; exit 3'] }],
  };
  const file = path.join(h.dir, 'task.json');
  fs.writeFileSync(file, JSON.stringify(doc));
  const a = h.task(['submit', file, '--tag', `suite=${RUN}-codes`, '--wait', '--poll-interval', '1s', '--timeout', '60s']);
  assert.equal(a.code, 10, a.stderr);
  assert.match(a.stdout, /EXECUTOR_ERROR/);
  const idA = a.stdout.split('\n')[0].trim();
  assert.equal(h.task(['logs', idA]).stdout, 'hello\n');
  assert.equal(h.json(['show', idA]).logs[0].logs[0].exit_code, 3);

  const p = h.task(['submit', '--image', 'x', '--cmd', 'true', '--tag', 'federation_simulate=PREEMPTED', '--wait', '--poll-interval', '1s', '--timeout', '60s']);
  assert.equal(p.code, 13, p.stderr);
  assert.match(p.stdout, /PREEMPTED/);

  const s = h.task(['submit', '--image', 'x', '--cmd', 'sleep 60']);
  assert.equal(s.code, 0, s.stderr);
  const idS = s.stdout.trim();
  const c = h.json(['cancel', idS]);
  assert.ok(['CANCELING', 'CANCELED'].includes(c.tasks[0].state), JSON.stringify(c));
  const w = h.task(['wait', idS, '--poll-interval', '1s', '--timeout', '60s']);
  assert.equal(w.code, 12, w.stderr);
  // an ended task cannot be cancelled: exit 6, said so
  const again = h.task(['cancel', idS]);
  assert.equal(again.code, 6);
  assert.match(again.stderr, /already ended \(CANCELED\)/);
});

test('logs --follow prints the output as it comes until the task ends', (t) => {
  const h = taskHome(t);
  const s = h.task(['submit', '--image', 'x', '--cmd', 'for i in 1 2 3; do echo line $i; sleep 1; done']);
  assert.equal(s.code, 0, s.stderr);
  const f = h.task(['logs', s.stdout.trim(), '--follow']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, 'line 1\nline 2\nline 3\n');
});

test('bad tasks are refused before anything is sent: invalid documents, URLs with credentials', (t) => {
  const h = taskHome(t);
  const file = path.join(h.dir, 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ executors: [{ image: 'x', command: [] }], state: 'COMPLETE' }));
  const bad = h.task(['submit', file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /executors\[0\]\.command/);
  assert.match(bad.stderr, /'state' is set by the server/);
  const cred = h.task(['submit', '--image', 'x', '--cmd', 'true', '--input', 'http://user:s3cret@127.0.0.1:9/x=/in/x']);
  assert.equal(cred.code, 2);
  assert.match(cred.stderr, /inputs\[0\]\.url carries credentials/);
  assert.ok(!cred.stderr.includes('s3cret'));
  const own = h.task(['submit', '--image', 'x', '--cmd', 'true', '--input', `http://127.0.0.1:9/x?t=${token}=/in/x`]);
  assert.equal(own.code, 2);
  assert.match(own.stderr, /inputs\[0\]\.url holds your access token/);
  assert.ok(!own.stderr.includes(token));
  const none = h.task(['submit', '--image', 'x']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--image and --cmd/);
  const both = h.task(['submit', file, '--image', 'x', '--cmd', 'y']);
  assert.equal(both.code, 2);
  const st = h.task(['list', '--state', 'NOPE']);
  assert.equal(st.code, 2);
  assert.match(st.stderr, /not a TES state/);
});

test('a profile without a TES says how to add one', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'w', '--wes', fed.services.wes]).code, 0);
  const r = impact(dir, ['task', 'list']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /has no TES service/);
  assert.match(r.stderr, /--tes URL/);
});

test('examples/tes/count-lines.sh runs a TES task and brings its output home', async (t) => {
  const h = taskHome(t);
  const input = path.join(h.dir, 'lines.txt');
  fs.writeFileSync(input, 'a\nb\nc\nd\n');
  const out = path.join(h.dir, 'out');
  const script = path.resolve(__dirname, '../../examples/tes/count-lines.sh');
  const binDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'impact-bin-'));
  t.after(() => fs.rmSync(binDir, { recursive: true, force: true }));
  fs.symlinkSync(require('./helpers').BIN, path.join(binDir, 'impact'));
  const r = impact(h.dir, [script, input, out], {
    bin: '/bin/bash', timeout: 120000,
    env: { IMPACT_TOKEN: token, PATH: `${binDir}:${process.env.PATH}`, AWS_ACCESS_KEY_ID: s3cfg.access_key, AWS_SECRET_ACCESS_KEY: s3cfg.secret_key },
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /\tCOMPLETE$/m);
  assert.match(r.stdout, /^counted$/m);
  assert.match(r.stdout, /^lines: 4$/m);
});

test('server text is shown, not executed: control bytes in a log are made visible on a terminal, kept in a pipe', (t) => {
  const h = taskHome(t);
  const s = h.task(['submit', '--image', 'x', '--cmd', "printf 'plain \\033[31mred\\033]0;title\\007\\n'", '--wait', '--poll-interval', '1s', '--timeout', '60s']);
  assert.equal(s.code, 0, s.stderr);
  const id = s.stdout.split('\n')[0].trim();
  const piped = h.task(['logs', id]);
  assert.equal(piped.stdout, 'plain \x1b[31mred\x1b]0;title\x07\n');
  const tty = h.task(['logs', id], { env: { IMPACT_TOKEN: token, IMPACT_FORCE_TTY: '1' } });
  assert.equal(tty.code, 0, tty.stderr);
  assert.ok(!tty.stdout.includes('\x1b'), JSON.stringify(tty.stdout));
  assert.ok(!tty.stdout.includes('\x07'), JSON.stringify(tty.stdout));
  assert.match(tty.stdout, /plain .*red/);
});

test('a submission whose answer is lost (connection dropped after the request went out) makes exactly one task', async (t) => {
  const { startProxy } = require('../federation/proxy/server');
  const proxy = await startProxy({ target: new URL(fed.services.tes).origin, port: 0 });
  t.after(() => proxy.close());
  proxy.addFault({ method: 'POST', path: '^/ga4gh/tes/v1/tasks$', drop_after_request: true });
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'p', '--tes', `${proxy.url}/ga4gh/tes/v1`]).code, 0);
  const r = await impactAsync(dir, ['task', 'submit', '--image', 'x', '--cmd', 'true', '--tag', `lost=${RUN}`],
    { env: { IMPACT_TOKEN: token } });
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const posts = proxy.requests().filter((x) => x.method === 'POST');
  assert.equal(posts.length, 1, 'the POST is never re-sent blindly');
  assert.equal(posts[0].fault, 'drop_after_request');
  const h = taskHome(t);
  assert.deepEqual(h.json(['list', '--tag', `lost=${RUN}`]).tasks.map((x) => x.id), [id]);
});
