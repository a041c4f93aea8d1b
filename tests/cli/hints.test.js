'use strict';
// Hints that lead somewhere (issue 21, items 3, 5, 6, 9, 11): each message names a command that works as
// written, with --profile NAME when the profile is not the default; proxies and private CAs are named for
// what they are. Every server here is a loopback server of this process; no federation.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { home, impact, impactAsync, server, serviceInfo } = require('./helpers');

const nowS = () => Math.floor(Date.now() / 1000);

function addProfile(dir, name, args) {
  const r = impact(dir, ['profile', 'add', name, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

// A token state as impact stores it (0600 in 0700 folders), for states a test cannot get from a provider.
function writeTokenState(dir, profile, state) {
  let folder = dir;
  for (const part of ['state', 'impact', 'tokens']) {
    folder = path.join(folder, part);
    if (!fs.existsSync(folder)) fs.mkdirSync(folder, { mode: 0o700 });
  }
  const now = nowS();
  const full = {
    format: 1, visas: [], issuer: 'http://127.0.0.1:9/', client_id: 'impact-cli', grant: 'device_code',
    access_token: 'stored-access-token-0123456789', access_expires: now + 3600, access_lifetime: 3600,
    refresh_token: '', refresh_expires: 0, scope: 'openid', logged_in: now, refreshed: 0, ...state,
  };
  fs.writeFileSync(path.join(folder, `${profile}.json`), JSON.stringify(full), { mode: 0o600 });
}

// An unsigned JWT (impact reads its exp without trusting it).
function jwt(payload) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64(payload)}.${Buffer.from('sig').toString('base64url')}`;
}

// A port with nothing listening on it.
async function deadPort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// A self-signed certificate for `san` (e.g. IP:127.0.0.1), made with the openssl tool in `dir`.
function selfSigned(dir, name, san) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
}

// An HTTPS WES (service-info only) with certificate `c`; returns its base URL and the requests it saw.
async function httpsWes(t, c) {
  const seen = [];
  const s = https.createServer({ key: c.key, cert: c.cert }, (req, res) => {
    seen.push(req.url);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(serviceInfo('x', 'wes', 'https://example.org')));
  });
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); }));
  return { url: `https://127.0.0.1:${s.address().port}/ga4gh/wes/v1`, seen };
}

// ---- item 5: hints name the profile

test('profile add: "Next:" names the new profile when it is not the default', (t) => {
  const dir = home(t);
  const first = addProfile(dir, 'a', ['--issuer', 'http://127.0.0.1:9/', '--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  assert.match(first.stderr, /Next: impact doctor, then impact login\n/);
  const second = addProfile(dir, 'bob', ['--issuer', 'http://127.0.0.1:9/', '--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  assert.match(second.stderr, /Next: impact --profile bob doctor, then impact --profile bob login\n/);
  const third = addProfile(dir, 'c', ['--wes', 'http://127.0.0.1:9/ga4gh/wes/v1', '--default']);
  assert.match(third.stderr, /Next: impact doctor\n/);
});

test('auth status: not logged in to a named profile says how to log in to that profile', (t) => {
  const dir = home(t);
  addProfile(dir, 'a', ['--issuer', 'http://127.0.0.1:9/']);
  addProfile(dir, 'bob', ['--issuer', 'http://127.0.0.1:9/']);
  const r = impact(dir, ['--profile', 'bob', 'auth', 'status']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /not logged in to profile 'bob'\nhint: run: impact --profile bob login\n/);
  // an ended session, the same
  writeTokenState(dir, 'bob', { refresh_token: 'r-0123456789', refresh_expires: nowS() - 60, access_expires: nowS() - 60 });
  const ended = impact(dir, ['--profile', 'bob', 'auth', 'status']);
  assert.equal(ended.code, 4, ended.stderr);
  assert.match(ended.stderr, /the session has expired\nhint: run: impact --profile bob login\n/);
});

test('a token in IMPACT_TOKEN that a service refuses: the hint is about IMPACT_TOKEN, not impact login', async (t) => {
  const wes = await server(t, () => ({ status: 401, body: { msg: 'invalid token', status_code: 401 } }));
  const dir = home(t);
  addProfile(dir, 'local', ['--wes', `${wes.url}/ga4gh/wes/v1`, '--issuer', 'http://127.0.0.1:9/']);
  const r = await impactAsync(dir, ['run', 'list'], { env: { IMPACT_TOKEN: 'refused-token-0123456789' } });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /HTTP 401/);
  assert.match(r.stderr, /hint: the token in IMPACT_TOKEN was refused \(it may have expired; impact never refreshes it\): set IMPACT_TOKEN to a new token, or unset it to use the profile's own login\n/);
  assert.doesNotMatch(r.stderr, /impact login/);
  assert.ok(!r.stderr.includes('refused-token-0123456789'));
});

test('a CI client (client credentials) that the WES refuses: no loop back to impact login', async (t) => {
  const wes = await server(t, () => ({ status: 401, body: { msg: 'client not allowed', status_code: 401 } }));
  const dir = home(t);
  addProfile(dir, 'ci', ['--wes', `${wes.url}/ga4gh/wes/v1`, '--issuer', 'http://127.0.0.1:9/', '--client-id', 'impact-ci']);
  writeTokenState(dir, 'ci', { grant: 'client_credentials', client_id: 'impact-ci', scope: '' });
  const r = await impactAsync(dir, ['run', 'list']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /hint: profile 'ci' is logged in as the client 'impact-ci' \(client credentials\), and a new login would get the same refusal: this service gives that client no access; ask its operators to grant it\n/);
  assert.doesNotMatch(r.stderr, /run: impact login/);
  // a person's login refused gets the login hint, with the profile
  writeTokenState(dir, 'ci', {});
  const person = await impactAsync(dir, ['--profile', 'ci', 'run', 'list']);
  assert.equal(person.code, 4, person.stderr);
  assert.match(person.stderr, /hint: run: impact --profile ci login\n/);
});

// ---- item 3: the preflight

test('auth status with IMPACT_TOKEN: a JWT\'s exp is checked; an expiry that cannot be known fails --min-valid (exit 4)', (t) => {
  const dir = home(t);
  addProfile(dir, 'local', ['--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  const opaque = impact(dir, ['auth', 'status', '--min-valid', '72h'], { env: { IMPACT_TOKEN: 'opaque-token-0123456789' } });
  assert.equal(opaque.code, 4, opaque.stderr);
  assert.match(opaque.stdout, /using the bearer token in IMPACT_TOKEN \(expires at a time unknown to impact\)/);
  assert.match(opaque.stderr, /the expiry of the token in IMPACT_TOKEN cannot be known \(it is not a JWT with an exp claim\), so --min-valid 3d cannot be checked\nhint: unset IMPACT_TOKEN to check the profile's own login, or leave out --min-valid\n/);
  // without --min-valid there is nothing to fail
  assert.equal(impact(dir, ['auth', 'status'], { env: { IMPACT_TOKEN: 'opaque-token-0123456789' } }).code, 0);

  const token = jwt({ sub: 'alice', exp: nowS() + 3600 });
  const short = impact(dir, ['auth', 'status', '--min-valid', '72h', '--json'], { env: { IMPACT_TOKEN: token } });
  assert.equal(short.code, 4, short.stderr);
  const j = JSON.parse(short.stdout);
  assert.equal(j.source, 'IMPACT_TOKEN');
  assert.equal(j.ok, false);
  assert.ok(Math.abs(j.access_expires - (nowS() + 3600)) < 60);
  assert.match(j.problems[0], /^the token in IMPACT_TOKEN expires in (59m|1h)\S*, before the 3d asked for$/);
  assert.match(short.stderr, /hint: set IMPACT_TOKEN to a new token, or unset it to use the profile's own login\n/);
  const ok = impact(dir, ['auth', 'status', '--min-valid', '30m'], { env: { IMPACT_TOKEN: token } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /using the bearer token in IMPACT_TOKEN \(expires in /);
  // impact token: a JWT that ends before --min-valid is not handed out; an opaque one is, as it is
  const tok = impact(dir, ['token', '--min-valid', '2h'], { env: { IMPACT_TOKEN: token } });
  assert.equal(tok.code, 4, tok.stderr);
  assert.equal(tok.stdout, '');
  assert.match(tok.stderr, /^impact: the token in IMPACT_TOKEN expires in (59m|1h)\S*, before the 2h asked for\nhint: set IMPACT_TOKEN to a new token, or unset it to use the profile's own login\n$/);
  assert.equal(impact(dir, ['token', '--min-valid', '30m'], { env: { IMPACT_TOKEN: token } }).stdout, `${token}\n`);
  assert.equal(impact(dir, ['token', '--min-valid', '2h'], { env: { IMPACT_TOKEN: 'opaque-token-0123456789' } }).stdout, 'opaque-token-0123456789\n');
  const expired = impact(dir, ['auth', 'status'], { env: { IMPACT_TOKEN: jwt({ exp: nowS() - 120 }) } });
  assert.equal(expired.code, 4, expired.stderr);
  assert.match(expired.stderr, /the token in IMPACT_TOKEN has expired \(expired 2m\S* ago\)/);
});

test('auth status --min-valid beyond the provider\'s session lifetime: the hint says so instead of "impact login"', (t) => {
  const dir = home(t);
  addProfile(dir, 'a', ['--issuer', 'http://127.0.0.1:9/']);
  addProfile(dir, 'hpc', ['--issuer', 'http://127.0.0.1:9/']);
  const now = nowS();
  // a 24 h session (refresh token) that has 23 h left, and 48 h asked for
  writeTokenState(dir, 'hpc', { refresh_token: 'r-0123456789', refresh_expires: now + 23 * 3600, refresh_lifetime: 86400,
    logged_in: now - 3600, scope: 'openid offline_access' });
  const r = impact(dir, ['--profile', 'hpc', 'auth', 'status', '--min-valid', '48h']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /the session ends in 2[23]h\S*, before the 2d asked for\n/);
  assert.match(r.stderr, /hint: the identity provider's sessions last 1d \(its refresh token lifetime\), so a new login cannot cover 2d either: log in right before the job \(impact --profile hpc login\), or ask the provider's operators for longer sessions\n/);
  assert.match(r.stdout, /refresh token\s+expires in 2[23]h\S* \(issued for 1d\)/);
  // without offline_access, asking for it is one way
  writeTokenState(dir, 'hpc', { refresh_token: 'r-0123456789', refresh_expires: now + 23 * 3600, refresh_lifetime: 86400, scope: 'openid' });
  const noOffline = impact(dir, ['--profile', 'hpc', 'auth', 'status', '--min-valid', '48h']);
  assert.match(noOffline.stderr, /ask for offline access \(impact --profile hpc login --scope openid --scope offline_access --scope ga4gh_passport_v1\)/);
  // a session that is merely old: a new login gives enough
  writeTokenState(dir, 'hpc', { refresh_token: 'r-0123456789', refresh_expires: now + 3600, refresh_lifetime: 7 * 86400, scope: 'openid offline_access' });
  const old = impact(dir, ['--profile', 'hpc', 'auth', 'status', '--min-valid', '48h', '--json']);
  assert.equal(old.code, 4, old.stderr);
  assert.equal(JSON.parse(old.stdout).refresh_lifetime, 7 * 86400);
  assert.match(old.stderr, /hint: run: impact --profile hpc login\n/);
});

// ---- item 11: run wait with the WES down

test('run wait with the WES down: exit 1 saying it could not be reached, never "still running" (8)', async (t) => {
  const port = await deadPort();
  const dir = home(t);
  addProfile(dir, 'a', ['--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  addProfile(dir, 'down', ['--wes', `http://127.0.0.1:${port}/ga4gh/wes/v1`]);
  const r = await impactAsync(dir, ['--profile', 'down', 'run', 'wait', 'run-1', 'run-2', '--timeout', '3s', '--poll-interval', '1s']);
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /still running/);
  assert.match(r.stderr, /impact: the wait ran out of time while the service could not be reached \(cannot connect to 127\.0\.0\.1:\d+: [^)]*\): the state of the runs is unknown\n/);
  assert.match(r.stderr, /hint: check that the service is up and reachable from here; then keep waiting with: impact --profile down run wait run-1 run-2\n/);
});

// ---- item 6: a failed run shows its cause

test('run wait on a failed run (exit 10): the last 20 lines of its stderr, made safe, and the command for the rest', async (t) => {
  const lines = Array.from({ length: 30 }, (_, i) => `stderr line ${i + 1}`);
  lines[29] = 'Error: \x1b[31mfile not found\x1b[0m: data/x.vcf';
  const wes = await server(t, (req) => {
    if (req.url.endsWith('/runs/r1/status')) return { status: 200, body: { run_id: 'r1', state: 'EXECUTOR_ERROR' } };
    if (req.url.endsWith('/runs/r1')) {
      return { status: 200, body: { run_id: 'r1', state: 'EXECUTOR_ERROR', request: {}, run_log: { stderr: `${lines.join('\n')}\n` }, task_logs: [], outputs: {} } };
    }
    if (req.url.endsWith('/service-info')) return { status: 200, body: serviceInfo('x', 'wes', 'https://example.org') };
    return { status: 404, body: { msg: 'no', status_code: 404 } };
  });
  const dir = home(t);
  addProfile(dir, 'a', ['--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  addProfile(dir, 'w', ['--wes', `${wes.url}/ga4gh/wes/v1`]);
  const r = await impactAsync(dir, ['--profile', 'w', 'run', 'wait', 'r1']);  // stdout and stderr are pipes
  assert.equal(r.code, 10, r.stderr);
  assert.match(r.stdout, /r1\tEXECUTOR_ERROR/);
  assert.match(r.stderr, /run r1 ended in EXECUTOR_ERROR; the last 20 lines of its stderr:\n {2}\| stderr line 11\n/);
  assert.doesNotMatch(r.stderr, /stderr line 10\n/);
  assert.ok(!r.stderr.includes('\x1b'), 'no escape sequence reaches the terminal');
  assert.match(r.stderr, /\| Error: \^\[\[31mfile not found\^\[\[0m: data\/x\.vcf\nall of it: impact --profile w run logs r1 --stderr\n$/);
});

test('run submit: a CWL File the params name must be attached (exit 2, before anything is sent); a plain path is a warning', async (t) => {
  const wes = await server(t, () => ({ status: 500, body: { msg: 'down for the test', status_code: 500 } }));
  const dir = home(t);
  addProfile(dir, 'local', ['--wes', `${wes.url}/ga4gh/wes/v1`]);
  const work = path.join(dir, 'work');
  fs.mkdirSync(path.join(work, 'data'), { recursive: true });
  fs.writeFileSync(path.join(work, 'wf.cwl'), 'cwlVersion: v1.2\nclass: Workflow\ninputs: []\noutputs: []\nsteps: []\n');
  fs.writeFileSync(path.join(work, 'data', 'x.vcf'), '##fileformat=VCFv4.2\n');
  const params = (p) => { fs.writeFileSync(path.join(work, 'p.json'), JSON.stringify(p)); return path.join(work, 'p.json'); };
  const wf = path.join(work, 'wf.cwl');

  const missing = impact(dir, ['run', 'submit', wf, '--params', params({ reads: { class: 'File', location: 'data/x.vcf' } })]);
  assert.equal(missing.code, 2, missing.stderr);
  // (impact runs in the test's folder, not in `work`: the path to attach is absolute)
  assert.ok(missing.stderr.includes(`impact: the params name data/x.vcf (reads.location), which is not attached\nhint: send it with the run: --attach ${work}/data/x.vcf\n`), missing.stderr);
  const typo = impact(dir, ['run', 'submit', wf, '--params', params({ r: [{ class: 'File', path: 'data/y.vcf' }] })]);
  assert.equal(typo.code, 2, typo.stderr);
  assert.ok(typo.stderr.includes(`the params name data/y.vcf (r[0].path), which is neither attached nor a file at ${work}/data/y.vcf\n`), typo.stderr);
  assert.equal(wes.seen.length, 0, 'nothing was sent');
  // attached, a URL or a path on the server: accepted (the fake server then fails the submission)
  const ok = await impactAsync(dir, ['run', 'submit', wf, '--attach', path.join(work, 'data', 'x.vcf'), '--params',
    params({ a: { class: 'File', location: 'data/x.vcf' }, b: { class: 'File', location: 'https://example.org/x' }, c: { class: 'File', path: '/data/ref.fa' } })]);
  assert.doesNotMatch(ok.stderr, /params name/);
  assert.ok(wes.seen.length > 0);
  // a string that is a file here but not attached (WDL, Nextflow, Snakemake): warned, not refused
  const plain = await impactAsync(dir, ['run', 'submit', wf, '--params', params({ 'main.reads': 'data/x.vcf', 'main.n': 'three' })]);
  assert.ok(plain.stderr.includes(`warning: the params value data/x.vcf (main.reads) is a file here but is not attached: the run sees it only if the server has it too; to send it: --attach ${work}/data/x.vcf\n`), plain.stderr);
  assert.doesNotMatch(plain.stderr, /three/);
  // a workflow the server has (a URL): a relative File may live beside it there, so impact warns and sends
  const sent = wes.seen.length;
  const remote = await impactAsync(dir, ['run', 'submit', 'https://example.org/wf.cwl', '--params', params({ reads: { class: 'File', location: 'data/z.vcf' } })]);
  assert.ok(remote.stderr.includes('warning: the params name data/z.vcf (reads.location), which is neither attached nor a file at '), remote.stderr);
  assert.match(remote.stderr, /unless the server has it beside the workflow: fix the path/);
  assert.ok(wes.seen.length > sent, 'the run was sent');
});

// ---- item 9: private CAs and proxies

test('profile add/set --cacert: kept in the profile, used for every request, shown and checked by doctor', async (t) => {
  const dir = home(t);
  const good = selfSigned(dir, 'loopback', 'IP:127.0.0.1');
  const wes = await httpsWes(t, good);
  addProfile(dir, 'a', ['--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']);
  addProfile(dir, 'tls', ['--wes', wes.url, '--cacert', good.certFile]);
  const ok = await impactAsync(dir, ['--profile', 'tls', 'service-info', 'wes']);
  assert.equal(ok.code, 0, ok.stderr);
  const show = impact(dir, ['profile', 'show', 'tls', '--json']);
  assert.equal(JSON.parse(show.stdout).cacert, good.certFile);
  assert.match(impact(dir, ['profile', 'show', 'tls', '--format', 'tsv']).stdout, new RegExp(`cacert\\t${good.certFile}\\n`));
  const doctor = await impactAsync(dir, ['--profile', 'tls', 'doctor', '--json']);
  const check = JSON.parse(doctor.stdout).checks.find((c) => c.check === 'cacert');
  assert.equal(check.status, 'ok');
  assert.match(check.detail, /loopback\.pem \(1 certificate\)/);

  // without it, the same server fails verification, with the hint naming the ways to trust a CA
  const set = impact(dir, ['profile', 'set', 'tls', '--no-cacert']);
  assert.equal(set.code, 0, set.stderr);
  const refused = await impactAsync(dir, ['--profile', 'tls', 'service-info', 'wes']);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /hint: if the server uses a private CA, pass --cacert FILE or set SSL_CERT_FILE/);
  // a bundle with no certificate: doctor says so
  const bad = path.join(dir, 'bad.pem');
  fs.writeFileSync(bad, 'not a certificate\n');
  assert.equal(impact(dir, ['profile', 'set', 'tls', '--cacert', bad]).code, 0);
  const d2 = JSON.parse((await impactAsync(dir, ['--profile', 'tls', 'doctor', '--json'])).stdout);
  const c2 = d2.checks.find((c) => c.check === 'cacert');
  assert.equal(c2.status, 'fail');
  assert.match(c2.detail, /holds no PEM certificate/);
  const unknown = impact(dir, ['profile', 'set', 'nope', '--cacert', bad]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no profile named 'nope'\nhint: run: impact profile list\n/);
});

test('a certificate for another host name: said so, and no "--cacert" hint', async (t) => {
  const dir = home(t);
  const other = selfSigned(dir, 'elsewhere', 'DNS:elsewhere.example.org');
  const wes = await httpsWes(t, other);
  addProfile(dir, 'p', ['--wes', wes.url, '--cacert', other.certFile]);
  const r = await impactAsync(dir, ['service-info', 'wes']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /TLS with 127\.0\.0\.1:\d+ failed: the server's certificate is not for the host name 127\.0\.0\.1 \(/);
  assert.match(r.stderr, /hint: check the URL in the profile: it must use a name the certificate holds/);
  assert.doesNotMatch(r.stderr, /--cacert/);
  assert.deepEqual(wes.seen, []);
});

test('a dead or refusing proxy is named as the proxy (credentials hidden), not as the service being down', async (t) => {
  const dir = home(t);
  const good = selfSigned(dir, 'loopback', 'IP:127.0.0.1');
  const wes = await httpsWes(t, good);
  addProfile(dir, 'p', ['--wes', wes.url, '--cacert', good.certFile]);
  const dead = await deadPort();
  const r = await impactAsync(dir, ['service-info', 'wes'], { env: { HTTPS_PROXY: `http://user:proxy-secret@127.0.0.1:${dead}` } });
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`impact: wes: cannot connect to the proxy 127\\.0\\.0\\.1:${dead} \\(from HTTPS_PROXY\\): `));
  assert.match(r.stderr, /hint: check the proxy setting \(HTTPS_PROXY\), or leave 127\.0\.0\.1 out of it with NO_PROXY/);
  assert.ok(!r.stderr.includes('proxy-secret'));

  // a proxy that answers CONNECT with 407, then with 502
  let answer = 407;
  const proxy = http.createServer();
  const connects = [];
  proxy.on('connect', (req, socket) => {
    connects.push(req.url);
    socket.end(`HTTP/1.1 ${answer} ${answer === 407 ? 'Proxy Authentication Required' : 'Bad Gateway'}\r\nContent-Length: 0\r\n\r\n`);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve); }));
  const env = { https_proxy: `http://127.0.0.1:${proxy.address().port}` };
  const auth = await impactAsync(dir, ['service-info', 'wes'], { env });
  assert.equal(auth.code, 1, auth.stdout);
  assert.match(auth.stderr, /impact: wes: the proxy 127\.0\.0\.1:\d+ \(from https_proxy\) asks for credentials \(HTTP 407\) to reach 127\.0\.0\.1:\d+\n/);
  assert.match(auth.stderr, /hint: give the proxy's user and password in https_proxy/);
  answer = 502;
  const refused = await impactAsync(dir, ['service-info', 'wes'], { env });
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /impact: wes: the proxy 127\.0\.0\.1:\d+ \(from https_proxy\) refused to connect to 127\.0\.0\.1:\d+ \(HTTP 502\)\n/);
  assert.ok(connects.length >= 2);
  assert.deepEqual(wes.seen, [], 'nothing reached the service');
  // NO_PROXY naming the host: straight to the service
  const direct = await impactAsync(dir, ['service-info', 'wes'], { env: { ...env, NO_PROXY: '127.0.0.1' } });
  assert.equal(direct.code, 0, direct.stderr);
});
