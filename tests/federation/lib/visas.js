'use strict';
// Verify GA4GH visas (Visa Document Tokens) and passports (AAI 1.2 / Passport 1.2) with node:crypto.
//
//   const visas = require('../lib/visas');
//   const payload = await visas.verifyVisa(jwt);                 // throws VisaError
//   const list = await visas.verifyPassport(passportJwtOrVisaArray); // verified visa payloads only
//   visas.hasControlledAccess(list, 'EGAD-CONTROLLED-1')         // or the full dataset URL
//
// Trust (defaults from the environment `up` provides):
//   trusted visa issuers  {iss: jku}   FED_VISA_TRUSTED (JSON) or {FED_VISA_ISSUER: <its origin>/jwks}
//   passport broker                    FED_ISSUER (keys from its discovery document's jwks_uri)
// Rules: alg ES256 or RS256 only (never none/HS*), key type must match alg; the visa's iss must be
// trusted and its header jku must equal the allow-listed jku for that iss - checked before any fetch;
// keys are only fetched from allow-listed URLs; exp required, iat/nbf not in the future (60 s leeway).

const crypto = require('crypto');

const LEEWAY = 60;
const JWKS_TTL_MS = 5 * 60 * 1000;
const FETCH_TIMEOUT_MS = 3000;
const PASSPORT_TYP = 'vnd.ga4gh.passport+jwt';

class VisaError extends Error {
  // code: malformed | alg | untrusted_issuer | untrusted_jku | jwks | no_key | signature | expired |
  //       not_yet_valid | claims
  constructor(code, message) {
    super(message);
    this.name = 'VisaError';
    this.code = code;
  }
}

function defaultTrusted() {
  if (process.env.FED_VISA_TRUSTED) return JSON.parse(process.env.FED_VISA_TRUSTED);
  const iss = process.env.FED_VISA_ISSUER;
  if (!iss) return {};
  return { [iss]: `${new URL(iss).origin}/jwks` };
}

function b64json(part, what) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (e) {
    throw new VisaError('malformed', `${what} is not base64url JSON`);
  }
}

function decode(jwt) {
  if (typeof jwt !== 'string') throw new VisaError('malformed', 'JWT must be a string');
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new VisaError('malformed', 'not a compact JWS (3 parts)');
  const header = b64json(parts[0], 'header');
  const payload = b64json(parts[1], 'payload');
  if (!header || typeof header !== 'object' || !payload || typeof payload !== 'object') {
    throw new VisaError('malformed', 'header and payload must be JSON objects');
  }
  return {
    header, payload, input: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url'),
  };
}

// ------------------------------------------------------------------ key sets (cached)

const jwksCache = new Map(); // url -> {at, keys}

async function fetchJson(url) {
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  } catch (e) {
    throw new VisaError('jwks', `cannot fetch ${url}: ${e.message}`);
  }
  if (!res.ok) throw new VisaError('jwks', `${url} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch (e) {
    throw new VisaError('jwks', `${url} did not return JSON`);
  }
}

async function getJwks(url, { force = false } = {}) {
  const hit = jwksCache.get(url);
  if (hit && !force && Date.now() - hit.at < JWKS_TTL_MS) return hit.keys;
  if (hit && force && Date.now() - hit.at < 5000) return hit.keys; // refetch at most every 5 s
  const doc = await fetchJson(url);
  if (!doc || !Array.isArray(doc.keys)) throw new VisaError('jwks', `${url} is not a JWK set`);
  jwksCache.set(url, { at: Date.now(), keys: doc.keys });
  return doc.keys;
}

const KTY = { ES256: { kty: 'EC', crv: 'P-256' }, RS256: { kty: 'RSA' } };

function pickKey(keys, header) {
  const want = KTY[header.alg];
  const fits = (k) => k.kty === want.kty && (!want.crv || k.crv === want.crv) && (!k.use || k.use === 'sig')
    && (!k.alg || k.alg === header.alg);
  const matching = header.kid ? keys.filter((k) => k.kid === header.kid) : keys;
  const usable = matching.filter(fits);
  if (header.kid && matching.length && !usable.length) throw new VisaError('alg', `key ${header.kid} does not fit alg ${header.alg}`);
  // without a kid the key must be unambiguous
  return usable.length === 1 || (header.kid && usable.length) ? usable[0] : null;
}

function verifySignature(alg, jwk, input, signature) {
  let key;
  try {
    key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new VisaError('no_key', `unusable key: ${e.message}`);
  }
  const ok = alg === 'ES256'
    ? crypto.verify('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, signature)
    : crypto.verify('sha256', Buffer.from(input), key, signature);
  if (!ok) throw new VisaError('signature', 'signature does not verify');
}

async function verifyWithJwks(decoded, jwksUrl) {
  const { header, input, signature } = decoded;
  let key = pickKey(await getJwks(jwksUrl), header);
  if (!key) key = pickKey(await getJwks(jwksUrl, { force: true }), header); // key rotation
  if (!key) throw new VisaError('no_key', `no key ${header.kid || `for ${header.alg}`} at ${jwksUrl}`);
  verifySignature(header.alg, key, input, signature);
}

function checkAlg(header) {
  if (header.alg !== 'ES256' && header.alg !== 'RS256') {
    throw new VisaError('alg', `alg ${JSON.stringify(header.alg)} is not allowed (ES256 or RS256 only)`);
  }
  if (header.crit) throw new VisaError('malformed', 'crit header not supported');
}

function checkTimes(payload, now = Math.floor(Date.now() / 1000)) {
  if (typeof payload.exp !== 'number') throw new VisaError('claims', 'exp missing');
  if (payload.exp <= now - LEEWAY) throw new VisaError('expired', `expired at ${new Date(payload.exp * 1000).toISOString()}`);
  if (payload.iat !== undefined && (typeof payload.iat !== 'number' || payload.iat > now + LEEWAY)) {
    throw new VisaError('not_yet_valid', 'iat is in the future');
  }
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now + LEEWAY)) {
    throw new VisaError('not_yet_valid', 'nbf is in the future');
  }
}

// ------------------------------------------------------------------ visas

// opts: {trusted: {iss: jku | [jku, ...]}, now}
async function verifyVisa(jwt, opts = {}) {
  const trusted = opts.trusted || defaultTrusted();
  const decoded = decode(jwt);
  const { header, payload } = decoded;
  checkAlg(header);
  if (typeof payload.iss !== 'string' || !Object.prototype.hasOwnProperty.call(trusted, payload.iss)) {
    throw new VisaError('untrusted_issuer', `visa issuer ${JSON.stringify(payload.iss)} is not trusted`);
  }
  const allowed = [].concat(trusted[payload.iss]);
  if (typeof header.jku !== 'string') throw new VisaError('untrusted_jku', 'visa header has no jku');
  if (!allowed.includes(header.jku)) {
    throw new VisaError('untrusted_jku', `jku ${header.jku} is not allow-listed for ${payload.iss}`);
  }
  await verifyWithJwks(decoded, header.jku);
  checkTimes(payload, opts.now);
  const v = payload.ga4gh_visa_v1;
  if (!v || typeof v !== 'object' || typeof v.type !== 'string' || typeof v.value !== 'string'
      || typeof v.source !== 'string' || typeof v.asserted !== 'number') {
    throw new VisaError('claims', 'ga4gh_visa_v1 needs type, asserted, value, source');
  }
  if (typeof payload.sub !== 'string') throw new VisaError('claims', 'sub missing');
  if (typeof payload.scope === 'string' && payload.scope.split(' ').includes('openid')) {
    throw new VisaError('claims', 'a visa document token must not carry the openid scope');
  }
  return payload;
}

// ------------------------------------------------------------------ passports

const discoveryCache = new Map(); // issuer -> {at, doc}

async function brokerJwksUri(issuer) {
  const hit = discoveryCache.get(issuer);
  if (hit && Date.now() - hit.at < JWKS_TTL_MS) return hit.doc.jwks_uri;
  const doc = await fetchJson(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!doc || typeof doc.jwks_uri !== 'string') throw new VisaError('jwks', `no jwks_uri in ${issuer}'s discovery`);
  discoveryCache.set(issuer, { at: Date.now(), doc });
  return doc.jwks_uri;
}

// Verify a Passport JWT itself (not its visas). opts: {broker: issuer URL | [urls], now}
async function verifyPassportJwt(jwt, opts = {}) {
  const brokers = [].concat(opts.broker || process.env.FED_ISSUER || []);
  const decoded = decode(jwt);
  const { header, payload } = decoded;
  checkAlg(header);
  if (String(header.typ).toLowerCase() !== PASSPORT_TYP) throw new VisaError('malformed', `passport typ must be ${PASSPORT_TYP}`);
  if (!brokers.includes(payload.iss)) throw new VisaError('untrusted_issuer', `passport issuer ${JSON.stringify(payload.iss)} is not a trusted broker`);
  await verifyWithJwks(decoded, await brokerJwksUri(payload.iss));
  checkTimes(payload, opts.now);
  if (typeof payload.sub !== 'string') throw new VisaError('claims', 'sub missing');
  if (!Array.isArray(payload.ga4gh_passport_v1)) throw new VisaError('claims', 'ga4gh_passport_v1 must be an array');
  return payload;
}

// input: a Passport JWT (string) or an array of visa JWTs. Returns the payloads of the visas that
// verify; the others are dropped (opts.onReject(err, jwt) sees them). A bad Passport JWT throws.
async function verifyPassport(input, opts = {}) {
  let list = input;
  if (typeof input === 'string') list = (await verifyPassportJwt(input, opts)).ga4gh_passport_v1;
  if (!Array.isArray(list)) throw new VisaError('malformed', 'expected a passport JWT or an array of visa JWTs');
  const out = [];
  for (const jwt of list) {
    try {
      out.push(await verifyVisa(jwt, opts));
    } catch (e) {
      if (opts.onReject) opts.onReject(e, jwt);
    }
  }
  return out;
}

// Does a (verified) visa list grant the dataset? dataset: the full value
// (https://ega-archive.org/datasets/EGAD-CONTROLLED-1) or its last path segment (EGAD-CONTROLLED-1).
function hasControlledAccess(visas, dataset, now = Math.floor(Date.now() / 1000)) {
  return (visas || []).some((p) => {
    const v = p && p.ga4gh_visa_v1;
    if (!v || v.type !== 'ControlledAccessGrants' || typeof v.value !== 'string') return false;
    if (typeof p.exp === 'number' && p.exp <= now - LEEWAY) return false;
    return v.value === dataset || v.value.endsWith(`/${dataset}`);
  });
}

function clearCaches() {
  jwksCache.clear();
  discoveryCache.clear();
}

module.exports = {
  verifyVisa, verifyPassport, verifyPassportJwt, hasControlledAccess, decode, VisaError, clearCaches, PASSPORT_TYP,
};
