'use strict';
// Test users and the GA4GH visas (Visa Document Tokens, Passport v1.2) the visa issuer signs for them.
// Synthetic identities only.

const crypto = require('crypto');
const { signJwt, unsecuredJwt } = require('./keys');

const EGA = 'https://ega-archive.org/datasets/';
const CONTROLLED = `${EGA}EGAD-CONTROLLED-1`;
const TERMS = 'https://doi.org/10.1038/s41431-018-0219-y'; // GA4GH/ELIXIR bona fide researcher terms
const ASSERTED = 1704067200; // 2024-01-01T00:00:00Z, when the facts were asserted

// Visa specs: {type, value, source, by, variant?, soon?}
//   variant: undefined (good) | expired | badsig | none | untrusted-iss | untrusted-jku
//   soon: expires FED_SOON_VISA_TTL seconds after the login (grant) instead of after FED_VISA_TTL
const grant = (variant) => ({
  type: 'ControlledAccessGrants', value: CONTROLLED, source: 'https://ega-archive.org/dacs/EGAC-FED-1', by: 'dac', variant,
});
const terms = { type: 'AcceptedTermsAndPolicies', value: TERMS, source: 'https://uni.example/', by: 'self' };

const BAD = ['expired', 'badsig', 'none', 'untrusted-iss', 'untrusted-jku'];

const USERS = {
  alice: {
    name: 'Alice Example',
    email: 'alice@uni.example',
    visas: [
      grant(),
      { type: 'AffiliationAndRole', value: 'faculty@uni.example', source: 'https://uni.example/', by: 'so' },
      terms,
      { type: 'LinkedIdentities', value: 'alice-ext,https%3A%2F%2Fidp.uni.example%2F', source: 'https://idp.uni.example/', by: 'system', soon: true },
    ],
  },
  bob: {
    name: 'Bob Example',
    email: 'bob@uni.example',
    visas: [
      { type: 'AffiliationAndRole', value: 'member@uni.example', source: 'https://uni.example/', by: 'system' },
      terms,
    ],
  },
  carol: { name: 'Carol Example', email: 'carol@uni.example', visas: [] },
  // mallory: one good visa plus one bad ControlledAccessGrants visa of each kind; none may grant access.
  mallory: {
    name: 'Mallory Example',
    email: 'mallory@evil.example',
    visas: [terms, ...BAD.map(grant)],
  },
};
// mallory-<variant>: exactly one bad ControlledAccessGrants visa.
for (const v of BAD) {
  USERS[`mallory-${v}`] = { name: `Mallory (${v})`, email: `mallory-${v}@evil.example`, visas: [grant(v)] };
}

// settings: {visaIssuer (iss URL), keys, visaTtl, soonVisaTtl}
// anchor: epoch seconds of the login (grant creation), base of the `soon` expiry.
function mintVisas(username, settings, anchor) {
  const user = USERS[username];
  if (!user) return [];
  const now = Math.floor(Date.now() / 1000);
  const { origin } = new URL(settings.visaIssuer);
  const base = anchor || now;
  return user.visas.map((spec) => {
    let iss = settings.visaIssuer;
    let jku = `${origin}/jwks`;
    let signer = settings.keys.visa;
    let kid = settings.keys.visa.kid;
    let iat = now;
    let exp = now + settings.visaTtl;
    if (spec.soon) {
      iat = base;
      exp = base + settings.soonVisaTtl;
    }
    switch (spec.variant) {
      case 'expired': iat = now - 7200; exp = now - 3600; break;
      case 'badsig': signer = settings.keys.rogue; break; // header names the real key
      case 'untrusted-iss':
        iss = `${origin}/untrusted/`; jku = `${origin}/untrusted/jwks`; signer = settings.keys.rogue; kid = signer.kid; break;
      case 'untrusted-jku': // trusted iss, but jku points at the attacker's key set (which does verify the signature)
        jku = `${origin}/rogue/jwks`; signer = settings.keys.rogue; kid = signer.kid; break;
      default: break;
    }
    const header = { typ: 'JWT', alg: 'ES256', jku, kid };
    const payload = {
      iss,
      sub: username,
      iat,
      exp,
      jti: crypto.randomUUID(),
      ga4gh_visa_v1: {
        type: spec.type, asserted: ASSERTED, value: spec.value, source: spec.source, by: spec.by,
      },
    };
    return spec.variant === 'none' ? unsecuredJwt(header, payload) : signJwt(header, payload, signer);
  });
}

module.exports = { USERS, mintVisas, CONTROLLED, BAD };
