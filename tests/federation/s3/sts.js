'use strict';
// STS front for the federation's RGW: AssumeRoleWithWebIdentity (the MinIO / AWS STS call) that turns an
// OIDC token from the federation's issuer into short-lived S3 credentials that RGW really enforces.
//
//   node s3/sts.js --port S --issuer URL --uid fed [--ceph-conf FILE] [--min-duration 900] [--max-duration 43200]
//
// POST / (form body, or the same parameters in the query string):
//   Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=T&RoleArn=..&RoleSessionName=..&DurationSeconds=N
// The token is validated with the issuer: a JWT (ID token or JWT access token) against the issuer's JWKS
// (signature, iss, exp), anything else (the provider's opaque access tokens) by calling the issuer's
// userinfo endpoint with it. On success a fresh S3 key pair is attached to the RGW subuser `<uid>:<sub>`
// (created on first use, full access to <uid>'s buckets) with radosgw-admin, and deleted again when
// DurationSeconds have passed. The SessionToken returned is opaque and only recorded here: RGW runs with
// its own STS off and ignores x-amz-security-token, so the key pair alone is what grants access.
// Errors are AWS STS XML: ErrorResponse/Error/{Type,Code,Message}.

const http = require('http');
const crypto = require('crypto');
const { execFile } = require('child_process');
const svc = require('../lib/service');

const args = svc.parseArgs();
const PORT = Number(args.port || 0);
const ISSUER = String(args.issuer || process.env.FED_ISSUER || '').replace(/\/+$/, '');
const UID = String(args.uid || 'fed');
const CEPH_CONF = args.cephConf || process.env.CEPH_CONF;
const MIN_DURATION = Number(args.minDuration || 900);
const MAX_DURATION = Number(args.maxDuration || 43200);
const log = svc.logger('sts');

if (!ISSUER) { console.error('sts.js: no issuer (--issuer or FED_ISSUER)'); process.exit(2); }

// ---------------------------------------------------------------- radosgw-admin, one call at a time

let adminQueue = Promise.resolve();
function radosgwAdmin(argv) {
  const run = () => new Promise((resolve, reject) => {
    const env = Object.assign({}, process.env, CEPH_CONF ? { CEPH_CONF } : {});
    execFile('radosgw-admin', argv, { env, timeout: 30000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`radosgw-admin ${argv[0]} ${argv[1]} failed: ${stderr || err.message}`));
      resolve(stdout);
    });
  });
  const p = adminQueue.then(run, run);
  adminQueue = p.catch(() => {});
  return p;
}

const subusers = new Set();
const sessions = new Map(); // accessKey -> { sub, expires, timer, sessionToken }

async function issueKeys(sub, durationSeconds) {
  const name = sub.replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 64) || 'anonymous';
  const subuser = `${UID}:${name}`;
  if (!subusers.has(subuser)) {
    const info = JSON.parse(await radosgwAdmin(['user', 'info', `--uid=${UID}`]));
    if (!(info.subusers || []).some((s) => s.id === subuser)) {
      await radosgwAdmin(['subuser', 'create', `--uid=${UID}`, `--subuser=${subuser}`, '--access=full']);
    }
    subusers.add(subuser);
  }
  const accessKey = 'STS' + crypto.randomBytes(16).toString('hex').toUpperCase().slice(0, 17);
  const secretKey = crypto.randomBytes(30).toString('base64').replace(/[+/=]/g, 'x');
  const sessionToken = crypto.randomBytes(48).toString('base64url');
  await radosgwAdmin(['key', 'create', `--subuser=${subuser}`, '--key-type=s3', `--access-key=${accessKey}`, `--secret-key=${secretKey}`]);
  const expires = new Date(Date.now() + durationSeconds * 1000);
  const timer = setTimeout(() => revoke(accessKey), durationSeconds * 1000);
  timer.unref();
  sessions.set(accessKey, { sub, subuser, expires, sessionToken });
  log.info(`issued ${accessKey} for ${subuser} until ${expires.toISOString()}`);
  return { accessKey, secretKey, sessionToken, expires, subuser };
}

async function revoke(accessKey) {
  if (!sessions.has(accessKey)) return;
  try {
    await radosgwAdmin(['key', 'rm', `--uid=${UID}`, '--key-type=s3', `--access-key=${accessKey}`]);
    sessions.delete(accessKey);
    log.info(`expired ${accessKey}`);
  } catch (e) {
    log.error(`could not delete ${accessKey}, retrying in 5 s:`, e.message);
    setTimeout(() => revoke(accessKey), 5000).unref();
  }
}

// ---------------------------------------------------------------- token validation

class StsError extends Error {
  constructor(status, code, message, type = 'Sender') { super(message); this.status = status; this.code = code; this.type = type; }
}

let discovery = null;
async function getDiscovery() {
  if (discovery) return discovery;
  try {
    const r = await fetch(`${ISSUER}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    discovery = await r.json();
  } catch (e) {
    throw new StsError(400, 'IDPCommunicationError', `cannot read the issuer's discovery document: ${e.message}`);
  }
  return discovery;
}

let jwks = null;
async function validateJwt(token) {
  const jose = await import('jose');
  const d = await getDiscovery();
  if (!jwks) jwks = jose.createRemoteJWKSet(new URL(d.jwks_uri || `${ISSUER}/jwks`));
  try {
    const { payload } = await jose.jwtVerify(token, jwks, { issuer: d.issuer || ISSUER });
    return payload;
  } catch (e) {
    throw new StsError(400, 'InvalidIdentityToken', `token rejected: ${e.code || ''} ${e.message}`.trim());
  }
}

async function validateOpaque(token) {
  const d = await getDiscovery();
  const url = d.userinfo_endpoint || `${ISSUER}/me`;
  let r;
  try {
    r = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
  } catch (e) {
    throw new StsError(400, 'IDPCommunicationError', `userinfo request failed: ${e.message}`);
  }
  if (r.status === 401 || r.status === 403 || r.status === 400) {
    throw new StsError(400, 'InvalidIdentityToken', `the issuer rejected the token at userinfo (HTTP ${r.status})`);
  }
  if (!r.ok) throw new StsError(400, 'IDPCommunicationError', `userinfo answered HTTP ${r.status}`);
  const ct = r.headers.get('content-type') || '';
  if (ct.includes('jwt')) throw new StsError(400, 'IDPCommunicationError', 'signed userinfo responses are not supported');
  return r.json();
}

async function validateToken(token) {
  const claims = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) ? await validateJwt(token) : await validateOpaque(token);
  if (!claims || typeof claims.sub !== 'string' || !claims.sub) throw new StsError(400, 'InvalidIdentityToken', 'the token has no subject');
  return claims;
}

// ---------------------------------------------------------------- XML

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const isoSeconds = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function sendXml(res, status, xml) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendStsError(res, err, requestId) {
  const e = err instanceof StsError ? err : new StsError(500, 'InternalFailure', 'internal error', 'Receiver');
  if (!(err instanceof StsError)) log.error(err);
  sendXml(res, e.status, `<ErrorResponse xmlns="${NS}"><Error><Type>${e.type}</Type><Code>${esc(e.code)}</Code>` +
    `<Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`);
}

// ---------------------------------------------------------------- handler

async function assumeRoleWithWebIdentity(p, requestId) {
  const token = p.get('WebIdentityToken');
  if (!token) throw new StsError(400, 'MissingParameter', 'WebIdentityToken is required');
  if (p.get('Version') && p.get('Version') !== '2011-06-15') throw new StsError(400, 'InvalidParameterValue', 'Version must be 2011-06-15');
  const roleArn = p.get('RoleArn') || 'arn:aws:iam:::role/federation';
  if (!/^arn:[\w-]*:iam:[\w-]*:[\w-]*:role\/[\w+=,.@/-]+$/.test(roleArn)) throw new StsError(400, 'ValidationError', `RoleArn is not a role ARN: ${roleArn}`);
  const sessionName = p.get('RoleSessionName') || 'session';
  if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) throw new StsError(400, 'ValidationError', 'RoleSessionName must match [\\w+=,.@-]{2,64}');
  const durationText = p.get('DurationSeconds') || '3600';
  const duration = Number(durationText);
  if (!/^\d+$/.test(durationText) || duration < MIN_DURATION || duration > MAX_DURATION) {
    throw new StsError(400, 'ValidationError', `DurationSeconds must be an integer between ${MIN_DURATION} and ${MAX_DURATION}`);
  }
  const claims = await validateToken(token);
  const creds = await issueKeys(claims.sub, duration);
  const role = roleArn.split('/').pop();
  const audience = [].concat(claims.aud || claims.client_id || '')[0] || '';
  return `<AssumeRoleWithWebIdentityResponse xmlns="${NS}"><AssumeRoleWithWebIdentityResult>` +
    `<SubjectFromWebIdentityToken>${esc(claims.sub)}</SubjectFromWebIdentityToken>` +
    `<Audience>${esc(audience)}</Audience>` +
    `<AssumedRoleUser><Arn>arn:aws:sts:::assumed-role/${esc(role)}/${esc(sessionName)}</Arn>` +
    `<AssumedRoleId>${esc(creds.accessKey)}:${esc(sessionName)}</AssumedRoleId></AssumedRoleUser>` +
    `<Credentials><AccessKeyId>${creds.accessKey}</AccessKeyId><SecretAccessKey>${esc(creds.secretKey)}</SecretAccessKey>` +
    `<SessionToken>${creds.sessionToken}</SessionToken><Expiration>${isoSeconds(creds.expires)}</Expiration></Credentials>` +
    `<Provider>${esc(ISSUER)}</Provider>` +
    `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata>` +
    '</AssumeRoleWithWebIdentityResponse>';
}

const server = http.createServer(async (req, res) => {
  const started = Date.now();
  res.on('finish', () => log.request(req, res, started));
  const requestId = crypto.randomUUID();
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/service-info') {
      return svc.sendJson(res, 200, svc.serviceInfo({ id: 'org.federation.sts', name: 'Federation STS (in front of Ceph RGW)',
        type: { group: 'com.amazonaws', artifact: 'sts', version: '2011-06-15' } }));
    }
    if (url.pathname !== '/') throw new StsError(404, 'NotFound', `no such path ${url.pathname}`);
    let params = url.searchParams;
    if (req.method === 'POST') {
      const body = (await svc.readBody(req, 64 << 10)).toString('utf8');
      params = new URLSearchParams(body);
      for (const [k, v] of url.searchParams) if (!params.has(k)) params.set(k, v);
    } else if (req.method !== 'GET') {
      throw new StsError(405, 'InvalidAction', `method ${req.method} not allowed`);
    }
    const action = params.get('Action');
    if (action !== 'AssumeRoleWithWebIdentity') {
      throw new StsError(400, action ? 'InvalidAction' : 'MissingAction', `unsupported Action ${action || '(none)'}; only AssumeRoleWithWebIdentity`);
    }
    sendXml(res, 200, await assumeRoleWithWebIdentity(params, requestId));
  } catch (e) {
    sendStsError(res, e, requestId);
  }
});

svc.listen(server, PORT).then((port) => {
  log.info(`STS listening on 127.0.0.1:${port}, issuer ${ISSUER}, rgw uid ${UID}`);
  console.log(`sts listening on 127.0.0.1:${port}`);
}, (e) => { console.error(e.message); process.exit(1); });
svc.onShutdown(server, log);
