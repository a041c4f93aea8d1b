'use strict';
// Visa issuer (B+3). Serves the public keys that visas point at with `jku`:
//   GET /jwks, /.well-known/jwks.json   the trusted visa issuer key (ES256)
//   GET /rogue/jwks                     an attacker's key (jku of mallory's "untrusted-jku" visa)
//   GET /untrusted/jwks                 the same attacker key for the untrusted issuer <origin>/untrusted/
//   GET /.well-known/ga4gh-visa-issuer  {issuer, jwks_uri} (informational)
//   GET /visas/:user                    freshly minted visas of a test user (debugging / tests)
//   GET /service-info
// Signing happens in-process (the broker in server.js calls users.mintVisas with the same keys).
//
// Standalone: node oidc/visa-issuer.js --port B+3 (keys from $FED_STATE/oidc/keys.json).

const svc = require('../lib/service');
const { loadKeys, publicJwk } = require('./keys');
const { mintVisas } = require('./users');

function createHandler({ issuer, keys, log, visaTtl = 3600, soonVisaTtl = 120 }) {
  const { origin } = new URL(issuer);
  const info = svc.serviceInfo({
    id: 'org.impact.federation.visa-issuer',
    name: 'Local GA4GH visa issuer',
    type: { group: 'org.ga4gh', artifact: 'visa-issuer', version: '1.2.0' },
    issuer,
    // Where this issuer's keys are (the `jku` of its visas): clients pin iss -> jku from here.
    jku: `${origin}/jwks`,
  });
  const r = svc.router({ log });
  const jwks = { keys: [publicJwk(keys.visa)] };
  const rogue = { keys: [publicJwk(keys.rogue)] };
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, info));
  r.get('/jwks', (req, res) => svc.sendJson(res, 200, jwks));
  r.get('/.well-known/jwks.json', (req, res) => svc.sendJson(res, 200, jwks));
  r.get('/rogue/jwks', (req, res) => svc.sendJson(res, 200, rogue));
  r.get('/untrusted/jwks', (req, res) => svc.sendJson(res, 200, rogue));
  r.get('/.well-known/ga4gh-visa-issuer', (req, res) => svc.sendJson(res, 200, { issuer, jwks_uri: `${origin}/jwks` }));
  r.get('/visas/:user', (req, res, ctx) => svc.sendJson(res, 200, {
    ga4gh_passport_v1: mintVisas(ctx.params.user, { visaIssuer: issuer, keys, visaTtl, soonVisaTtl }),
  }));
  return r.handler();
}

if (require.main === module) {
  const http = require('http');
  const args = svc.parseArgs();
  const state = args.state || process.env.FED_STATE;
  if (!state) { process.stderr.write('FED_STATE is required\n'); process.exit(2); }
  const log = svc.logger('visa-issuer');
  const port = args.port ?? 18003;
  const server = http.createServer();
  svc.listen(server, port).then((p) => {
    const issuer = (port !== 0 && process.env.FED_VISA_ISSUER) || `http://127.0.0.1:${p}/`;
    server.on('request', createHandler({ issuer, keys: loadKeys(state), log }));
    log.info(`listening on ${p}, issuer ${issuer}`);
    process.stdout.write(`READY ${JSON.stringify({ visa_issuer: issuer })}\n`);
  }).catch((e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
  svc.onShutdown(server, log);
}

module.exports = { createHandler };
