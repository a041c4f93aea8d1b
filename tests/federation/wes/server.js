'use strict';
// WES 1.1 for the local federation: runs CWL workflows with Debian's cwltool (no containers), one
// directory per run under $FED_STATE/wes/runs/<id>/, per-user visibility by bearer token, and a result
// crawler that copies a run's declared non-sensitive outputs to the results bucket (lib/s3).
//
//   node wes/server.js --port 18020 [--seed-runs 10000 --seed-user alice] [--fail-every N]
//                      [--max-concurrent 2] [--max-run-seconds 1800] [--workflows-dir DIR] [--cwltool PATH]
//                      [--dialect wes|sapporo|weskit]
//
// --dialect (env FED_WES_DIALECT) picks the API this process speaks: `wes` (default, this file: WES 1.1
// as specified), `sapporo` (sapporo-service 1.7 as it really answers: wes/dialects/sapporo.js) or
// `weskit` (WESkit, Snakemake runs, presigned S3 outputs: wes/dialects/weskit.js). The run store, the
// queue and cwltool's runner below are shared by all three.
//
// Env: FED_STATE, FED_S3_URL/FED_S3_ACCESS_KEY/FED_S3_SECRET_KEY/FED_S3_REGION, FED_RESULTS_BUCKET,
// FED_WES_SEED_RUNS, FED_WES_SEED_USER, FED_WES_FAIL_EVERY, FED_WES_MAX_CONCURRENT,
// FED_WES_FAKE_AUTH=1 (TEST ONLY: accepts `Bearer user:<name>` as user <name>; never on by default).
// See wes/README.md.

const fs = require('fs');
const path = require('path');
const http = require('http');
const os = require('os');
const crypto = require('crypto');
const { spawn, execFileSync } = require('child_process');
const { fileURLToPath } = require('url');
const yaml = require('js-yaml');
const svc = require('../lib/service');
const openapi = require('../lib/openapi');
const auth = require('../lib/auth'); // whoami(req) -> {sub, username, passport, ...} | null (provider's userinfo)

const BASE = '/ga4gh/wes/v1';
const TERMINAL = new Set(['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'PREEMPTED']);
const STATES = ['UNKNOWN', 'QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'CANCELING', 'PREEMPTED'];
const CWL_VERSIONS = ['v1.0', 'v1.1', 'v1.2'];
// workflow_engine_parameters this server passes on to cwltool (anything else is refused with 400).
const ENGINE_PARAMS = {
  '--parallel': { type: 'boolean', default_value: 'false' },
  '--on-error': { type: 'string', default_value: 'stop', values: ['stop', 'continue'] },
};
const NS_FED = 'https://github.com/impact-cli/impact/tests/federation#';
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

// ---------------------------------------------------------------- configuration

const args = svc.parseArgs();
const env = process.env;
const num = (v, d) => (v === undefined || v === true || v === '' || Number.isNaN(Number(v)) ? d : Number(v));
const cfg = {
  port: num(args.port, env.FED_BASE_PORT ? Number(env.FED_BASE_PORT) + 20 : 0),
  state: args.state || svc.stateDir() || fs.mkdtempSync(path.join(os.tmpdir(), 'fed-wes-')),
  workflowsDir: path.resolve(args.workflowsDir || path.join(__dirname, 'workflows')),
  maxConcurrent: Math.max(1, num(args.maxConcurrent, num(env.FED_WES_MAX_CONCURRENT, 2))),
  maxRunSeconds: Math.min(86400, Math.max(1, num(args.maxRunSeconds, 1800))),
  seedRuns: Math.max(0, Math.floor(num(args.seedRuns, num(env.FED_WES_SEED_RUNS, 0)))),
  seedUser: String(args.seedUser || env.FED_WES_SEED_USER || 'alice'),
  failEvery: Math.max(0, Math.floor(num(args.failEvery, num(env.FED_WES_FAIL_EVERY, 0)))),
  cwltool: String(args.cwltool || env.FED_WES_CWLTOOL || 'cwltool'),
  bucket: env.FED_RESULTS_BUCKET || 'results',
  fakeAuth: env.FED_WES_FAKE_AUTH === '1',
  dialect: String(args.dialect || env.FED_WES_DIALECT || 'wes'),
};
if (!['wes', 'sapporo', 'weskit'].includes(cfg.dialect)) {
  process.stderr.write(`wes: unknown --dialect '${cfg.dialect}' (wes, sapporo, weskit)\n`);
  process.exit(2);
}
// each dialect keeps its own runs and log, so the three servers `up` starts can share one state dir
const NAME = cfg.dialect === 'wes' ? 'wes' : `wes-${cfg.dialect}`;
if (!env.FED_STATE) env.FED_STATE = cfg.state; // so service.logger / recordViolation write into the state dir
const RUNS_DIR = path.join(cfg.state, NAME, 'runs');
fs.mkdirSync(RUNS_DIR, { recursive: true });
const log = svc.logger(NAME);
const api = openapi.load('wes'); // responses (and GET requests)
const apiStrict = openapi.load('wes-strict'); // POST /runs submissions

let cwltoolVersion = 'unknown';
if (cfg.dialect !== 'weskit') try {
  const out = execFileSync(cfg.cwltool, ['--version'], { encoding: 'utf8', timeout: 30000 });
  cwltoolVersion = out.trim().split(/\s+/).pop();
} catch (e) {
  log.error(`cwltool not usable (${cfg.cwltool}): ${e.message}; runs will end in SYSTEM_ERROR (run wes/install.sh)`);
}

// ---------------------------------------------------------------- identity

// -> {key, sub, username}; throws 401 (or 500 when the provider cannot be asked) otherwise. TEST ONLY
// (FED_WES_FAKE_AUTH=1): `Bearer user:alice` is user alice, no provider involved.
const identify = (req) => auth.identifyBearer(req, { fakeAuth: cfg.fakeAuth });

// ---------------------------------------------------------------- run store

const runs = new Map(); // run_id -> run
const byOwner = new Map(); // owner key -> [run] in ascending seq (creation order)
const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
const queue = []; // runs waiting for a slot
const active = new Map(); // run_id -> {child, terminating}
let seq = 0;

const iso = (ms = Date.now()) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function addRun(run) {
  runs.set(run.run_id, run);
  if (!byOwner.has(run.owner)) byOwner.set(run.owner, []);
  byOwner.get(run.owner).push(run);
  counts[run.state] = (counts[run.state] || 0) + 1;
}

function persist(run) {
  if (run.synthetic) return;
  const { dir, ...rest } = run; // eslint-disable-line no-unused-vars
  const file = path.join(run.dir, 'run.json');
  try {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(rest, null, 1));
    fs.renameSync(`${file}.tmp`, file);
  } catch (e) {
    log.error(`run ${run.run_id}: cannot write run.json: ${e.message}`);
  }
}

function setState(run, state, note) {
  if (run.state === state) return;
  counts[run.state] -= 1;
  counts[state] = (counts[state] || 0) + 1;
  log.info(`run ${run.run_id}: ${run.state} -> ${state}${note ? ` (${note})` : ''}`);
  run.state = state;
  if (note) run.system_logs.push(`${iso()} ${state}: ${note}`);
  if (TERMINAL.has(state) && !run.end_time) run.end_time = iso();
  persist(run);
}

// Synthetic finished runs for --seed-runs: not stored, made on demand from their number (1..N), so
// 100,000 of them cost no memory. They come before every real run (seq 1..N; real runs start at N+1).
const SEED_TAGS = Object.freeze({ synthetic: 'true' });
const SEED_T0 = Date.now() - (cfg.seedRuns + 1) * 60000;
function seedRun(i) {
  if (!Number.isInteger(i) || i < 1 || i > cfg.seedRuns) return null;
  const start = SEED_T0 + i * 60000;
  return { run_id: `seed-${String(i).padStart(6, '0')}`, seq: i, owner: cfg.seedUser, state: 'COMPLETE', synthetic: true,
    start_time: iso(start), end_time: iso(start + 30000) };
}

function getRun(id) {
  const m = /^seed-(\d+)$/.exec(id);
  if (m) {
    const run = seedRun(Number(m[1]));
    return run && run.run_id === id ? run : null;
  }
  return runs.get(id) || null;
}

// The runs of one owner as a read-only list in ascending seq: seeds first, then real runs.
function ownerList(key) {
  const real = byOwner.get(key) || [];
  const seeds = key === cfg.seedUser ? cfg.seedRuns : 0;
  return { length: seeds + real.length, at: (i) => (i < seeds ? seedRun(i + 1) : real[i - seeds]) };
}

// Runs of an earlier server process: anything not finished ended with it.
function loadRuns() {
  const loaded = [];
  for (const id of fs.readdirSync(RUNS_DIR)) {
    const dir = path.join(RUNS_DIR, id);
    try {
      const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
      run.dir = dir;
      loaded.push(run);
    } catch (e) { /* not a run directory (or half-written): skip */ }
  }
  loaded.sort((a, b) => a.seq - b.seq);
  for (const run of loaded) {
    run.seq = ++seq;
    const wasActive = !TERMINAL.has(run.state);
    if (wasActive && run.pid) killStale(run.pid);
    addRun(run);
    if (wasActive) setState(run, 'SYSTEM_ERROR', 'the WES server restarted while the run was not finished');
  }
  if (loaded.length) log.info(`loaded ${loaded.length} runs from ${RUNS_DIR}`);
}

function killStale(pid) {
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (/cwltool|snakemake/.test(cmd)) process.kill(-pid, 'SIGKILL');
  } catch (e) { /* gone */ }
}

// ---------------------------------------------------------------- processes

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch (e) {
    return null;
  }
}

// All descendants of pid (by /proc parent links), whatever their process group.
function descendants(pid) {
  const children = new Map();
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch (e) { return []; }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(d);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(d));
  }
  const out = [];
  const todo = [pid];
  while (todo.length && out.length < 10000) {
    for (const c of children.get(todo.pop()) || []) { out.push(c); todo.push(c); }
  }
  return out;
}

function alive(pid) {
  const st = procStat(pid);
  return !!st && st.state !== 'Z' && st.state !== 'X';
}

function signalAll(pgid, pids, sig) {
  try { process.kill(-pgid, sig); } catch (e) { /* group gone */ }
  for (const p of pids) try { process.kill(p, sig); } catch (e) { /* gone */ }
}

function waitFor(cond, ms) {
  return new Promise((resolve) => {
    const end = Date.now() + ms;
    const tick = () => {
      if (cond()) return resolve(true);
      if (Date.now() >= end) return resolve(false);
      return setTimeout(tick, 50);
    };
    tick();
  });
}

// SIGTERM to cwltool's process group and every descendant, SIGKILL what is left after a grace period.
async function terminate(pid, graceMs = 3000) {
  let pids = [pid, ...descendants(pid)];
  signalAll(pid, pids, 'SIGTERM');
  if (await waitFor(() => !pids.some(alive), graceMs)) return true;
  pids = [...new Set([...pids, ...descendants(pid)])];
  signalAll(pid, pids, 'SIGKILL');
  return waitFor(() => !pids.some(alive), 2000);
}

// ---------------------------------------------------------------- running cwltool

function pump() {
  while (active.size < cfg.maxConcurrent && queue.length) {
    const run = queue.shift();
    if (run.cancel_requested || TERMINAL.has(run.state)) continue; // (a dialect may queue runs as INITIALIZING)
    execute(run).catch((e) => {
      log.error(`run ${run.run_id}: runner failed:`, e);
      active.delete(run.run_id);
      if (!TERMINAL.has(run.state)) setState(run, 'SYSTEM_ERROR', `runner failed: ${e.message}`);
      pump();
    });
  }
}

const LOG_LINE = /(INFO|WARNING|ERROR|DEBUG) \[(job|step|workflow) ([^\]]*)\] (.*)$/;

function shellUnquote(s) {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) return s;
      out += s.slice(i + 1, j);
      i = j + 1;
    } else if (c === '"') {
      i += 1;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i += 1;
        out += s[i];
        i += 1;
      }
      i += 1;
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

// One line of cwltool's stderr: states and tasks (one task per `[job NAME]`).
function onStderrLine(run, ctx, line, start, end) {
  if (ctx.pendingCmd) {
    if (line.startsWith('    ')) {
      const t = line.trim();
      const more = t.endsWith(' \\');
      ctx.pendingCmd.cmd.push(shellUnquote(more ? t.slice(0, -2) : t));
      if (!more) ctx.pendingCmd = null;
      return;
    }
    ctx.pendingCmd = null;
  }
  const m = LOG_LINE.exec(line);
  if (!m) return;
  const [, , kind, name, rest] = m;
  if (run.state === 'INITIALIZING') setState(run, 'RUNNING');
  if (kind !== 'job') return;
  const cmd = /^(\/\S*)\$ (.*)$/.exec(rest);
  if (cmd) {
    let id = name.replace(/[^A-Za-z0-9._-]/g, '_') || 'job';
    if (run.tasks.some((t) => t.id === id)) id = `${id}-${run.tasks.length + 1}`;
    const first = cmd[2].trim();
    const more = first.endsWith(' \\');
    const task = { id, name, cmd: [shellUnquote(more ? first.slice(0, -2) : first)], start_time: iso(), startOffset: start };
    run.tasks.push(task);
    ctx.openTasks.set(name, task);
    if (more) ctx.pendingCmd = task;
    return;
  }
  const task = ctx.openTasks.get(name);
  if (!task) return;
  const ex = /^exited with status: (-?\d+)/.exec(rest);
  if (ex) { task.exit_code = Number(ex[1]); if (task.exit_code !== 0) ctx.executorFailed = true; }
  const done = /^completed (\w+)/.exec(rest);
  if (done) {
    task.end_time = iso();
    task.endOffset = end;
    task.status = done[1];
    if (task.exit_code === undefined && done[1] === 'success') task.exit_code = 0;
    if (done[1] !== 'success') ctx.executorFailed = true;
    ctx.openTasks.delete(name);
  }
}

function engineArgs(params) {
  const out = [];
  for (const [k, v] of Object.entries(params || {})) {
    const name = k.startsWith('--') ? k : `--${k}`;
    const spec = ENGINE_PARAMS[name];
    if (spec.type === 'boolean') { if (v === 'true') out.push(name); } else out.push(name, v);
  }
  return out;
}

// The runner of a run: cwltool unless the dialect registered another one under run.runner.
const runners = {};
function execute(run) {
  return run.runner && runners[run.runner] ? runners[run.runner](run) : executeCwl(run);
}

// A hook of the dialect, if it has one (e.g. what happens to cwltool's outputs).
const hooks = {};

async function executeCwl(run) {
  active.set(run.run_id, { child: null, terminating: null });
  run.start_time = iso();
  setState(run, 'INITIALIZING');
  if (hooks.initializing) await hooks.initializing(run);
  const dir = run.dir;
  for (const d of ['outdir', 'tmp', 'home', 'work']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const argv = ['--disable-color', '--no-container', '--no-match-user', '--disable-pull',
    '--outdir', path.join(dir, 'outdir'), '--tmpdir-prefix', `${path.join(dir, 'tmp')}/`,
    ...engineArgs(run.request.workflow_engine_parameters),
    run.workflow, path.join(dir, 'params.json')];
  run.cmd = [cfg.cwltool, ...argv];
  const childEnv = { PATH: env.PATH || '/usr/local/bin:/usr/bin:/bin', HOME: path.join(dir, 'home'), TMPDIR: path.join(dir, 'tmp'),
    LANG: 'C.UTF-8', NO_PROXY: '127.0.0.1,localhost,::1', no_proxy: '127.0.0.1,localhost,::1' };
  const outFd = fs.openSync(path.join(dir, 'stdout.log'), 'w');
  const errStream = fs.createWriteStream(path.join(dir, 'stderr.log'));
  let child;
  try {
    child = spawn(cfg.cwltool, argv, { cwd: path.join(dir, 'work'), env: childEnv, detached: true, stdio: ['ignore', outFd, 'pipe'] });
  } finally {
    fs.closeSync(outFd);
  }
  const slot = active.get(run.run_id);
  slot.child = child;
  const ctx = { openTasks: new Map(), pendingCmd: null, executorFailed: false };
  let offset = 0; // bytes of stderr seen
  let partial = Buffer.alloc(0); // an unfinished last line
  const errDone = new Promise((resolve) => {
    if (!child.stderr) return resolve();
    child.stderr.on('data', (chunk) => {
      errStream.write(chunk);
      const buf = partial.length ? Buffer.concat([partial, chunk]) : chunk;
      const base = offset - partial.length; // file offset of buf[0]
      let pos = 0;
      for (let nl = buf.indexOf(10, pos); nl >= 0; nl = buf.indexOf(10, pos)) {
        onStderrLine(run, ctx, buf.toString('utf8', pos, nl), base + pos, base + nl + 1);
        pos = nl + 1;
      }
      partial = buf.subarray(pos);
      offset += chunk.length;
      if (partial.length > 1 << 20) { // a huge line without newline: take it as it is
        onStderrLine(run, ctx, partial.toString('utf8'), offset - partial.length, offset);
        partial = Buffer.alloc(0);
      }
    });
    child.stderr.on('close', resolve);
    child.stderr.on('error', resolve);
    return undefined;
  });
  const exit = await new Promise((resolve) => {
    child.once('error', (error) => resolve({ error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
    if (child.pid) {
      run.pid = child.pid;
      run.system_logs.push(`${iso()} cwltool started, pid ${child.pid}`);
      persist(run);
    }
    slot.timer = setTimeout(() => {
      if (slot.terminating) return;
      ctx.timedOut = true;
      slot.terminating = terminate(child.pid);
    }, cfg.maxRunSeconds * 1000);
  });
  clearTimeout(slot.timer);
  if (slot.terminating) await slot.terminating;
  else if (child.pid) signalAll(child.pid, [], 'SIGKILL'); // leftovers in cwltool's process group
  await Promise.race([errDone, new Promise((r) => setTimeout(r, 2000))]);
  if (partial.length) onStderrLine(run, ctx, partial.toString('utf8'), offset - partial.length, offset);
  await new Promise((r) => errStream.end(r));
  for (const t of ctx.openTasks.values()) { t.end_time = t.end_time || iso(); t.endOffset = offset; }
  run.exit_code = Number.isInteger(exit.code) ? exit.code : undefined;
  active.delete(run.run_id);

  if (exit.error) {
    setState(run, 'SYSTEM_ERROR', `could not start cwltool: ${exit.error.message}`);
  } else if (run.cancel_requested) {
    setState(run, 'CANCELED', 'canceled by the user; cwltool and its children were killed');
  } else if (ctx.timedOut) {
    setState(run, 'SYSTEM_ERROR', `run exceeded --max-run-seconds ${cfg.maxRunSeconds} and was killed`);
  } else if (exit.code === 0) {
    let outputs;
    try {
      outputs = JSON.parse(fs.readFileSync(path.join(dir, 'stdout.log'), 'utf8'));
    } catch (e) {
      setState(run, 'SYSTEM_ERROR', `cwltool exited 0 but its output object is not JSON: ${e.message}`);
      pump();
      return;
    }
    if (hooks.cwlComplete) {
      await hooks.cwlComplete(run, outputs);
    } else {
      run.outputs = await crawl(run, outputs);
      setState(run, 'COMPLETE');
    }
  } else if (ctx.executorFailed) {
    setState(run, 'EXECUTOR_ERROR', `a tool failed (cwltool exit ${exit.code}); see the task logs`);
  } else {
    setState(run, 'SYSTEM_ERROR', `cwltool failed (exit ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}); see stderr`);
  }
  pump();
}

async function cancelRun(run) {
  if (run.state === 'QUEUED') {
    run.cancel_requested = true;
    const i = queue.indexOf(run);
    if (i >= 0) queue.splice(i, 1);
    setState(run, 'CANCELED', 'canceled by the user before it started');
    return;
  }
  const slot = active.get(run.run_id);
  if (!slot || TERMINAL.has(run.state) || run.cancel_requested) return;
  run.cancel_requested = true;
  setState(run, 'CANCELING');
  if (slot.child && slot.child.pid && !slot.terminating) slot.terminating = terminate(slot.child.pid);
}

// ---------------------------------------------------------------- result crawler

// Output ids the crawler may copy: the workflow's own `fed:non_sensitive_outputs` list (extension field,
// namespace NS_FED) when it has one, else the submission's tag `non_sensitive_outputs` ("a,b" or "*").
// Nothing is uploaded when neither says anything.
function nonSensitiveOutputs(run) {
  if (run.workflow_file) {
    try {
      let doc = yaml.load(fs.readFileSync(run.workflow_file, 'utf8'), { schema: yaml.CORE_SCHEMA });
      if (doc && Array.isArray(doc.$graph)) doc = doc.$graph.find((d) => d && /^#?main$/.test(String(d.id))) || doc;
      const ns = Object.entries((doc && doc.$namespaces) || {}).find(([, uri]) => uri === NS_FED);
      const keys = [`${NS_FED}non_sensitive_outputs`].concat(ns ? [`${ns[0]}:non_sensitive_outputs`] : []);
      for (const k of keys) if (doc && Array.isArray(doc[k])) return { ids: doc[k].map(String), from: 'workflow' };
    } catch (e) { /* cwltool reported whatever is wrong with it */ }
  }
  const tag = run.request.tags && run.request.tags.non_sensitive_outputs;
  if (typeof tag === 'string') {
    return { ids: tag.trim() === '*' ? '*' : tag.split(',').map((s) => s.trim()).filter(Boolean), from: 'tag' };
  }
  return { ids: [], from: 'none' };
}

// The File (or, with cls 'Directory', Directory) objects of an output value, listings included.
function filesOf(value, out = [], cls = 'File') {
  if (Array.isArray(value)) value.forEach((v) => filesOf(v, out, cls));
  else if (value && typeof value === 'object') {
    if (value.class === cls) out.push(value);
    for (const k of ['secondaryFiles', 'listing']) if (value[k]) filesOf(value[k], out, cls);
  }
  return out;
}

// Where a server-local output (File or Directory) goes in the bucket, or null when it is not in outdir.
function crawlKey(run, outdir, f) {
  const p = f.path || (f.location && f.location.startsWith('file://') ? fileURLToPath(f.location) : null);
  const rel = p ? path.relative(outdir, p) : '';
  if (!p || !rel || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return { p, key: `runs/${run.run_id}/${rel.split(path.sep).join('/')}` };
}

// Copies selected outputs to s3://<bucket>/runs/<run_id>/<path in outdir>; rewrites their `location`
// to that s3 URL (plus `url`, the path-style HTTP URL). Failures are logged and noted in system_logs.
async function crawl(run, outputs) {
  const { ids, from } = nonSensitiveOutputs(run);
  const outdir = path.join(run.dir, 'outdir');
  const selected = Object.keys(outputs || {}).filter((k) => ids === '*' || ids.includes(k));
  const files = selected.flatMap((k) => filesOf(outputs[k]));
  if (!files.length) {
    run.system_logs.push(`${iso()} crawler: nothing to upload (non-sensitive outputs from ${from}: ${ids === '*' ? '*' : ids.join(',') || 'none'})`);
    return outputs;
  }
  run.crawler = { bucket: cfg.bucket, uploaded: [], error: null };
  try {
    const { createClient } = require('../lib/s3');
    const s3 = createClient({ timeoutMs: 15000 });
    try {
      await s3.createBucket(cfg.bucket);
    } catch (e) {
      if (!e.status) throw e; // not reachable: give up now; an HTTP error may just mean "exists"
    }
    const located = (f, key) => {
      f.location = `s3://${cfg.bucket}/${key}`;
      f.url = `${s3.url}/${cfg.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
      delete f.path;
      delete f.dirname;
    };
    for (const f of files) {
      const where = crawlKey(run, outdir, f);
      if (!where) continue;
      const { p, key } = where;
      const size = fs.statSync(p).size;
      await s3.putObject(cfg.bucket, key, fs.createReadStream(p), { contentLength: size, contentType: 'application/octet-stream',
        metadata: { 'wes-run-id': run.run_id } });
      located(f, key);
      run.crawler.uploaded.push(key);
    }
    // A Directory whose files all went up is now a folder in the bucket: "s3://bucket/runs/<id>/<dir>/".
    for (const d of selected.flatMap((k) => filesOf(outputs[k], [], 'Directory'))) {
      const where = crawlKey(run, outdir, d);
      if (where && Array.isArray(d.listing) && filesOf(d.listing).every((f) => String(f.location || '').startsWith('s3://'))) located(d, `${where.key}/`);
    }
    run.system_logs.push(`${iso()} crawler: uploaded ${run.crawler.uploaded.length} file(s) to s3://${cfg.bucket}/runs/${run.run_id}/`);
  } catch (e) {
    run.crawler.error = e.message;
    log.error(`run ${run.run_id}: crawler could not upload outputs to s3://${cfg.bucket}/: ${e.message}`);
    run.system_logs.push(`${iso()} crawler: upload to s3://${cfg.bucket}/runs/${run.run_id}/ failed: ${e.message}`);
  }
  return outputs;
}

// ---------------------------------------------------------------- submission

function readMultipartKeepPaths(req, { maxFileBytes = 64 << 20, maxTotalBytes = 256 << 20, maxFiles = 256, maxFieldBytes = 4 << 20 } = {}) {
  const busboy = require('busboy');
  return new Promise((resolve, reject) => {
    let bb;
    try {
      bb = busboy({ headers: req.headers, preservePath: true, limits: { fileSize: maxFileBytes, files: maxFiles, fields: 256, fieldSize: maxFieldBytes } });
    } catch (e) {
      reject(svc.httpError(400, `bad multipart request: ${e.message}`));
      return;
    }
    const fields = {};
    const files = {};
    let failed = null;
    let total = 0;
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) failed = failed || svc.httpError(413, `field ${name} too large`);
      fields[name] = name in fields ? [].concat(fields[name], value) : value;
    });
    bb.on('file', (name, stream, info) => {
      const chunks = [];
      stream.on('data', (c) => {
        total += c.length;
        if (total > maxTotalBytes) failed = failed || svc.httpError(413, `attachments larger than ${maxTotalBytes} bytes in all`);
        if (!failed) chunks.push(c);
      });
      stream.on('limit', () => { failed = failed || svc.httpError(413, `file ${info.filename} larger than ${maxFileBytes} bytes`); });
      stream.on('close', () => {
        const data = Buffer.concat(chunks);
        (files[name] = files[name] || []).push({ filename: info.filename, mimeType: info.mimeType, size: data.length, data });
      });
    });
    bb.on('filesLimit', () => { failed = failed || svc.httpError(413, 'too many files'); });
    bb.on('error', (e) => reject(svc.httpError(400, `bad multipart request: ${e.message}`)));
    bb.on('close', () => (failed ? reject(failed) : resolve({ fields, files })));
    req.pipe(bb);
  });
}

// A safe relative path for an attachment ('a/b.cwl'), or throws 400.
function attachmentPath(name) {
  const n = String(name || '');
  if (!n) throw svc.httpError(400, 'workflow_attachment part without a filename');
  if (n.includes('\0') || n.includes('\\') || n.startsWith('/') || /^[A-Za-z]:/.test(n)) {
    throw svc.httpError(400, `workflow_attachment filename '${n}' must be a relative path`);
  }
  const segs = n.split('/');
  if (segs.some((s) => s === '..' || s === '.' || s === '')) throw svc.httpError(400, `workflow_attachment filename '${n}' must not contain '..', '.' or empty segments`);
  return segs.join('/');
}

// Relative `location` / `path` of File and Directory objects in workflow_params are attachment paths:
// make them absolute (inside the run's attachments directory), since cwltool resolves them against the
// params file. Other locations (file://, http(s)://, absolute paths) are left to cwltool.
function resolveParamPaths(value, attDir, depth = 0) {
  if (depth > 32) throw svc.httpError(400, 'workflow_params nested too deeply');
  if (Array.isArray(value)) return value.map((v) => resolveParamPaths(v, attDir, depth + 1));
  if (!value || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = resolveParamPaths(v, attDir, depth + 1);
  if (out.class === 'File' || out.class === 'Directory') {
    for (const k of ['location', 'path']) {
      const v = out[k];
      if (typeof v !== 'string' || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(v) || v.startsWith('/')) continue;
      let rel;
      try { rel = attachmentPath(v); } catch (e) { throw svc.httpError(400, `workflow_params: ${k} '${v}' must be a plain relative path to an attachment`); }
      out[k] = path.join(attDir, rel);
    }
  }
  return out;
}

function parseJsonField(fields, name, fallback) {
  if (fields[name] === undefined || fields[name] === '') return fallback;
  let v;
  try { v = JSON.parse(fields[name]); } catch (e) { throw svc.httpError(400, `${name} is not valid JSON: ${e.message}`); }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw svc.httpError(400, `${name} must be a JSON object`);
  return v;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

// workflow_url -> {workflow: what cwltool gets, workflow_file: local file (for the crawler's declaration)}
function resolveWorkflowUrl(url, attachments, attDir) {
  const hash = url.indexOf('#');
  const frag = hash >= 0 ? url.slice(hash) : '';
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(base);
  if (!scheme) {
    let rel;
    try { rel = attachmentPath(decodeURIComponent(base)); } catch (e) { throw svc.httpError(400, `workflow_url '${url}': ${e.message}`); }
    if (!attachments.has(rel)) throw svc.httpError(400, `workflow_url '${url}' is a relative path but there is no such workflow_attachment`);
    const file = path.join(attDir, rel);
    return { workflow: file + frag, workflow_file: file };
  }
  const s = scheme[1].toLowerCase();
  if (s === 'file') {
    let p;
    try { p = fileURLToPath(base); } catch (e) { throw svc.httpError(400, `workflow_url '${url}': ${e.message}`); }
    let real;
    try { real = fs.realpathSync(p); } catch (e) { throw svc.httpError(400, `workflow_url '${url}': no such file on the server`); }
    const root = fs.realpathSync(cfg.workflowsDir);
    if (!real.startsWith(root + path.sep)) throw svc.httpError(400, `workflow_url '${url}': file URLs must point into the server's workflows directory ${root}`);
    return { workflow: real + frag, workflow_file: real };
  }
  if (s === 'http' || s === 'https') {
    let u;
    try { u = new URL(url); } catch (e) { throw svc.httpError(400, `workflow_url '${url}' is not a valid URL`); }
    if (!LOOPBACK.has(u.hostname)) throw svc.httpError(400, `workflow_url '${url}': only loopback http(s) URLs are allowed here`);
    return { workflow: url, workflow_file: null };
  }
  throw svc.httpError(400, `workflow_url '${url}': unsupported scheme '${s}' (use an attachment path, file:// or http(s)://)`);
}

async function submit(req, res, ctx, user) {
  const ct = req.headers['content-type'] || '';
  let mp = { fields: {}, files: {} };
  let fieldMapValue;
  if (/^multipart\/form-data/i.test(ct)) {
    mp = await readMultipartKeepPaths(req);
    // some clients send the JSON fields as file parts (with a filename): take their text
    for (const [name, list] of Object.entries(mp.files)) {
      if (name === 'workflow_attachment') continue;
      const texts = list.map((x) => x.data.toString('utf8'));
      mp.fields[name] = name in mp.fields ? [].concat(mp.fields[name], texts) : texts.length === 1 ? texts[0] : texts;
      delete mp.files[name];
    }
    fieldMapValue = svc.fieldMap(mp);
  } else {
    const buf = await svc.readBody(req, 1 << 20);
    fieldMapValue = buf.length ? buf : undefined;
  }
  const errors = apiStrict.checkRequest({ method: 'POST', path: `${BASE}/runs`, headers: req.headers, body: fieldMapValue, contentType: ct });
  if (errors.length) {
    svc.recordViolation({ service: 'wes', kind: 'request', method: 'POST', path: `${BASE}/runs`, errors });
    throw svc.httpError(400, `request does not conform to WES 1.1 RunRequest: ${errors.join('; ')}`);
  }
  const f = mp.fields;
  if ('workflow_attachment' in f) throw svc.httpError(400, 'workflow_attachment parts must be files (with a filename)');
  const request = {
    workflow_params: parseJsonField(f, 'workflow_params', {}),
    workflow_type: f.workflow_type,
    workflow_type_version: f.workflow_type_version,
    tags: parseJsonField(f, 'tags', {}),
    workflow_engine_parameters: parseJsonField(f, 'workflow_engine_parameters', {}),
    workflow_url: f.workflow_url,
  };
  if (f.workflow_engine !== undefined) request.workflow_engine = f.workflow_engine;
  if (f.workflow_engine_version !== undefined) request.workflow_engine_version = f.workflow_engine_version;
  if (request.workflow_type !== 'CWL') throw svc.httpError(400, `workflow_type '${request.workflow_type}' is not supported (only CWL)`);
  if (!CWL_VERSIONS.includes(request.workflow_type_version)) {
    throw svc.httpError(400, `workflow_type_version '${request.workflow_type_version}' is not supported (${CWL_VERSIONS.join(', ')})`);
  }
  if (request.workflow_engine !== undefined && request.workflow_engine !== 'cwltool') {
    throw svc.httpError(400, `workflow_engine '${request.workflow_engine}' is not supported (only cwltool)`);
  }
  if (request.workflow_engine_version !== undefined && request.workflow_engine_version !== cwltoolVersion) {
    throw svc.httpError(400, `workflow_engine_version '${request.workflow_engine_version}' is not available (cwltool ${cwltoolVersion})`);
  }
  for (const [k, v] of Object.entries(request.tags)) if (typeof v !== 'string') throw svc.httpError(400, `tag '${k}' must be a string`);
  for (const [k, v] of Object.entries(request.workflow_engine_parameters)) {
    const spec = ENGINE_PARAMS[k.startsWith('--') ? k : `--${k}`];
    if (!spec) throw svc.httpError(400, `workflow_engine_parameters: '${k}' is not supported (supported: ${Object.keys(ENGINE_PARAMS).join(', ')})`);
    if (typeof v !== 'string') throw svc.httpError(400, `workflow_engine_parameters: '${k}' must be a string`);
    if (spec.type === 'boolean' && v !== 'true' && v !== 'false') throw svc.httpError(400, `workflow_engine_parameters: '${k}' must be "true" or "false"`);
    if (spec.values && !spec.values.includes(v)) throw svc.httpError(400, `workflow_engine_parameters: '${k}' must be one of ${spec.values.join(', ')}`);
  }
  const atts = new Map();
  for (const file of mp.files.workflow_attachment || []) {
    const rel = attachmentPath(file.filename);
    if (atts.has(rel)) throw svc.httpError(400, `workflow_attachment '${rel}' was sent twice`);
    atts.set(rel, file.data);
  }
  const runId = crypto.randomUUID();
  const dir = path.join(RUNS_DIR, runId);
  const attDir = path.join(dir, 'attachments');
  const wf = resolveWorkflowUrl(request.workflow_url, atts, attDir);
  const params = resolveParamPaths(request.workflow_params, attDir);
  fs.mkdirSync(attDir, { recursive: true });
  for (const [rel, data] of atts) {
    fs.mkdirSync(path.dirname(path.join(attDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(attDir, rel), data);
  }
  fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify(params, null, 1));
  const run = { run_id: runId, seq: ++seq, owner: user.key, state: 'QUEUED', request, created: iso(),
    attachments: [...atts.keys()], workflow: wf.workflow, workflow_file: wf.workflow_file, system_logs: [], tasks: [], dir };
  addRun(run);
  persist(run);
  log.info(`run ${runId}: QUEUED for ${user.key} (${request.workflow_url})`);
  queue.push(run);
  pump();
  svc.sendJson(res, 200, { run_id: runId });
}

// ---------------------------------------------------------------- views

function baseUrl(req) {
  const h = req.headers.host || '';
  if (/^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(h)) return `http://${h}`;
  return `http://127.0.0.1:${server.address().port}`;
}

function clean(o) {
  for (const k of Object.keys(o)) if (o[k] === undefined || o[k] === null) delete o[k];
  return o;
}

const SEED_REQUEST = Object.freeze({ workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'synthetic.cwl', workflow_params: {}, tags: SEED_TAGS });

function runLog(run, req) {
  const links = `${baseUrl(req)}${BASE}/runs/${encodeURIComponent(run.run_id)}`;
  return clean({
    run_id: run.run_id,
    request: run.synthetic ? SEED_REQUEST : run.request,
    state: run.state,
    run_log: clean({
      name: run.synthetic ? 'synthetic' : path.basename(String(run.request.workflow_url).split('#')[0]) || 'workflow',
      cmd: run.cmd,
      start_time: run.start_time,
      end_time: run.end_time,
      stdout: `${links}/logs/stdout`,
      stderr: `${links}/logs/stderr`,
      exit_code: run.synthetic ? 0 : run.exit_code,
      system_logs: run.synthetic ? ['synthetic run created by --seed-runs'] : run.system_logs,
    }),
    task_logs_url: `${links}/tasks`,
    outputs: run.outputs || {},
  });
}

function taskLog(run, t, req) {
  const links = `${baseUrl(req)}${BASE}/runs/${encodeURIComponent(run.run_id)}/tasks/${encodeURIComponent(t.id)}/logs`;
  return clean({ id: t.id, name: t.name, cmd: t.cmd, start_time: t.start_time, end_time: t.end_time,
    stdout: `${links}/stdout`, stderr: `${links}/stderr`, exit_code: t.exit_code,
    system_logs: t.status ? [`cwltool: completed ${t.status}`] : [] });
}

function summary(run) {
  return clean({ run_id: run.run_id, state: run.state, start_time: run.start_time, end_time: run.end_time,
    tags: run.synthetic ? SEED_TAGS : run.request.tags || {} });
}

function pageSize(q) {
  if (q.page_size === undefined) return DEFAULT_PAGE;
  const n = Number(q.page_size);
  if (!Number.isInteger(n) || n < 1) throw svc.httpError(400, 'page_size must be a positive integer');
  return Math.min(n, MAX_PAGE);
}

function decodeToken(tok, prefix) {
  let m;
  try { m = new RegExp(`^${prefix}:(\\d+)$`).exec(Buffer.from(String(tok), 'base64url').toString('utf8')); } catch (e) { m = null; }
  if (!m) throw svc.httpError(400, 'page_token is not one this server issued');
  return Number(m[1]);
}
const encodeToken = (prefix, n) => Buffer.from(`${prefix}:${n}`).toString('base64url');

function listRuns(user, q) {
  const size = pageSize(q);
  const list = ownerList(user.key);
  let i = list.length - 1; // newest first
  if (q.page_token !== undefined && q.page_token !== '') {
    const before = decodeToken(q.page_token, 's');
    let lo = 0;
    let hi = list.length; // first index with seq >= before
    while (lo < hi) { const mid = (lo + hi) >> 1; if (list.at(mid).seq < before) lo = mid + 1; else hi = mid; }
    i = lo - 1;
  }
  const page = [];
  for (; i >= 0 && page.length < size; i--) page.push(summary(list.at(i)));
  const next = i >= 0 && page.length ? encodeToken('s', list.at(i + 1).seq) : '';
  return { runs: page, next_page_token: next };
}

function serviceInfo() {
  return svc.serviceInfo({
    id: 'org.impact.federation.wes',
    name: 'impact federation WES (cwltool)',
    type: { group: 'org.ga4gh', artifact: 'wes', version: '1.1.0' },
    description: 'GA4GH WES 1.1 running CWL with cwltool (no containers) on the local test federation; synthetic data only.',
    version: '1.0.0',
    workflow_type_versions: { CWL: { workflow_type_version: CWL_VERSIONS } },
    supported_wes_versions: ['1.1.0'],
    supported_filesystem_protocols: ['file', 'http', 'https'],
    workflow_engine_versions: { cwltool: { workflow_engine_version: [cwltoolVersion] } },
    default_workflow_engine_parameters: Object.entries(ENGINE_PARAMS).map(([name, p]) => ({ name, type: p.type, default_value: p.default_value })),
    system_state_counts: { ...counts },
    auth_instructions_url: 'https://github.com/impact-cli/impact/blob/main/tests/federation/wes/README.md#wes',
    tags: { engine: 'cwltool', results_bucket: cfg.bucket, max_concurrent_runs: String(cfg.maxConcurrent) },
  });
}

// ---------------------------------------------------------------- HTTP

function ownedRun(ctx, user) {
  const run = getRun(ctx.params.run_id);
  if (!run) throw svc.httpError(404, `no run '${ctx.params.run_id}'`);
  if (run.owner !== user.key) throw svc.httpError(403, 'this run belongs to another user');
  return run;
}

function sendText(res, file, start, end) {
  let size = 0;
  try { size = fs.statSync(file).size; } catch (e) { /* no log yet */ }
  const from = Math.min(start || 0, size);
  const to = Math.min(end === undefined ? size : end, size);
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Math.max(0, to - from) });
  if (to <= from) { res.end(); return; }
  fs.createReadStream(file, { start: from, end: to - 1 }).on('error', () => res.destroy()).pipe(res);
}

let requestCount = 0;
const r = svc.router({ log });

// Every WES route: injected failures, spec checks of query/path (400 + violation), response watching, auth.
function wesRoute(handler, { spec = true, auth: needAuth = true } = {}) {
  return async (req, res, ctx) => {
    if (spec) openapi.watchResponse(api, req, res, { service: 'wes' });
    if (cfg.failEvery && ++requestCount % cfg.failEvery === 0) {
      svc.sendError(res, 500, `injected failure (--fail-every ${cfg.failEvery})`);
      return;
    }
    let user = null;
    if (needAuth) {
      try {
        user = await identify(req);
      } catch (e) {
        if (e.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="wes"');
        throw e;
      }
    }
    if (spec && req.method === 'GET') {
      const errors = api.checkRequest({ method: req.method, path: ctx.path, query: ctx.query, headers: req.headers });
      if (errors.length) {
        svc.recordViolation({ service: 'wes', kind: 'request', method: req.method, path: ctx.path, errors });
        throw svc.httpError(400, `request does not conform to WES 1.1: ${errors.join('; ')}`);
      }
    }
    await handler(req, res, ctx, user);
  };
}

// The WES 1.1 routes (the default dialect).
function registerWesRoutes() {
  const sendInfo = (req, res) => svc.sendJson(res, 200, serviceInfo());
  r.get('/service-info', (req, res) => { openapi.watchResponse(api, req, res, { service: 'wes' }); sendInfo(req, res); });
  r.get(`${BASE}/service-info`, wesRoute(sendInfo, { auth: false }));
  r.get(`${BASE}/runs`, wesRoute((req, res, ctx, user) => svc.sendJson(res, 200, listRuns(user, ctx.query))));
  r.post(`${BASE}/runs`, wesRoute(submit));
  r.get(`${BASE}/runs/:run_id`, wesRoute((req, res, ctx, user) => svc.sendJson(res, 200, runLog(ownedRun(ctx, user), req))));
  r.get(`${BASE}/runs/:run_id/status`, wesRoute((req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    svc.sendJson(res, 200, { run_id: run.run_id, state: run.state });
  }));
  r.post(`${BASE}/runs/:run_id/cancel`, wesRoute(async (req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    await cancelRun(run);
    svc.sendJson(res, 200, { run_id: run.run_id });
  }));
  r.get(`${BASE}/runs/:run_id/tasks`, wesRoute((req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    const size = pageSize(ctx.query);
    const start = ctx.query.page_token ? decodeToken(ctx.query.page_token, 't') : 0;
    const tasks = run.tasks || [];
    const page = tasks.slice(start, start + size).map((t) => taskLog(run, t, req));
    svc.sendJson(res, 200, { task_logs: page, next_page_token: start + size < tasks.length ? encodeToken('t', start + size) : '' });
  }));
  r.get(`${BASE}/runs/:run_id/tasks/:task_id`, wesRoute((req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    const t = (run.tasks || []).find((x) => x.id === ctx.params.task_id);
    if (!t) throw svc.httpError(404, `no task '${ctx.params.task_id}' in run ${run.run_id}`);
    svc.sendJson(res, 200, taskLog(run, t, req));
  }));
  // Logs (not part of the WES API; the URLs in RunLog / TaskLog point here). Same bearer token and owner check.
  r.get(`${BASE}/runs/:run_id/logs/:stream`, wesRoute((req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    if (!['stdout', 'stderr'].includes(ctx.params.stream)) throw svc.httpError(404, 'no such log');
    if (run.synthetic) { sendText(res, '/dev/null'); return; }
    sendText(res, path.join(run.dir, `${ctx.params.stream}.log`));
  }, { spec: false }));
  r.get(`${BASE}/runs/:run_id/tasks/:task_id/logs/:stream`, wesRoute((req, res, ctx, user) => {
    const run = ownedRun(ctx, user);
    const t = (run.tasks || []).find((x) => x.id === ctx.params.task_id);
    if (!t || !['stdout', 'stderr'].includes(ctx.params.stream)) throw svc.httpError(404, 'no such task log');
    const file = path.join(run.dir, 'stderr.log');
    if (ctx.params.stream === 'stderr') { sendText(res, file, t.startOffset, t.endOffset); return; }
    // stdout: the tool's own lines in its slice of cwltool's stderr (cwltool's log lines left out)
    let text = '';
    try {
      const fd = fs.openSync(file, 'r');
      const end = t.endOffset === undefined ? fs.fstatSync(fd).size : t.endOffset;
      const buf = Buffer.alloc(Math.max(0, Math.min(end - t.startOffset, 16 << 20)));
      fs.readSync(fd, buf, 0, buf.length, t.startOffset);
      fs.closeSync(fd);
      text = buf.toString('utf8').split('\n').filter((l) => l && !LOG_LINE.test(l) && !/^(INFO|WARNING|ERROR|DEBUG) /.test(l) && !l.startsWith('    ')).map((l) => `${l}\n`).join('');
    } catch (e) { /* no log */ }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(text);
  }, { spec: false }));
}

// What a dialect module gets to build its API on the shared run store and runners.
const core = {
  cfg, log, svc, RUNS_DIR, TERMINAL, ENGINE_PARAMS, runs, counts, queue, active, runners, hooks,
  iso, addRun, persist, setState, getRun, ownerList, pump, execute, executeCwl, cancelRun, terminate, signalAll,
  readMultipartKeepPaths, attachmentPath, resolveParamPaths, resolveWorkflowUrl, parseJsonField, identify,
  nextSeq: () => ++seq,
  cwltoolVersion: () => cwltoolVersion,
  port: () => server.address().port,
};

let dialect = null;
if (cfg.dialect === 'wes') registerWesRoutes();
else {
  dialect = require(`./dialects/${cfg.dialect}`);
  dialect.register(r, core);
}

const server = http.createServer(r.handler(dialect && dialect.notFound ? { notFound: dialect.notFound } : {}));

async function main() {
  seq = cfg.seedRuns;
  counts.COMPLETE += cfg.seedRuns;
  loadRuns();
  if (cfg.seedRuns) {
    log.info(`seeded ${cfg.seedRuns} synthetic runs for ${cfg.seedUser}`);
  }
  if (cfg.fakeAuth) log.warn('FED_WES_FAKE_AUTH=1: TEST-ONLY fake identities (`Bearer user:<name>`) are accepted');
  if (cfg.failEvery) log.warn(`--fail-every ${cfg.failEvery}: every ${cfg.failEvery}th WES request is answered with 500`);
  const port = await svc.listen(server, cfg.port);
  if (dialect && dialect.start) await dialect.start();
  const apiBase = dialect ? dialect.apiBase : BASE;
  log.info(`WES (${cfg.dialect}) listening on http://127.0.0.1:${port}${apiBase} (cwltool ${cwltoolVersion}, state ${cfg.state}, ${cfg.maxConcurrent} concurrent runs)`);
  if (process.send) process.send({ port });
  svc.onShutdown(server, log, async () => {
    const live = [...active.entries()];
    await Promise.all(live.map(async ([id, slot]) => {
      const run = runs.get(id);
      if (slot.child && slot.child.pid) await terminate(slot.child.pid, 1000);
      if (run && !TERMINAL.has(run.state)) setState(run, 'SYSTEM_ERROR', 'the WES server shut down');
    }));
    for (const run of queue) if (run.state === 'QUEUED') setState(run, 'SYSTEM_ERROR', 'the WES server shut down');
  });
}

main().catch((e) => {
  log.error('startup failed:', e);
  process.stderr.write(`wes: ${e.message}\n`);
  process.exit(1);
});
