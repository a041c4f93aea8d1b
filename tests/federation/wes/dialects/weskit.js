'use strict';
// The WESkit dialect of wes/server.js (`--dialect weskit`): the WES of SPE4HD as WESkit's source makes
// it answer (see wes/README.md#dialects and docs/servers.md), running Snakemake workflows with Debian's
// `snakemake` and handing out the outputs as presigned S3 URLs:
//
// - API under /ga4gh/wes/v1 (nothing at the origin's /service-info) plus WESkit's own /weskit/v1/...;
//   any other path is Flask's HTML 404 page (there is no /runs/{id}/tasks);
// - WES 1.0 service-info only (no GA4GH id/name/type/...); workflow types SMK (version = the installed
//   Snakemake's, e.g. 7.21.0) and NFL (listed; Nextflow is not installed, such runs fail);
// - POST /runs reads form fields only: no form -> 400 "Malformed request: Empty form data"; unknown
//   fields are refused (so WES 1.1's workflow_engine is); workflow_params, workflow_type,
//   workflow_type_version, workflow_url required; validation errors are 400 "Malformed request: [...]"
//   (a Python list repr); workflow_url must be a relative `file:` path (or a plain relative path) or a
//   `trs://` URI, https is refused; attachment names are flattened as werkzeug's secure_filename does
//   (data/x.txt -> data_x.txt); with --require-run-dir (env FED_WES_REQUIRE_RUN_DIR=1) a `run_dir` tag
//   is required (400 "Malformed request: [\"'run_dir' tag is required and missing\"]");
// - an unknown or forbidden workflow_engine_parameters name is found only after the run was created:
//   500 with the reason, and the run stays behind in INITIALIZING (an orphan, as in WESkit);
// - GET /runs/{id}: 500 (Flask's HTML page) until the run has finished; an unknown id: 500 with the
//   reason; run_log.stdout/stderr are paths on the server; outputs {"filesystem": [...], "S3": [...]}
//   with presigned GET URLs (Signature V2 for region us-east-1, as boto3 makes them, else V4; valid
//   --presign-seconds, default 3600) for the output files uploaded to $FED_RESULTS_BUCKET/weskit/<run dir>/;
// - GET /runs: {runs: [{run_id, state}], next_page_token: ""} (all of the caller's runs, page_size
//   ignored); GET /weskit/v1/runs/{id}/stdout|stderr: {"content": text}, 409 until the run is COMPLETE;
// - POST /runs/{id}/cancel: 500 (not implemented in WESkit);
// - bearer token required except on service-info: a JWT is checked offline (signature against the
//   issuer's JWKS, iss, exp), then every token online at the issuer's introspection endpoint (as the
//   confidential client impact-ci, secret from $FED_STATE/impact-ci.secret or
//   FED_WES_INTROSPECTION_SECRET): inactive -> 401 {"msg": "Online validation failed"}. Opaque tokens
//   (what the federation's provider issues) skip the offline step (WESkit would refuse them outright:
//   --jwt-only makes this server do so too). FED_WES_FAKE_AUTH=1 (`Bearer user:alice`) works as in
//   the default dialect.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawn, execFile } = require('child_process');

const API = '/ga4gh/wes/v1';
const NFL_VERSION = '23.04.1';
// engine parameters WESkit knows for Snakemake: the API ones may be set per run, the rest are server
// settings a request must not touch (-> "forbidden")
const API_PARAMS = { cores: '1', jobs: null, 'max-memory': null, 'max-runtime': null, resume: 'false', 'job-name': null, 'accounting-name': null, group: null, queue: null };
const SERVER_PARAMS = ['use-singularity', 'use-conda', 'profile', 'tes', 'data-aws-access-key-id', 'data-aws-secret-access-key',
  'task-conda-pkgs-dir', 'task-conda-envs-path', 'task-home', 'prefix_conda_envs_path', 'wms-monitor', 'wms-monitor-arg', 'engine-environment'];
const FORM_FIELDS = ['workflow_params', 'workflow_type', 'workflow_type_version', 'tags', 'workflow_engine_parameters', 'workflow_url', 'workflow_attachment'];
const REQUIRED = ['workflow_params', 'workflow_type', 'workflow_type_version', 'workflow_url'];

const HTML_404 = '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n';
const HTML_500 = '<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n';

function sendHtml(res, status, html) {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html) });
  res.end(html);
}

// Python's repr() of str / list / dict (WESkit puts its error lists into the message that way)
function pyRepr(v) {
  if (typeof v === 'string') {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    return q + v.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), `\\${q}`).replace(/\n/g, '\\n') + q;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  if (v === null || v === undefined) return 'None';
  return String(v);
}

// werkzeug.utils.secure_filename: path separators become '_' (attachments lose their folders)
function secureFilename(name) {
  let s = String(name).normalize('NFKD').replace(/[^\x00-\x7f]/g, '');
  s = s.replace(/[/\\]/g, ' ');
  s = s.split(/\s+/).filter(Boolean).join('_');
  s = s.replace(/[^A-Za-z0-9_.-]/g, '').replace(/^[._]+|[._]+$/g, '');
  return s;
}

// WESkit's timestamps: Python isoformat() of an aware UTC datetime
const pyIso = (ms = Date.now()) => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('Z', '000+00:00') : null);

function register(r, core) {
  const { cfg, svc, log } = core;
  const args = svc.parseArgs();
  const env = process.env;
  const wk = {
    requireRunDir: args.requireRunDir === true || env.FED_WES_REQUIRE_RUN_DIR === '1',
    jwtOnly: args.jwtOnly === true || env.FED_WES_JWT_ONLY === '1',
    presignSeconds: Math.max(1, Number(args.presignSeconds || env.FED_WES_PRESIGN_SECONDS || 3600)),
    signature: String(args.s3Signature || env.FED_WES_S3_SIGNATURE || 'auto'), // auto (boto3) | v2 | v4
    snakemake: String(args.snakemake || env.FED_WES_SNAKEMAKE || 'snakemake'),
    dataDir: path.join(path.dirname(core.RUNS_DIR), 'data'),
  };
  fs.mkdirSync(wk.dataDir, { recursive: true });
  let smkVersion = 'unknown';

  const jerr = (res, status, msg) => svc.sendJson(res, status, { msg, status_code: status });
  const fail = (status, msg) => Object.assign(new Error(msg), { status, weskit: true });

  // ------------------------------------------------------------ identity

  let disco = null;
  let jwks = null;
  async function discovery() {
    if (disco) return disco;
    const iss = String(env.FED_ISSUER || '').replace(/\/$/, '');
    if (!iss) throw fail(500, 'no OIDC issuer configured (FED_ISSUER)');
    const res = await fetch(`${iss}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw fail(500, `OIDC discovery failed: HTTP ${res.status}`);
    disco = await res.json();
    return disco;
  }
  function clientSecret() {
    if (env.FED_WES_INTROSPECTION_SECRET) return env.FED_WES_INTROSPECTION_SECRET;
    try { return fs.readFileSync(path.join(cfg.state, 'impact-ci.secret'), 'utf8').trim(); } catch (e) { return ''; }
  }

  // -> {key} or throws {status, msg}
  async function identify(req) {
    const h = req.headers.authorization || '';
    if (!h) throw fail(401, 'Missing Authorization Header');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) throw fail(401, "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'");
    const token = m[1];
    if (cfg.fakeAuth) {
      const f = /^user:([A-Za-z0-9._@-]{1,64})$/.exec(token);
      if (f) return { key: f[1] };
    }
    const d = await discovery();
    let sub = null;
    if (token.split('.').length === 3) {
      const jose = await import('jose');
      if (!jwks) jwks = jose.createRemoteJWKSet(new URL(d.jwks_uri));
      try {
        const { payload } = await jose.jwtVerify(token, jwks, { issuer: d.issuer });
        sub = payload.sub;
      } catch (e) {
        throw fail(401, e.code === 'ERR_JWT_EXPIRED' ? 'Token has expired' : 'Signature verification failed');
      }
    } else if (wk.jwtOnly) {
      throw fail(422, 'Not enough segments');
    }
    if (!d.introspection_endpoint) throw fail(500, 'the issuer offers no introspection endpoint');
    let info;
    try {
      const res = await fetch(d.introspection_endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from(`impact-ci:${clientSecret()}`).toString('base64')}` },
        body: new URLSearchParams({ token }).toString(),
        signal: AbortSignal.timeout(3000),
      });
      info = res.ok ? await res.json() : null;
    } catch (e) {
      info = null;
    }
    if (!info || info.active !== true) throw fail(401, 'Online validation failed');
    const who = sub || info.sub || info.username;
    if (!who) throw fail(401, 'Online validation failed');
    return { key: String(who) };
  }

  // A WESkit route: errors become WESkit's shapes (JSON {msg, status_code} with the reason, or Flask's
  // HTML 500 for the ones WESkit does not catch).
  function route(handler, { auth = true } = {}) {
    return async (req, res, ctx) => {
      try {
        const user = auth ? await identify(req) : null;
        await handler(req, res, ctx, user);
      } catch (e) {
        if (e.html500) { sendHtml(res, 500, HTML_500); return; }
        const status = Number.isInteger(e.status) ? e.status : 500;
        if (status >= 500 && !e.weskit) log.error(`${req.method} ${ctx.path}:`, e);
        if (status === 401 || status === 422) svc.sendJson(res, status, { msg: e.message }); // flask-jwt-extended's shape
        else jerr(res, status, e.message);
      }
    };
  }

  // ------------------------------------------------------------ runs

  function ownRun(id, user) {
    const run = core.getRun(id);
    if (!run || run.synthetic) throw fail(500, `Run '${id}' not found`);
    if (run.owner !== user.key) throw fail(403, `User '${user.key}' is not allowed to access run '${id}'`);
    return run;
  }

  function serviceInfo() {
    const counts = {};
    for (const [k, v] of Object.entries(core.counts)) if (v) counts[k] = v;
    return {
      workflow_type_versions: { SMK: { workflow_type_version: [smkVersion] }, NFL: { workflow_type_version: [NFL_VERSION] } },
      supported_wes_versions: ['1.0.0'],
      supported_filesystem_protocols: ['file', 'S3'],
      workflow_engine_versions: { SMK: smkVersion, NFL: NFL_VERSION },
      default_workflow_engine_parameters: Object.entries(API_PARAMS).filter(([, v]) => v !== null).map(([name, v]) => ({ name, type: /^\d+$/.test(v) ? 'int' : 'bool', default_value: v })),
      system_state_counts: counts,
      auth_instructions_url: 'https://gitlab.com/one-touch-pipeline/weskit/documentation/',
      contact_info_url: 'mailto:federation@example.org',
      tags: { tag1: 'value1' },
    };
  }

  async function readForm(req) {
    const ct = req.headers['content-type'] || '';
    if (/^multipart\/form-data/i.test(ct)) return core.readMultipartKeepPaths(req);
    const buf = await svc.readBody(req, 4 << 20);
    const out = { fields: {}, files: {} };
    if (/^application\/x-www-form-urlencoded/i.test(ct)) for (const [k, v] of new URLSearchParams(buf.toString('utf8'))) out.fields[k] = v;
    return out;
  }

  function validateUrl(url, what = url) {
    const errs = [];
    if (/[;'"[\]{}()$]/.test(url)) errs.push(`Forbidden characters: '${url}'`);
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
    if (scheme && scheme[1].toLowerCase() === 'trs') return errs;
    if (scheme && scheme[1].toLowerCase() !== 'file') return errs.concat([`Only 'file:' (relative) and 'trs://' URIs are allowed: '${what}'`]);
    const p = scheme ? url.slice(scheme[0].length) : url;
    if (p.startsWith('/')) errs.push(`Not a relative path: '${what}'`);
    else if (path.posix.normalize(p).startsWith('..')) errs.push(`Normalized path points outside allowed root: '${p}'`);
    return errs;
  }

  async function submit(req, res, ctx, user) {
    const form = await readForm(req);
    const names = [...new Set([...Object.keys(form.fields), ...Object.keys(form.files)])];
    if (!names.length) throw fail(400, 'Malformed request: Empty form data');
    const f = {};
    for (const [k, v] of Object.entries(form.fields)) f[k] = Array.isArray(v) ? v[v.length - 1] : v;
    // syntax (a cerberus document check): unknown and missing fields, JSON fields
    const syntax = {};
    for (const n of names.sort()) if (!FORM_FIELDS.includes(n)) syntax[n] = ['unknown field'];
    for (const n of REQUIRED) if (f[n] === undefined) syntax[n] = ['required field'];
    const json = {};
    for (const n of ['workflow_params', 'tags', 'workflow_engine_parameters']) {
      if (f[n] === undefined) continue;
      try {
        json[n] = JSON.parse(f[n]);
        if (!json[n] || typeof json[n] !== 'object' || Array.isArray(json[n])) throw new Error('not an object');
      } catch (e) {
        syntax[n] = ['must be of dict type'];
      }
    }
    const errors = [];
    if (Object.keys(syntax).length) errors.push(Object.fromEntries(Object.entries(syntax).sort()));
    const types = { SMK: [smkVersion], NFL: [NFL_VERSION] };
    if (f.workflow_type !== undefined) {
      if (!types[f.workflow_type]) errors.push(`Unknown workflow_type '${f.workflow_type}'. Know ${Object.keys(types).join(', ')}`);
      else if (f.workflow_type_version !== undefined && !types[f.workflow_type].includes(f.workflow_type_version)) {
        errors.push(`Unknown workflow_type_version '${f.workflow_type_version}'. Know ${types[f.workflow_type].join(', ')}`);
      }
    }
    if (f.workflow_url !== undefined) errors.push(...validateUrl(f.workflow_url));
    const tags = json.tags || {};
    if (wk.requireRunDir) {
      if (f.tags === undefined) errors.push("'run_dir' tag is required but tags field is missing");
      else if (typeof tags.run_dir !== 'string') errors.push("'run_dir' tag is required and missing");
      else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(tags.run_dir) && !/^file:/i.test(tags.run_dir)) errors.push("'run_dir' tag must be relative file path");
      else errors.push(...validateUrl(tags.run_dir));
    }
    if (errors.length) throw fail(400, `Malformed request: ${pyRepr(errors)}`);

    // the run exists from here on (WESkit inserts it before preparing the execution)
    const runId = crypto.randomUUID();
    const runDirRel = typeof tags.run_dir === 'string' ? tags.run_dir.replace(/^file:/i, '') : runId;
    const workdir = path.join(wk.dataDir, path.posix.normalize(runDirRel));
    const run = { run_id: runId, seq: core.nextSeq(), owner: user.key, state: 'INITIALIZING', created: core.iso(), dir: path.join(core.RUNS_DIR, runId),
      request: { workflow_params: f.workflow_params, workflow_type: f.workflow_type, workflow_type_version: f.workflow_type_version,
        workflow_url: f.workflow_url, tags: f.tags === undefined ? undefined : f.tags, workflow_engine_parameters: f.workflow_engine_parameters },
      runner: 'weskit', workdir, run_dir: runDirRel, system_logs: [], tasks: [] };
    fs.mkdirSync(run.dir, { recursive: true });
    core.addRun(run);
    core.persist(run);

    // prepare_execution: engine parameters (unknown / forbidden -> 500, the run stays INITIALIZING)
    const engineParams = { ...Object.fromEntries(Object.entries(API_PARAMS).filter(([, v]) => v !== null)) };
    for (const [k0, v] of Object.entries(json.workflow_engine_parameters || {})) {
      const k = k0.replace(/^--/, '');
      if (SERVER_PARAMS.includes(k)) throw fail(500, `Parameter '${k}' is forbidden`);
      if (!(k in API_PARAMS)) throw fail(500, `Unknown workflow engine parameter '${k0}' for SMK`);
      engineParams[k] = v === null ? null : String(v);
    }
    run.engine_params = engineParams;
    fs.mkdirSync(workdir, { recursive: true });
    const stored = [];
    for (const file of form.files.workflow_attachment || []) {
      const name = secureFilename(file.filename);
      if (!name) continue;
      fs.writeFileSync(path.join(workdir, name), file.data);
      stored.push(name);
    }
    run.attachments = stored;
    if (/^trs:/i.test(f.workflow_url)) throw fail(500, `Could not install the workflow '${f.workflow_url}': no TRS server is configured`);
    const rel = f.workflow_url.replace(/^file:/i, '');
    const inRun = path.join(workdir, rel);
    const installed = path.join(cfg.workflowsDir, rel);
    run.workflow = fs.existsSync(inRun) || !fs.existsSync(installed) ? inRun : installed;
    core.setState(run, 'QUEUED');
    core.queue.push(run);
    core.pump();
    svc.sendJson(res, 200, { run_id: runId });
  }

  // every file the run made in its directory (not WESkit's or Snakemake's own, not the attachments)
  function outputFiles(run, rel = '', out = []) {
    let entries = [];
    try { entries = fs.readdirSync(path.join(run.workdir, rel), { withFileTypes: true }); } catch (e) { return out; }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && (e.name === '.weskit' || e.name === '.snakemake' || (run.attachments || []).includes(e.name))) continue;
      if (e.isDirectory()) outputFiles(run, p, out); else if (e.isFile()) out.push(p);
    }
    return out;
  }

  async function uploadOutputs(run, files) {
    const { createClient } = require('../../lib/s3');
    const s3 = createClient({ timeoutMs: 15000 });
    try { await s3.createBucket(cfg.bucket); } catch (e) { if (!e.status) throw e; }
    const urls = [];
    for (const rel of files) {
      const key = `weskit/${run.run_dir}/${rel}`;
      const p = path.join(run.workdir, rel);
      await s3.putObject(cfg.bucket, key, fs.createReadStream(p), { contentLength: fs.statSync(p).size, metadata: { 'wes-run-id': run.run_id } });
      urls.push(wk.signature === 'auto' ? s3.presignGetAuto(cfg.bucket, key, wk.presignSeconds)
        : wk.signature === 'v2' ? s3.presignGetV2(cfg.bucket, key, wk.presignSeconds) : s3.presignGet(cfg.bucket, key, wk.presignSeconds));
    }
    return urls;
  }

  // the runner: snakemake in the run directory (NFL: nextflow is not installed -> the run fails)
  core.runners.weskit = async (run) => {
    const slot = { child: null, terminating: null };
    core.active.set(run.run_id, slot);
    run.start_time = core.iso();
    core.setState(run, 'INITIALIZING');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '');
    const meta = path.join(run.workdir, '.weskit', stamp);
    fs.mkdirSync(meta, { recursive: true });
    run.stdout_path = path.join(meta, 'stdout');
    run.stderr_path = path.join(meta, 'stderr');
    const config = path.join(meta, 'config.yaml');
    fs.writeFileSync(config, JSON.stringify(JSON.parse(run.request.workflow_params || '{}'), null, 1)); // JSON is YAML
    const p = run.engine_params || {};
    let cmd;
    if (run.request.workflow_type === 'NFL') cmd = ['nextflow', 'run', run.workflow, '-params-file', config];
    else {
      cmd = [wk.snakemake, '--snakefile', run.workflow];
      if (p.cores) cmd.push('--cores', p.cores);
      if (p.jobs) cmd.push('--jobs', p.jobs);
      if (p.resume !== undefined && !/^(true|t|present|1|yes|y)$/i.test(String(p.resume))) cmd.push('--forceall');
      cmd.push('--configfile', config);
    }
    run.cmd = cmd;
    const home = path.join(meta, 'home');
    fs.mkdirSync(home, { recursive: true });
    const childEnv = { PATH: env.PATH || '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', TMPDIR: meta,
      WESKIT_WORKFLOW_ENGINE: `${run.request.workflow_type}=${run.request.workflow_type_version}`, WESKIT_WORKFLOW_PATH: run.workflow,
      XDG_CACHE_HOME: path.join(home, '.cache'), NO_PROXY: '127.0.0.1,localhost,::1', no_proxy: '127.0.0.1,localhost,::1' };
    const out = fs.openSync(run.stdout_path, 'w');
    const err = fs.openSync(run.stderr_path, 'w');
    let child;
    try {
      child = spawn(cmd[0], cmd.slice(1), { cwd: run.workdir, env: childEnv, detached: true, stdio: ['ignore', out, err] });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    slot.child = child;
    const exit = await new Promise((resolve) => {
      child.once('error', (error) => resolve({ error }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
      if (child.pid) { run.pid = child.pid; core.setState(run, 'RUNNING'); }
      slot.timer = setTimeout(() => { slot.timedOut = true; slot.terminating = core.terminate(child.pid); }, cfg.maxRunSeconds * 1000);
    });
    clearTimeout(slot.timer);
    if (slot.terminating) await slot.terminating;
    else if (child.pid) core.signalAll(child.pid, [], 'SIGKILL');
    run.exit_code = Number.isInteger(exit.code) ? exit.code : (exit.error ? 127 : undefined);
    run.end_time_py = pyIso();
    if (exit.error) {
      fs.appendFileSync(run.stderr_path, `${cmd[0]}: ${exit.error.code === 'ENOENT' ? 'command not found' : exit.error.message}\n`);
      core.active.delete(run.run_id);
      core.setState(run, 'EXECUTOR_ERROR', `could not start ${cmd[0]}: ${exit.error.message}`);
    } else if (slot.timedOut) {
      core.active.delete(run.run_id);
      core.setState(run, 'SYSTEM_ERROR', `run exceeded --max-run-seconds ${cfg.maxRunSeconds}`);
    } else if (exit.code === 0) {
      const files = outputFiles(run);
      let s3urls = [];
      try {
        s3urls = await uploadOutputs(run, files);
        run.system_logs.push(`${core.iso()} uploaded ${files.length} output file(s) to s3://${cfg.bucket}/weskit/${run.run_dir}/`);
      } catch (e) {
        log.error(`run ${run.run_id}: upload to s3://${cfg.bucket}/ failed: ${e.message}`);
        run.system_logs.push(`${core.iso()} upload to S3 failed: ${e.message}`);
      }
      run.outputs = { filesystem: files, S3: s3urls };
      core.active.delete(run.run_id);
      core.setState(run, 'COMPLETE');
    } else {
      core.active.delete(run.run_id);
      core.setState(run, 'EXECUTOR_ERROR', `${path.basename(cmd[0])} exited ${exit.code}${exit.signal ? ` (signal ${exit.signal})` : ''}`);
    }
    core.pump();
  };

  function runLog(run) {
    let params;
    try { params = JSON.parse(run.request.workflow_params); } catch (e) { params = run.request.workflow_params; }
    let tags;
    try { tags = run.request.tags === undefined ? null : JSON.parse(run.request.tags); } catch (e) { tags = null; }
    return {
      run_id: run.run_id,
      request: { ...run.request, workflow_params: params, tags, workflow_attachment: undefined },
      state: run.state,
      run_log: {
        name: null,
        cmd: run.cmd,
        start_time: pyIso(Date.parse(run.start_time)),
        end_time: pyIso(Date.parse(run.end_time)),
        stdout: run.stdout_path,
        stderr: run.stderr_path,
        exit_code: run.exit_code === undefined ? null : run.exit_code,
      },
      task_logs: [],
      outputs: run.outputs || { filesystem: [], S3: [] },
      user_id: run.owner,
    };
  }

  // ------------------------------------------------------------ routes

  r.get(`${API}/service-info`, route((req, res) => svc.sendJson(res, 200, serviceInfo()), { auth: false }));
  r.get(`${API}/runs`, route((req, res, ctx, user) => {
    const mine = [...core.runs.values()].filter((x) => x.owner === user.key).sort((a, b) => a.seq - b.seq);
    svc.sendJson(res, 200, { runs: mine.map((x) => ({ run_id: x.run_id, state: x.state })), next_page_token: '' });
  }));
  r.post(`${API}/runs`, route(submit));
  r.get(`${API}/runs/:run_id`, route((req, res, ctx, user) => {
    const run = ownRun(ctx.params.run_id, user);
    if (!core.TERMINAL.has(run.state)) throw Object.assign(new Error('run log not available yet'), { html500: true });
    svc.sendJson(res, 200, runLog(run));
  }));
  r.get(`${API}/runs/:run_id/status`, route((req, res, ctx, user) => {
    const run = ownRun(ctx.params.run_id, user);
    svc.sendJson(res, 200, { run_id: run.run_id, state: run.state });
  }));
  r.post(`${API}/runs/:run_id/cancel`, route((req, res, ctx, user) => {
    ownRun(ctx.params.run_id, user);
    throw fail(500, 'Run cancellation is not implemented');
  }));
  r.get('/weskit/v1/runs', route((req, res, ctx, user) => {
    const mine = [...core.runs.values()].filter((x) => x.owner === user.key).sort((a, b) => a.seq - b.seq);
    svc.sendJson(res, 200, mine.map((x) => ({ run_id: x.run_id, run_status: x.state, start_time: x.start_time ? pyIso(Date.parse(x.start_time)) : null, user_id: x.owner })));
  }));
  r.get('/weskit/v1/runs/:run_id/:stream', route((req, res, ctx, user) => {
    if (!['stdout', 'stderr'].includes(ctx.params.stream)) { sendHtml(res, 404, HTML_404); return; }
    const run = ownRun(ctx.params.run_id, user);
    if (run.state !== 'COMPLETE') throw fail(409, `Run '${run.run_id}' is not in COMPLETE state (${run.state})`);
    let content = '';
    try { content = fs.readFileSync(run[`${ctx.params.stream}_path`], 'utf8'); } catch (e) { content = ''; }
    svc.sendJson(res, 200, { content });
  }));

  return {
    start: () => new Promise((resolve) => {
      execFile(wk.snakemake, ['--version'], { timeout: 30000 }, (e, stdout) => {
        if (e) log.error(`snakemake not usable (${wk.snakemake}): ${e.message}; runs will fail (run wes/install.sh)`);
        else smkVersion = String(stdout).trim().split(/\s+/).pop();
        resolve();
      });
    }),
  };
}

// Flask's HTML pages for paths and methods WESkit does not have
function notFound(req, res) {
  sendHtml(res, 404, HTML_404);
}

module.exports = { apiBase: API, notFound, pyRepr, secureFilename, HTML_404,
  register(r, core) { const h = register(r, core); module.exports.start = h.start; } };
