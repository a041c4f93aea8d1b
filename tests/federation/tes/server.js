'use strict';
// TES 1.1 for the local federation: each task's executors run one after another as plain processes
// (no containers: the image is ignored, and the task's system logs say so) in a folder of their own,
// $FED_STATE/tes/tasks/<id>/root/. The absolute paths the task declares (inputs, outputs, workdir,
// stdin/stdout/stderr) are mapped below that folder, in the paths and in the command's arguments.
//
//   node tes/server.js --port 18023 [--state DIR] [--max-concurrent 2] [--max-task-seconds 600]
//
// Inputs: `content`, or http(s) URLs on loopback (fetched without the caller's token), or s3://bucket/key
// of the federation's storage. Outputs: s3://bucket/key (or the storage's http URL) uploaded to the
// federation's S3/RGW with its keys (lib/s3), like the WES result crawler; a failed upload ends the task in
// SYSTEM_ERROR. Requests and answers are checked against specs/tes-1.1.0 (violations recorded, bad
// requests answered 400). Per-user visibility by bearer token, as the WES server does.
//
// TEST ONLY: a task tagged `federation_simulate=PREEMPTED` ends PREEMPTED after its executors ran (a
// state TESK never reports and Funnel reports only on preemptible clouds).
//
// Env: FED_STATE, FED_S3_URL/FED_S3_ACCESS_KEY/FED_S3_SECRET_KEY/FED_S3_REGION, FED_RESULTS_BUCKET,
// FED_TES_FAKE_AUTH=1 or FED_WES_FAKE_AUTH=1 (TEST ONLY: `Bearer user:<name>` is user <name>).

const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');
const os = require('os');
const crypto = require('crypto');
const { spawn } = require('child_process');
const svc = require('../lib/service');
const openapi = require('../lib/openapi');
const auth = require('../lib/auth');

const BASE = '/ga4gh/tes/v1';
const TERMINAL = new Set(['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'PREEMPTED']);
const MAX_LOG = 64 << 10; // executor stdout/stderr kept in the task (its tail)
const MAX_INPUT = 64 << 20;

const args = svc.parseArgs();
const env = process.env;
const num = (v, d) => (v === undefined || v === true || v === '' || Number.isNaN(Number(v)) ? d : Number(v));
const cfg = {
  port: num(args.port, env.FED_BASE_PORT ? Number(env.FED_BASE_PORT) + 23 : 0),
  state: args.state || svc.stateDir() || fs.mkdtempSync(path.join(os.tmpdir(), 'fed-tes-')),
  maxConcurrent: Math.max(1, num(args.maxConcurrent, 2)),
  maxTaskSeconds: Math.min(86400, Math.max(1, num(args.maxTaskSeconds, 600))),
  bucket: env.FED_RESULTS_BUCKET || 'results',
  fakeAuth: env.FED_TES_FAKE_AUTH === '1' || env.FED_WES_FAKE_AUTH === '1',
};
if (!env.FED_STATE) env.FED_STATE = cfg.state;
const TASKS_DIR = path.join(cfg.state, 'tes', 'tasks');
fs.mkdirSync(TASKS_DIR, { recursive: true });
const log = svc.logger('tes');
const api = openapi.load('tes');

const iso = (ms = Date.now()) => new Date(ms).toISOString();

function serviceInfo() {
  return svc.serviceInfo({
    id: 'org.impact.federation.tes',
    name: 'Local federation TES (no containers)',
    type: { group: 'org.ga4gh', artifact: 'tes', version: '1.1.0' },
    description: 'TES 1.1: executors run as plain processes in a per-task folder; images are ignored',
    storage: [`s3://${cfg.bucket}/`],
    tesResources_backend_parameters: [],
  });
}

// ---------------------------------------------------------------- identity

const identify = async (req) => (await auth.identifyBearer(req, { fakeAuth: cfg.fakeAuth })).key;

// ---------------------------------------------------------------- tasks

const tasks = new Map(); // id -> task (with private fields prefixed _)
const order = []; // ids, oldest first
const queue = [];
let running = 0;

function publicTask(t, view) {
  if (view === 'MINIMAL') return { id: t.id, state: t.state };
  const doc = JSON.parse(JSON.stringify(t.doc));
  doc.id = t.id;
  doc.state = t.state;
  doc.creation_time = t.creation_time;
  doc.logs = [{
    logs: t.exec_logs.map((l) => {
      // exit_code is required by the spec: 0 until the executor ends (as Funnel's protobuf default); end_time tells
      const o = { exit_code: l.exit_code === null || l.exit_code === undefined ? 0 : l.exit_code };
      if (view === 'FULL') { o.stdout = l.stdout; o.stderr = l.stderr; }
      if (l.start_time) o.start_time = l.start_time;
      if (l.end_time) o.end_time = l.end_time;
      return o;
    }),
    outputs: t.output_logs,
    system_logs: t.system_logs,
    ...(t.start_time ? { start_time: t.start_time } : {}),
    ...(t.end_time ? { end_time: t.end_time } : {}),
  }];
  if (view !== 'FULL' && Array.isArray(doc.inputs)) for (const i of doc.inputs) delete i.content;
  return doc;
}

function persist(t) {
  const { _child, ...rest } = t; // eslint-disable-line no-unused-vars
  try {
    fs.writeFileSync(path.join(t._dir, 'task.json.tmp'), JSON.stringify(rest, null, 1));
    fs.renameSync(path.join(t._dir, 'task.json.tmp'), path.join(t._dir, 'task.json'));
  } catch (e) {
    log.error(`task ${t.id}: cannot write task.json: ${e.message}`);
  }
}

function setState(t, state, note) {
  if (TERMINAL.has(t.state)) return;
  t.state = state;
  if (note) t.system_logs.push(`${iso()} ${note}`);
  if (TERMINAL.has(state)) t.end_time = iso();
  persist(t);
}

// A declared absolute path, inside the task's root folder (no escaping it with ..).
function inRoot(t, p) {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new Error(`path '${p}' is not absolute`);
  const full = path.resolve(t._root, `.${path.posix.normalize(p)}`);
  if (full !== t._root && !full.startsWith(`${t._root}${path.sep}`)) throw new Error(`path '${p}' leaves the task's folder`);
  return full;
}

// Each declared path in an argument replaced by its place in the task's folder, longest first.
function mapArg(t, arg) {
  let out = String(arg);
  const declared = [...t._paths].sort((a, b) => b.length - a.length);
  for (const p of declared) {
    const re = new RegExp(`(^|[^A-Za-z0-9_./-])${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=$|[^A-Za-z0-9_.-])`, 'g');
    out = out.replace(re, (m, pre) => `${pre}${inRoot(t, p)}`);
  }
  return out;
}

function loopbackUrl(u) {
  try {
    const x = new URL(u);
    return (x.protocol === 'http:' || x.protocol === 'https:') && ['127.0.0.1', 'localhost', '[::1]'].includes(x.hostname);
  } catch (e) {
    return false;
  }
}

// s3://bucket/key, or the federation storage's own http URL: {bucket, key}; null otherwise.
function s3Place(u) {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(u);
  if (m) return { bucket: m[1], key: m[2] };
  if (env.FED_S3_URL && u.startsWith(`${env.FED_S3_URL}/`)) {
    const rest = u.slice(env.FED_S3_URL.length + 1).split('?')[0];
    const i = rest.indexOf('/');
    if (i > 0) return { bucket: rest.slice(0, i), key: rest.slice(i + 1).split('/').map(decodeURIComponent).join('/') };
  }
  return null;
}

function fetchToFile(url, file) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { timeout: 15000 }, (res) => {
      if (res.statusCode !== 200) { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); return; }
      let size = 0;
      const out = fs.createWriteStream(file);
      res.on('data', (c) => { size += c.length; if (size > MAX_INPUT) req.destroy(new Error('input too large')); });
      res.pipe(out);
      out.on('finish', resolve);
      out.on('error', reject);
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function s3Client() {
  const { createClient } = require('../lib/s3');
  return createClient({ timeoutMs: 15000 });
}

async function stageInputs(t) {
  // the folders of the declared outputs exist before the executors run (as on TESK's shared volume)
  for (const o of t.doc.outputs || []) fs.mkdirSync(path.dirname(inRoot(t, o.path)), { recursive: true });
  for (const input of t.doc.inputs || []) {
    const file = inRoot(t, input.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (typeof input.content === 'string') {
      fs.writeFileSync(file, input.content);
      continue;
    }
    const place = s3Place(input.url);
    if (place) {
      const s3 = s3Client();
      const body = await s3.getObject(place.bucket, place.key);
      fs.writeFileSync(file, body.body || body);
    } else if (loopbackUrl(input.url)) {
      await fetchToFile(input.url, file);
    } else {
      throw new Error(`input ${input.url}: only loopback http(s) URLs, s3:// of the federation's storage and content are supported`);
    }
    t.system_logs.push(`${iso()} input ${input.path} staged`);
  }
}

async function uploadOutputs(t) {
  const outs = t.doc.outputs || [];
  if (!outs.length) return;
  const s3 = s3Client();
  for (const o of outs) {
    const file = inRoot(t, o.path);
    const place = s3Place(o.url);
    if (!place) throw new Error(`output ${o.path}: ${o.url} is not in the federation's storage (s3://bucket/key)`);
    let st;
    try { st = fs.statSync(file); } catch (e) { throw new Error(`output ${o.path} was not written by the task`); }
    if (!st.isFile()) throw new Error(`output ${o.path} is not a file`);
    try { await s3.createBucket(place.bucket); } catch (e) { if (!e.status) throw e; }
    await s3.putObject(place.bucket, place.key, fs.createReadStream(file), { contentLength: st.size, contentType: 'application/octet-stream',
      metadata: { 'tes-task-id': t.id } });
    t.output_logs.push({ url: o.url, path: o.path, size_bytes: String(st.size) });
    t.system_logs.push(`${iso()} output ${o.path} uploaded to s3://${place.bucket}/${place.key}`);
  }
}

function tailOf(file) {
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, MAX_LOG);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    fs.closeSync(fd);
    return buf.toString('utf8');
  } catch (e) {
    return '';
  }
}

function runExecutor(t, i) {
  const ex = t.doc.executors[i];
  const dir = path.join(t._dir, `executor-${i}`);
  fs.mkdirSync(dir, { recursive: true });
  const outFile = path.join(dir, 'stdout');
  const errFile = path.join(dir, 'stderr');
  const cwd = ex.workdir ? inRoot(t, ex.workdir) : t._root;
  fs.mkdirSync(cwd, { recursive: true });
  const argv = ex.command.map((a) => mapArg(t, a));
  const el = { start_time: iso(), stdout: '', stderr: '', exit_code: null };
  t.exec_logs[i] = el;
  persist(t);
  return new Promise((resolve) => {
    const stdio = [ex.stdin ? fs.openSync(inRoot(t, ex.stdin), 'r') : 'ignore', fs.openSync(outFile, 'w'), fs.openSync(errFile, 'w')];
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio, detached: true,
      env: { PATH: env.PATH || '/usr/bin:/bin', HOME: t._root, TMPDIR: t._root, ...(ex.env || {}) } });
    for (const fd of stdio) if (typeof fd === 'number') fs.closeSync(fd);
    t._child = child;
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch (e) { /* gone */ } }, cfg.maxTaskSeconds * 1000);
    // live logs while it runs (FULL view, `impact task logs --follow`)
    const tick = setInterval(() => { el.stdout = tailOf(outFile); el.stderr = tailOf(errFile); }, 300);
    const done = (code) => {
      clearTimeout(timer);
      clearInterval(tick);
      t._child = null;
      el.stdout = tailOf(outFile);
      el.stderr = tailOf(errFile);
      el.end_time = iso();
      el.exit_code = code;
      // the executor's own stdout/stderr files, when it declares them
      try {
        if (ex.stdout) { fs.mkdirSync(path.dirname(inRoot(t, ex.stdout)), { recursive: true }); fs.copyFileSync(outFile, inRoot(t, ex.stdout)); }
        if (ex.stderr) { fs.mkdirSync(path.dirname(inRoot(t, ex.stderr)), { recursive: true }); fs.copyFileSync(errFile, inRoot(t, ex.stderr)); }
      } catch (e) {
        t.system_logs.push(`${iso()} executor ${i}: cannot write its stdout/stderr file: ${e.message}`);
      }
      resolve(code);
    };
    child.on('error', (e) => { fs.appendFileSync(errFile, `${e.message}\n`); done(127); });
    child.on('exit', (code, signal) => done(code === null ? 128 + (os.constants.signals[signal] || 9) : code));
  });
}

async function execute(t) {
  t.start_time = iso();
  setState(t, 'INITIALIZING');
  try {
    for (const ex of t.doc.executors)
      t.system_logs.push(`${iso()} image '${ex.image}' ignored: the command runs without a container in ${t._root}, declared paths mapped below it`);
    await stageInputs(t);
  } catch (e) {
    setState(t, 'SYSTEM_ERROR', `staging inputs failed: ${e.message}`);
    return;
  }
  if (t._cancel) { setState(t, 'CANCELED', 'canceled'); return; }
  setState(t, 'RUNNING');
  for (let i = 0; i < t.doc.executors.length; i++) {
    const code = await runExecutor(t, i);
    if (t._cancel) { setState(t, 'CANCELED', 'canceled while running'); return; }
    if (code !== 0 && !t.doc.executors[i].ignore_error) {
      setState(t, 'EXECUTOR_ERROR', `executor ${i} exited with ${code}`);
      return;
    }
  }
  try {
    await uploadOutputs(t);
  } catch (e) {
    setState(t, 'SYSTEM_ERROR', `uploading outputs failed: ${e.message}`);
    return;
  }
  if ((t.doc.tags || {}).federation_simulate === 'PREEMPTED') { setState(t, 'PREEMPTED', 'preempted (simulated: federation_simulate tag)'); return; }
  setState(t, 'COMPLETE');
}

function pump() {
  while (running < cfg.maxConcurrent && queue.length) {
    const t = queue.shift();
    if (t.state !== 'QUEUED') continue;
    running += 1;
    execute(t).catch((e) => setState(t, 'SYSTEM_ERROR', `internal error: ${e.message}`)).finally(() => { running -= 1; pump(); });
  }
}

// The server's own rules beyond the schema: absolute paths, loopback or storage URLs, content or url.
function checkTask(doc) {
  const errors = api.validate('tesTask', doc, 'task');
  for (const k of ['id', 'state', 'logs', 'creation_time']) if (k in doc) errors.push(`'${k}' is set by the server`);
  (doc.executors || []).forEach((e, i) => { if (!Array.isArray(e.command) || !e.command.length) errors.push(`executors[${i}].command is empty`); });
  for (const [list, needUrl] of [['inputs', false], ['outputs', true]]) {
    (doc[list] || []).forEach((x, i) => {
      if (typeof x.path !== 'string' || !x.path.startsWith('/')) errors.push(`${list}[${i}].path must be absolute`);
      if (needUrl || typeof x.content !== 'string') {
        if (typeof x.url !== 'string' || !x.url) errors.push(`${list}[${i}] needs a url${needUrl ? '' : ' or content'}`);
        else if (needUrl && !s3Place(x.url)) errors.push(`${list}[${i}].url must be s3://bucket/key of the federation's storage`);
        else if (!needUrl && !s3Place(x.url) && !loopbackUrl(x.url)) errors.push(`${list}[${i}].url must be a loopback http(s) URL or s3://bucket/key`);
      }
      if (typeof x.url === 'string' && /access_token=|[?&]token=|\/\/[^/@]*:[^/@]*@/i.test(x.url)) errors.push(`${list}[${i}].url carries credentials`);
    });
  }
  return errors;
}

function createTask(owner, doc) {
  const id = `task-${crypto.randomBytes(4).toString('hex')}`;
  const dir = path.join(TASKS_DIR, id);
  const root = path.join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  const t = {
    id, owner, doc, state: 'QUEUED', creation_time: iso(), exec_logs: [], output_logs: [], system_logs: [],
    _dir: dir, _root: root, _paths: [],
  };
  for (const list of ['inputs', 'outputs']) for (const x of doc[list] || []) t._paths.push(path.posix.normalize(x.path));
  for (const e of doc.executors) for (const k of ['workdir', 'stdin', 'stdout', 'stderr']) if (typeof e[k] === 'string' && e[k].startsWith('/')) t._paths.push(e[k]);
  tasks.set(id, t);
  order.push(id);
  persist(t);
  queue.push(t);
  setImmediate(pump);
  return t;
}

function owned(ctx, user) {
  const t = tasks.get(ctx.params.id);
  if (!t) throw svc.httpError(404, `no task '${ctx.params.id}'`);
  if (t.owner !== user) throw svc.httpError(403, 'this task belongs to another user');
  return t;
}

function viewOf(query) {
  const v = query.view || 'MINIMAL';
  if (!['MINIMAL', 'BASIC', 'FULL'].includes(v)) throw svc.httpError(400, `unknown view '${v}'`);
  return v;
}

function listTasks(user, q) {
  const view = viewOf(q);
  const size = q.page_size === undefined ? 256 : Number(q.page_size);
  if (!Number.isInteger(size) || size < 1 || size > 2047) throw svc.httpError(400, 'page_size must be 1..2047');
  const keys = [].concat(q.tag_key || []);
  const values = [].concat(q.tag_value || []);
  const filter = keys.map((k, i) => [k, values[i] || '']);
  let start = 0;
  if (q.page_token) {
    start = Number(Buffer.from(String(q.page_token), 'base64url').toString('utf8').replace(/^p/, ''));
    if (!Number.isInteger(start) || start < 0) throw svc.httpError(400, 'bad page_token');
  }
  const mine = order.slice().reverse().map((id) => tasks.get(id)).filter((t) => t.owner === user)
    .filter((t) => !q.name_prefix || String(t.doc.name || '').startsWith(q.name_prefix))
    .filter((t) => !q.state || t.state === q.state)
    .filter((t) => filter.every(([k, v]) => t.doc.tags && k in t.doc.tags && (v === '' || t.doc.tags[k] === v)));
  const page = mine.slice(start, start + size).map((t) => publicTask(t, view));
  const out = { tasks: page };
  if (start + size < mine.length) out.next_page_token = Buffer.from(`p${start + size}`).toString('base64url');
  return out;
}

// ---------------------------------------------------------------- routes

const r = svc.router({ log });

// A 200 answer, checked against the spec first (a violation is recorded, the answer sent as it is). TES 1.1
// documents no error answers, so only successes are checked; and its tesTask requires `executors` even in
// the MINIMAL view, which by definition has only id and state: MINIMAL answers are not checked.
function sendChecked(req, res, ctx, body, { minimal = false } = {}) {
  if (!minimal) {
    let errors;
    try {
      errors = api.checkResponse({ method: req.method, path: ctx.path, status: 200, body });
    } catch (e) {
      errors = [`validator failed: ${e.message}`];
    }
    if (errors.length) svc.recordViolation({ service: 'tes', kind: 'response', method: req.method, path: ctx.path, status: 200, errors });
  }
  svc.sendJson(res, 200, body);
}

function tesRoute(handler, { needAuth = true } = {}) {
  return async (req, res, ctx) => {
    let user = null;
    if (needAuth) {
      try {
        user = await identify(req);
      } catch (e) {
        if (e.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="tes"');
        throw e;
      }
    }
    if (req.method === 'GET') {
      const errors = api.checkRequest({ method: req.method, path: ctx.path, query: ctx.query, headers: req.headers });
      if (errors.length) {
        svc.recordViolation({ service: 'tes', kind: 'request', method: req.method, path: ctx.path, errors });
        throw svc.httpError(400, `request does not conform to TES 1.1: ${errors.join('; ')}`);
      }
    }
    await handler(req, res, ctx, user);
  };
}

r.get('/service-info', (req, res) => svc.sendJson(res, 200, serviceInfo()));
r.get(`${BASE}/service-info`, tesRoute((req, res, ctx) => sendChecked(req, res, ctx, serviceInfo()), { needAuth: false }));
r.get(`${BASE}/tasks`, tesRoute((req, res, ctx, user) => sendChecked(req, res, ctx, listTasks(user, ctx.query),
  { minimal: viewOf(ctx.query) === 'MINIMAL' })));
r.post(`${BASE}/tasks`, tesRoute(async (req, res, ctx, user) => {
  let doc;
  try {
    doc = await svc.readJson(req, 4 << 20);
  } catch (e) {
    throw svc.httpError(400, `the body is not JSON: ${e.message}`);
  }
  const errors = doc && typeof doc === 'object' && !Array.isArray(doc) ? checkTask(doc) : ['the body is not a task object'];
  if (errors.length) {
    svc.recordViolation({ service: 'tes', kind: 'request', method: 'POST', path: ctx.path, errors });
    throw svc.httpError(400, `the task does not conform to TES 1.1: ${errors.join('; ')}`);
  }
  const t = createTask(user, doc);
  sendChecked(req, res, ctx, { id: t.id });
}));
r.get(`${BASE}/tasks/:id`, tesRoute((req, res, ctx, user) => {
  const view = viewOf(ctx.query);
  sendChecked(req, res, ctx, publicTask(owned(ctx, user), view), { minimal: view === 'MINIMAL' });
}));
// POST /tasks/{id}:cancel (the router's segments end at '/', so the ':cancel' suffix is read here)
r.post(`${BASE}/tasks/:idcancel`, tesRoute(async (req, res, ctx, user) => {
  const m = /^(.+):cancel$/.exec(ctx.params.idcancel);
  if (!m) throw svc.httpError(404, `no such endpoint: POST ${ctx.path}`);
  ctx.params.id = m[1];
  const t = owned(ctx, user);
  if (!TERMINAL.has(t.state)) {
    t._cancel = true;
    if (t._child) {
      setState(t, 'CANCELING', 'cancel requested');
      try { process.kill(-t._child.pid, 'SIGTERM'); } catch (e) { /* already gone */ }
    } else if (t.state === 'QUEUED') {
      setState(t, 'CANCELED', 'canceled before it started');
    } else {
      setState(t, 'CANCELING', 'cancel requested');
    }
  }
  sendChecked(req, res, ctx, {});
}));

const server = http.createServer(r.handler());

async function main() {
  if (cfg.fakeAuth) log.warn('fake auth: TEST-ONLY identities (`Bearer user:<name>`) are accepted');
  const port = await svc.listen(server, cfg.port);
  if (process.send) process.send({ port });
  log.info(`TES listening on http://127.0.0.1:${port}${BASE} (state ${cfg.state}, ${cfg.maxConcurrent} concurrent tasks, no containers)`);
  svc.onShutdown(server, log, async () => {
    for (const t of tasks.values()) {
      if (t._child) try { process.kill(-t._child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
      if (!TERMINAL.has(t.state)) setState(t, 'SYSTEM_ERROR', 'the TES server shut down');
    }
  });
}

main().catch((e) => {
  log.error('startup failed:', e);
  process.stderr.write(`tes: ${e.message}\n`);
  process.exit(1);
});
