'use strict';
// The scripts in examples/ run as a user would run them, against the local federation: the quick start's
// researcher journey, the SLURM job script, the CI step, the sample-sheet batch, and tokens for curl/Python.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const { BIN, FED_STATE, federation, home, impact, userToken } = require('./helpers');

const fed = federation();
const ROOT = path.resolve(__dirname, '../..');
const EXAMPLES = path.join(ROOT, 'examples');
const WORKFLOWS = path.join(ROOT, 'tests/federation/wes/workflows');

// A folder with `impact` in it (the binary under test), first on the scripts' PATH.
const BIN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-bin-'));
fs.symlinkSync(BIN, path.join(BIN_DIR, 'impact'));
process.on('exit', () => fs.rmSync(BIN_DIR, { recursive: true, force: true }));

function envOf(dir, extra = {}) {
  return {
    PATH: `${BIN_DIR}:${process.env.PATH}`, HOME: dir, LANG: 'C.UTF-8',
    XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache'),
    ...extra,
  };
}

// Runs a script (bounded in time) in `cwd`; resolves {code, stdout, stderr}. `onStart(child)` may watch it.
function script(file, args, { dir, cwd = dir, env = {}, timeout = 240000, onStart } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env: envOf(dir, env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${file} timed out; stderr: ${stderr}`)); }, timeout);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    if (onStart) onStart(child);
  });
}

// A home with the profile 'local' and alice logged in through examples/lib/scripted-login.sh.
async function loggedIn(t) {
  const dir = home(t);
  const login = `. '${EXAMPLES}/lib/scripted-login.sh' && impact profile add local --registry '${fed.registry}' && scripted_login alice`;
  const r = await script('bash', ['-c', login], { dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Logged in to profile 'local' as alice/);
  return dir;
}

// A work folder holding the federation's count-variants workflow, its parameters and its example VCF.
function workCopy(dir) {
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  for (const f of ['count-variants.cwl', 'count-variants.params.json', 'example.vcf', 'fails.cwl', 'fails.params.json'])
    fs.copyFileSync(path.join(WORKFLOWS, f), path.join(work, f));
  return work;
}
const records = (vcf) => fs.readFileSync(vcf, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length;
const runsTagged = (dir, tag, env = {}) => {
  const r = impact(dir, ['--json', 'run', 'list', '--tag', tag], { env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).runs;
};

test('quickstart: profile, login, search, DRS download, run, results, logout', async (t) => {
  const dir = home(t);
  const demo = path.join(dir, 'demo');
  const r = await script(path.join(EXAMPLES, 'quickstart.sh'), ['--registry', fed.registry], { dir, env: { IMPACT_DEMO_DIR: demo } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /Logged in to profile 'local' as alice/);
  assert.match(r.stdout, /^\$ impact search individuals/m);
  assert.match(r.stdout, /^\$ impact workflow search variants/m);
  assert.match(r.stdout, /#workflow\/github\.com\/impact-fed\/count-variants-multi/);
  const vcf = path.join(demo, 'analysis', 'data', 'EGAD-CONTROLLED-1.vcf');
  assert.ok(fs.existsSync(vcf), 'the controlled VCF was downloaded with the visa');
  // the archive's files, decrypted: byte-identical to the plaintexts the archive encrypted
  const plain = path.join(fed.state, 'data', 'sda', 'plain', 'EGAD-CONTROLLED-1', 'samples', 's1.vcf');
  assert.ok(fs.readFileSync(path.join(demo, 'archive', 'samples', 's1.vcf')).equals(fs.readFileSync(plain)), 'archive download decrypted');
  // the htsget slice: every record samtools finds in that region of the local indexed BAM, and a valid BAM
  const bam = path.join(ROOT, 'tests/data/crypt4gh/htsget-rs/plain/htsnexus_test_NA12878.bam');
  const bai = path.join(ROOT, 'tests/data/htsget/htsnexus_test_NA12878.bam.bai');
  const view = (...args) => {
    const v = spawnSync('samtools', ['view', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(v.status, 0, v.stderr);
    return v.stdout.split('\n').filter(Boolean);
  };
  const want = view('-X', bam, bai, '11:5000000-5010000');
  const got = new Set(view(path.join(demo, 'slice.bam')));
  assert.ok(want.length > 0 && want.every((l) => got.has(l)), `htsget slice: ${got.size} records, ${want.length} expected in it`);
  const runId = /^([0-9a-f-]{36})\tCOMPLETE$/m.exec(r.stdout)[1];
  // The results came home and agree with the input: every record counted once.
  const counts = fs.readFileSync(path.join(demo, 'results', 'counts.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
  const total = Number(fs.readFileSync(path.join(demo, 'results', 'total.txt'), 'utf8'));
  assert.equal(total, records(vcf));
  assert.equal(counts.reduce((s, c) => s + Number(c[1]), 0), total);
  assert.match(r.stdout, new RegExp(`Done: run ${runId}`));
  // the registered workflow ran, and the run says where it came from
  assert.match(r.stdout, /trs_id[=\s:"]+#workflow\/github\.com\/impact-fed\/count-variants-multi/);
  // Logged out: the token file is gone, so impact asks for a login again.
  const after = impact(demo, ['token']);
  assert.equal(after.code, 4, after.stderr);
});

test('SLURM job script: the preflight refuses a login that ends before the job; else it runs and downloads', async (t) => {
  const dir = await loggedIn(t);
  const work = workCopy(dir);
  const job = path.join(EXAMPLES, 'hpc', 'slurm-job.sh');
  const header = fs.readFileSync(job, 'utf8').split('\n').filter((l) => l.startsWith('#SBATCH'));
  assert.ok(header.some((l) => /--time=48:00:00/.test(l)), 'sbatch directives in the header');
  const args = ['count-variants.cwl', 'count-variants.params.json', 'example.vcf'];

  // The default 48h: alice's LinkedIdentities visa ends sooner, so nothing is submitted (exit 4).
  const jobId = `j${crypto.randomBytes(4).toString('hex')}`;
  const refused = await script(job, args, { dir, cwd: work, env: { SLURM_JOB_ID: jobId } });
  assert.equal(refused.code, 4, refused.stderr);
  // the federation's sessions last 24 h: a new login cannot cover 48 h, and the hint says so
  assert.match(refused.stderr, /hint: the identity provider's sessions last 1d \(its refresh token lifetime\), so a new login cannot cover 2d either: log in right before the job \(impact login\)/);
  assert.deepEqual(runsTagged(dir, `slurm_job=${jobId}`), []);

  const ok = await script(job, args, { dir, cwd: work, env: { SLURM_JOB_ID: jobId, IMPACT_MIN_VALID: '1m', IMPACT_POLL: '1s' } });
  assert.equal(ok.code, 0, ok.stderr);
  const runs = runsTagged(dir, `slurm_job=${jobId}`);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].state, 'COMPLETE');
  const results = path.join(work, `results-${runs[0].run_id}`);
  assert.equal(Number(fs.readFileSync(path.join(results, 'total.txt'), 'utf8')), records(path.join(work, 'example.vcf')));
  assert.match(ok.stdout, new RegExp(`results of run ${runs[0].run_id} in results-`));
});

test('CI step with IMPACT_TOKEN: a complete run leaves its results; a failed run fails the pipeline (exit 10)', async (t) => {
  const dir = home(t);
  const work = workCopy(dir);
  const step = path.join(EXAMPLES, 'ci', 'submit-and-check.sh');
  const token = (await userToken('alice')).access_token;
  const env = { IMPACT_TOKEN: token, IMPACT_REGISTRY: fed.registry, IMPACT_POLL: '1s', CI_PIPELINE_ID: `p${process.pid}` };
  const ok = await script(step, ['count-variants.cwl', 'count-variants.params.json', 'example.vcf'], { dir, cwd: work, env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(fs.existsSync(path.join(work, 'results', 'counts.tsv')));
  assert.ok(!fs.existsSync(path.join(dir, 'state', 'impact', 'tokens')), 'IMPACT_TOKEN: nothing stored');

  const bad = await script(step, ['fails.cwl', 'fails.params.json'], { dir, cwd: work, env: { ...env, RESULTS_DIR: 'failed' } });
  assert.equal(bad.code, 10, bad.stderr);
  assert.match(bad.stderr, /::error::run [0-9a-f-]{36} failed \(impact exit 10\)/);
  assert.match(bad.stderr, /fails\.cwl: failing on purpose/, 'the tool\'s stderr is in the job log');
  assert.ok(!fs.existsSync(path.join(work, 'failed')));
  const tagged = runsTagged(dir, `ci_pipeline=p${process.pid}`, { IMPACT_TOKEN: token });
  assert.deepEqual(tagged.map((x) => x.state).sort(), ['COMPLETE', 'EXECUTOR_ERROR']);
});

test('CI step with a client secret: logs in with client credentials; no credentials at all is a clear failure', async (t) => {
  const dir = home(t);
  const work = workCopy(dir);
  const step = path.join(EXAMPLES, 'ci', 'submit-and-check.sh');
  const none = await script(step, ['count-variants.cwl'], { dir, cwd: work, env: { IMPACT_REGISTRY: fed.registry } });
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /set IMPACT_TOKEN or IMPACT_CLIENT_SECRET/);

  const secret = fs.readFileSync(path.join(FED_STATE, 'impact-ci.secret'), 'utf8').trim();
  const r = await script(step, ['count-variants.cwl', 'count-variants.params.json', 'example.vcf'],
    { dir, cwd: work, env: { IMPACT_REGISTRY: fed.registry, IMPACT_CLIENT_SECRET: secret, IMPACT_POLL: '1s' } });
  assert.match(r.stderr, /Logged in to profile 'ci' with client impact-ci/);
  // The federation's WES serves people, not clients: it refuses the client's token, and the pipeline fails.
  assert.equal(r.code, 4, r.stderr);
  assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
});

test('batch from a sample sheet: one run per row, results joined; a second start resumes and submits nothing', async (t) => {
  const dir = await loggedIn(t);
  const batch = path.join(EXAMPLES, 'batch', 'run-batch.sh');
  const sheet = path.join(dir, 'samples.tsv');   // a sheet of this test's own, so its ledger is new
  fs.copyFileSync(path.join(EXAMPLES, 'batch', 'samples.tsv'), sheet);
  const first = await script(batch, [sheet], { dir, env: { IMPACT_POLL: '1s' } });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(fs.readFileSync(path.join(dir, 'batch-results', 'summary.tsv'), 'utf8'), 'S1\t3\t2\nS2\t1\t1\nS3\t4\t4\n');
  const runs1 = fs.readFileSync(path.join(dir, 'batch-results.runs.tsv'), 'utf8');
  assert.equal(runs1.trim().split('\n').length, 3);

  const again = await script(batch, [sheet], { dir, env: { IMPACT_POLL: '1s' } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fs.readFileSync(path.join(dir, 'batch-results.runs.tsv'), 'utf8'), runs1, 'the same runs, none new');
  const ledgers = fs.readdirSync(path.join(dir, 'state', 'impact', 'batches'));
  assert.equal(ledgers.length, 1);
  const batchId = path.basename(ledgers[0], '.json');
  assert.equal(runsTagged(dir, `impact_batch=${batchId}`).length, 3);
});

// Every process' command line, read from /proc now.
function cmdlines() {
  const out = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try { out.push(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')); } catch { /* gone */ }
  }
  return out;
}

test('impact token from curl and Python requests: the token reaches the server and never any argv', async (t) => {
  const dir = await loggedIn(t);
  // A server that wants the token and answers slowly, so the clients are alive long enough to be watched.
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers.authorization || '');
    setTimeout(() => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"ok":true}'); }, 400);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }));

  const lines = new Set();
  let done = false;
  const run = script(path.join(EXAMPLES, 'token-from-other-tools.sh'), [`http://127.0.0.1:${srv.address().port}/data`], { dir });
  run.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 5000 && !done; i++) {
    for (const l of cmdlines()) lines.add(l);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => l === '{"ok":true}').length, 3);
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'impact', 'tokens', 'local.json'), 'utf8'));
  assert.deepEqual(seen, Array(3).fill(`Bearer ${state.access_token}`));
  const all = [...lines];
  assert.ok(all.some((l) => /^curl /.test(l)) && all.some((l) => /(^|\/)python3 - /.test(l)), 'the watch saw curl and python3 run');
  assert.deepEqual(all.filter((l) => l.includes(state.access_token)), []);
});

test('SPE4HD (WESkit): a Snakemake run submitted, waited for, its log read, shown, its presigned outputs downloaded', async (t) => {
  const dir = home(t);
  const wes = fed.services['wes-weskit'];
  assert.ok(wes, 'the federation runs its WESkit-mode WES');
  assert.equal(impact(dir, ['profile', 'add', 'spe4hd', '--wes', wes]).code, 0);
  const token = (await userToken('alice')).access_token;
  const r = await script(path.join(EXAMPLES, 'spe4hd', 'run.sh'), ['results'], { dir, env: { IMPACT_TOKEN: token, IMPACT_POLL: '1s' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const runId = /^([0-9a-f-]{36})\tCOMPLETE$/m.exec(r.stdout)[1];
  assert.match(r.stdout, /^\$ impact run logs /m);
  assert.match(r.stdout, /^output\tS3: .*results\/total\.txt\?.*=REDACTED/m);
  const vcf = path.join(EXAMPLES, 'spe4hd', 'example.vcf');
  assert.equal(Number(fs.readFileSync(path.join(dir, 'results', 'results', 'total.txt'), 'utf8')), records(vcf));
  assert.match(r.stdout, new RegExp(`Done: run ${runId}`));
});
