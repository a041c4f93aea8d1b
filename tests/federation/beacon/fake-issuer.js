'use strict';
// Test support for beacon.test.js and drs.test.js: a tiny stand-in for the federation's OIDC provider
// and visa issuer, with real ES256 signatures, so that lib/auth.js and lib/visas.js run unmodified.
//
//   const fake = await require('../beacon/fake-issuer').start();   // sets nothing; see fake.env
//   fake.env  -> {FED_ISSUER, FED_VISA_ISSUER}   (assign to process.env before starting services)
//   fake.token('alice')                           // opaque bearer token; userinfo carries her visas
//   fake.passport('alice') / fake.passport('bob') // Passport JWT (typ vnd.ga4gh.passport+jwt)
//   fake.passport('alice', { badSignature: true })
//   await fake.close()
// Users: alice (ControlledAccessGrants for EGAD-CONTROLLED-1), bob (AffiliationAndRole only).

const http = require('http');
const crypto = require('crypto');

const DATASET_URL = 'https://ega-archive.org/datasets/EGAD-CONTROLLED-1';

function key() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');
  return { privateKey, jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
}

function signJwt(header, payload, k) {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

async function start() {
  const broker = key();
  const visaKey = key();
  const rogue = key();
  const tokens = new Map();
  let origin;
  const USERS = {
    alice: [{ type: 'ControlledAccessGrants', value: DATASET_URL, source: 'https://ega-archive.org/dacs/EGAC-FED-1', by: 'dac' }],
    bob: [{ type: 'AffiliationAndRole', value: 'member@uni.example', source: 'https://uni.example/', by: 'system' }],
  };
  const visas = (user, signer = visaKey) => (USERS[user] || []).map((v) => {
    const now = Math.floor(Date.now() / 1000);
    return signJwt({ typ: 'JWT', alg: 'ES256', jku: `${origin}/jwks`, kid: visaKey.jwk.kid },
      { iss: `${origin}/visas/`, sub: user, iat: now, exp: now + 3600, jti: crypto.randomUUID(), ga4gh_visa_v1: { ...v, asserted: 1704067200 } }, signer);
  });
  const server = http.createServer((req, res) => {
    const json = (status, obj) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); };
    if (req.url === '/.well-known/openid-configuration') {
      return json(200, { issuer: origin, jwks_uri: `${origin}/jwks`, userinfo_endpoint: `${origin}/me` });
    }
    if (req.url === '/jwks') return json(200, { keys: [broker.jwk, visaKey.jwk] });
    if (req.url === '/me') {
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
      const user = m && tokens.get(m[1]);
      if (!user) return json(401, { error: 'invalid_token' });
      return json(200, { sub: user, preferred_username: user, ga4gh_passport_v1: visas(user) });
    }
    return json(404, { error: 'not found' });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    env: { FED_ISSUER: origin, FED_VISA_ISSUER: `${origin}/visas/` },
    token(user) {
      const t = crypto.randomBytes(24).toString('base64url');
      tokens.set(t, user);
      return t;
    },
    passport(user, { badSignature = false } = {}) {
      const now = Math.floor(Date.now() / 1000);
      return signJwt({ typ: 'vnd.ga4gh.passport+jwt', alg: 'ES256', kid: broker.jwk.kid },
        { iss: origin, sub: user, iat: now, exp: now + 600, jti: crypto.randomUUID(), ga4gh_passport_v1: visas(user) },
        badSignature ? rogue : broker);
    },
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

module.exports = { start, DATASET_URL };
