'use strict';
// The sapporo dialect of wes/server.js (`--dialect sapporo`): the WES that sapporo-service 1.7 serves,
// with the behaviours a client meets there (see wes/README.md#dialects and docs/servers.md):
//
// - the API at the origin root (/service-info, /runs, ...), no authentication at all: every caller sees
//   every run;
// - WES 1.0-shaped service-info without the GA4GH id/name/type/organization/version, with
//   supported_wes_versions ["sapporo-wes-1.1.0"], workflow_engine_versions as plain strings for seven
//   engines (only cwltool runs here; a run with another engine ends in EXECUTOR_ERROR, as sapporo's
//   run.sh does when the engine's container cannot be started);
// - POST /runs reads form fields (multipart or urlencoded); `workflow_engine` is required
//   (400 {"msg": "Workflow engine is required.", "status_code": 400});
// - GET /runs lists every run in "directory order" (here: sorted by run id, which is not creation
//   order), entries {run_id, state} only, page_size and page_token ignored, next_page_token "";
// - times without a zone (2026-12-04T16:07:47), run_log.stdout/stderr hold the log text itself,
//   outputs is a list of {file_name, file_url} served under /runs/{id}/data/;
// - cancel of a QUEUED or INITIALIZING run answers 200 and does nothing (the run goes on); of a finished
//   run 200; of a RUNNING run it kills cwltool (CANCELING -> CANCELED);
// - the non-spec final state UPLOADER_ERROR, reached as in sapporo: the tags ask for an upload of the
//   outputs (`{"export_output": {"protocol": "s3", "endpoint": URL, "access_key": K,
//   "secret_access_key": S, "bucket_name": B, "dirname": D}}`) and the upload fails (here: endpoint
//   not on loopback, not reachable, or refusing); a successful upload puts outdir's files under
//   s3://B/D/ and the run is COMPLETE;
// - test switch, as a submission tag (a real sapporo ignores it):
//     fed_initializing_seconds=N  hold the run N s (at most 60) in INITIALIZING before cwltool starts

const fs = require('fs');
const path = require('path');

// the keys as sapporo 1.7's bundled service-info.json has them ("(experimental)" included)
const ENGINES = ['cwltool', 'nextflow', 'toil (experimental)', 'cromwell', 'snakemake', 'ep3 (experimental)', 'streamflow'];
const OTHER_ENGINE_VERSIONS = { nextflow: '22.04.4', 'toil (experimental)': '4.1.0', cromwell: '80', snakemake: 'v7.8.3', 'ep3 (experimental)': 'v1.7.0', streamflow: '0.1.3' };
const TYPE_VERSIONS = {
  CWL: { workflow_type_version: ['v1.0', 'v1.1', 'v1.2'] },
  WDL: { workflow_type_version: ['1.0'] },
  NFL: { workflow_type_version: ['1.0', 'DSL2'] },
  SMK: { workflow_type_version: ['1.0'] },
  StreamFlow: { workflow_type_version: ['v1.0'] },
};
const OWNER = 'anonymous';

// sapporo's clock format: local time without a zone (the servers run in UTC)
const noZone = (t) => (t ? String(t).replace(/(\.\d+)?Z$/, '') : null);

function register(r, core) {
  const { cfg, svc, log } = core;
  const bad = (msg) => svc.httpError(400, msg);

  function serviceInfo() {
    const engines = {};
    for (const e of ENGINES) engines[e] = e === 'cwltool' ? core.cwltoolVersion() : OTHER_ENGINE_VERSIONS[e];
    const counts = {};
    for (const [k, v] of Object.entries(core.counts)) if (v) counts[k] = v;
    return {
      workflow_type_versions: TYPE_VERSIONS,
      supported_wes_versions: ['sapporo-wes-1.1.0'],
      supported_filesystem_protocols: ['http', 'https', 'file', 's3'],
      workflow_engine_versions: engines,
      default_workflow_engine_parameters: {
        nextflow: [{ name: '-dsl1', type: 'str', default_value: '' }],
        snakemake: [{ name: '--cores', type: 'int', default_value: 1 }, { name: '--use-conda', type: 'str', default_value: '' }],
      },
      system_state_counts: counts,
      auth_instructions_url: 'https://github.com/sapporo-wes/sapporo-service',
      contact_info_url: 'https://github.com/sapporo-wes/sapporo-service',
      tags: { 'wes-name': 'sapporo', 'sapporo-version': '1.7.1', get_runs: true, workflow_attachment: true, registered_only_mode: false, news_content: '' },
    };
  }

  // every run, seeds first (they have the lowest ids), then the real ones sorted by run id
  function allRuns() {
    const seeds = core.ownerList(cfg.seedUser);
    const out = [];
    for (let i = 0; i < cfg.seedRuns; i++) out.push(seeds.at(i));
    const real = [...core.runs.values()].sort((a, b) => (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0));
    return out.concat(real);
  }

  function findRun(id) {
    const run = core.getRun(id);
    if (!run) throw svc.httpError(404, `Run ID \`${id}\` does not exist. Please provide a valid run ID.`);
    return run;
  }

  function endpoint(req) {
    const h = req.headers.host || '';
    return /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(h) ? `http://${h}` : `http://127.0.0.1:${core.port()}`;
  }

  // sapporo's read_file: the file's text stripped, JSON-decoded when it parses (cwltool's stdout, the
  // output object, comes back as an object), null when the file is missing
  const fileValue = (file) => {
    let text;
    try { text = fs.readFileSync(file, 'utf8').trim(); } catch (e) { return null; }
    try { return JSON.parse(text); } catch (e) { return text; }
  };

  function listFiles(dir, rel = '', out = []) {
    let entries = [];
    try { entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true }); } catch (e) { return out; }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) listFiles(dir, p, out); else if (e.isFile()) out.push(p);
    }
    return out;
  }

  function runLog(run, req) {
    if (run.synthetic) {
      return { run_id: run.run_id, request: { workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_url: 'synthetic.cwl', workflow_params: '{}', tags: '{"synthetic": "true"}', workflow_engine: 'cwltool' },
        state: run.state, run_log: { name: 'synthetic', cmd: null, start_time: noZone(run.start_time), end_time: noZone(run.end_time), stdout: '', stderr: '', exit_code: 0 },
        task_logs: null, outputs: [] };
    }
    const base = `${endpoint(req)}/runs/${encodeURIComponent(run.run_id)}/data/`;
    const outputs = run.outputs
      ? listFiles(path.join(run.dir, 'outdir')).map((f) => ({ file_name: f, file_url: `${base}outputs/${f.split('/').map(encodeURIComponent).join('/')}` }))
      : null;
    return {
      run_id: run.run_id,
      request: run.form,
      state: run.state,
      run_log: {
        name: run.form.workflow_name || null,
        cmd: run.cmd ? run.cmd.join(' ') : null,
        start_time: noZone(run.start_time),
        end_time: noZone(run.end_time),
        stdout: fileValue(path.join(run.dir, 'stdout.log')),
        stderr: fileValue(path.join(run.dir, 'stderr.log')),
        exit_code: Number.isInteger(run.exit_code) ? run.exit_code : null,
      },
      task_logs: null,
      outputs,
    };
  }

  async function submit(req, res) {
    const ct = req.headers['content-type'] || '';
    let form = { fields: {}, files: {} };
    if (/^multipart\/form-data/i.test(ct)) form = await core.readMultipartKeepPaths(req);
    else if (/^application\/x-www-form-urlencoded/i.test(ct)) {
      const buf = await svc.readBody(req, 4 << 20);
      for (const [k, v] of new URLSearchParams(buf.toString('utf8'))) form.fields[k] = v;
    } else {
      await svc.readBody(req, 4 << 20).catch(() => null); // a JSON body is not read: no form fields at all
    }
    const f = {};
    for (const [k, v] of Object.entries(form.fields)) f[k] = Array.isArray(v) ? v[0] : v;
    // fields sent as file parts (with a filename) are not form fields for Flask: they are ignored
    const engine = f.workflow_engine !== undefined ? f.workflow_engine : f.workflow_engine_name; // the 1.0.1 name still works
    if (engine === undefined || engine === '') throw bad('Workflow engine is required.');
    if (!ENGINES.includes(engine)) throw bad(`Workflow engine \`${engine}\` is not supported.`);
    if (f.workflow_url === undefined || f.workflow_url === '') throw bad('The `workflow_url` is required.');
    if (!f.workflow_type || !f.workflow_type_version) throw bad('`workflow_type` and `workflow_type_version` are required.');
    if (!TYPE_VERSIONS[f.workflow_type]) throw bad('The `workflow_type` is invalid.');
    if (!TYPE_VERSIONS[f.workflow_type].workflow_type_version.includes(f.workflow_type_version)) throw bad('The `workflow_type_version` is invalid.');
    const prohibited = (what, text) => {
      for (const c of String(text)) if (';!?()[]{}*\\&`^<>|$'.includes(c)) throw bad(`The \`${what}\` contains a prohibited character \`${c}\`. Please remove this character.`);
    };
    prohibited('workflow_url', f.workflow_url);
    // workflow_params and tags are stored as they came, not validated (bad JSON: the run fails later)
    let params;
    try { params = f.workflow_params ? JSON.parse(f.workflow_params) : {}; } catch (e) { params = {}; }
    let tags;
    try { tags = f.tags ? JSON.parse(f.tags) : {}; } catch (e) { tags = {}; }
    if (!tags || typeof tags !== 'object' || Array.isArray(tags)) tags = {};
    let engineParams = {};
    if (f.workflow_engine_parameters) {
      try { engineParams = JSON.parse(f.workflow_engine_parameters); } catch (e) { throw bad('`workflow_engine_parameters` is not a valid JSON.'); }
      if (!engineParams || typeof engineParams !== 'object') throw bad('The `workflow_engine_parameters` must be a list or a dict.');
      for (const [k, v] of Array.isArray(engineParams) ? engineParams.map((x) => ['', x]) : Object.entries(engineParams)) {
        prohibited('workflow_engine_parameters', k);
        prohibited('workflow_engine_parameters', v);
      }
    }
    const atts = new Map();
    for (const file of form.files.workflow_attachment || []) atts.set(core.attachmentPath(file.filename), file.data);

    const runId = require('crypto').randomUUID();
    const dir = path.join(core.RUNS_DIR, runId);
    const attDir = path.join(dir, 'attachments');
    let wf = { workflow: null, workflow_file: null };
    if (engine === 'cwltool') wf = core.resolveWorkflowUrl(f.workflow_url, atts, attDir);
    const resolved = core.resolveParamPaths(params && typeof params === 'object' ? params : {}, attDir);
    fs.mkdirSync(attDir, { recursive: true });
    for (const [rel, data] of atts) {
      fs.mkdirSync(path.dirname(path.join(attDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(attDir, rel), data);
    }
    fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify(resolved, null, 1));
    // the request echo is what sapporo stores: the form strings as they came
    const echo = {
      workflow_params: f.workflow_params === undefined ? null : f.workflow_params,
      workflow_type: f.workflow_type,
      workflow_type_version: f.workflow_type_version,
      tags: f.tags === undefined ? null : f.tags,
      workflow_engine: engine,
      workflow_engine_version: f.workflow_engine_version === undefined ? '' : f.workflow_engine_version,
      workflow_engine_parameters: f.workflow_engine_parameters === undefined ? null : f.workflow_engine_parameters,
      workflow_url: f.workflow_url,
      workflow_name: f.workflow_name === undefined ? null : f.workflow_name,
      workflow_attachment: JSON.stringify([...atts.keys()].map((n) => ({ file_name: n, file_url: `${endpoint(req)}/runs/${runId}/data/exe/${n}` }))),
    };
    // cwltool gets only the engine parameters it knows (sapporo passes them on as they are)
    const known = {};
    if (!Array.isArray(engineParams)) {
      for (const [k, v] of Object.entries(engineParams)) if (core.ENGINE_PARAMS[k] && typeof v === 'string') known[k] = v;
    }
    const run = { run_id: runId, seq: core.nextSeq(), owner: OWNER, state: 'QUEUED', form: echo,
      request: { workflow_url: f.workflow_url, tags, workflow_engine_parameters: known },
      created: core.iso(), attachments: [...atts.keys()], workflow: wf.workflow, workflow_file: wf.workflow_file,
      runner: engine === 'cwltool' ? undefined : 'sapporo-missing-engine', engine, system_logs: [], tasks: [], dir };
    core.addRun(run);
    core.persist(run);
    log.info(`run ${runId}: QUEUED (${engine}, ${f.workflow_url})`);
    core.queue.push(run);
    core.pump();
    svc.sendJson(res, 200, { run_id: runId });
  }

  // test switch: hold INITIALIZING (a cancel meanwhile is ignored, as sapporo does)
  core.hooks.initializing = async (run) => {
    const s = Number(run.request.tags && run.request.tags.fed_initializing_seconds);
    if (Number.isFinite(s) && s > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(60, s) * 1000));
  };
  // cwltool succeeded: outputs stay on the server (served under /runs/{id}/data/outputs/)
  core.hooks.cwlComplete = async (run, outputs) => {
    run.outputs = outputs;
    const exp = run.request.tags && run.request.tags.export_output;
    if (exp && typeof exp === 'object' && exp.protocol === 's3') {
      const err = await exportOutputs(run, exp);
      if (err) {
        run.system_logs.push(`${core.iso()} upload of the outputs failed: ${err}`);
        core.setState(run, 'UPLOADER_ERROR', `export_output to s3 failed: ${err}`);
        return;
      }
    }
    core.setState(run, 'COMPLETE');
  };
  // run.sh's upload(): outdir's files to s3://bucket/dirname/ (aws-cli there; lib/s3 here)
  async function exportOutputs(run, exp) {
    try {
      const u = new URL(String(exp.endpoint || ''));
      if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(u.hostname)) return `endpoint ${u.origin} is not on loopback`;
      const { createClient } = require('../../lib/s3');
      const s3 = createClient({ url: u.origin, accessKey: String(exp.access_key || ''), secretKey: String(exp.secret_access_key || ''), timeoutMs: 10000 });
      const outdir = path.join(run.dir, 'outdir');
      for (const rel of listFiles(outdir)) {
        const key = [exp.dirname, rel].filter(Boolean).join('/');
        await s3.putObject(String(exp.bucket_name || ''), key, fs.readFileSync(path.join(outdir, rel)));
      }
      return null;
    } catch (e) {
      return e.message || String(e);
    }
  }
  // an engine sapporo lists but that is not installed here: its container cannot start
  core.runners['sapporo-missing-engine'] = async (run) => {
    core.active.set(run.run_id, { child: null, terminating: null });
    run.start_time = core.iso();
    core.setState(run, 'INITIALIZING');
    core.setState(run, 'RUNNING');
    fs.writeFileSync(path.join(run.dir, 'stdout.log'), '');
    fs.writeFileSync(path.join(run.dir, 'stderr.log'), `run.sh: line 1: docker: command not found\n(federation: the engine '${run.engine}' is listed but not installed; only cwltool runs here)\n`);
    run.cmd = ['docker', 'run', '--rm', `${run.engine}`];
    run.exit_code = 127;
    core.active.delete(run.run_id);
    core.setState(run, 'EXECUTOR_ERROR', `engine ${run.engine} not installed`);
    core.pump();
  };
  core.TERMINAL.add('UPLOADER_ERROR'); // final in sapporo: end_time is set

  r.get('/service-info', (req, res) => svc.sendJson(res, 200, serviceInfo()));
  r.get('/runs', (req, res) => {
    svc.sendJson(res, 200, { runs: allRuns().map((run) => ({ run_id: run.run_id, state: run.state })), next_page_token: '' });
  });
  r.post('/runs', submit);
  r.get('/runs/:run_id', (req, res, ctx) => svc.sendJson(res, 200, runLog(findRun(ctx.params.run_id), req)));
  r.get('/runs/:run_id/status', (req, res, ctx) => {
    const run = findRun(ctx.params.run_id);
    svc.sendJson(res, 200, { run_id: run.run_id, state: run.state });
  });
  r.post('/runs/:run_id/cancel', async (req, res, ctx) => {
    const run = findRun(ctx.params.run_id);
    // sapporo signals run.sh only when the run is RUNNING; QUEUED / INITIALIZING / finished: nothing
    if (run.state === 'RUNNING' && !run.synthetic) await core.cancelRun(run);
    svc.sendJson(res, 200, { run_id: run.run_id });
  });
  r.get('/runs/:run_id/data/:rest*', (req, res, ctx) => {
    const run = findRun(ctx.params.run_id);
    const rest = ctx.params.rest;
    const m = /^(outputs|exe)\/(.+)$/.exec(rest);
    let file = null;
    if (m && !run.synthetic) {
      let rel;
      try { rel = core.attachmentPath(m[2]); } catch (e) { rel = null; }
      if (rel) file = path.join(run.dir, m[1] === 'outputs' ? 'outdir' : 'attachments', rel);
    }
    let st = null;
    try { st = file && fs.statSync(file); } catch (e) { st = null; }
    if (!st || !st.isFile()) throw svc.httpError(404, `\`${rest}\` is not found.`);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': st.size,
      'Content-Disposition': `attachment; filename=${path.basename(file)}` });
    fs.createReadStream(file).pipe(res);
  });
}

// Flask's 404 for routes sapporo does not have (e.g. /runs/{id}/tasks), through sapporo's JSON error handler
function notFound(req, res) {
  require('../../lib/service').sendError(res, 404, 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.');
}

module.exports = { register, notFound, apiBase: '', ENGINES };
