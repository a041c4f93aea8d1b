'use strict';
// DRS 1.5 for the local federation, serving the files of data/ (generate.js output).
//
//   node drs/server.js --port P [--data DIR] [--large DIR] [--max-bulk 50]
//
// Bytes live in the RGW bucket $FED_DATA_BUCKET (uploaded with lib/s3.js at start-up); the access
// endpoint answers RGW presigned GET URLs. Access levels:
//   public      open to everybody (some also carry an inline access_url + headers, served here)
//   registered  any valid bearer token of the federation's provider (else 401)
//   controlled  EGAD-CONTROLLED-1 files: a ControlledAccessGrants visa for
//               https://ega-archive.org/datasets/EGAD-CONTROLLED-1, from a Passport in the POST body
//               ({"passports": [...]}) or from the bearer token's userinfo passport.
//               401 without credentials (or with passports that do not verify), 403 otherwise.
// `blob-slow`: its access endpoint answers 202 + Retry-After: 1 first, then 200.
// `blob-1k` also has an inline access_url (on this port) that only works with the header it lists.
// Large blobs (blob-8m) are generated into --large (default $FED_STATE/data/large) at start-up.
// Also a module: start(opts) -> {server, port, url, apiUrl, objects, bucket, close()}.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const svc = require('../lib/service');
const openapi = require('../lib/openapi');
const identityLib = require('../beacon/identity');
const { ensureLarge } = require('../data/generate');

const BASE = '/ga4gh/drs/v1';
const ACCESS_ID = 'https-presigned';
const SLOW_DELAY_MS = 900; // ready this long after the first access request (Retry-After: 1)
const URL_TTL_S = 900;

const enc = (id) => encodeURIComponent(id);

function hashFile(file) {
  const sha = crypto.createHash('sha256');
  const md5 = crypto.createHash('md5');
  const buf = fs.readFileSync(file);
  sha.update(buf);
  md5.update(buf);
  return { size: buf.length, sha256: sha.digest('hex'), md5: md5.digest('hex') };
}

async function start(opts = {}) {
  const name = opts.name || 'drs';
  const log = opts.log || svc.logger(name);
  const dataDir = path.resolve(opts.data || process.env.FED_DATA_DIR || path.join(__dirname, '..', 'data', 'out'));
  const largeDir = path.resolve(opts.large || (process.env.FED_STATE ? path.join(process.env.FED_STATE, 'data', 'large') : path.join(os.tmpdir(), 'impact-fed-large')));
  const maxBulk = Number(opts.maxBulk || process.env.FED_DRS_MAX_BULK || 50);
  const identity = opts.identity || identityLib.create();
  const issuer = process.env.FED_ISSUER;
  const visaIssuer = process.env.FED_VISA_ISSUER;
  const bucket = process.env.FED_DATA_BUCKET || 'drs-data';
  const api = openapi.load('drs');
  const secret = crypto.randomBytes(32);
  let baseUrl = null;

  // ------------------------------------------------------------- objects
  ensureLarge(largeDir);
  const manifest = JSON.parse(fs.readFileSync(path.join(dataDir, 'drs-objects.json'), 'utf8'));
  const objects = new Map();
  for (const m of manifest) {
    const o = { ...m };
    if (!o.bundle) {
      o.path = o.file.startsWith('large:') ? path.join(largeDir, o.file.slice(6)) : path.join(dataDir, o.file);
      o.key = o.file.replace(/^large:/, 'large/');
      Object.assign(o, hashFile(o.path));
    }
    objects.set(o.id, o);
  }
  for (const o of objects.values()) { // bundles: size = sum, checksum over the sorted member checksums
    if (!o.bundle) continue;
    const leaves = (b, seen = new Set()) => b.contents.flatMap((id) => {
      const c = objects.get(id);
      if (!c || seen.has(id)) return [];
      seen.add(id);
      return c.bundle ? leaves(c, seen) : [c];
    });
    const all = leaves(o);
    o.size = all.reduce((s, c) => s + c.size, 0);
    o.sha256 = crypto.createHash('sha256').update(all.map((c) => c.sha256).sort().join('')).digest('hex');
    o.md5 = crypto.createHash('md5').update(all.map((c) => c.md5).sort().join('')).digest('hex');
  }

  // ------------------------------------------------------------- storage: RGW
  // Bytes are uploaded to the bucket at start-up (bounded wait for RGW to come up); no RGW, no DRS.
  if (!process.env.FED_S3_URL && !opts.s3) throw new Error('DRS needs the S3 store: set FED_S3_URL, FED_S3_ACCESS_KEY, FED_S3_SECRET_KEY (s3/start.sh)');
  const s3 = opts.s3 || require('../lib/s3').createClient();
  const deadline = Date.now() + Number(opts.s3WaitMs || process.env.FED_DRS_S3_WAIT_MS || 60000);
  for (let i = 0; ; i++) { // RGW may still be coming up
    try { await s3.createBucket(bucket); break; } catch (e) {
      if (Date.now() > deadline || i > 200 || (e.status && e.status < 500)) throw new Error(`cannot use bucket ${bucket} at ${s3.url}: ${e.message}`);
      await new Promise((ok) => setTimeout(ok, 300));
    }
  }
  for (const o of objects.values()) {
    if (o.bundle) continue;
    const head = await s3.headObject(bucket, o.key);
    if (head && head.contentLength === o.size && head.metadata.sha256 === o.sha256) continue;
    await s3.putObject(bucket, o.key, fs.readFileSync(o.path), { contentType: o.mime_type, metadata: { sha256: o.sha256 } });
  }
  log.info(`${[...objects.values()].filter((o) => !o.bundle).length} objects in s3://${bucket} at ${s3.url}`);

  // inline access_url (object flag `inline`): served by this DRS, only with the header it names
  const headerToken = (o) => crypto.createHmac('sha256', secret).update(`header\n${o.key}`).digest('base64url');
  const accessUrl = (o) => ({ url: s3.presignGet(bucket, o.key, URL_TTL_S) });
  const inlineUrl = (o) => ({ url: `${baseUrl}/download/${o.key.split('/').map(enc).join('/')}`, headers: [`X-Fed-Download-Token: ${headerToken(o)}`] });

  // ------------------------------------------------------------- authorization
  const CONTROLLED_VISA = `ControlledAccessGrants visa for ${identityLib.CONTROLLED_DATASET_URL}`;
  // -> null when allowed, else {status, msg}
  async function authorize(o, req, passports) {
    if (o.access === 'public') return null;
    let who = { user: null, visas: [] };
    try { who = await identity.caller(req); } catch (e) {
      if (e.status === 503) throw e;
      return { status: 401, msg: `${e.message}; object ${o.id} needs ${o.access === 'registered' ? 'a valid bearer token' : `a GA4GH passport with a ${CONTROLLED_VISA}`}` };
    }
    if (o.access === 'registered') {
      return who.user ? null : { status: 401, msg: `object ${o.id} is for registered users: send a valid bearer token (Authorization: Bearer ...)` };
    }
    // controlled
    let visas = who.visas || [];
    let errors = [];
    const given = Array.isArray(passports) && passports.length > 0;
    if (given) {
      const r = await identity.visasFromPassports(passports);
      visas = visas.concat(r.visas);
      errors = r.errors;
      // which credential opened it, for tests that must tell a passport from a bearer token
      if (identityLib.hasGrant(r.visas)) log.info(`controlled object ${o.id}: granted by a presented passport`);
    }
    if (identityLib.hasGrant(visas)) return null;
    if (!who.user && !given) {
      return { status: 401, msg: `object ${o.id} is controlled-access: POST a GA4GH passport ({"passports": [...]}) carrying a ${CONTROLLED_VISA}` };
    }
    if (!who.user && given && visas.length === 0 && errors.length) {
      return { status: 401, msg: `object ${o.id}: the passport did not verify (${errors.join('; ')}); a ${CONTROLLED_VISA} is required` };
    }
    return { status: 403, msg: `object ${o.id} requires a ${CONTROLLED_VISA}; the presented passport has none${errors.length ? ` (${errors.join('; ')})` : ''}` };
  }
  const authorizations = (o) => {
    const a = { drs_object_id: o.id };
    if (o.access === 'public') a.supported_types = ['None'];
    else if (o.access === 'registered') { a.supported_types = ['BearerAuth']; a.bearer_auth_issuers = [issuer].filter(Boolean); } else {
      a.supported_types = ['PassportAuth', 'BearerAuth'];
      a.passport_auth_issuers = [...new Set([issuer, visaIssuer].filter(Boolean))];
      a.bearer_auth_issuers = [issuer].filter(Boolean);
    }
    return a;
  };

  // ------------------------------------------------------------- rendering
  const selfUri = (o) => `drs://127.0.0.1:${new URL(baseUrl).port}/${enc(o.id)}`;
  const contentsOf = (o, expand, depth = 0) => o.contents.map((id) => {
    const c = objects.get(id);
    const item = { name: c.name, id: c.id, drs_uri: [selfUri(c)] };
    if (c.bundle && expand && depth < 10) item.contents = contentsOf(c, expand, depth + 1);
    return item;
  });
  function render(o, expand) {
    const d = {
      id: o.id, name: o.name, self_uri: selfUri(o), size: o.size, created_time: o.created_time, updated_time: o.updated_time,
      version: '1', checksums: [{ checksum: o.sha256, type: 'sha-256' }, { checksum: o.md5, type: 'md5' }],
    };
    if (o.mime_type) d.mime_type = o.mime_type;
    if (o.description) d.description = o.description;
    d.aliases = o.aliases || [];
    if (o.bundle) d.contents = contentsOf(o, expand);
    else {
      d.access_methods = [{ type: 'https', access_id: ACCESS_ID, region: process.env.FED_S3_REGION || 'us-east-1', available: true,
        authorizations: authorizations(o) }];
      if (o.inline) d.access_methods.unshift({ type: 'https', access_url: inlineUrl(o), available: true, authorizations: authorizations(o) });
    }
    return d;
  }

  // ------------------------------------------------------------- handlers
  const find = (id) => objects.get(id);
  const notFound = (res, id) => svc.sendError(res, 404, `no DRS object with id ${JSON.stringify(id)}`);
  const truthy = (v) => v === true || v === 'true' || v === '1';
  const slow = new Map(); // object id -> readyAt

  async function getObject(req, res, ctx) {
    const o = find(ctx.params.object_id);
    if (!o) return notFound(res, ctx.params.object_id);
    const body = ctx.body || {};
    const denied = await authorize(o, req, body.passports);
    if (denied) return svc.sendError(res, denied.status, denied.msg);
    return svc.sendJson(res, 200, render(o, truthy(req.method === 'POST' ? body.expand : ctx.query.expand)));
  }
  async function getAccess(req, res, ctx) {
    const o = find(ctx.params.object_id);
    if (!o) return notFound(res, ctx.params.object_id);
    const denied = await authorize(o, req, (ctx.body || {}).passports);
    if (denied) return svc.sendError(res, denied.status, denied.msg);
    if (o.bundle || ctx.params.access_id !== ACCESS_ID) {
      return svc.sendError(res, 404, `object ${o.id} has no access method with access_id ${JSON.stringify(ctx.params.access_id)}`);
    }
    if (o.slow) {
      const readyAt = slow.get(o.id);
      if (!readyAt || Date.now() < readyAt) {
        if (!readyAt) slow.set(o.id, Date.now() + SLOW_DELAY_MS);
        res.writeHead(202, { 'Retry-After': '1', 'Content-Length': 0 });
        return res.end();
      }
      slow.delete(o.id); // the next client sees a 202 again
    }
    return svc.sendJson(res, 200, accessUrl(o));
  }
  function tooMany(res, n) {
    return svc.sendError(res, 413, `bulk request of ${n} ids exceeds maxBulkRequestLength ${maxBulk}`);
  }
  function bulkIds(body) {
    const ids = (body && body.bulk_object_ids) || [];
    if (!Array.isArray(ids) || !ids.length) throw svc.httpError(400, 'bulk_object_ids must be a non-empty array');
    return ids;
  }
  function summarize(requested, unresolved) {
    const byCode = new Map();
    for (const [id, code] of unresolved) byCode.set(code, [...(byCode.get(code) || []), id]);
    return {
      summary: { requested, resolved: requested - unresolved.length, unresolved: unresolved.length },
      unresolved_drs_objects: [...byCode].map(([error_code, object_ids]) => ({ error_code, object_ids })),
    };
  }
  async function bulkObjects(req, res, ctx) {
    const ids = bulkIds(ctx.body);
    if (ids.length > maxBulk) return tooMany(res, ids.length);
    const resolved = [];
    const unresolved = [];
    for (const id of ids) {
      const o = find(id);
      if (!o) { unresolved.push([id, 404]); continue; }
      const denied = await authorize(o, req, ctx.body.passports);
      if (denied) unresolved.push([id, denied.status]); else resolved.push(render(o, truthy(ctx.body.expand)));
    }
    return svc.sendJson(res, 200, { ...summarize(ids.length, unresolved), resolved_drs_object: resolved });
  }
  async function bulkOptions(req, res, ctx) {
    const ids = bulkIds(ctx.body);
    if (ids.length > maxBulk) return tooMany(res, ids.length);
    const resolved = [];
    const unresolved = [];
    for (const id of ids) { const o = find(id); if (o) resolved.push(authorizations(o)); else unresolved.push([id, 404]); }
    return svc.sendJson(res, 200, { ...summarize(ids.length, unresolved), resolved_drs_object: resolved });
  }
  async function bulkAccess(req, res, ctx) {
    const list = (ctx.body && ctx.body.bulk_object_access_ids) || [];
    if (!Array.isArray(list) || !list.length) throw svc.httpError(400, 'bulk_object_access_ids must be a non-empty array');
    if (list.length > maxBulk) return tooMany(res, list.length);
    const out = [];
    const unresolved = [];
    for (const item of list) {
      const o = find(item.bulk_object_id);
      if (!o) { unresolved.push([item.bulk_object_id, 404]); continue; }
      const denied = await authorize(o, req, ctx.body.passports);
      if (denied) { unresolved.push([o.id, denied.status]); continue; }
      const accessIds = item.bulk_access_ids && item.bulk_access_ids.length ? item.bulk_access_ids : [ACCESS_ID];
      if (o.bundle || accessIds.some((a) => a !== ACCESS_ID)) { unresolved.push([o.id, 404]); continue; }
      out.push({ drs_object_id: o.id, drs_access_id: ACCESS_ID, ...accessUrl(o) }); // bulk: no 202 dance
    }
    return svc.sendJson(res, 200, { ...summarize(list.length, unresolved), resolved_drs_object_access_urls: out });
  }
  function optionsObject(req, res, ctx) {
    const o = find(ctx.params.object_id);
    if (!o) return notFound(res, ctx.params.object_id);
    return svc.sendJson(res, 200, authorizations(o));
  }
  const serviceInfo = () => svc.serviceInfo({
    id: 'org.impact.federation.drs', name: 'DRS (impact local federation)',
    type: { group: 'org.ga4gh', artifact: 'drs', version: '1.5.0' },
    description: 'DRS 1.5 over synthetic files (data/generate.js); bytes in RGW', version: '1.5.0',
    url: `${baseUrl}${BASE}`,
    maxBulkRequestLength: maxBulk,
    drs: { maxBulkRequestLength: maxBulk, objectCount: objects.size, totalObjectSize: [...objects.values()].filter((o) => !o.bundle).reduce((s, o) => s + o.size, 0) },
  });

  // bytes of `inline` objects, served here to callers that send the access_url's header
  function download(req, res, ctx) {
    const key = ctx.params.key;
    const o = [...objects.values()].find((x) => x.key === key);
    if (!o) return svc.sendError(res, 404, 'no such file');
    if (!o.inline || req.headers['x-fed-download-token'] !== headerToken(o)) {
      return svc.sendError(res, 403, 'missing or wrong X-Fed-Download-Token header (see the access_url headers)');
    }
    let startB = 0;
    let endB = o.size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (range && o.size > 0 && (range[1] || range[2])) {
      if (range[1]) { startB = Number(range[1]); if (range[2]) endB = Math.min(Number(range[2]), o.size - 1); } else { startB = Math.max(0, o.size - Number(range[2])); }
      if (startB > endB || startB >= o.size) {
        res.writeHead(416, { 'Content-Range': `bytes */${o.size}` });
        return res.end();
      }
      status = 206;
    }
    const headers = { 'Content-Type': o.mime_type || 'application/octet-stream', 'Content-Length': o.size ? endB - startB + 1 : 0, 'Accept-Ranges': 'bytes' };
    if (status === 206) headers['Content-Range'] = `bytes ${startB}-${endB}/${o.size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || o.size === 0) return res.end();
    return fs.createReadStream(o.path, { start: startB, end: endB }).pipe(res);
  }

  // ------------------------------------------------------------- routes
  const r = svc.router({ log });
  const v = (h) => openapi.validated(api, async (req, res, ctx) => {
    try { return await h(req, res, ctx); } catch (e) {
      if (e.status === 503) return svc.sendError(res, 503, e.message);
      throw e;
    }
  }, { service: name });
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, serviceInfo()));
  r.get(`${BASE}/service-info`, v((req, res) => svc.sendJson(res, 200, serviceInfo())));
  r.options(`${BASE}/objects`, v(bulkOptions));
  r.post(`${BASE}/objects`, v(bulkObjects));
  r.post(`${BASE}/objects/access`, v(bulkAccess));
  r.get(`${BASE}/objects/:object_id`, v(getObject));
  r.post(`${BASE}/objects/:object_id`, v(getObject));
  r.options(`${BASE}/objects/:object_id`, v(optionsObject));
  r.get(`${BASE}/objects/:object_id/access/:access_id`, v(getAccess));
  r.post(`${BASE}/objects/:object_id/access/:access_id`, v(getAccess));
  r.get('/download/:key*', download);
  const server = http.createServer(r.handler());
  const port = await svc.listen(server, opts.port || 0);
  baseUrl = `http://127.0.0.1:${port}`;
  log.info(`${name} listening on ${baseUrl}${BASE}; ${objects.size} objects; bytes in ${s3.url}/${bucket}; maxBulkRequestLength ${maxBulk}`);
  return { server, port, url: baseUrl, apiUrl: `${baseUrl}${BASE}`, objects, bucket,
    close: () => new Promise((ok) => { if (server.closeAllConnections) server.closeAllConnections(); server.close(() => ok()); }) };
}

if (require.main === module) {
  const args = svc.parseArgs();
  start({ port: args.port, data: args.data, large: args.large, maxBulk: args.maxBulk })
    .then(({ server }) => svc.onShutdown(server, null))
    .catch((e) => { process.stderr.write(`drs: ${e.stack || e}\n`); process.exit(1); });
}

module.exports = { start, BASE, ACCESS_ID };
