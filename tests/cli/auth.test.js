'use strict';
// Login, tokens and passports against the federation's real OIDC provider (oidc-provider) and its
// scripted misbehaving device endpoint. Every impact run is a separate process in its own XDG home.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  federation, home, impact, impactAsync, getJson, oidcStats, resetOidcStats, userinfo, tokenFile, readTokenState, expireAccessToken,
  login, approve, loggedIn,
} = require('./helpers');

const fed = federation();

const stats = oidcStats;
const resetStats = resetOidcStats;
const readState = readTokenState;
const control = (settings) => fetch(`${fed.issuer}/__control`, {
  method: 'POST', body: JSON.stringify(settings), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000),
});

function profile(t, args = ['--registry', fed.registry]) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

test.before(() => control({ deviceInterval: 1 }));

test('device flow end to end: code on stderr, approval, private token state, passport verified', async (t) => {
  const dir = profile(t);
  const r = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /open this page on any device:\n\s+http:\/\/127\.0\.0\.1:\d+\/device\n/);
  assert.match(r.stderr, /device\?user_code=/);
  assert.match(r.stderr, /Logged in to profile 'local' as alice/);
  assert.match(r.stderr, /Passport: 4 visas, 4 verified/);
  assert.equal(fs.statSync(tokenFile(dir)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(tokenFile(dir))).mode & 0o777, 0o700);
  const state = readState(dir);
  assert.ok(state.refresh_token, 'offline_access gives a refresh token');
  assert.ok(!r.stderr.includes(state.access_token) && !r.stdout.includes(state.access_token));
  assert.ok(state.refresh_expires > Date.now() / 1000 + 3600, 'refresh expiry learnt by introspection');

  const tok = impact(dir, ['token']);
  assert.equal(tok.code, 0, tok.stderr);
  assert.equal(tok.stdout.trim(), state.access_token);
  assert.equal((await userinfo(tok.stdout.trim())).json.sub, 'alice');

  const st = impact(dir, ['auth', 'status', '--json']);
  assert.equal(st.code, 0, st.stderr);
  const j = JSON.parse(st.stdout);
  assert.equal(j.subject, 'alice');
  assert.equal(j.issuer, fed.issuer);
  assert.deepEqual(j.scope.split(' ').sort(), ['ga4gh_passport_v1', 'offline_access', 'openid']);
  assert.equal(j.visas.length, 4);
  assert.ok(j.visas.every((v) => v.verified));
  assert.ok(!st.stdout.includes(state.access_token));

  const pp = JSON.parse(impact(dir, ['passport', '--json']).stdout);
  const types = pp.visas.map((v) => v.type).sort();
  assert.deepEqual(types, ['AcceptedTermsAndPolicies', 'AffiliationAndRole', 'ControlledAccessGrants', 'LinkedIdentities']);
  const grant = pp.visas.find((v) => v.type === 'ControlledAccessGrants');
  assert.equal(grant.value, 'https://ega-archive.org/datasets/EGAD-CONTROLLED-1');
  assert.equal(grant.by, 'dac');
  const doctor = JSON.parse(impact(dir, ['doctor', '--json']).stdout);
  const check = (name) => doctor.checks.find((c) => c.service === 'identity' && c.check === name);
  assert.equal(check('login').status, 'ok');
  assert.match(check('login').detail, /logged in as alice, session ends in/);
  assert.equal(check('passport').status, 'ok');
  assert.equal(check('passport').detail, '4 of 4 visas verified');
  // the table has the columns the researcher reads
  const table = impact(dir, ['passport', '--format', 'table'], { env: { IMPACT_WIDTH: '200' } });
  assert.match(table.stdout, /TYPE\s+VALUE\s+SOURCE\s+BY\s+ASSERTED\s+EXPIRES\s+VERIFIED/);
});

// libqrencode is opened when a login first draws its QR code (start-up, issue 23): with it, --qr draws one;
// with a libqrencode.so.4 that cannot be loaded first on the library path, the login warns and goes on.
test('login --qr draws a QR code; without a usable libqrencode it warns and logs in all the same', async (t) => {
  for (const broken of [false, true]) {
    const dir = home(t);
    assert.equal(impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]).code, 0);
    const env = {};
    if (broken) {
      const libs = path.join(dir, 'libs');
      fs.mkdirSync(libs);
      fs.writeFileSync(path.join(libs, 'libqrencode.so.4'), '');  // not an ELF file: dlopen fails
      env.LD_LIBRARY_PATH = libs;
    }
    const r = await login(dir, ['--qr', '--no-browser'], (code) => approve(code), { env });
    assert.equal(r.code, 0, r.stderr);
    if (broken) {
      assert.match(r.stderr, /warning: no QR code: libqrencode cannot be used/);
      assert.doesNotMatch(r.stderr, /[\u2580\u2584\u2588]/);
    } else {
      assert.match(r.stderr, /[\u2580\u2584\u2588]{10}/);
      assert.doesNotMatch(r.stderr, /no QR code/);
    }
  }
});

test('auth status --min-valid is a preflight: a visa that ends sooner fails it (exit 4)', async (t) => {
  const dir = await loggedIn(t);
  assert.equal(impact(dir, ['auth', 'status', '--min-valid', '30s']).code, 0);
  // LinkedIdentities expires 120 s after the login
  const r = impact(dir, ['auth', 'status', '--min-valid', '10m']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /visa LinkedIdentities .* expires in/);
  assert.match(r.stderr, /hint: run: impact login/);
  const long = impact(dir, ['auth', 'status', '--min-valid', '48h', '--json']);
  assert.equal(long.code, 4);
  assert.match(JSON.parse(long.stdout).problems[0], /session ends in/);
});

test('an expired access token is refreshed once, the refresh token rotates, and --debug shows no secret', async (t) => {
  const dir = await loggedIn(t);
  const before = expireAccessToken(dir);
  await resetStats();
  const r = impact(dir, ['--debug', 'token']);
  assert.equal(r.code, 0, r.stderr);
  const after = readState(dir);
  assert.notEqual(after.access_token, before.access_token);
  assert.notEqual(after.refresh_token, before.refresh_token, 'the provider rotates refresh tokens');
  assert.equal(r.stdout.trim(), after.access_token);
  assert.deepEqual(await stats(), { 'success:refresh_token': 1 });
  assert.match(r.stderr, /POST http:\/\/127\.0\.0\.1:\d+\/token 200/);
  for (const secret of [before.access_token, before.refresh_token, after.access_token, after.refresh_token]) {
    assert.ok(!r.stderr.includes(secret), 'no token in the --debug output');
  }
  assert.equal((await userinfo(after.access_token)).json.sub, 'alice');
  // a valid token is served from the file: no request at all
  const again = impact(dir, ['-v', 'token']);
  assert.equal(again.stdout.trim(), after.access_token);
  assert.equal(again.stderr, '');
});

test('32 concurrent `impact token` on an expired token: 32 successes, one refresh, grant alive', async (t) => {
  const dir = await loggedIn(t);
  expireAccessToken(dir);
  await resetStats();
  const runs = await Promise.all(Array.from({ length: 32 }, () => impactAsync(dir, ['token'], { timeout: 60000 })));
  const failed = runs.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, failed.map((r) => r.stderr).join('\n'));
  const tokens = new Set(runs.map((r) => r.stdout.trim()));
  assert.equal(tokens.size, 1, 'every process got the same fresh token');
  assert.deepEqual(await stats(), { 'success:refresh_token': 1 });
  // the grant survived: its refresh token still works
  expireAccessToken(dir);
  const next = impact(dir, ['token']);
  assert.equal(next.code, 0, next.stderr);
  assert.equal((await userinfo(next.stdout.trim())).json.sub, 'alice');
});

test('logout revokes at the provider and forgets the state', async (t) => {
  const dir = await loggedIn(t);
  const state = readState(dir);
  await resetStats();
  const r = impact(dir, ['logout']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Logged out of profile 'local'/);
  assert.ok(!fs.existsSync(tokenFile(dir)));
  // the refresh token is dead: refreshing with it fails at the provider
  const refresh = await fetch(`${fed.issuer}/token`, { method: 'POST', signal: AbortSignal.timeout(5000),
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'impact-cli', refresh_token: state.refresh_token }) });
  assert.equal((await refresh.json()).error, 'invalid_grant');
  const tok = impact(dir, ['token']);
  assert.equal(tok.code, 4);
  assert.match(tok.stderr, /not logged in to profile 'local'\nhint: run: impact login/);
  assert.equal(impact(dir, ['logout']).code, 0, 'logging out twice is fine');
});

test('a corrupt or truncated token file asks for a new login (exit 4), never a crash', async (t) => {
  const dir = await loggedIn(t);
  const text = fs.readFileSync(tokenFile(dir), 'utf8');
  for (const bad of [text.slice(0, text.length / 2), '', '{"format":1}', '\u0000\u0001']) {
    fs.writeFileSync(tokenFile(dir), bad);
    const r = impact(dir, ['token']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /login state .* is unreadable/);
    assert.match(r.stderr, /hint: run: impact login/);
  }
});

test('mallory: bad visas are shown as unverified with the reason, and only the good one verifies', async (t) => {
  const dir = await loggedIn(t, 'mallory');
  const r = impact(dir, ['passport', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const visas = JSON.parse(r.stdout).visas;
  assert.equal(visas.length, 6);
  assert.deepEqual(visas.filter((v) => v.verified).map((v) => v.type), ['AcceptedTermsAndPolicies']);
  const problems = visas.filter((v) => !v.verified).map((v) => v.problem).sort();
  assert.equal(problems.length, 5);
  assert.ok(problems.some((p) => p === 'expired'));
  assert.ok(problems.some((p) => p === 'the signature does not verify'));
  assert.ok(problems.some((p) => /'none' is not accepted/.test(p)));
  assert.ok(problems.some((p) => /issuer .* is not trusted/.test(p)));
  assert.ok(problems.some((p) => /jku .* is not the key set trusted/.test(p)));
  // the rogue and untrusted key sets were never fetched
  const log = fs.readFileSync(path.join(fed.state, 'logs', 'oidc.log'), 'utf8');
  assert.ok(!/GET \/(rogue|untrusted)\/jwks/.test(log), 'impact fetched an untrusted key set');
});

test('client credentials: the secret comes from a file or the environment, never argv', async (t) => {
  const secretFile = fed.clients['impact-ci'].secret_file;
  const dir = profile(t, ['--issuer', fed.issuer, '--client-id', 'impact-ci', '--client-secret-file', secretFile]);
  const r = impact(dir, ['login', '--client-credentials']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Logged in to profile 'local' with client impact-ci/);
  const state = readState(dir);
  assert.equal(state.grant, 'client_credentials');
  const secret = fs.readFileSync(secretFile, 'utf8').trim();
  assert.ok(!fs.readFileSync(tokenFile(dir), 'utf8').includes(secret), 'the secret is not copied into the state');
  // an expired client-credentials token is simply requested again
  expireAccessToken(dir);
  const tok = impact(dir, ['token']);
  assert.equal(tok.code, 0, tok.stderr);
  assert.notEqual(tok.stdout.trim(), state.access_token);

  const envDir = profile(t, ['--issuer', fed.issuer, '--client-id', 'impact-ci']);
  const missing = impact(envDir, ['login', '--client-credentials']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /needs the client's secret/);
  const viaEnv = impact(envDir, ['login', '--client-credentials'], { env: { IMPACT_CLIENT_SECRET: secret } });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  const wrong = impact(envDir, ['login', '--client-credentials'], { env: { IMPACT_CLIENT_SECRET: 'wrong-secret-value' } });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the client/);
  assert.ok(!wrong.stderr.includes('wrong-secret-value'));
});

test('IMPACT_TOKEN: used as is, never prompts, and must be a bare token', (t) => {
  const dir = profile(t);
  const env = { IMPACT_TOKEN: 'env-token-0123456789' };
  const tok = impact(dir, ['token'], { env });
  assert.equal(tok.code, 0);
  assert.equal(tok.stdout, 'env-token-0123456789\n');
  const st = impact(dir, ['auth', 'status', '--json'], { env });
  assert.equal(JSON.parse(st.stdout).source, 'IMPACT_TOKEN');
  const bad = impact(dir, ['token'], { env: { IMPACT_TOKEN: 'two words' } });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /IMPACT_TOKEN contains whitespace/);
});

test('a confidential client also gets a broker-signed Passport by token exchange', async (t) => {
  const dir = profile(t, ['--registry', fed.registry, '--client-id', 'impact-ci', '--client-secret-file', fed.clients['impact-ci'].secret_file]);
  await resetStats();
  const r = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'));
  assert.equal(r.code, 0, r.stderr);
  const s = await stats();
  assert.equal(s['success:urn:ietf:params:oauth:grant-type:token-exchange'], 1, JSON.stringify(s));
  const pp = JSON.parse(impact(dir, ['passport', '--json']).stdout);
  assert.equal(pp.broker_passport.issuer, fed.issuer);
  assert.match(pp.broker_passport.expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 like every other time');
  assert.ok(Date.parse(pp.broker_passport.expires) > Date.now());
  assert.equal(pp.visas.filter((v) => v.verified).length, 4);
});

test('DRS: the passport of the login opens the controlled object; unverified visas are never presented', async (t) => {
  const id = `drs://${new URL(fed.services.drs).host}/egad-controlled-1.vcf`;
  const alice = await loggedIn(t, 'alice');
  const out = path.join(alice, 'out');
  const ok = impact(alice, ['drs', 'download', id, '-o', out], { timeout: 60000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(fs.readdirSync(out).length, 1);
  // it was the passport (verified visas from the login), not only the bearer token, that opened it
  const drsLog = fs.readFileSync(path.join(fed.state, 'logs', 'drs.log'), 'utf8');
  assert.match(drsLog, /controlled object egad-controlled-1\.vcf: granted by a presented passport/);

  // mallory's one verified visa is no grant; her five forged ones are never sent, so the server has
  // nothing to reject: a plain 403 naming the missing visa
  const mallory = await loggedIn(t, 'mallory');
  const denied = impact(mallory, ['drs', 'download', id, '-o', path.join(mallory, 'out')], { timeout: 60000 });
  assert.equal(denied.code, 5, denied.stderr);
  assert.match(denied.stderr, /requires a ControlledAccessGrants/);
  assert.doesNotMatch(denied.stderr, /rejected|did not verify/);
});

// The misbehaving device-flow provider: a profile whose issuer is it.
async function badProfile(t, script) {
  const r = await fetch(`${fed.bad_issuer}/__script`, { method: 'POST', body: JSON.stringify(script), signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200);
  return profile(t, ['--issuer', fed.bad_issuer, '--client-id', 'impact-cli']);
}
const polls = async () => (await getJson(`${fed.bad_issuer}/__polls`)).json.polls;

test('device polling honours the interval and slow_down (+5 s), never polling early', async (t) => {
  const dir = await badProfile(t, { steps: ['authorization_pending', 'slow_down', 'token'], interval: 1 });
  const r = await impactAsync(dir, ['login', '--no-qr'], { timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /poll less often: every 6s/);
  const p = await polls();
  assert.equal(p.length, 3);
  assert.ok(p.every((x) => !x.early), JSON.stringify(p));
  assert.ok(p[2].dt_ms >= 6000 - 200, `after slow_down the next poll waits 6 s (waited ${p[2].dt_ms} ms)`);
});

for (const [step, pattern, code] of [
  ['access_denied', /the login was denied at the identity provider/, 4],
  ['expired_token', /the login code expired before it was approved/, 4],
  ['malformed', /answered HTTP 200 with something that is not JSON/, 1],
  ['invalid_grant', /the session has expired or was revoked/, 4],
]) {
  test(`device polling: ${step} ends the login with a clear message (exit ${code})`, async (t) => {
    const dir = await badProfile(t, { steps: ['authorization_pending', step], interval: 1 });
    const r = await impactAsync(dir, ['login', '--no-qr'], { timeout: 30000 });
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, pattern);
    assert.ok(!fs.existsSync(tokenFile(dir)), 'no token state after a failed login');
  });
}

test('device polling stops at the code expiry, and Ctrl-C exits 130 leaving nothing behind', async (t) => {
  const dir = await badProfile(t, { steps: ['authorization_pending'], interval: 1, expires_in: 3 });
  const started = Date.now();
  const r = await impactAsync(dir, ['login', '--no-qr'], { timeout: 30000 });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /expired before it was approved/);
  assert.ok(Date.now() - started < 10000, 'it gave up at expires_in');

  const dir2 = await badProfile(t, { steps: ['authorization_pending'], interval: 1 });
  const c = await login(dir2, ['--no-qr'], (code, child) => { child.kill('SIGINT'); });
  assert.equal(c.code, 130, c.stderr);
  assert.ok(!fs.existsSync(tokenFile(dir2)));
});

test('a login that is denied in the browser exits 4', async (t) => {
  const dir = profile(t);
  const r = await login(dir, ['--no-qr'], (code) => approve(code, 'bob', ['--deny']));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /denied/);
});

// ------------------------------------------------------------------ short-lived access tokens
// The federation's clients impact-cli-8s / impact-cli-45s / impact-ci-8s get access tokens of 8 s and 45 s
// (tests/federation/oidc/README.md); the provider counts token requests per client.

const clientStats = async (id) => (await getJson(`${fed.issuer}/__stats?client=${id}`)).json;
const resetClientStats = (id) => fetch(`${fed.issuer}/__stats?client=${id}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
const nowS = () => Math.floor(Date.now() / 1000);
// Leaves `left` seconds to the stored access token (its recorded lifetime stays), as time would.
function setTokenLeft(dir, left) {
  const s = readState(dir);
  s.access_expires = nowS() + left;
  fs.writeFileSync(tokenFile(dir), JSON.stringify(s), { mode: 0o600 });
  return s;
}
async function shortLogin(t, clientId, user = 'alice') {
  const dir = profile(t, ['--registry', fed.registry, '--client-id', clientId]);
  const r = await login(dir, ['--no-qr'], (code) => approve(code, user));
  assert.equal(r.code, 0, r.stderr);
  return { dir, r };
}

test('8 s access tokens: the device login and a CI login succeed, and impact token never hands out an expired one', async (t) => {
  const { dir, r } = await shortLogin(t, 'impact-cli-8s');
  assert.match(r.stderr, /Logged in to profile 'local' as alice \(access token expires in [1-8]s\)/);
  assert.match(r.stderr, /Passport: 4 visas, 4 verified/);
  assert.equal(readState(dir).access_lifetime, 8);
  const st = JSON.parse(impact(dir, ['auth', 'status', '--json']).stdout);
  assert.equal(st.access_lifetime, 8);
  assert.equal(st.ok, true);

  // through two real expiries: every token printed is accepted by the provider, and each lifetime costs
  // one refresh (the margin of an 8 s token is 2 s)
  await resetClientStats('impact-cli-8s');
  const seen = new Set();
  const deadline = Date.now() + 40000;
  while (seen.size < 3 && Date.now() < deadline) {
    const tok = impact(dir, ['token']);
    assert.equal(tok.code, 0, tok.stderr);
    const token = tok.stdout.trim();
    assert.equal((await userinfo(token)).status, 200, 'impact token printed a token the provider no longer accepts');
    seen.add(token);
    await new Promise((resolve) => { setTimeout(resolve, 250); }); // pacing of the poll, not a synchronisation
  }
  assert.equal(seen.size, 3, 'two refreshes within 40 s of 8 s tokens');
  assert.deepEqual(await clientStats('impact-cli-8s'), { 'success:refresh_token': 2 });

  const ci = profile(t, ['--issuer', fed.issuer, '--client-id', 'impact-ci-8s', '--client-secret-file', fed.clients['impact-ci-8s'].secret_file]);
  const cc = impact(ci, ['login', '--client-credentials']);
  assert.equal(cc.code, 0, cc.stderr);
  assert.match(cc.stderr, /Logged in to profile 'local' with client impact-ci-8s/);
  assert.equal(readState(ci).access_lifetime, 8);
  assert.equal(impact(ci, ['token']).code, 0);
  // a CI client's session lasts as long as its secret, however short its tokens
  const pre = impact(ci, ['auth', 'status', '--min-valid', '1h']);
  assert.equal(pre.code, 0, pre.stderr);
});

test('45 s access tokens: impact token serves the stored token, and refreshes once inside its 11 s margin', async (t) => {
  const { dir } = await shortLogin(t, 'impact-cli-45s', 'bob');
  const state = readState(dir);
  assert.equal(state.access_lifetime, 45);
  await resetClientStats('impact-cli-45s');
  for (let i = 0; i < 2; i += 1) {
    const tok = impact(dir, ['token']);
    assert.equal(tok.code, 0, tok.stderr);
    assert.equal(tok.stdout.trim(), state.access_token);
  }
  assert.deepEqual(await clientStats('impact-cli-45s'), {}, 'no token request while the token is good');
  setTokenLeft(dir, 10);
  const first = impact(dir, ['token']);
  const second = impact(dir, ['token']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.code, 0, second.stderr);
  assert.notEqual(first.stdout.trim(), state.access_token);
  assert.equal(second.stdout.trim(), first.stdout.trim());
  assert.deepEqual(await clientStats('impact-cli-45s'), { 'success:refresh_token': 1 });
});

test('--min-valid above the provider\'s 45 s tokens: exit 4 stating 45 s, and no token request, then or later', async (t) => {
  const { dir } = await shortLogin(t, 'impact-cli-45s', 'bob');
  await resetClientStats('impact-cli-45s');
  for (let i = 0; i < 2; i += 1) {
    const r = impact(dir, ['token', '--min-valid', '60s']);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /the identity provider issues access tokens valid for 45 s; 60 s were asked for, and at most 34 s can be/);
    assert.match(r.stderr, /hint: ask for at most --min-valid 34s, or leave --min-valid out/);
  }
  setTokenLeft(dir, -5); // expired: still nothing to ask the provider for
  assert.equal(impact(dir, ['token', '--min-valid', '1m']).code, 4);
  assert.deepEqual(await clientStats('impact-cli-45s'), {});
  const ok = impact(dir, ['token', '--min-valid', '30s']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await clientStats('impact-cli-45s'), { 'success:refresh_token': 1 });

  // a state file of an older impact does not record the lifetime: one refresh teaches it, then no more
  const old = readState(dir);
  delete old.access_lifetime;
  old.access_expires = nowS() - 5;
  old.logged_in = 0;
  old.refreshed = 0;
  fs.writeFileSync(tokenFile(dir), JSON.stringify(old), { mode: 0o600 });
  await resetClientStats('impact-cli-45s');
  const once = impact(dir, ['token', '--min-valid', '60s']);
  assert.equal(once.code, 4, once.stderr);
  assert.match(once.stderr, /valid for 45 s; 60 s were asked for/);
  assert.equal(impact(dir, ['token', '--min-valid', '60s']).code, 4);
  assert.deepEqual(await clientStats('impact-cli-45s'), { 'success:refresh_token': 1 });
  // the refreshed token was kept: a plain `impact token` serves it without another request
  assert.equal(impact(dir, ['token']).stdout.trim(), readState(dir).access_token);
  assert.deepEqual(await clientStats('impact-cli-45s'), { 'success:refresh_token': 1 });
  // the session (refresh token) and the visas (an hour) are what auth status --min-valid weighs, not the
  // access token's lifetime
  const pre = impact(dir, ['auth', 'status', '--min-valid', '30m']);
  assert.equal(pre.code, 0, pre.stderr);
});

test('32 concurrent `impact token` on an expired 8 s token: exactly one refresh, one token for all', async (t) => {
  const { dir } = await shortLogin(t, 'impact-cli-8s');
  expireAccessToken(dir);
  await resetClientStats('impact-cli-8s');
  const runs = await Promise.all(Array.from({ length: 32 }, () => impactAsync(dir, ['token'], { timeout: 60000 })));
  const failed = runs.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, failed.map((r) => r.stderr).join('\n'));
  assert.equal(new Set(runs.map((r) => r.stdout.trim())).size, 1, 'every process got the token of the one refresh');
  assert.deepEqual(await clientStats('impact-cli-8s'), { 'success:refresh_token': 1 });
});

test('folders impact creates are 0700, missing XDG homes and their parents included; existing ones are left alone', async (t) => {
  const dir = home(t);
  const shared = path.join(dir, 'shared');
  fs.mkdirSync(shared, { mode: 0o755 });
  fs.chmodSync(shared, 0o755);
  const env = {
    XDG_STATE_HOME: path.join(dir, 'xdg', 'state', 'deeper'),
    XDG_CONFIG_HOME: path.join(dir, 'xdg', 'config'),
    XDG_CACHE_HOME: path.join(shared, 'cache'),
  };
  assert.equal(impact(dir, ['profile', 'add', 'local', '--registry', fed.registry], { env }).code, 0);
  const r = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'), { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /4 verified/); // the visa issuer's key set went to the cache
  const created = [];
  const walk = (p) => {
    created.push(p);
    for (const e of fs.readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(p, e.name));
  };
  walk(path.join(dir, 'xdg'));
  walk(path.join(shared, 'cache'));
  for (const p of [env.XDG_STATE_HOME, path.join(env.XDG_STATE_HOME, 'impact', 'tokens'), path.join(env.XDG_CONFIG_HOME, 'impact'),
    path.join(env.XDG_CACHE_HOME, 'impact', 'jwks')]) assert.ok(created.includes(p), `${p} was created`);
  for (const p of created) assert.equal((fs.statSync(p).mode & 0o777).toString(8), '700', p);
  assert.equal(fs.statSync(shared).mode & 0o777, 0o755, 'a folder that existed is not changed');
});

// A desktop opener that records what it was handed, for the login's browser step.
function fakeOpener(dir) {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const opened = path.join(dir, 'opened.txt');
  fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`, { mode: 0o755 });
  return { env: { PATH: `${bin}:${process.env.PATH}`, DISPLAY: ':99' }, opened: () => (fs.existsSync(opened) ? fs.readFileSync(opened, 'utf8') : '') };
}

test('device flow: the provider\'s text is shown, never executed, and only an https/loopback URL reaches the browser', async (t) => {
  const hostile = { user_code: 'AB\u001b]0;pwned\u0007\u001b[2JCD', verification_uri_complete: 'file:///etc/passwd' };
  // both URLs unusable: nothing is opened, a warning says why
  const dir = await badProfile(t, { steps: ['access_denied'], interval: 1, device_answer: { ...hostile, verification_uri: 'javascript:alert(1)' } });
  const o = fakeOpener(dir);
  const r = await impactAsync(dir, ['login', '--no-qr'], { env: o.env, timeout: 30000 });
  assert.equal(r.code, 4, r.stderr);
  assert.ok(!r.stderr.includes('\u001b') && !r.stderr.includes('\u0007'), JSON.stringify(r.stderr));
  assert.match(r.stderr, /AB\^\[\]0;pwned\^G\^\[\[2JCD/);
  assert.match(r.stderr, /file:\/\/\/etc\/passwd/);  // shown, for the user to judge
  assert.match(r.stderr, /warning: not opening the login page in a browser/);
  assert.equal(o.opened(), '');
  // a bad verification_uri_complete beside a good verification_uri: the good one is opened
  const dir2 = await badProfile(t, { steps: ['access_denied'], interval: 1, device_answer: hostile });
  const o2 = fakeOpener(dir2);
  const r2 = await impactAsync(dir2, ['login', '--no-qr'], { env: o2.env, timeout: 30000 });
  assert.equal(r2.code, 4, r2.stderr);
  assert.equal(o2.opened(), `${fed.bad_issuer.replace(/\/$/, '')}/device\n`);
});

test('device flow: a code that expires in -1 s is a broken answer (exit 1), never polled for', async (t) => {
  const dir = await badProfile(t, { steps: ['token'], interval: 1, device_answer: { expires_in: -1 } });
  const r = await impactAsync(dir, ['login', '--no-qr'], { timeout: 30000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /the device authorization response says the code expires in -1 s/);
  assert.equal((await polls()).length, 0);
  assert.ok(!fs.existsSync(tokenFile(dir)));
});
