'use strict';
// Resource-server side of identity (Beacon, DRS, WES): bearer token -> user.
//
//   const auth = require('../lib/auth');
//   const user = await auth.whoami(req);     // {sub, username, name, email, passport: [visa JWTs], via} | null
//   const visas = await auth.visasOf(user);  // verified visa payloads ([] for null)
//   const { user, visas, allowed } = await auth.controlledAccess(req, 'EGAD-CONTROLLED-1');
//
// whoami: no/invalid bearer -> null (answer 401). The provider being unreachable or failing (5xx)
// throws an Error with status 503. Two token kinds are understood:
//   - opaque access tokens of the federation's provider: checked at its userinfo endpoint
//     ($FED_ISSUER discovery -> userinfo_endpoint); results cached 30 s by SHA-256 of the token
//   - GA4GH Passport JWTs (from token exchange): verified against the broker's JWKS (lib/visas.js)
// Tokens are never logged or kept in clear (cache keys are hashes).

const crypto = require('crypto');
const visas = require('./visas');

const CACHE_MS = 30 * 1000;
const CACHE_MAX = 1000;
const TIMEOUT_MS = 3000;

const cache = new Map(); // sha256(issuer + token) -> {until, user}
const discovery = new Map(); // issuer -> {at, doc}

function issuerUrl(opts) {
  const iss = (opts && opts.issuer) || process.env.FED_ISSUER;
  if (!iss) throw Object.assign(new Error('FED_ISSUER is not set'), { status: 500 });
  return iss.replace(/\/$/, '');
}

// The bearer token of a request, or null. (Authorization: Bearer <token>)
function bearer(req) {
  const h = req.headers && req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(h);
  return m ? m[1] : null;
}

const unavailable = (msg) => Object.assign(new Error(`identity provider unavailable: ${msg}`), { status: 503 });

async function userinfoEndpoint(issuer) {
  const hit = discovery.get(issuer);
  if (hit && Date.now() - hit.at < 5 * 60 * 1000) return hit.doc.userinfo_endpoint;
  let res;
  try {
    res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    throw unavailable(e.message);
  }
  if (!res.ok) throw unavailable(`discovery HTTP ${res.status}`);
  const doc = await res.json();
  discovery.set(issuer, { at: Date.now(), doc });
  return doc.userinfo_endpoint;
}

function remember(key, user) {
  if (cache.size >= CACHE_MAX) {
    const now = Date.now();
    for (const [k, v] of cache) if (v.until <= now) cache.delete(k);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
  }
  // never beyond 30 s, nor beyond the expiry of a passport used as bearer token
  const until = Math.min(Date.now() + CACHE_MS, user.exp ? user.exp * 1000 : Infinity);
  cache.set(key, { until, user });
}

async function whoami(req, opts = {}) {
  const token = bearer(req);
  if (!token) return null;
  const issuer = issuerUrl(opts);
  const key = crypto.createHash('sha256').update(issuer).update('\0').update(token).digest('hex');
  const hit = cache.get(key);
  if (hit && Date.now() < hit.until) return hit.user;

  let user = null;
  if (token.split('.').length === 3) {
    // a Passport JWT presented as bearer token
    try {
      const p = await visas.verifyPassportJwt(token, { broker: issuer });
      user = {
        sub: p.sub, username: p.sub, passport: p.ga4gh_passport_v1, via: 'passport', exp: p.exp,
      };
    } catch (e) {
      if (e.code === 'jwks') throw unavailable(e.message);
      return null;
    }
  } else {
    const endpoint = await userinfoEndpoint(issuer);
    let res;
    try {
      res = await fetch(endpoint, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (e) {
      throw unavailable(e.message);
    }
    if (res.status === 401 || res.status === 403 || res.status === 400) {
      await res.arrayBuffer();
      return null;
    }
    if (!res.ok) throw unavailable(`userinfo HTTP ${res.status}`);
    const info = await res.json();
    if (!info || typeof info.sub !== 'string') return null;
    user = {
      sub: info.sub,
      username: info.preferred_username || info.sub,
      name: info.name,
      email: info.email,
      passport: Array.isArray(info.ga4gh_passport_v1) ? info.ga4gh_passport_v1 : [],
      via: 'userinfo',
    };
  }
  remember(key, user);
  return user;
}

// Verified visa payloads of a user from whoami (invalid visas are dropped). opts go to verifyPassport
// (trusted, onReject, ...).
async function visasOf(user, opts = {}) {
  if (!user || !Array.isArray(user.passport)) return [];
  return visas.verifyPassport(user.passport, opts);
}

// Convenience for controlled-access endpoints.
async function controlledAccess(req, dataset, opts = {}) {
  const user = await whoami(req, opts);
  const list = await visasOf(user, opts);
  return { user, visas: list, allowed: !!user && visas.hasControlledAccess(list, dataset) };
}

// The caller of a WES or TES by its bearer token -> {key, sub, username}. Throws an error with `status` 401
// without a usable token, 500 when the provider cannot be asked (WES and TES document 500 there, not 503).
// TEST ONLY `fakeAuth`: `Bearer user:<name>` is user <name>, no provider involved.
async function identifyBearer(req, { fakeAuth = false } = {}) {
  const fail = (status, msg) => Object.assign(new Error(msg), { status });
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
  if (!m) throw fail(401, 'a bearer token is required (Authorization: Bearer <access token>)');
  if (fakeAuth) {
    const f = /^user:([A-Za-z0-9._@-]{1,64})$/.exec(m[1]);
    if (f) return { key: f[1], sub: f[1], username: f[1] };
  }
  let who;
  try {
    who = await whoami(req);
  } catch (e) {
    throw fail(500, `cannot check the token: ${e.message}`);
  }
  if (!who || !(who.username || who.sub)) throw fail(401, 'invalid or expired token');
  return { key: String(who.username || who.sub), sub: who.sub, username: who.username };
}

function clearCache() {
  cache.clear();
  discovery.clear();
}

module.exports = {
  whoami, visasOf, controlledAccess, bearer, clearCache, identifyBearer,
};
