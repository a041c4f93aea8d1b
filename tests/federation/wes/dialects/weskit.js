'use strict';
// The WESkit dialect of wes/server.js (`--dialect weskit`): the WES of SPE4HD as WESkit's source (the 2023
// code and its later tests; /work notes in docs/servers.md) makes it answer, running Snakemake workflows
// with Debian's `snakemake` and handing out the outputs as presigned S3 URLs:
//
// - API under /ga4gh/wes/v1 (nothing at the origin's /service-info) plus WESkit's /weskit/v1/runs and
//   /weskit/v1/runs/{id}/stdout|stderr; any other path is Flask's HTML 404 page (no /runs/{id}/tasks);
// - WES 1.0 service-info only (9 keys, no GA4GH id/name/type/...); workflow types are engines: SMK
//   (type version = the installed Snakemake's version, 7.21.0 on Debian 12) and NFL (listed; Nextflow
//   is not installed, such runs end in EXECUTOR_ERROR);
// - POST /runs reads form fields only: none -> 400 "Malformed request: Empty form data"; unknown fields
//   are refused (so WES 1.1's workflow_engine is: "{'workflow_engine': ['unknown field']}");
//   workflow_params (a JSON object as a string), workflow_type, workflow_type_version, workflow_url are
//   required; validation errors are 400 {"msg": "Malformed request: [...]"} (a Python list repr);
//   workflow_url must be a relative path (`file:` or none) or `trs://`, https is refused; attachment
//   names are flattened as werkzeug's secure_filename does (data/x.txt -> data_x.txt); with
//   --require-run-dir (env FED_WES_REQUIRE_RUN_DIR=1) a `run_dir` tag is required;
// - after validation the run exists (INITIALIZING; WESkit never says QUEUED): a forbidden engine
//   parameter is then a 500 {"msg": "Parameter frozenset({'use-conda'}) is forbidden"} and an unknown
//   one Flask's HTML 500, the run staying behind in INITIALIZING; a workflow that cannot be found
//   (or a trs:// URI: no TRS here) makes the run SYSTEM_ERROR while POST still answers 200;
// - GET /runs/{id} and /status: an id that is not a UUID -> 500 {"msg": "Syntactically invalid run ID:
//   '...'"}, an unknown UUID -> HTML 500, another user's run -> 403; GET /runs/{id} is HTML 500 until
//   the run finished with an exit code (COMPLETE or EXECUTOR_ERROR; other failures: for ever);
//   times naive (2026-12-04T16:07:47.123456); run_log.stdout/stderr are paths relative to the run
//   directory (.weskit/<start>/stdout); outputs {"filesystem": [...], "S3": [...]}: every file of the
//   run directory but .weskit/, and presigned GET URLs (Signature V2 for region us-east-1 as boto3
//   makes them, else V4; valid --presign-seconds, default 3600, made once) for the copies uploaded
//   to $FED_RESULTS_BUCKET/<run dir>/ (WESkit derives the bucket from the run dir; here it is fixed);
// - GET /runs: {runs: [{run_id, state}], next_page_token: ""}, all of the caller's runs, page_size
//   ignored; GET /weskit/v1/runs: a bare list [{request, run_id, run_stage, start_time, user_id}];
//   /weskit/v1/runs/{id}/stdout|stderr: {"content": [lines]}, 409 "Run '<id>' is not in COMPLETED
//   state" unless COMPLETE (logs of failed runs are never served);
// - POST /runs/{id}/cancel: HTML 500 (Manager.cancel is not implemented), 404 for an unknown UUID;
// - bearer token on everything but service-info: a JWT is checked offline (signature against the
//   issuer's JWKS, iss, exp: expired -> 401 "Token has expired", otherwise bad -> 422), then every token
//   online at the issuer's introspection endpoint (as the confidential client impact-ci, secret from
//   $FED_STATE/impact-ci.secret or FED_WES_INTROSPECTION_SECRET): not active -> 401
//   {"msg": "Online validation failed"}. Opaque tokens (what the federation's provider issues) skip
//   the offline step; WESkit would refuse them (422 "Not enough segments"): --jwt-only does too.
//   FED_WES_FAKE_AUTH=1 (`Bearer user:alice`) works as in the default dialect.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawn, execFile } = require('child_process');

const API = '/ga4gh/wes/v1';
const NFL_VERSION = '23.04.1';
// engine parameters WESkit knows for Snakemake: the API ones may be set per run, the rest are server
// settings a request must not touch (-> "forbidden")
const API_PARAMS = { cores: '1', jobs: null, 'max-memory': null, 'max-runtime': null, resume: 'true' };
const SERVER_PARAMS = ['job-name', 'accounting-name', 'group', 'queue', 'use-singularity', 'use-conda', 'profile', 'tes', 'data-aws-access-key-id', 'data-aws-secret-access-key',
  'task-conda-pkgs-dir', 'task-conda-envs-path', 'task-home', 'prefix_conda_envs_path', 'wms-monitor', 'wms-monitor-arg', 'engine-environment'];
const PARAM_TYPES = { cores: 'Optional[int]', jobs: 'Optional[int]', 'max-memory': 'Optional[str validFor Python.memory_units.Memory.from_str($)]',
  'max-runtime': 'Optional[str validFor Python.tempora.parse_timedelta($)]', resume: 'Optional[bool]' };
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

// WESkit's timestamps: Python isoformat() of a naive datetime (the server's clock, UTC here), microseconds
const pyIso = (ms = Date.now()) => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('Z', '000') : null);
const UUID = /^[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12}$/;
// WES state -> WESkit's internal processing stage (GET /weskit/v1/runs shows the stage)
const STAGE = { INITIALIZING: 'AWAITING_START', RUNNING: 'STARTED_EXECUTION', COMPLETE: 'FINISHED_EXECUTION', EXECUTOR_ERROR: 'EXECUTOR_ERROR',
  SYSTEM_ERROR: 'SYSTEM_ERROR', CANCELED: 'CANCELED', CANCELING: 'REQUESTED_CANCEL' };
const COUNTED = ['QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'CANCELING'];

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
  // an exception WESkit does not catch: Flask's HTML 500 page (the reason only in the server's log)
  const crash = (msg) => Object.assign(new Error(msg), { html500: true });

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
        throw e.code === 'ERR_JWT_EXPIRED' ? fail(401, 'Token has expired') : fail(422, 'Signature verification failed');
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
        if (e.html500) { log.info(`${req.method} ${ctx.path}: HTML 500 (${e.message})`); sendHtml(res, 500, HTML_500); return; }
        const status = Number.isInteger(e.status) ? e.status : 500;
        if (status >= 500 && !e.weskit) log.error(`${req.method} ${ctx.path}:`, e);
        if (status === 401 || status === 422) svc.sendJson(res, status, { msg: e.message }); // flask-jwt-extended's shape
        else jerr(res, status, e.message);
      }
    };
  }

  // ------------------------------------------------------------ runs

  // unknown: what the route does with an unknown UUID ('html' -> HTML 500, else that status, JSON)
  function ownRun(id, user, unknown = 'html') {
    if (!UUID.test(id)) throw fail(500, `Syntactically invalid run ID: '${id}'`);
    const run = core.getRun(id);
    if (!run || run.synthetic) {
      if (unknown === 'html') throw crash(`no run ${id}`);
      throw fail(unknown, `Could not find '${id}'`);
    }
    if (run.owner !== user.key) throw fail(403, `User '${user.key}' not allowed to access '${id}'`);
    return run;
  }

  function serviceInfo() {
    const counts = {};
    for (const k of COUNTED) counts[k] = core.counts[k] || 0;
    const params = [];
    for (const [engine, version] of [['SMK', smkVersion], ['NFL', NFL_VERSION]]) {
      for (const [name, v] of Object.entries(API_PARAMS)) {
        params.push({ name: `${engine}|${version}|${name}`, default_value: v, type: PARAM_TYPES[name] || 'Optional[str]' });
      }
    }
    return {
      workflow_type_versions: { SMK: { workflow_type_version: [smkVersion] }, NFL: { workflow_type_version: [NFL_VERSION] } },
      supported_wes_versions: ['1.0.0'],
      supported_filesystem_protocols: ['file', 'S3'],
      workflow_engine_versions: { SMK: smkVersion, NFL: NFL_VERSION },
      default_workflow_engine_parameters: params,
      system_state_counts: counts,
      auth_instructions_url: 'https://gitlab.com/one-touch-pipeline/weskit/documentation/',
      contact_info_url: 'mailto:federation@example.org',
      tags: { tag1: 'value1', tag2: 'value2' },
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
    if (scheme && scheme[1].toLowerCase() !== 'file') return errs.concat([`Only 'file:' (relative) and 'trs:' are allowed in workflow URIs: '${what}'`]);
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
    const errors = [];
    if (Object.keys(syntax).length) errors.push(Object.fromEntries(Object.entries(syntax).sort()));
    const json = {};
    if (f.workflow_params !== undefined) {
      try {
        json.workflow_params = JSON.parse(f.workflow_params);
        if (!json.workflow_params || typeof json.workflow_params !== 'object' || Array.isArray(json.workflow_params)) {
          errors.push('workflow_params must be string with JSON dictionary');
        }
      } catch (e) {
        errors.push(`JSON parse-error in workflow_params: ${e.message}`);
      }
    }
    const types = { SMK: [smkVersion], NFL: [NFL_VERSION] };
    if (f.workflow_type !== undefined) {
      if (!types[f.workflow_type]) errors.push(`Unknown workflow_type '${f.workflow_type}'. Know ${Object.keys(types).sort().join(', ')}`);
      else if (f.workflow_type_version !== undefined && !types[f.workflow_type].includes(f.workflow_type_version)) {
        errors.push(`Unknown workflow_type_version '${f.workflow_type_version}'. Know ${types[f.workflow_type].join(', ')}`);
      }
    }
    if (f.workflow_url !== undefined) errors.push(...validateUrl(f.workflow_url));
    let tags = null;
    try { tags = f.tags === undefined ? null : JSON.parse(f.tags); } catch (e) { tags = undefined; }
    if (tags !== null && tags !== undefined && (typeof tags !== 'object' || Array.isArray(tags))) tags = undefined;
    if (wk.requireRunDir) {
      if (f.tags === undefined) errors.push("'run_dir' tag is required but tags field is missing");
      else if (tags === undefined) errors.push("Could not parse 'run_dir' tag");
      else if (typeof tags.run_dir !== 'string') errors.push("'run_dir' tag is required and missing");
      else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(tags.run_dir) && !/^file:/i.test(tags.run_dir)) errors.push("'run_dir' tag must be relative file path");
      else errors.push(...validateUrl(tags.run_dir));
    }
    const attached = (form.files.workflow_attachment || []).map((x) => x.filename);
    if (attached.some((n) => ['.nextflow', '.snakemake'].includes(n))) errors.push('At least one attachment filename is forbidden. Forbidden are: .nextflow, .snakemake');
    if (errors.length) throw fail(400, `Malformed request: ${pyRepr(errors)}`);
    let engineParamsIn = {};
    if (f.workflow_engine_parameters !== undefined) {
      try { engineParamsIn = JSON.parse(f.workflow_engine_parameters); } catch (e) { throw crash(`workflow_engine_parameters: ${e.message}`); }
    }

    // the run exists from here on (WESkit inserts it before preparing the execution)
    const runId = crypto.randomUUID();
    const runDirRel = tags && typeof tags.run_dir === 'string' ? path.posix.normalize(tags.run_dir.replace(/^file:/i, '')) : `${runId.slice(0, 4)}/${runId}`;
    const workdir = path.join(wk.dataDir, runDirRel);
    const request = { workflow_params: json.workflow_params, workflow_type: f.workflow_type, workflow_type_version: f.workflow_type_version,
      workflow_url: f.workflow_url, tags: tags === undefined ? null : tags };
    if (f.workflow_engine_parameters !== undefined) request.workflow_engine_parameters = engineParamsIn;
    const run = { run_id: runId, seq: core.nextSeq(), owner: user.key, state: 'INITIALIZING', created: core.iso(), dir: path.join(core.RUNS_DIR, runId),
      request, runner: 'weskit', workdir, run_dir: runDirRel, system_logs: [], tasks: [] };
    fs.mkdirSync(run.dir, { recursive: true });
    core.addRun(run);
    core.persist(run);

    // prepare_execution: engine parameters (unknown / forbidden -> 500, the run stays INITIALIZING)
    // prepare_execution: attachments (flattened), the workflow's path; failures make the run
    // SYSTEM_ERROR but POST still answers 200
    fs.mkdirSync(workdir, { recursive: true });
    fs.writeFileSync(path.join(workdir, `${runId}.yaml`), `${JSON.stringify(json.workflow_params, null, 1)}\n`); // JSON is YAML
    const stored = [];
    let prepError = null;
    for (const file of form.files.workflow_attachment || []) {
      const name = secureFilename(file.filename);
      if (!name) { prepError = prepError || 'Attachment file without name'; continue; }
      fs.writeFileSync(path.join(workdir, name), file.data);
      stored.push(name);
    }
    const rel = f.workflow_url.replace(/^file:/i, '');
    if (/^trs:/i.test(f.workflow_url)) prepError = prepError || `Could not install workflow '${f.workflow_url}': no TRS server configured`;
    else if (stored.includes(rel)) run.workflow = rel;
    else if (fs.existsSync(path.join(cfg.workflowsDir, rel))) run.workflow = path.join(cfg.workflowsDir, rel);
    else prepError = prepError || `Derived workflow path is not accessible: '${path.join(cfg.workflowsDir, rel)}'`;
    if (prepError) {
      core.setState(run, 'SYSTEM_ERROR', prepError);
      svc.sendJson(res, 200, { run_id: runId });
      return;
    }
    // execute: the engine parameters are checked only now; a refusal leaves the run INITIALIZING
    const engineParams = { ...API_PARAMS };
    for (const [k0, v] of Object.entries(engineParamsIn && typeof engineParamsIn === 'object' ? engineParamsIn : {})) {
      const k = k0.replace(/^--/, '');
      if (SERVER_PARAMS.includes(k)) throw fail(500, `Parameter frozenset({'${k}'}) is forbidden`);
      if (!(k in API_PARAMS)) throw crash(`KeyError: '${k0}'`);
      engineParams[k] = v === null ? null : String(v);
    }
    run.engine_params = engineParams;
    core.queue.push(run);
    core.pump();
    svc.sendJson(res, 200, { run_id: runId });
  }

  // every file in the run directory but WESkit's own logs (.weskit/): the params file, the attachments,
  // Snakemake's .snakemake/ bookkeeping and the results
  function outputFiles(run, rel = '', out = []) {
    let entries = [];
    try { entries = fs.readdirSync(path.join(run.workdir, rel), { withFileTypes: true }); } catch (e) { return out; }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === '.weskit') continue;
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
      const key = `${run.run_dir}/${rel}`;
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
    run.start_ms = Date.now();
    run.start_time = core.iso(run.start_ms);
    const stamp = pyIso(run.start_ms);
    const meta = path.join(run.workdir, '.weskit', stamp);
    fs.mkdirSync(meta, { recursive: true });
    run.stdout_rel = `.weskit/${stamp}/stdout`;
    run.stderr_rel = `.weskit/${stamp}/stderr`;
    const config = `${run.run_id}.yaml`;
    const p = run.engine_params || {};
    let cmd;
    if (run.request.workflow_type === 'NFL') cmd = ['nextflow', 'run', run.workflow, '-params-file', config];
    else {
      cmd = ['snakemake', '--snakefile', run.workflow];
      if (p.cores) cmd.push('--cores', p.cores);
      if (p.jobs) cmd.push('--jobs', p.jobs);
      if (p.resume !== null && p.resume !== undefined && !/^(true|t|present|1|yes|y)$/i.test(String(p.resume))) cmd.push('--forceall');
      cmd.push('--configfile', config);
    }
    run.cmd = cmd;
    const exe = cmd[0] === 'snakemake' ? wk.snakemake : cmd[0];
    const home = path.join(meta, 'home');
    fs.mkdirSync(home, { recursive: true });
    const childEnv = { PATH: env.PATH || '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', TMPDIR: meta,
      WESKIT_WORKFLOW_ENGINE: `${run.request.workflow_type}=${run.request.workflow_type_version}`, WESKIT_WORKFLOW_PATH: run.workflow,
      XDG_CACHE_HOME: path.join(home, '.cache'), NO_PROXY: '127.0.0.1,localhost,::1', no_proxy: '127.0.0.1,localhost,::1' };
    const out = fs.openSync(path.join(run.workdir, run.stdout_rel), 'w');
    const err = fs.openSync(path.join(run.workdir, run.stderr_rel), 'w');
    let child;
    try {
      child = spawn(exe, cmd.slice(1), { cwd: run.workdir, env: childEnv, detached: true, stdio: ['ignore', out, err] });
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
    run.end_ms = Date.now();
    if (exit.error) {
      fs.appendFileSync(path.join(run.workdir, run.stderr_rel), `${cmd[0]}: ${exit.error.code === 'ENOENT' ? 'command not found' : exit.error.message}\n`);
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
    return {
      run_id: run.run_id,
      request: run.request,
      state: run.state,
      run_log: {
        name: run.request.workflow_url,
        cmd: run.cmd,
        start_time: pyIso(run.start_ms),
        end_time: pyIso(run.end_ms),
        stdout: run.stdout_rel,
        stderr: run.stderr_rel,
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
    // the run log exists only once the engine's task finished with an exit code
    if (!['COMPLETE', 'EXECUTOR_ERROR'].includes(run.state) || run.exit_code === undefined) throw crash(`KeyError: 'start_time' (run ${run.run_id} is ${run.state})`);
    svc.sendJson(res, 200, runLog(run));
  }));
  r.get(`${API}/runs/:run_id/status`, route((req, res, ctx, user) => {
    const run = ownRun(ctx.params.run_id, user);
    svc.sendJson(res, 200, { run_id: run.run_id, state: run.state });
  }));
  r.post(`${API}/runs/:run_id/cancel`, route((req, res, ctx, user) => {
    ownRun(ctx.params.run_id, user, 404);
    throw crash('NotImplementedError: Manager.cancel');
  }));
  r.get('/weskit/v1/runs', route((req, res, ctx, user) => {
    const mine = [...core.runs.values()].filter((x) => x.owner === user.key).sort((a, b) => a.seq - b.seq);
    svc.sendJson(res, 200, mine.map((x) => ({ request: x.request, run_id: x.run_id, run_stage: STAGE[x.state] || x.state,
      start_time: x.start_ms ? pyIso(x.start_ms) : null, user_id: x.owner })));
  }));
  r.get('/weskit/v1/runs/:run_id/:stream', route((req, res, ctx, user) => {
    if (!['stdout', 'stderr'].includes(ctx.params.stream)) { sendHtml(res, 404, HTML_404); return; }
    if (!UUID.test(ctx.params.run_id)) throw crash(`Syntactically invalid run ID: '${ctx.params.run_id}'`);
    if (!core.getRun(ctx.params.run_id)) throw crash(`Could not find run with identifier ${ctx.params.run_id}`);
    const run = ownRun(ctx.params.run_id, user);
    if (run.state !== 'COMPLETE') throw fail(409, `Run '${run.run_id}' is not in COMPLETED state`);
    let text = '';
    try { text = fs.readFileSync(path.join(run.workdir, run[`${ctx.params.stream}_rel`]), 'utf8'); } catch (e) { text = ''; }
    svc.sendJson(res, 200, { content: text.match(/[^\n]*\n|[^\n]+$/g) || [] }); // readlines()
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
