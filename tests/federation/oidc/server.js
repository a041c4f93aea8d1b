'use strict';
// Identity for the local federation: one process, three loopback listeners.
//
//   node oidc/server.js --port B+1 [--bad-port B+2] [--visa-port B+3]
//
//   B+1  OIDC provider (npm oidc-provider v8), issuer $FED_ISSUER or http://127.0.0.1:B+1
//        device flow, refresh rotation, revocation, introspection, userinfo with GA4GH passports,
//        token exchange to a GA4GH Passport JWT, dev login/consent pages at /interaction/:uid
//   B+2  misbehaving device-flow provider, scripted (see bad.js)
//   B+3  visa issuer: /jwks is the jku of every good visa (see visa-issuer.js)
//
// --bad-port / --visa-port default to port+1 / port+2. Port 0 everywhere picks free ports (tests);
// the resulting URLs are printed as one line `READY {json}` on stdout and written to
// $FED_STATE/oidc/ready.json. Keys live in $FED_STATE/oidc/keys.json, the impact-ci secret in
// $FED_STATE/impact-ci.secret (0600). See oidc/README.md for the env knobs.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const querystring = require('querystring');

const svc = require('../lib/service');
const { loadKeys, publicJwk, signJwt } = require('./keys');
const { USERS, mintVisas } = require('./users');
const MemoryAdapter = require('./adapter');
const bad = require('./bad');
const visaIssuer = require('./visa-issuer');

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const TT_PASSPORT = 'urn:ga4gh:params:oauth:token-type:passport';
const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'ga4gh_passport_v1'];

const envInt = (name, dflt) => {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : dflt;
};

// Clients whose access tokens (and client-credentials tokens) live a fixed short time whatever accessTtl
// says, registered beside the normal ones so that one federation serves both: each is a copy of `like`
// under another id. Providers do this (Keycloak lets an operator set a lifespan of a minute per client).
const SHORT_CLIENTS = {
  'impact-cli-8s': { like: 'impact-cli', ttl: 8 },
  'impact-cli-45s': { like: 'impact-cli', ttl: 45 },
  'impact-ci-8s': { like: 'impact-ci', ttl: 8 },
};
const shortTtl = (clientId) => (SHORT_CLIENTS[clientId] ? SHORT_CLIENTS[clientId].ttl : undefined);

// Token endpoint outcomes ("success:<grant_type>", "error:<grant_type>:<error>", "revoked"), for tests
// that count what reached the provider: GET /__stats, DELETE /__stats to reset. The same counts per client
// (when the client is known): GET /__stats?client=ID, DELETE /__stats?client=ID resets that client's only.
const stats = {};
const clientStats = {};
const count = (key, clientId) => {
  stats[key] = (stats[key] || 0) + 1;
  if (clientId) {
    const c = clientStats[clientId] || (clientStats[clientId] = {});
    c[key] = (c[key] || 0) + 1;
  }
};
const clientOf = (ctx) => (ctx && ctx.oidc && ctx.oidc.client && ctx.oidc.client.clientId) || undefined;

// Mutable at run time through POST /__control.
function initialSettings() {
  return {
    accessTtl: envInt('FED_ACCESS_TTL', 300),
    refreshTtl: envInt('FED_REFRESH_TTL', 24 * 3600),
    deviceTtl: envInt('FED_DEVICE_TTL', 600),
    deviceInterval: envInt('FED_DEVICE_INTERVAL', 5),
    visaTtl: envInt('FED_VISA_TTL', 3600),
    soonVisaTtl: envInt('FED_SOON_VISA_TTL', 120),
    passportTtl: envInt('FED_PASSPORT_TTL', 600),
  };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

// Plain pages (no external assets). Every page carries <p id="result" data-result="..."> so that
// approve.js (and tests) can tell where they are without parsing prose.
function page(title, result, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
<p id="result" data-result="${esc(result)}"></p>
${body}
</body></html>
`;
}

function readForm(req) {
  return svc.readBody(req, 64 * 1024).then((b) => querystring.parse(b.toString('utf8')));
}

function sendHtml(res, status, html) {
  const body = Buffer.from(html);
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
  res.end(body);
}

async function createProvider({ issuer, keys, settings, ciSecret, ciAuthMethod, log }) {
  const { default: Provider, errors } = await import('oidc-provider');
  const brokerEs = keys.broker.find((k) => k.alg === 'ES256');

  const findAccount = async (ctx, sub) => {
    const user = USERS[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims(use, scope) {
        const out = {
          sub, preferred_username: sub, name: user.name, email: user.email, email_verified: true,
        };
        const scopes = new Set(String(scope || '').split(' '));
        if (use === 'userinfo' && scopes.has('ga4gh_passport_v1')) {
          const grant = ctx && ctx.oidc && ctx.oidc.entities.Grant;
          out.ga4gh_passport_v1 = mintVisas(sub, settings, grant && grant.iat);
        }
        return out;
      },
    };
  };

  const clients = [
    {
      client_id: 'impact-cli',
      client_name: 'impact command-line client',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT, 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'], // native loopback: any port is accepted
    },
    {
      client_id: 'impact-ci',
      client_name: 'impact CI (confidential)',
      client_secret: ciSecret,
      token_endpoint_auth_method: ciAuthMethod,
      // also the device flow: a site may register impact as a confidential client (then it can
      // exchange the user's token for a broker-signed GA4GH Passport)
      grant_types: ['client_credentials', TOKEN_EXCHANGE, 'refresh_token', DEVICE_GRANT],
      response_types: [],
      redirect_uris: [],
    },
  ];
  for (const [id, { like, ttl }] of Object.entries(SHORT_CLIENTS)) {
    const base = clients.find((c) => c.client_id === like);
    clients.push({ ...base, client_id: id, client_name: `${base.client_name}, access tokens of ${ttl} s` });
  }

  // ttl functions get (ctx, token, client); the token knows its client id when `client` is not passed
  const accessTtl = (ctx, token, client) => shortTtl((client && client.clientId) || (token && token.clientId)) || settings.accessTtl;

  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients,
    jwks: { keys: keys.broker },
    cookies: { keys: keys.cookies },
    scopes: SCOPES,
    responseTypes: ['code', 'none'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      ga4gh_passport_v1: ['ga4gh_passport_v1'],
    },
    findAccount,
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx, form, out, err) => {
          let result = 'enter-code';
          let msg = 'Enter the code displayed on your device.';
          if (err && err.name === 'AbortedError') { result = 'aborted'; msg = 'The sign-in was aborted or denied.'; } else if (err) {
            result = `error:${err.name || 'error'}`;
            msg = err.userCode || err.name === 'NoCodeError' ? `The code is not valid (${err.message}).` : 'There was an error processing your request.';
          }
          ctx.body = page('Device sign-in', result, `<p>${esc(msg)}</p>\n${form}\n<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
          ctx.body = page('Confirm device', 'confirm-code', `<p>${esc(client.clientName || client.clientId)} shows the code <code>${esc(userCode)}</code>.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
        },
        successSource: async (ctx) => {
          ctx.body = page('Sign-in complete', 'success', '<p>You can close this page and return to your device.</p>');
        },
      },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: { enabled: false },
    },
    rotateRefreshToken: true,
    clockTolerance: envInt('FED_CLOCK_TOLERANCE', 0), // same clock everywhere: tokens expire on time
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      DeviceCode: () => settings.deviceTtl,
      RefreshToken: () => settings.refreshTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `error:${out.error}`, `<pre>${esc(out.error)}: ${esc(out.error_description || '')}</pre>`);
    },
  });

  // RFC 8628 device authorization response: add `interval` (oidc-provider leaves it out, meaning 5 s).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && ctx.body.device_code) {
      ctx.body.interval = settings.deviceInterval;
    }
  });

  // RFC 8693 token exchange; GA4GH AAI 1.2 passport issuing.
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx, next) => {
    const p = ctx.oidc.params;
    if (!p.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token');
    if (p.subject_token_type !== TT_ACCESS) throw new errors.InvalidRequest(`subject_token_type must be ${TT_ACCESS}`);
    if (p.actor_token) throw new errors.InvalidRequest('actor_token is not supported');
    const at = await provider.AccessToken.find(p.subject_token);
    if (!at || !at.accountId) throw new errors.InvalidGrant('subject_token is invalid, expired or revoked');
    const grant = await provider.Grant.find(at.grantId);
    if (!grant) throw new errors.InvalidGrant('subject_token grant is gone (revoked?)');
    const requested = p.requested_token_type || TT_ACCESS;
    const now = Math.floor(Date.now() / 1000);
    if (requested === TT_PASSPORT) {
      if (!at.scopes.has('ga4gh_passport_v1')) throw new errors.InvalidGrant('subject_token lacks the ga4gh_passport_v1 scope');
      const ttl = settings.passportTtl;
      const passport = signJwt({ typ: 'vnd.ga4gh.passport+jwt', alg: 'ES256', kid: brokerEs.kid }, {
        iss: issuer,
        sub: at.accountId,
        aud: [ctx.oidc.client.clientId],
        iat: now,
        exp: now + ttl,
        jti: crypto.randomUUID(),
        ga4gh_passport_v1: mintVisas(at.accountId, settings, grant.iat),
      }, brokerEs);
      ctx.body = {
        access_token: passport, issued_token_type: TT_PASSPORT, token_type: 'Bearer', expires_in: ttl,
      };
    } else if (requested === TT_ACCESS) {
      // delegation: an access token for the calling client, same user and scopes (no refresh token)
      const scope = [...at.scopes].filter((s) => s !== 'offline_access').join(' ');
      const g = new provider.Grant({ accountId: at.accountId, clientId: ctx.oidc.client.clientId });
      g.addOIDCScope(scope);
      g.addOIDCClaims(['ga4gh_passport_v1', 'name', 'preferred_username', 'email', 'email_verified']);
      const grantId = await g.save(settings.accessTtl + 60);
      const token = new provider.AccessToken({
        accountId: at.accountId, client: ctx.oidc.client, grantId, gty: 'token_exchange', scope,
      });
      const value = await token.save();
      ctx.body = {
        access_token: value, issued_token_type: TT_ACCESS, token_type: 'Bearer', expires_in: token.expiration, scope,
      };
    } else {
      throw new errors.InvalidRequest(`unsupported requested_token_type (use ${TT_PASSPORT} or ${TT_ACCESS})`);
    }
    await next();
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'actor_token', 'actor_token_type', 'audience', 'resource', 'scope']);

  provider.on('server_error', (ctx, err) => log.error('server_error', err));
  provider.on('grant.success', (ctx) => count(`success:${ctx.oidc.params.grant_type}`, clientOf(ctx)));
  provider.on('grant.revoked', (ctx) => count('revoked', clientOf(ctx)));
  provider.on('grant.error', (ctx, err) => {
    count(`error:${(ctx.oidc && ctx.oidc.params && ctx.oidc.params.grant_type) || '?'}:${err.error || err.message}`, clientOf(ctx));
    if (err.message !== 'authorization_pending') log.info(`grant error: ${err.message} ${err.error_description || ''}`);
  });
  return provider;
}

function loginPage(uid, params, result, msg) {
  return page('Sign in', result, `${msg}<p>Client <b>${esc(params.client_id)}</b> asks you to sign in.
Test users: ${Object.keys(USERS).map(esc).join(', ')} (no password).</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="username" autofocus placeholder="username">
<button type="submit">Sign in</button>
</form>`);
}

// The dev login/consent pages: /interaction/:uid (GET), /interaction/:uid/login, /interaction/:uid/confirm (POST).
async function handleInteraction(provider, req, res, log) {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(req.pathname);
  if (!m) return sendHtml(res, 404, page('Not found', 'error:not_found', ''));
  const [, uid, action] = m;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (e) {
    return sendHtml(res, 400, page('Interaction expired', 'error:session_not_found', `<p>${esc(e.message)}</p>`));
  }
  if (details.uid !== uid) return sendHtml(res, 400, page('Interaction mismatch', 'error:interaction_mismatch', ''));
  const { prompt, params } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, params, 'login', ''));
    return sendHtml(res, 200, page('Consent', 'consent', `<p>Client <b>${esc(params.client_id)}</b> asks for the scopes
<code>${esc(params.scope || '')}</code> for user <b>${esc(details.session && details.session.accountId)}</b>.</p>
<form id="consent" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`));
  }
  if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', 'error:method', ''));
  const form = await readForm(req);

  if (action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
  }
  if (action === 'login') {
    if (prompt.name !== 'login') return sendHtml(res, 400, page('Unexpected step', 'error:not_login', ''));
    const username = String(form.username || '').trim();
    if (!USERS[username]) {
      return sendHtml(res, 400, loginPage(uid, params, 'error:unknown_user', `<p>Unknown user ${esc(username)}.</p>`));
    }
    log.info(`login ${username} for ${params.client_id}`);
    return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  }
  // confirm
  if (prompt.name !== 'consent') return sendHtml(res, 400, page('Unexpected step', 'error:not_consent', ''));
  if (form.decision !== 'approve') {
    log.info(`consent denied by ${details.session && details.session.accountId}`);
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User denied consent' }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const d = prompt.details || {};
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const result = details.grantId ? {} : { consent: { grantId } };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function start(opts = {}) {
  const state = opts.state || process.env.FED_STATE;
  if (!state) throw new Error('FED_STATE (or --state) is required');
  fs.mkdirSync(path.join(state, 'oidc'), { recursive: true, mode: 0o700 });
  const log = opts.log || svc.logger('oidc');
  const keys = loadKeys(state);
  const settings = initialSettings();

  // impact-ci secret: generated once, reused on restart
  const secretFile = path.join(state, 'impact-ci.secret');
  let ciSecret;
  if (fs.existsSync(secretFile)) ciSecret = fs.readFileSync(secretFile, 'utf8').trim();
  if (!ciSecret) {
    ciSecret = crypto.randomBytes(32).toString('base64url');
    fs.writeFileSync(secretFile, `${ciSecret}\n`, { mode: 0o600 });
  }
  fs.chmodSync(secretFile, 0o600);

  const port = opts.port ?? 18001;
  const badPort = opts.badPort ?? (port === 0 ? 0 : port + 1);
  const visaPort = opts.visaPort ?? (port === 0 ? 0 : port + 2);

  // bind first (ports may be 0), then build the handlers that need the URLs
  let mainHandler = (req, res) => { res.writeHead(503); res.end(); };
  let badHandler = mainHandler;
  let visaHandler = mainHandler;
  const mainServer = http.createServer((req, res) => mainHandler(req, res));
  const badServer = http.createServer((req, res) => badHandler(req, res));
  const visaServer = http.createServer((req, res) => visaHandler(req, res));
  const [p1, p2, p3] = await Promise.all([
    svc.listen(mainServer, port), svc.listen(badServer, badPort), svc.listen(visaServer, visaPort),
  ]);
  const issuer = (port !== 0 && process.env.FED_ISSUER) || `http://127.0.0.1:${p1}`;
  const badIssuer = (badPort !== 0 && process.env.FED_BAD_ISSUER) || `http://127.0.0.1:${p2}`;
  const visaIss = (visaPort !== 0 && process.env.FED_VISA_ISSUER) || `http://127.0.0.1:${p3}/`;
  settings.visaIssuer = visaIss;
  settings.keys = keys;

  const provider = await createProvider({
    issuer, keys, settings, ciSecret, ciAuthMethod: process.env.FED_CI_AUTH_METHOD || 'client_secret_basic', log,
  });
  const providerCallback = provider.callback();
  const info = svc.serviceInfo({
    id: 'org.impact.federation.oidc',
    name: 'Local OIDC provider / GA4GH passport broker',
    type: { group: 'org.ga4gh', artifact: 'passport-broker', version: '1.2.0' },
    issuer,
    client_id: 'impact-cli', // the public client a CLI uses for the device flow
  });

  mainHandler = async (req, res) => {
    const started = Date.now();
    res.on('finish', () => log.request(req, res, started));
    const url = new URL(req.url, 'http://127.0.0.1');
    req.pathname = url.pathname;
    try {
      if (url.pathname === '/service-info' && req.method === 'GET') return svc.sendJson(res, 200, info);
      if (url.pathname.startsWith('/interaction/')) return await handleInteraction(provider, req, res, log);
      if (url.pathname === '/__stats') {
        const client = url.searchParams.get('client');
        if (client) {
          if (req.method === 'DELETE') delete clientStats[client];
          return svc.sendJson(res, 200, clientStats[client] || {});
        }
        if (req.method === 'DELETE') {
          for (const k of Object.keys(stats)) delete stats[k];
          for (const k of Object.keys(clientStats)) delete clientStats[k];
        }
        return svc.sendJson(res, 200, stats);
      }
      if (url.pathname === '/__control') {
        if (req.method === 'POST') {
          const body = (await svc.readJson(req)) || {};
          for (const k of Object.keys(body)) {
            if (!(k in settings) || typeof body[k] !== 'number' || k === 'keys') return svc.sendError(res, 400, `unknown or non-numeric setting ${k}`);
          }
          Object.assign(settings, body);
          log.info(`control: ${JSON.stringify(body)}`);
        }
        const { keys: _k, ...shown } = settings; // eslint-disable-line no-unused-vars
        return svc.sendJson(res, 200, shown);
      }
      return providerCallback(req, res);
    } catch (e) {
      log.error(`${req.method} ${url.pathname}:`, e);
      if (!res.headersSent) svc.sendError(res, e.status || 500, e.message);
      return undefined;
    }
  };
  badHandler = bad.createHandler({ issuer: badIssuer, log });
  visaHandler = visaIssuer.createHandler({ issuer: visaIss, keys, log });

  const urls = {
    issuer, bad_issuer: badIssuer, visa_issuer: visaIss, ports: { oidc: p1, bad: p2, visa: p3 },
  };
  // what `up` may merge into federation.json
  const fragment = {
    ...urls,
    verification_uri: `${issuer}/device`,
    trusted_visa_issuers: { [visaIss]: `${new URL(visaIss).origin}/jwks` },
    clients: {
      'impact-cli': {
        client_id: 'impact-cli', type: 'public', token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_GRANT, 'refresh_token', 'authorization_code'], redirect_uris: ['http://127.0.0.1/callback (any port)'],
      },
      'impact-ci': {
        client_id: 'impact-ci', type: 'confidential', token_endpoint_auth_method: process.env.FED_CI_AUTH_METHOD || 'client_secret_basic',
        secret_file: secretFile, grant_types: ['client_credentials', TOKEN_EXCHANGE, 'refresh_token', DEVICE_GRANT],
      },
      ...Object.fromEntries(Object.entries(SHORT_CLIENTS).map(([id, { like, ttl }]) => [id, {
        client_id: id, like, access_token_ttl: ttl, ...(like === 'impact-ci' ? { secret_file: secretFile } : {}),
      }])),
    },
    users: Object.fromEntries(Object.entries(USERS).map(([name, u]) => [name, {
      sub: name, email: u.email, visas: u.visas.map((v) => `${v.type}${v.variant ? ` (${v.variant})` : ''}${v.soon ? ' (expires soon)' : ''}`),
    }])),
  };
  fs.writeFileSync(path.join(state, 'oidc', 'ready.json'), `${JSON.stringify(fragment, null, 2)}\n`);
  log.info(`listening: ${JSON.stringify(urls)}`);

  const close = () => Promise.all([mainServer, badServer, visaServer].map((s) => new Promise((resolve) => {
    if (s.closeAllConnections) s.closeAllConnections();
    s.close(() => resolve());
  })));
  return {
    ...urls, provider, settings, close, publicBrokerJwks: { keys: keys.broker.map(publicJwk) },
  };
}

if (require.main === module) {
  const args = svc.parseArgs();
  const log = svc.logger('oidc');
  start({
    port: args.port, badPort: args.badPort, visaPort: args.visaPort, state: args.state, log,
  }).then((s) => {
    process.stdout.write(`READY ${JSON.stringify({ issuer: s.issuer, bad_issuer: s.bad_issuer, visa_issuer: s.visa_issuer, ports: s.ports })}\n`);
    let stopping = false;
    const stop = (sig) => {
      if (stopping) return;
      stopping = true;
      log.info(`${sig}: shutting down`);
      setTimeout(() => process.exit(0), 3000).unref();
      s.close().then(() => log.close()).then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  }).catch((e) => {
    log.error('failed to start:', e);
    process.stderr.write(`oidc: failed to start: ${e.message}\n`);
    process.exit(1);
  });
}

module.exports = {
  start, TT_PASSPORT, TT_ACCESS, TOKEN_EXCHANGE, DEVICE_GRANT, SHORT_CLIENTS,
};
