'use strict';
// Key material of the identity part, generated at first start into $FED_STATE/oidc/keys.json (0600)
// and reused afterwards. Never committed.
//
//   broker: [RS256, ES256] private JWKs  - the OIDC provider (ID tokens, passports); public at <issuer>/jwks
//   visa:   ES256 private JWK            - the visa issuer; public at <visa issuer>/jwks (the visas' jku)
//   rogue:  ES256 private JWK            - an attacker's key (wrongly signed / untrusted visas of mallory*)
//   cookies: [secret]                    - oidc-provider cookie signing keys

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// RFC 7638 JWK thumbprint, used as kid.
function thumbprint(jwk) {
  const members = jwk.kty === 'EC'
    ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
    : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function generate(alg) {
  const { privateKey } = alg === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk; // eslint-disable-line no-unused-vars
  return pub;
}

// Load (or create) the key file in <stateDir>/oidc/keys.json.
function loadKeys(stateDir) {
  const dir = path.join(stateDir, 'oidc');
  const file = path.join(dir, 'keys.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = {
    broker: [generate('RS256'), generate('ES256')],
    visa: generate('ES256'),
    rogue: generate('ES256'),
    cookies: [b64u(crypto.randomBytes(32))],
  };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(keys, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, file);
  return keys;
}

// Compact JWS. header must carry alg (ES256 or RS256) and kid; `signWith` may differ from the key the
// header names (that is how wrongly signed visas are made).
function signJwt(header, payload, signWith) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const key = crypto.createPrivateKey({ key: signWith, format: 'jwk' });
  const alg = signWith.kty === 'EC' ? 'ES256' : 'RS256';
  const sig = alg === 'ES256'
    ? crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : crypto.sign('sha256', Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

// An unsecured JWT (alg none, empty signature) - only for negative tests.
function unsecuredJwt(header, payload) {
  return `${b64u(JSON.stringify({ ...header, alg: 'none' }))}.${b64u(JSON.stringify(payload))}.`;
}

module.exports = { loadKeys, publicJwk, signJwt, unsecuredJwt, thumbprint, generate };
