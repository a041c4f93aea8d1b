'use strict';
// Who is calling, and which GA4GH visas do they hold? Shared by beacon/server.js and drs/server.js,
// on top of lib/auth.js (bearer token -> user via the provider's userinfo) and lib/visas.js.
//
//   const identity = require('./identity').create();           // tests: create({ whoami, visasOf })
//   const who = await identity.caller(req);   // {user: null} anonymous; {user, visas} otherwise
//                                             // throws {status: 401} for a bad token, {status: 503} provider down
//   const { visas, errors } = await identity.visasFromPassports(['eyJ...'])  // DRS POST bodies
//   identity.hasGrant(visas, 'EGAD-CONTROLLED-1')
//
// Visas are the verified JWT payloads ({iss, sub, exp, ga4gh_visa_v1: {type, value, ...}}).

const auth = require('../lib/auth');
const visasLib = require('../lib/visas');

const CONTROLLED_DATASET = 'EGAD-CONTROLLED-1';
const CONTROLLED_DATASET_URL = `https://ega-archive.org/datasets/${CONTROLLED_DATASET}`;

function create(opts = {}) {
  const whoami = opts.whoami || ((req) => auth.whoami(req));
  const visasOf = opts.visasOf || ((user) => auth.visasOf(user));
  const verifyPassport = opts.verifyPassport || ((input, o) => visasLib.verifyPassport(input, o));
  return {
    async caller(req) {
      if (!auth.bearer(req) && !(req.headers.authorization || '').trim()) return { user: null, visas: [] };
      const user = await whoami(req);
      if (!user) throw Object.assign(new Error('invalid or expired bearer token'), { status: 401 });
      return { user, visas: await visasOf(user) };
    },
    // passports: Passport JWTs (typ vnd.ga4gh.passport+jwt); bare visa JWTs are accepted too.
    async visasFromPassports(passports) {
      const visas = [];
      const errors = [];
      const onReject = (e) => errors.push(`visa rejected: ${e.message}`);
      for (const p of passports || []) {
        let isPassport = true;
        try { isPassport = !visasLib.decode(p).payload.ga4gh_visa_v1; } catch (e) { errors.push(`passport: ${e.message}`); continue; }
        try {
          visas.push(...await verifyPassport(isPassport ? p : [p], { onReject }));
        } catch (e) {
          if (e.status === 503 || e.code === 'jwks') throw Object.assign(new Error(`cannot verify passport: ${e.message}`), { status: 503 });
          errors.push(`passport rejected: ${e.message}`);
        }
      }
      return { visas, errors };
    },
    hasGrant,
  };
}

function hasGrant(visas, dataset = CONTROLLED_DATASET) {
  return visasLib.hasControlledAccess(visas, dataset);
}

module.exports = { create, hasGrant, CONTROLLED_DATASET, CONTROLLED_DATASET_URL };
