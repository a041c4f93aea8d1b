'use strict';
// Security checks (issue 9, SECURITY.md): a whole researcher's journey with --debug, scanned for secrets in
// every output, error message and file impact wrote (except the token state itself) and in the process list
// while it runs; symbolic links in the token folder. Other promises are proven where the feature is tested
// (SECURITY.md lists them).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { federation, home, impact, impactAsync, login, approve, tokenFile, readTokenState, expireAccessToken, oidcStats, resetOidcStats } = require('./helpers');

const fed = federation();
const WORKFLOWS = path.resolve(__dirname, '../federation/wes/workflows');

// Every secret in the token state: tokens, the broker passport, each visa JWT and its signature alone.
function secretsOf(state) {
  const out = [state.access_token, state.refresh_token, state.passport, ...(state.visas || [])].filter((s) => s && s.length >= 16);
  for (const s of [...out]) if (s.split('.').length === 3 && s.split('.')[2].length >= 16) out.push(s.split('.')[2]);
  return out;
}

// The command lines (and, for impact's own processes, the environments) of every process, sampled every
// 20 ms (at most `limit` samples) until `done` resolves.
async function watchProcesses(done, limit = 3000) {
  const seen = new Set();
  let finished = false;
  done.then(() => { finished = true; }, () => { finished = true; });
  for (let i = 0; i < limit && !finished; i++) {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        seen.add(cmd);
        if (/impact\0/.test(cmd)) seen.add(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'));
      } catch { /* gone, or not ours */ }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return [...seen];
}

function filesUnder(dir) {
  return fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, f)).filter((f) => fs.lstatSync(f).isFile());
}

test('a whole journey with --debug: no token, refresh token, client secret or visa in any output, file or process', async (t) => {
  await fetch(`${fed.issuer}/__control`, { method: 'POST', body: JSON.stringify({ deviceInterval: 1 }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) });
  const dir = home(t);
  const clientSecret = fs.readFileSync(fed.clients['impact-ci'].secret_file, 'utf8').trim();
  const p = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry, '--client-id', 'impact-ci', '--client-secret-file', fed.clients['impact-ci'].secret_file]);
  assert.equal(p.code, 0, p.stderr);
  const outputs = [];   // [what, text]
  const secrets = new Set([clientSecret]);
  const learn = () => { for (const s of secretsOf(readTokenState(dir))) secrets.add(s); };
  const run = async (args, { expect = 0, stdoutIsSecret = false, timeout = 120000 } = {}) => {
    const r = await impactAsync(dir, ['--debug', ...args], { timeout });
    assert.equal(r.code, expect, `impact ${args.join(' ')}: ${r.stderr}`);
    outputs.push([`stderr of ${args.join(' ')}`, r.stderr]);
    if (!stdoutIsSecret) outputs.push([`stdout of ${args.join(' ')}`, r.stdout]);
    learn();
    return r;
  };

  const li = await login(dir, ['--no-qr', '--debug'], (code) => approve(code, 'alice'));
  assert.equal(li.code, 0, li.stderr);
  assert.match(li.stderr, /^> /m, '--debug printed request headers');
  outputs.push(['login stderr', li.stderr], ['login stdout', li.stdout]);
  learn();
  assert.equal(fs.statSync(tokenFile(dir)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(tokenFile(dir))).mode & 0o777, 0o700);

  // a refresh (the token itself is what `impact token` prints: its stdout is not scanned)
  expireAccessToken(dir);
  await resetOidcStats();
  const tok = await run(['token'], { stdoutIsSecret: true });
  assert.ok(secrets.has(tok.stdout.trim()), 'the scan knows the refreshed token (a control: it would find a leak)');
  assert.equal((await oidcStats())['success:refresh_token'], 1);

  await run(['search', 'individuals', '--filter', 'HP:0001250']);
  const drsHost = new URL(fed.services.drs).host;
  const drs = await run(['drs', 'download', `drs://${drsHost}/egad-controlled-1.vcf`, '-o', path.join(dir, 'out', 'drs')]);
  // the signed URL's request carries no bearer token (also drs.test.js)
  const signed = drs.stderr.split(/^(?=\* )/m).filter((b) => /X-Amz-Signature=REDACTED/.test(b.split('\n')[0]));
  assert.ok(signed.length >= 1, drs.stderr);
  for (const b of signed) assert.doesNotMatch(b, /^> Authorization/m);

  // a workflow run, watched in the process list while it runs, then its results
  const submitted = run(['run', 'submit', path.join(WORKFLOWS, 'count-variants.cwl'), '--params', path.join(WORKFLOWS, 'count-variants.params.json'),
    '--attach', path.join(WORKFLOWS, 'example.vcf'), '--wait', '--poll-interval', '1s'], { timeout: 240000 });
  const cmdlines = await watchProcesses(submitted);
  const sub = await submitted;
  assert.ok(cmdlines.some((c) => /impact\0--debug\0run\0submit/.test(c)), 'the watch saw the running command');
  const runId = sub.stdout.trim().split('\n')[0];
  await run(['results', 'download', runId, '-o', path.join(dir, 'out', 'results')]);
  assert.ok(filesUnder(path.join(dir, 'out', 'results')).length > 0, 'the results were downloaded');

  // error messages of failing commands
  await run(['drs', 'info', `drs://${drsHost}/no-such-object`], { expect: 1 });
  await run(['run', 'show', '00000000-0000-0000-0000-000000000000'], { expect: 1 });
  await run(['results', 'download', `s3://${fed.s3.results_bucket || 'results'}/no/such/key`, '-o', path.join(dir, 'out', 'none')], { expect: 1 });

  assert.ok(secrets.size >= 8, `secrets collected: ${secrets.size}`);
  const tokenState = path.dirname(tokenFile(dir));
  const written = filesUnder(dir).filter((f) => path.dirname(f) !== tokenState).map((f) => [f, fs.readFileSync(f, 'latin1')]);
  assert.ok(written.some(([f]) => f.includes(`${path.sep}cache${path.sep}`)), 'the caches are scanned too');
  t.diagnostic(`${secrets.size} secrets searched in ${outputs.length} outputs (${outputs.reduce((n, [, x]) => n + x.length, 0)} bytes), ` +
    `${written.length} files and ${cmdlines.length} distinct command lines and environments`);
  for (const secret of secrets) {
    for (const [what, text] of [...outputs, ...written]) assert.ok(!text.includes(secret), `a secret in ${what}`);
    for (const c of cmdlines) assert.ok(!c.includes(secret), `a secret in the process list: ${c.slice(0, 200)}`);
  }
});

test('a symbolic link in place of the token file or its lock is refused, and the linked file is left alone', async (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]).code, 0);
  const li = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'));
  assert.equal(li.code, 0, li.stderr);
  const state = readTokenState(dir);
  // the token file replaced by a link to a file elsewhere: not read
  const elsewhere = path.join(dir, 'elsewhere.json');
  fs.renameSync(tokenFile(dir), elsewhere);
  fs.symlinkSync(elsewhere, tokenFile(dir));
  const r = impact(dir, ['token']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /tokens\/local\.json is a symbolic link; impact does not follow links/);
  assert.ok(!r.stdout.includes(state.access_token) && !r.stderr.includes(state.access_token));
  // the real file back, and a link where the refresh lock goes: no refresh through it, nothing created there
  fs.rmSync(tokenFile(dir));
  fs.renameSync(elsewhere, tokenFile(dir));
  expireAccessToken(dir);
  const victim = path.join(dir, 'victim');
  const lock = path.join(path.dirname(tokenFile(dir)), 'local.lock');
  fs.rmSync(lock, { force: true });
  fs.symlinkSync(victim, lock);
  const l = impact(dir, ['token']);
  assert.equal(l.code, 1, l.stderr);
  assert.match(l.stderr, /cannot open the lock file .*local\.lock/);
  assert.ok(!fs.existsSync(victim), 'the link was not followed');
  assert.equal(l.stderr.split('\n').filter((x) => x && !x.startsWith('hint:')).length, 1, 'one error line');
});

// Issue 22, finding 8: as OpenSSH does for keys, private files others could read or swap are refused.
test('a token file other users can read or write, or a token folder they can write, is refused with a chmod hint', async (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]).code, 0);
  const li = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'));
  assert.equal(li.code, 0, li.stderr);
  const state = readTokenState(dir);
  const file = tokenFile(dir);
  const folder = path.dirname(file);
  fs.chmodSync(file, 0o666);
  const r = impact(dir, ['token']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /local\.json can be read or changed by other users \(mode 0666\)/);
  assert.match(r.stderr, /hint: run: chmod 600 .*local\.json/);
  assert.ok(!r.stdout.includes(state.access_token) && !r.stderr.includes(state.access_token));
  fs.chmodSync(file, 0o600);
  fs.chmodSync(folder, 0o777);
  const f = impact(dir, ['token']);
  assert.equal(f.code, 1, f.stderr);
  assert.match(f.stderr, /the folder .*tokens can be written by other users \(mode 0777\)/);
  assert.match(f.stderr, /hint: run: chmod 700 .*tokens/);
  fs.chmodSync(folder, 0o700);
  const ok = impact(dir, ['token']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), state.access_token);
});

// (impactAsync: the HTTPS servers live in this process.)
// A self-signed certificate for `san` (e.g. IP:127.0.0.1), made with the openssl tool in `dir`.
function selfSigned(dir, name, san) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const r = require('node:child_process').spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
}

test('TLS is always verified: an unknown CA and a wrong host name are refused before any request is sent', async (t) => {
  const dir = home(t);
  const seen = [];
  const start = async (c) => {
    const s = require('node:https').createServer({ key: c.key, cert: c.cert }, (req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', name: 'x', type: { group: 'org.ga4gh', artifact: 'wes', version: '1.1.0' }, organization: { name: 'x', url: 'https://example.org' }, version: '1' }));
    });
    await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
    t.after(() => new Promise((ok) => { s.closeAllConnections(); s.close(ok); }));
    return `https://127.0.0.1:${s.address().port}/ga4gh/wes/v1`;
  };
  const good = selfSigned(dir, 'loopback', 'IP:127.0.0.1');
  const wrongName = selfSigned(dir, 'elsewhere', 'DNS:elsewhere.example.org');
  const env = { IMPACT_TOKEN: 'tls-test-token-0123456789' };
  for (const [c, trust, pattern] of [[good, null, /certificate/i], [wrongName, wrongName.certFile, /certificate|host name|does not match/i]]) {
    const url = await start(c);
    const d = home(t);
    assert.equal(impact(d, ['profile', 'add', 'p', '--wes', url]).code, 0);
    const r = await impactAsync(d, ['service-info', 'wes', ...(trust ? ['--cacert', trust] : [])], { env });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, pattern);
    assert.deepEqual(seen, [], 'no request went out over an unverified connection');
  }
  // the same server with its certificate trusted (--cacert) is fine: the refusal above was the verification
  const url = await start(good);
  const d = home(t);
  assert.equal(impact(d, ['profile', 'add', 'p', '--wes', url]).code, 0);
  const ok = await impactAsync(d, ['service-info', 'wes', '--cacert', good.certFile], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(seen.length > 0);
});
