'use strict';
// Misbehaving device-flow provider (B+2, FED_BAD_ISSUER): tests of impact's RFC 8628 polling.
//
//   GET  /.well-known/openid-configuration   (and /.well-known/oauth-authorization-server)
//   POST /device/auth     device authorization: {device_code, user_code, verification_uri, ..., expires_in, interval}
//   POST /token           answers each device_code poll with the next scripted step
//   GET  /jwks            key of the id_tokens it issues
//   GET  /device          a dummy verification page
//
// Control (tests):
//   POST /__script  ["authorization_pending","slow_down","token"]   or
//                   {"steps": [...], "interval": 1, "expires_in": 600, "omit_interval": false,
//                    "device_answer": {...}}   (members that replace those of the device authorization answer:
//                    a hostile user_code or verification_uri_complete, an expires_in of -1)
//                   resets the recorded polls. Steps:
//                     authorization_pending | slow_down | access_denied | expired_token | invalid_grant
//                                         -> 400 {"error": step}
//                     malformed             -> 200 with a body that is not JSON
//                     server_error          -> 500 text/plain
//                     token                 -> 200 a token response (access, refresh, id token)
//                     {"status": 503, "body": "..." | {...}, "headers": {...}, "delay_ms": 0..10000}
//                   When the script is used up the last step repeats. Once expires_in has passed every
//                   poll gets expired_token whatever the script says.
//   GET  /__script  current script and position
//   GET  /__polls   {"authorizations": [...], "polls": [{t, dt_ms, interval, early, grant_type, client_id,
//                   device_code_ok, answer}]}; t is epoch ms, dt_ms the time since the previous poll
//                   (or since the device authorization), interval the interval in force (seconds,
//                   +5 after every slow_down answered), early = dt_ms < interval*1000 - 200
//   POST /__reset   default script (["authorization_pending","token"], interval 1, expires_in 600)

const crypto = require('crypto');
const querystring = require('querystring');
const svc = require('../lib/service');
const { generate, publicJwk, signJwt } = require('./keys');

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ERROR_STEPS = new Set(['authorization_pending', 'slow_down', 'access_denied', 'expired_token', 'invalid_grant']);
const DEFAULT = { steps: ['authorization_pending', 'token'], interval: 1, expires_in: 600, omit_interval: false };

function createHandler({ issuer, log }) {
  const base = issuer.replace(/\/$/, '');
  const key = generate('ES256');
  let script;
  let authorizations;
  let polls;
  let pos;
  let interval;
  let lastAt;
  const reset = (cfg = {}) => {
    script = { ...DEFAULT, ...cfg };
    script.steps = [...(script.steps || DEFAULT.steps)];
    authorizations = [];
    polls = [];
    pos = 0;
    interval = script.interval;
    lastAt = null;
  };
  reset();

  const validStep = (s) => ERROR_STEPS.has(s) || ['malformed', 'server_error', 'token'].includes(s)
    || (s && typeof s === 'object' && Number.isInteger(s.status));

  const r = svc.router({ log });
  const discovery = {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    device_authorization_endpoint: `${base}/device/auth`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    grant_types_supported: [DEVICE_GRANT, 'refresh_token'],
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    token_endpoint_auth_methods_supported: ['none'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access', 'ga4gh_passport_v1'],
  };
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, svc.serviceInfo({
    id: 'org.impact.federation.bad-device-provider',
    name: 'Misbehaving device-flow provider (scripted)',
    type: { group: 'org.impact.federation', artifact: 'bad-device-provider', version: '1.0.0' },
  })));
  r.get('/.well-known/openid-configuration', (req, res) => svc.sendJson(res, 200, discovery));
  r.get('/.well-known/oauth-authorization-server', (req, res) => svc.sendJson(res, 200, discovery));
  r.get('/jwks', (req, res) => svc.sendJson(res, 200, { keys: [publicJwk(key)] }));
  r.get('/device', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!DOCTYPE html><p>This provider never lets anyone sign in; its token endpoint follows a script.</p>\n');
  });
  r.get('/authorize', (req, res) => svc.sendJson(res, 400, { error: 'unsupported_response_type' }));

  r.post('/device/auth', async (req, res) => {
    const form = querystring.parse((await svc.readBody(req, 64 * 1024)).toString('utf8'));
    if (!form.client_id) return svc.sendJson(res, 400, { error: 'invalid_client', error_description: 'client_id missing' });
    const deviceCode = crypto.randomBytes(24).toString('base64url');
    const userCode = `BAD${crypto.randomInt(10000, 99999)}`;
    const now = Date.now();
    authorizations.push({
      t: now, client_id: form.client_id, scope: form.scope, device_code: deviceCode, expires_at: now + script.expires_in * 1000,
    });
    interval = script.interval;
    lastAt = now;
    const body = {
      device_code: deviceCode,
      user_code: userCode,
      verification_uri: `${base}/device`,
      verification_uri_complete: `${base}/device?user_code=${userCode}`,
      expires_in: script.expires_in,
    };
    if (!script.omit_interval) body.interval = script.interval;
    Object.assign(body, script.device_answer || {});
    return svc.sendJson(res, 200, body, { 'Cache-Control': 'no-store' });
  });

  r.post('/token', async (req, res) => {
    const form = querystring.parse((await svc.readBody(req, 64 * 1024)).toString('utf8'));
    const now = Date.now();
    if (form.grant_type !== DEVICE_GRANT) {
      return svc.sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'this provider only knows the device_code grant' });
    }
    const auth = authorizations.find((a) => a.device_code === form.device_code);
    const rec = {
      t: now,
      dt_ms: lastAt === null ? null : now - lastAt,
      interval,
      early: lastAt !== null && now - lastAt < interval * 1000 - 200,
      grant_type: form.grant_type,
      client_id: form.client_id,
      device_code_ok: !!auth,
      answer: null,
    };
    lastAt = now;
    polls.push(rec);
    if (!auth) {
      rec.answer = 'invalid_grant';
      return svc.sendJson(res, 400, { error: 'invalid_grant', error_description: 'unknown device_code' });
    }
    let step = script.steps.length ? script.steps[Math.min(pos, script.steps.length - 1)] : 'authorization_pending';
    pos += 1;
    if (now > auth.expires_at) step = 'expired_token';
    rec.answer = typeof step === 'string' ? step : `status:${step.status}`;
    const noStore = { 'Cache-Control': 'no-store' };
    if (ERROR_STEPS.has(step)) {
      if (step === 'slow_down') interval += 5;
      return svc.sendJson(res, 400, { error: step, error_description: `scripted ${step}` }, noStore);
    }
    if (step === 'malformed') {
      res.writeHead(200, { 'Content-Type': 'application/json', ...noStore });
      return res.end('{"access_token": "truncated');
    }
    if (step === 'server_error') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      return res.end('scripted internal error\n');
    }
    if (step === 'token') {
      const t = Math.floor(now / 1000);
      const idToken = signJwt({ typ: 'JWT', alg: 'ES256', kid: key.kid }, {
        iss: base, sub: 'alice', aud: form.client_id, iat: t, exp: t + 300,
      }, key);
      return svc.sendJson(res, 200, {
        access_token: `bad-at-${crypto.randomBytes(16).toString('base64url')}`,
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: `bad-rt-${crypto.randomBytes(16).toString('base64url')}`,
        id_token: idToken,
        scope: auth.scope || 'openid',
      }, noStore);
    }
    // custom {status, body, headers, delay_ms}
    const delay = Math.min(Math.max(Number(step.delay_ms) || 0, 0), 10000);
    if (delay) await new Promise((resolve) => { setTimeout(resolve, delay); });
    const body = typeof step.body === 'string' ? step.body : JSON.stringify(step.body ?? {});
    res.writeHead(step.status, { 'Content-Type': typeof step.body === 'string' ? 'text/plain' : 'application/json', ...(step.headers || {}) });
    return res.end(body);
  });

  r.post('/__script', async (req, res) => {
    const body = await svc.readJson(req);
    const cfg = Array.isArray(body) ? { steps: body } : (body || {});
    if (!Array.isArray(cfg.steps || []) || !(cfg.steps || []).every(validStep)) {
      return svc.sendJson(res, 400, { msg: 'bad script: steps must be known names or {status, body}', status_code: 400 });
    }
    for (const k of ['interval', 'expires_in']) {
      if (k in cfg && !(Number.isInteger(cfg[k]) && cfg[k] >= 0)) return svc.sendJson(res, 400, { msg: `${k} must be a non-negative integer`, status_code: 400 });
    }
    if ('device_answer' in cfg && (typeof cfg.device_answer !== 'object' || Array.isArray(cfg.device_answer))) {
      return svc.sendJson(res, 400, { msg: 'device_answer must be an object', status_code: 400 });
    }
    reset(cfg);
    log.info(`script: ${JSON.stringify(script)}`);
    return svc.sendJson(res, 200, { ...script, position: pos });
  });
  r.get('/__script', (req, res) => svc.sendJson(res, 200, { ...script, position: pos }));
  r.get('/__polls', (req, res) => svc.sendJson(res, 200, {
    authorizations: authorizations.map(({ device_code: _d, ...a }) => a), // eslint-disable-line no-unused-vars
    polls,
  }));
  r.post('/__reset', (req, res) => { reset(); svc.sendJson(res, 200, { ...script, position: pos }); });
  return r.handler();
}

if (require.main === module) {
  const http = require('http');
  const args = svc.parseArgs();
  const log = svc.logger('oidc-bad');
  const port = args.port ?? 18002;
  const server = http.createServer();
  svc.listen(server, port).then((p) => {
    const issuer = (port !== 0 && process.env.FED_BAD_ISSUER) || `http://127.0.0.1:${p}`;
    server.on('request', createHandler({ issuer, log }));
    log.info(`listening on ${p}, issuer ${issuer}`);
    process.stdout.write(`READY ${JSON.stringify({ bad_issuer: issuer })}\n`);
  }).catch((e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
  svc.onShutdown(server, log);
}

module.exports = { createHandler };
