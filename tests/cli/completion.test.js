'use strict';
// Shell completion: the committed scripts are what the binary generates from its command tree (so every
// command and flag is covered), and bash and fish complete real command lines with them.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { BIN, home, impact } = require('./helpers');

const DIR = path.join(__dirname, '../../completions');
const FILES = { bash: 'impact.bash', zsh: '_impact', fish: 'impact.fish' };

function withProfiles(t) {
  const dir = home(t);
  for (const name of ['alpha', 'beta']) {
    const r = impact(dir, ['profile', 'add', name, '--beacon', `pub=http://127.0.0.1:9/api`, '--beacon', `ctl=http://127.0.0.1:9/api2`]);
    assert.equal(r.code, 0, r.stderr);
  }
  return dir;
}

// Runs a shell with the built impact first on PATH and the test's XDG home.
function shell(dir, argv, script) {
  const env = { PATH: `${path.dirname(path.resolve(BIN))}:${process.env.PATH}`, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache'), LANG: 'C.UTF-8' };
  const r = spawnSync(argv[0], [...argv.slice(1), script], { env, encoding: 'utf8', timeout: 20000, cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
}
const bash = (dir, words) => shell(dir, ['bash', '-c'],
  `source ${JSON.stringify(path.join(DIR, FILES.bash))}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); ` +
  `COMP_CWORD=${words.length - 1}; _impact; printf '%s\\n' "\${COMPREPLY[@]}"`);
const fish = (dir, line) => shell(dir, ['fish', '-c'], `source ${JSON.stringify(path.join(DIR, FILES.fish))}; complete -C ${JSON.stringify(line)}`);

test('the committed completion scripts are what the binary generates (run completions/generate.sh)', (t) => {
  const dir = home(t);
  for (const [sh, file] of Object.entries(FILES)) {
    const r = impact(dir, ['completion', sh]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(DIR, file), 'utf8'), r.stdout,
      `completions/${file} is out of step with the binary: run completions/generate.sh ${BIN}`);
  }
  assert.equal(impact(dir, ['completion', 'tcsh']).code, 2);
});

test('every flag of every command is in the scripts', (t) => {
  const dir = home(t);
  const text = fs.readFileSync(path.join(DIR, FILES.bash), 'utf8');
  for (const cmd of [[], ['login'], ['auth', 'status'], ['token'], ['passport'], ['profile', 'add'], ['search', 'variants'], ['doctor']]) {
    const help = impact(dir, [...cmd, '--help']).stdout;
    for (const flag of help.match(/(?<=\s)--[a-z][a-z0-9-]+/g) || []) assert.ok(text.includes(` ${flag}`) || text.includes(`'${flag}`), `${cmd.join(' ')} ${flag}`);
  }
});

test('bash completes commands, subcommands, flags and dynamic values', (t) => {
  const dir = withProfiles(t);
  assert.deepEqual(bash(dir, ['impact', 'lo']), ['login', 'logout']);
  assert.deepEqual(bash(dir, ['impact', 'auth', '']), ['status']);
  const loginFlags = bash(dir, ['impact', 'login', '--']);
  for (const f of ['--no-qr', '--client-credentials', '--scope', '--profile', '--json']) assert.ok(loginFlags.includes(f), f);
  assert.deepEqual(bash(dir, ['impact', '--profile', '']), ['alpha', 'beta']);
  assert.deepEqual(bash(dir, ['impact', '--profile', 'alpha', 'profile', 'use', 'b']), ['beta']);
  assert.deepEqual(bash(dir, ['impact', '--format', '']), ['table', 'tsv', 'json']);
  assert.deepEqual(bash(dir, ['impact', 'search', 'individuals', '--beacon', '']).sort(), ['ctl', 'pub']);
  assert.deepEqual(bash(dir, ['impact', 'service-info', 'd']), ['drs']);
  // On/off flags take no value: the word after them is still a command, or a flag.
  assert.deepEqual(bash(dir, ['impact', '--json', 'run', 'l']), ['list', 'logs']);
  assert.deepEqual(bash(dir, ['impact', '-v', 'run', 'sh']), ['show']);
  assert.deepEqual(bash(dir, ['impact', 'he']), ['help']);
  assert.deepEqual(bash(dir, ['impact', 'help', 'run', 'su']), ['submit']);
  assert.ok(bash(dir, ['impact', 'run', 'submit', 'x.cwl', '--wait', '--']).includes('--params'));
  assert.deepEqual(bash(dir, ['impact', '--profile', 'beta', 'search', 'individuals', '--beacon', 'c']), ['ctl']);
  fs.writeFileSync(path.join(dir, 'params.json'), '{}');
  assert.deepEqual(bash(dir, ['impact', 'login', '--config', 'par']), ['params.json']);
});

test('fish completes the same command lines', (t) => {
  const dir = withProfiles(t);
  assert.deepEqual(fish(dir, 'impact lo'), ['login', 'logout']);
  assert.deepEqual(fish(dir, 'impact --profile '), ['alpha', 'beta']);
  assert.deepEqual(fish(dir, 'impact search individuals --granularity '), ['boolean', 'count', 'record']);
  assert.ok(fish(dir, 'impact passport --').includes('--refresh'));
  assert.deepEqual(fish(dir, 'impact -v run sh'), ['show']);
  assert.deepEqual(fish(dir, 'impact --json run l'), ['list', 'logs']);
  assert.deepEqual(fish(dir, 'impact help run su'), ['submit']);
});

test('the zsh script parses', () => {
  const r = spawnSync('zsh', ['-n', path.join(DIR, FILES.zsh)], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
});

// Run ids against a WES with 10,000 runs: listed once, then served from a short-lived per-profile cache
// (cache_home/run-ids/PROFILE.json, 0600 in a 0700 folder) until it expires or the profile submits or cancels
// a run, logs in or out.
test('completing run ids: 10,000 runs listed once, then from the cache (< 300 ms); cancel forgets it', async (t) => {
  const { server, serviceInfo, impactAsync } = require('./helpers');
  const ids = Array.from({ length: 10000 }, (_, i) => `run-${String(i).padStart(5, '0')}`);
  const wes = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname.endsWith('/service-info')) return { status: 200, body: serviceInfo('wes', 'wes', 'http://127.0.0.1') };
    if (u.pathname.endsWith('/runs') && req.method === 'GET') {
      const size = Math.min(Number(u.searchParams.get('page_size') || 100), 1000);
      const from = Number(u.searchParams.get('page_token') || 0);
      const runs = ids.slice(from, from + size).map((run_id) => ({ run_id, state: 'COMPLETE' }));
      return { status: 200, body: { runs, next_page_token: from + size < ids.length ? String(from + size) : '' } };
    }
    if (req.method === 'POST' && u.pathname.endsWith('/cancel')) return { status: 200, body: { run_id: 'run-00001' } };
    if (u.pathname.endsWith('/status')) return { status: 200, body: { run_id: 'run-00001', state: 'RUNNING' } };
    return { status: 404, body: { msg: 'no', status_code: 404 } };
  });
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'w', '--wes', `${wes.url}/ga4gh/wes/v1`]).code, 0);
  const lists = () => wes.seen.filter((s) => s.method === 'GET' && /\/runs(\?|$)/.test(s.url)).length;

  let r = await impactAsync(dir, ['__complete', 'run']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), ids);
  const listed = lists();
  assert.ok(listed >= 10, `paged through the list (${listed} pages)`);
  const file = path.join(dir, 'cache', 'impact', 'run-ids', 'w.json');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);

  const started = process.hrtime.bigint();
  r = await impactAsync(dir, ['__complete', 'run']);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trimEnd().split('\n').length, ids.length);
  assert.equal(lists(), listed, 'served from the cache: no request');
  assert.ok(ms < 300, `answered in ${ms.toFixed(0)} ms`);

  // Another WES URL for the same profile name: the cache is not used.
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...j, wes: 'http://127.0.0.1:9/other' }), { mode: 0o600 });
  r = await impactAsync(dir, ['__complete', 'run']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lists() > listed, 'listed again for the profile\'s own WES');

  // A cancellation through the profile forgets the list.
  assert.ok(fs.existsSync(file));
  r = await impactAsync(dir, ['run', 'cancel', 'run-00001']);
  assert.ok(!fs.existsSync(file), `cancel forgot the cached ids (exit ${r.code}: ${r.stderr})`);
});
