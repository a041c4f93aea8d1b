'use strict';
// Identity part: OIDC provider, approve.js, visas, token exchange, misbehaving device provider,
// lib/auth.js and lib/visas.js. Starts oidc/server.js on free ports with a temp FED_STATE.
//   cd tests/federation && node --test test/oidc.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const visas = require('../lib/visas');
const auth = require('../lib/auth');

const ROOT = path.join(__dirname, '..');
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const TT_PASSPORT = 'urn:ga4gh:params:oauth:token-type:passport';
const DATASET = 'https://ega-archive.org/datasets/EGAD-CONTROLLED-1';

let child;
let state;
let urls;
let trusted;

before(async () => {
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-oidc-'));
  child = spawn(process.execPath, ['oidc/server.js', '--port', '0', '--bad-port', '0', '--visa-port', '0'], {
    cwd: ROOT,
    env: {
      ...process.env, FED_STATE: state, FED_DEVICE_INTERVAL: '1', FED_ISSUER: '', FED_BAD_ISSUER: '', FED_VISA_ISSUER: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  urls = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server not ready in 20 s: ${err}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^READY (.*)$/m.exec(out);
      if (m) { clearTimeout(timer); resolve(JSON.parse(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${err}`)); });
  });
  process.env.FED_ISSUER = urls.issuer;
  process.env.FED_VISA_ISSUER = urls.visa_issuer;
  trusted = { [urls.visa_issuer]: `${new URL(urls.visa_issuer).origin}/jwks` };
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => { setTimeout(resolve, 5000).unref(); })]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  fs.rmSync(state, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

async function post(url, form, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  return { status: res.status, json, text };
}

async function getJson(url, headers = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  return { status: res.status, json, text };
}

function approve(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['oidc/approve.js', ...args], { cwd: ROOT, timeout: 30000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const ciSecret = () => fs.readFileSync(path.join(state, 'impact-ci.secret'), 'utf8').trim();
const ciBasic = () => ({ Authorization: `Basic ${Buffer.from(`impact-ci:${ciSecret()}`).toString('base64')}` });
const pollToken = (deviceCode) => post(`${urls.issuer}/token`, { grant_type: DEVICE_GRANT, client_id: 'impact-cli', device_code: deviceCode });

async function deviceLogin(user, scope = 'openid profile email offline_access ga4gh_passport_v1') {
  const da = await post(`${urls.issuer}/device/auth`, { client_id: 'impact-cli', scope });
  assert.strictEqual(da.status, 200, da.text);
  const a = await approve(['--issuer', urls.issuer, '--user-code', da.json.user_code, '--user', user]);
  assert.strictEqual(a.code, 0, a.stderr);
  const t = await pollToken(da.json.device_code);
  assert.strictEqual(t.status, 200, t.text);
  return t.json;
}

const refresh = (rt) => post(`${urls.issuer}/token`, { grant_type: 'refresh_token', client_id: 'impact-cli', refresh_token: rt });
const userinfo = (at) => getJson(`${urls.issuer}/me`, { Authorization: `Bearer ${at}` });

// ------------------------------------------------------------------ provider basics

test('discovery, JWKS, service-info and the impact-ci secret', async () => {
  const d = await getJson(`${urls.issuer}/.well-known/openid-configuration`);
  assert.strictEqual(d.status, 200);
  assert.strictEqual(d.json.issuer, urls.issuer);
  for (const k of ['device_authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'revocation_endpoint', 'jwks_uri']) {
    assert.ok(d.json[k], k);
  }
  for (const g of [DEVICE_GRANT, 'refresh_token', 'client_credentials', TOKEN_EXCHANGE]) assert.ok(d.json.grant_types_supported.includes(g), g);
  assert.ok(d.json.scopes_supported.includes('ga4gh_passport_v1'));
  const jwks = await getJson(d.json.jwks_uri);
  assert.deepStrictEqual(jwks.json.keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
  assert.ok(jwks.json.keys.every((k) => !('d' in k)));
  for (const u of [urls.issuer, urls.bad_issuer, urls.visa_issuer.replace(/\/$/, '')]) {
    const si = await getJson(`${u}/service-info`);
    assert.strictEqual(si.status, 200);
    assert.ok(si.json.type && si.json.type.artifact);
  }
  assert.strictEqual(fs.statSync(path.join(state, 'impact-ci.secret')).mode & 0o777, 0o600);
  assert.strictEqual(fs.statSync(path.join(state, 'oidc', 'keys.json')).mode & 0o777, 0o600);
});

test('device flow end to end with approve.js (alice)', async () => {
  const da = await post(`${urls.issuer}/device/auth`, { client_id: 'impact-cli', scope: 'openid profile offline_access ga4gh_passport_v1' });
  assert.strictEqual(da.status, 200);
  assert.strictEqual(da.json.interval, 1);
  assert.match(da.json.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
  assert.ok(da.json.verification_uri_complete.includes(encodeURIComponent(da.json.user_code)) || da.json.verification_uri_complete.includes(da.json.user_code));
  const pending = await pollToken(da.json.device_code);
  assert.strictEqual(pending.json.error, 'authorization_pending');
  const a = await approve(['--issuer', urls.issuer, '--user-code', da.json.user_code, '--user', 'alice']);
  assert.strictEqual(a.code, 0, a.stderr);
  assert.match(a.stdout, /approved/);
  const t = await pollToken(da.json.device_code);
  assert.strictEqual(t.status, 200, t.text);
  assert.strictEqual(t.json.token_type, 'Bearer');
  assert.ok(t.json.access_token && t.json.refresh_token && t.json.id_token);
  assert.strictEqual(t.json.expires_in, 300);
  assert.deepStrictEqual(t.json.scope.split(' ').sort(), ['ga4gh_passport_v1', 'offline_access', 'openid', 'profile']);
  const ui = await userinfo(t.json.access_token);
  assert.strictEqual(ui.status, 200);
  assert.strictEqual(ui.json.sub, 'alice');
  assert.strictEqual(ui.json.preferred_username, 'alice');
  // the device code is single use; replaying it revokes what it produced (oidc-provider's default)
  const again = await pollToken(da.json.device_code);
  assert.strictEqual(again.json.error, 'invalid_grant');
  assert.strictEqual((await userinfo(t.json.access_token)).status, 401);
  assert.strictEqual((await refresh(t.json.refresh_token)).json.error, 'invalid_grant');
});

test('approve.js: deny, abort, wrong code, unknown user', async () => {
  const da = await post(`${urls.issuer}/device/auth`, { client_id: 'impact-cli', scope: 'openid' });
  const d = await approve(['--issuer', urls.issuer, '--user-code', da.json.user_code, '--user', 'bob', '--deny']);
  assert.strictEqual(d.code, 0, d.stderr);
  assert.match(d.stdout, /denied/);
  assert.strictEqual((await pollToken(da.json.device_code)).json.error, 'access_denied');

  const da2 = await post(`${urls.issuer}/device/auth`, { client_id: 'impact-cli', scope: 'openid' });
  const ab = await approve(['--issuer', urls.issuer, '--user-code', da2.json.user_code, '--user', 'bob', '--abort']);
  assert.strictEqual(ab.code, 0, ab.stderr);
  assert.strictEqual((await pollToken(da2.json.device_code)).json.error, 'access_denied');

  const w = await approve(['--issuer', urls.issuer, '--user-code', 'BCDF-GHJK', '--user', 'alice']);
  assert.strictEqual(w.code, 1);
  assert.match(w.stderr, /not accepted/);

  const da3 = await post(`${urls.issuer}/device/auth`, { client_id: 'impact-cli', scope: 'openid' });
  const u = await approve(['--issuer', urls.issuer, '--user-code', da3.json.user_code, '--user', 'nobody']);
  assert.strictEqual(u.code, 1);
  assert.match(u.stderr, /unknown user nobody/);

  const usage = await approve(['--issuer', urls.issuer]);
  assert.strictEqual(usage.code, 2);
});

// ------------------------------------------------------------------ refresh and revocation

test('refresh tokens rotate; a reused refresh token is rejected and revokes the grant', async () => {
  const t = await deviceLogin('alice');
  const r1 = await refresh(t.refresh_token);
  assert.strictEqual(r1.status, 200, r1.text);
  assert.notStrictEqual(r1.json.refresh_token, t.refresh_token);
  assert.notStrictEqual(r1.json.access_token, t.access_token);
  assert.strictEqual((await userinfo(r1.json.access_token)).status, 200);
  const reuse = await refresh(t.refresh_token);
  assert.strictEqual(reuse.status, 400);
  assert.strictEqual(reuse.json.error, 'invalid_grant');
  // reuse detection revoked the whole grant, including the rotated token
  const r2 = await refresh(r1.json.refresh_token);
  assert.strictEqual(r2.json.error, 'invalid_grant');
});

test('concurrent naive refreshes: at most one wins, the grant is revoked', async () => {
  const t = await deviceLogin('bob', 'openid offline_access');
  const results = await Promise.all([1, 2, 3, 4].map(() => refresh(t.refresh_token)));
  const ok = results.filter((r) => r.status === 200);
  assert.strictEqual(ok.length, 1, `successes: ${ok.length}`);
  assert.ok(results.filter((r) => r.json && r.json.error === 'invalid_grant').length >= 3);
  for (const r of ok) assert.strictEqual((await refresh(r.json.refresh_token)).json.error, 'invalid_grant');
});

test('revocation (RFC 7009) of access and refresh tokens', async () => {
  const t = await deviceLogin('alice');
  assert.strictEqual((await userinfo(t.access_token)).status, 200);
  const rv = await post(`${urls.issuer}/token/revocation`, { token: t.access_token, token_type_hint: 'access_token', client_id: 'impact-cli' });
  assert.strictEqual(rv.status, 200, rv.text);
  assert.strictEqual((await userinfo(t.access_token)).status, 401);
  const rr = await post(`${urls.issuer}/token/revocation`, { token: t.refresh_token, token_type_hint: 'refresh_token', client_id: 'impact-cli' });
  assert.strictEqual(rr.status, 200);
  assert.strictEqual((await refresh(t.refresh_token)).json.error, 'invalid_grant');
  // unknown tokens are fine for RFC 7009
  assert.strictEqual((await post(`${urls.issuer}/token/revocation`, { token: 'nonsense', client_id: 'impact-cli' })).status, 200);
});

test('short access-token TTL via /__control', async () => {
  const set = await fetch(`${urls.issuer}/__control`, { method: 'POST', body: JSON.stringify({ accessTtl: 1 }), headers: { 'Content-Type': 'application/json' } });
  assert.strictEqual(set.status, 200);
  try {
    const t = await deviceLogin('bob', 'openid offline_access');
    assert.strictEqual(t.expires_in, 1);
    const deadline = Date.now() + 10000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) status = (await userinfo(t.access_token)).status; // until it expires
    assert.strictEqual(status, 401);
    const r = await refresh(t.refresh_token);
    assert.strictEqual(r.status, 200);
  } finally {
    await fetch(`${urls.issuer}/__control`, { method: 'POST', body: JSON.stringify({ accessTtl: 300 }), headers: { 'Content-Type': 'application/json' } });
  }
});

test('short-lived clients: impact-cli-8s and -45s, impact-ci-8s; the others keep accessTtl; counts per client', async () => {
  const shortLogin = async (clientId) => {
    const da = await post(`${urls.issuer}/device/auth`, { client_id: clientId, scope: 'openid offline_access' });
    assert.strictEqual(da.status, 200, da.text);
    const a = await approve(['--issuer', urls.issuer, '--user-code', da.json.user_code, '--user', 'bob']);
    assert.strictEqual(a.code, 0, a.stderr);
    const t = await post(`${urls.issuer}/token`, { grant_type: DEVICE_GRANT, client_id: clientId, device_code: da.json.device_code });
    assert.strictEqual(t.status, 200, t.text);
    return t.json;
  };
  await fetch(`${urls.issuer}/__stats?client=impact-cli-8s`, { method: 'DELETE' });
  for (const [clientId, ttl] of [['impact-cli-8s', 8], ['impact-cli-45s', 45]]) {
    const t = await shortLogin(clientId);
    assert.strictEqual(t.expires_in, ttl, clientId);
    assert.ok(t.refresh_token, `${clientId} gets a refresh token`);
    assert.strictEqual((await userinfo(t.access_token)).json.sub, 'bob');
    const r = await post(`${urls.issuer}/token`, { grant_type: 'refresh_token', client_id: clientId, refresh_token: t.refresh_token });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.expires_in, ttl, `${clientId} after a refresh`);
    const intro = await post(`${urls.issuer}/token/introspection`, { token: r.json.access_token, client_id: clientId });
    assert.strictEqual(intro.json.active, true);
    const life = intro.json.exp - intro.json.iat;
    assert.ok(life === ttl, `introspection: exp - iat = ${life}`);
  }
  // the provider counts per client: this client's two grants, nothing of the others'
  assert.deepStrictEqual((await getJson(`${urls.issuer}/__stats?client=impact-cli-8s`)).json,
    { [`success:${DEVICE_GRANT}`]: 1, 'success:refresh_token': 1 });
  const secret = ciSecret();
  const cc = await post(`${urls.issuer}/token`, { grant_type: 'client_credentials', scope: 'openid' },
    { Authorization: `Basic ${Buffer.from(`impact-ci-8s:${secret}`).toString('base64')}` });
  assert.strictEqual(cc.status, 200, cc.text);
  assert.strictEqual(cc.json.expires_in, 8);
  const normal = await post(`${urls.issuer}/token`, { grant_type: 'client_credentials', scope: 'openid' }, ciBasic());
  assert.strictEqual(normal.json.expires_in, 300);
  assert.strictEqual((await deviceLogin('alice')).expires_in, 300);
  const ready = JSON.parse(fs.readFileSync(path.join(state, 'oidc', 'ready.json'), 'utf8'));
  assert.strictEqual(ready.clients['impact-cli-45s'].access_token_ttl, 45);
  assert.strictEqual(ready.clients['impact-ci-8s'].secret_file, path.join(state, 'impact-ci.secret'));
});

// ------------------------------------------------------------------ passports and visas

test('userinfo passport: alice has controlled access, bob does not, carol has no visas', async () => {
  const a = await deviceLogin('alice');
  const ua = await userinfo(a.access_token);
  assert.strictEqual(ua.json.ga4gh_passport_v1.length, 4);
  const [h] = ua.json.ga4gh_passport_v1.map((j) => visas.decode(j).header);
  assert.strictEqual(h.alg, 'ES256');
  assert.strictEqual(h.typ, 'JWT');
  assert.strictEqual(h.jku, trusted[urls.visa_issuer]);
  const va = await visas.verifyPassport(ua.json.ga4gh_passport_v1, { trusted });
  assert.strictEqual(va.length, 4);
  assert.deepStrictEqual(va.map((v) => v.ga4gh_visa_v1.type).sort(),
    ['AcceptedTermsAndPolicies', 'AffiliationAndRole', 'ControlledAccessGrants', 'LinkedIdentities']);
  for (const v of va) {
    assert.strictEqual(v.iss, urls.visa_issuer);
    assert.strictEqual(v.sub, 'alice');
    assert.ok(v.jti && v.iat && v.exp);
    assert.ok(['type', 'asserted', 'value', 'source', 'by'].every((k) => k in v.ga4gh_visa_v1));
  }
  assert.ok(visas.hasControlledAccess(va, DATASET));
  assert.ok(visas.hasControlledAccess(va, 'EGAD-CONTROLLED-1'));
  assert.ok(!visas.hasControlledAccess(va, 'EGAD-OTHER'));
  assert.ok(va.some((v) => v.ga4gh_visa_v1.value === 'faculty@uni.example'));
  const soon = va.find((v) => v.ga4gh_visa_v1.type === 'LinkedIdentities');
  assert.strictEqual(soon.exp - soon.iat, 120);

  const b = await deviceLogin('bob');
  const vb = await visas.verifyPassport((await userinfo(b.access_token)).json.ga4gh_passport_v1, { trusted });
  assert.deepStrictEqual(vb.map((v) => v.ga4gh_visa_v1.type).sort(), ['AcceptedTermsAndPolicies', 'AffiliationAndRole']);
  assert.ok(!visas.hasControlledAccess(vb, DATASET));

  const c = await deviceLogin('carol');
  assert.deepStrictEqual((await userinfo(c.access_token)).json.ga4gh_passport_v1, []);

  // without the ga4gh_passport_v1 scope there is no passport claim
  const n = await deviceLogin('alice', 'openid profile');
  const un = await userinfo(n.access_token);
  assert.strictEqual(un.status, 200);
  assert.ok(!('ga4gh_passport_v1' in un.json));
});

test('mallory: every bad visa is rejected for the right reason', async () => {
  const expect = {
    expired: 'expired', badsig: 'signature', none: 'alg', 'untrusted-iss': 'untrusted_issuer', 'untrusted-jku': 'untrusted_jku',
  };
  const m = await deviceLogin('mallory');
  const list = (await userinfo(m.access_token)).json.ga4gh_passport_v1;
  assert.strictEqual(list.length, 6);
  const rejected = [];
  const ok = await visas.verifyPassport(list, { trusted, onReject: (e) => rejected.push(e.code) });
  assert.deepStrictEqual(ok.map((v) => v.ga4gh_visa_v1.type), ['AcceptedTermsAndPolicies']);
  assert.deepStrictEqual(rejected.sort(), Object.values(expect).sort());
  assert.ok(!visas.hasControlledAccess(ok, DATASET));
  // naive acceptance would have granted access: the bad visas all claim the dataset
  assert.strictEqual(list.filter((j) => visas.decode(j).payload.ga4gh_visa_v1.value === DATASET).length, 5);

  for (const [variant, code] of Object.entries(expect)) {
    const t = await deviceLogin(`mallory-${variant}`, 'openid ga4gh_passport_v1');
    const [jwt] = (await userinfo(t.access_token)).json.ga4gh_passport_v1;
    await assert.rejects(visas.verifyVisa(jwt, { trusted }), (e) => e.code === code, variant);
  }
});

test('lib/visas: no key fetch from a non-allow-listed jku; RS256/ES256 only', async () => {
  // an HS256 token and a token whose alg is RS256 but key is EC are refused
  const { payload } = visas.decode((await getJson(`${urls.visa_issuer}visas/alice`)).json.ga4gh_passport_v1[0]);
  const mk = (h, p) => `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.c2ln`;
  await assert.rejects(visas.verifyVisa(mk({ alg: 'HS256', jku: trusted[urls.visa_issuer] }, payload), { trusted }), { code: 'alg' });
  const kid = visas.decode((await getJson(`${urls.visa_issuer}visas/alice`)).json.ga4gh_passport_v1[0]).header.kid;
  await assert.rejects(visas.verifyVisa(mk({ alg: 'RS256', jku: trusted[urls.visa_issuer], kid }, payload), { trusted }), { code: 'alg' });
  // jku pointing elsewhere (never fetched: an unreachable URL would otherwise give 'jwks')
  await assert.rejects(visas.verifyVisa(mk({ alg: 'ES256', jku: 'http://127.0.0.1:9/jwks', kid }, payload), { trusted }), { code: 'untrusted_jku' });
  await assert.rejects(visas.verifyVisa('not.a.jwt.really'), { code: 'malformed' });
  await assert.rejects(visas.verifyVisa(mk({ alg: 'ES256', jku: trusted[urls.visa_issuer], kid }, payload), { trusted: {} }), { code: 'untrusted_issuer' });
});

// ------------------------------------------------------------------ impact-ci: client credentials, token exchange

test('impact-ci: client credentials', async () => {
  const r = await post(`${urls.issuer}/token`, { grant_type: 'client_credentials', scope: 'openid' }, ciBasic());
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.json.token_type, 'Bearer');
  const bad = await post(`${urls.issuer}/token`, { grant_type: 'client_credentials' }, { Authorization: `Basic ${Buffer.from('impact-ci:wrong').toString('base64')}` });
  assert.strictEqual(bad.status, 401);
  assert.strictEqual(bad.json.error, 'invalid_client');
});

test('token exchange: passport JWT for alice; access token delegation; refusals', async () => {
  const a = await deviceLogin('alice');
  const ex = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: a.access_token, subject_token_type: TT_ACCESS, requested_token_type: TT_PASSPORT,
  }, ciBasic());
  assert.strictEqual(ex.status, 200, ex.text);
  assert.strictEqual(ex.json.issued_token_type, TT_PASSPORT);
  assert.strictEqual(ex.json.token_type, 'Bearer');
  assert.ok(ex.json.expires_in > 0);
  const { header } = visas.decode(ex.json.access_token);
  assert.strictEqual(header.typ, 'vnd.ga4gh.passport+jwt');
  const pp = await visas.verifyPassportJwt(ex.json.access_token, { broker: urls.issuer });
  assert.strictEqual(pp.iss, urls.issuer);
  assert.strictEqual(pp.sub, 'alice');
  const list = await visas.verifyPassport(ex.json.access_token, { broker: urls.issuer, trusted });
  assert.strictEqual(list.length, 4);
  assert.ok(visas.hasControlledAccess(list, DATASET));
  // a passport from another broker is refused
  await assert.rejects(visas.verifyPassportJwt(ex.json.access_token, { broker: 'http://127.0.0.1:9' }), { code: 'untrusted_issuer' });

  // delegation: access token for impact-ci acting as alice
  const dl = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: a.access_token, subject_token_type: TT_ACCESS, requested_token_type: TT_ACCESS,
  }, ciBasic());
  assert.strictEqual(dl.status, 200, dl.text);
  assert.strictEqual(dl.json.issued_token_type, TT_ACCESS);
  const ui = await userinfo(dl.json.access_token);
  assert.strictEqual(ui.status, 200, ui.text);
  assert.strictEqual(ui.json.sub, 'alice');
  assert.strictEqual(ui.json.ga4gh_passport_v1.length, 4);

  // refusals: public client, missing scope, bogus subject token, wrong subject_token_type
  const pub = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, client_id: 'impact-cli', subject_token: a.access_token, subject_token_type: TT_ACCESS, requested_token_type: TT_PASSPORT,
  });
  assert.ok([400, 401].includes(pub.status));
  assert.ok(['unauthorized_client', 'invalid_client', 'invalid_request'].includes(pub.json.error), pub.text);
  const noScope = await deviceLogin('alice', 'openid profile');
  const ns = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: noScope.access_token, subject_token_type: TT_ACCESS, requested_token_type: TT_PASSPORT,
  }, ciBasic());
  assert.strictEqual(ns.json.error, 'invalid_grant');
  const bogus = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: 'bogus', subject_token_type: TT_ACCESS, requested_token_type: TT_PASSPORT,
  }, ciBasic());
  assert.strictEqual(bogus.json.error, 'invalid_grant');
  const wrongType = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: a.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', requested_token_type: TT_PASSPORT,
  }, ciBasic());
  assert.strictEqual(wrongType.json.error, 'invalid_request');
});

// ------------------------------------------------------------------ lib/auth.js

test('lib/auth: whoami via userinfo and via passport JWT; visasOf; controlledAccess', async () => {
  auth.clearCache();
  const req = (token) => ({ headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.strictEqual(await auth.whoami(req()), null);
  assert.strictEqual(await auth.whoami({ headers: { authorization: 'Basic abc' } }), null);
  assert.strictEqual(await auth.whoami(req('garbage-token')), null);
  const a = await deviceLogin('alice');
  const u = await auth.whoami(req(a.access_token));
  assert.strictEqual(u.sub, 'alice');
  assert.strictEqual(u.username, 'alice');
  assert.strictEqual(u.passport.length, 4);
  assert.strictEqual(await auth.whoami(req(a.access_token)), u); // cached
  const vs = await auth.visasOf(u);
  assert.strictEqual(vs.length, 4);
  assert.deepStrictEqual(await auth.visasOf(null), []);
  assert.strictEqual((await auth.controlledAccess(req(a.access_token), 'EGAD-CONTROLLED-1')).allowed, true);

  const m = await deviceLogin('mallory');
  const ca = await auth.controlledAccess(req(m.access_token), 'EGAD-CONTROLLED-1');
  assert.strictEqual(ca.user.username, 'mallory');
  assert.strictEqual(ca.allowed, false);

  const ex = await post(`${urls.issuer}/token`, {
    grant_type: TOKEN_EXCHANGE, subject_token: a.access_token, subject_token_type: TT_ACCESS, requested_token_type: TT_PASSPORT,
  }, ciBasic());
  const pu = await auth.whoami(req(ex.json.access_token));
  assert.strictEqual(pu.via, 'passport');
  assert.strictEqual(pu.sub, 'alice');
  assert.strictEqual((await auth.controlledAccess(req(ex.json.access_token), DATASET)).allowed, true);
  // a tampered passport is not a user
  const parts = ex.json.access_token.split('.');
  const forged = [parts[0], Buffer.from(JSON.stringify({ ...visas.decode(ex.json.access_token).payload, sub: 'mallory' })).toString('base64url'), parts[2]].join('.');
  assert.strictEqual(await auth.whoami(req(forged)), null);
});

// ------------------------------------------------------------------ misbehaving device provider

test('misbehaving provider: scripted answers, slow_down bookkeeping, malformed JSON, expiry', async () => {
  const bad = urls.bad_issuer;
  const d = await getJson(`${bad}/.well-known/openid-configuration`);
  assert.strictEqual(d.json.device_authorization_endpoint, `${bad}/device/auth`);
  assert.strictEqual(d.json.token_endpoint, `${bad}/token`);

  const script = async (body) => {
    const r = await fetch(`${bad}/__script`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    assert.strictEqual(r.status, 200, await r.text());
  };
  const start = async () => (await post(`${bad}/device/auth`, { client_id: 'impact-cli', scope: 'openid' })).json;
  const poll = (dc) => post(`${bad}/token`, { grant_type: DEVICE_GRANT, client_id: 'impact-cli', device_code: dc });

  await script({ steps: ['authorization_pending', 'slow_down', 'access_denied'], interval: 0, expires_in: 60 });
  let da = await start();
  assert.strictEqual(da.interval, 0);
  assert.strictEqual(da.expires_in, 60);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push((await poll(da.device_code)).json.error);
  assert.deepStrictEqual(answers, ['authorization_pending', 'slow_down', 'access_denied', 'access_denied']);
  let polls = (await getJson(`${bad}/__polls`)).json.polls;
  assert.strictEqual(polls.length, 4);
  assert.deepStrictEqual(polls.map((p) => p.interval), [0, 0, 5, 5]);
  assert.ok(polls[2].early && polls[3].early); // polled right away although the interval had grown to 5 s
  assert.ok(polls.every((p) => typeof p.t === 'number' && p.device_code_ok));

  await script(['malformed', { status: 503, body: 'busy' }, 'token']);
  da = await start();
  const mal = await poll(da.device_code);
  assert.strictEqual(mal.status, 200);
  assert.strictEqual(mal.json, undefined);
  const busy = await poll(da.device_code);
  assert.strictEqual(busy.status, 503);
  const tok = await poll(da.device_code);
  assert.strictEqual(tok.status, 200);
  assert.ok(tok.json.access_token && tok.json.refresh_token);
  assert.strictEqual((await poll('wrong-code')).json.error, 'invalid_grant');

  await script({ steps: ['authorization_pending'], expires_in: 0, omit_interval: true });
  da = await start();
  assert.ok(!('interval' in da));
  assert.strictEqual((await poll(da.device_code)).json.error, 'expired_token');

  const badScript = await fetch(`${bad}/__script`, { method: 'POST', body: '["nonsense"]' });
  assert.strictEqual(badScript.status, 400);
  polls = (await getJson(`${bad}/__polls`)).json;
  assert.strictEqual(polls.authorizations.length, 1);
});

// ------------------------------------------------------------------ authorization code + PKCE (browser flow)

test('authorization code + PKCE S256 for impact-cli via approve.js --auth-url', async () => {
  const http = require('node:http');
  const crypto = require('node:crypto');
  let got;
  const cb = http.createServer((req, res) => {
    got = new URL(req.url, 'http://127.0.0.1');
    res.end('ok');
  });
  await new Promise((resolve) => { cb.listen(0, '127.0.0.1', resolve); });
  try {
    const redirectUri = `http://127.0.0.1:${cb.address().port}/callback`;
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const authUrl = `${urls.issuer}/auth?${new URLSearchParams({
      client_id: 'impact-cli', response_type: 'code', redirect_uri: redirectUri, scope: 'openid offline_access ga4gh_passport_v1',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'st4te', prompt: 'consent',
    })}`;
    const a = await approve(['--issuer', urls.issuer, '--auth-url', authUrl, '--user', 'alice']);
    assert.strictEqual(a.code, 0, a.stderr);
    assert.strictEqual(got.searchParams.get('state'), 'st4te');
    const t = await post(`${urls.issuer}/token`, {
      grant_type: 'authorization_code', client_id: 'impact-cli', code: got.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: verifier,
    });
    assert.strictEqual(t.status, 200, t.text);
    assert.ok(t.json.refresh_token);
    assert.strictEqual((await userinfo(t.json.access_token)).json.sub, 'alice');
    // without PKCE the public client is refused
    const noPkce = `${urls.issuer}/auth?${new URLSearchParams({ client_id: 'impact-cli', response_type: 'code', redirect_uri: redirectUri, scope: 'openid' })}`;
    const r = await fetch(noPkce, { redirect: 'manual' });
    assert.match(r.headers.get('location') || '', /error=invalid_request/);
  } finally {
    cb.close();
  }
});
