'use strict';
// GA4GH Service Registry (https://github.com/ga4gh-discovery/ga4gh-service-registry) for the federation.
//
//   node registry/server.js --port B \
//        --service NAME=API_BASE_URL ...      (one per GA4GH service; its service-info is at API_BASE_URL/service-info)
//        [--s3 URL --sts URL --region R --results-bucket B --data-bucket B]
//
//   GET /services          array of service-info objects, each with `url` (the API base URL)
//   GET /services/{id}     one of them
//   GET /services/types    the distinct `type`s
//   GET /service-info      the registry's own (type org.ga4gh:service-registry:1.0.0)
//
// The list is rebuilt on request (each service's /service-info fetched in parallel, 1.5 s timeout,
// cached for 1 s), so a service that is down drops out of the list and comes back when it is up.
// When API_BASE_URL/service-info does not answer, the origin's /service-info is tried.
//
// S3 has no GA4GH service-info; it is listed with the custom type
// {group: 'org.impact', artifact: 's3', version: '1.0.0'} and extra fields: region, sts_url,
// results_bucket, data_bucket, addressing ('path').

const http = require('http');
const svc = require('../lib/service');

const FETCH_TIMEOUT_MS = 1500;
const CACHE_MS = 1000;

function fetchJson(url, timeoutMs = FETCH_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, headers: { Accept: 'application/json' } }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (size > 1 << 20) req.destroy(new Error('service-info too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) { reject(new Error(`HTTP ${res.statusCode}`)); return; }
        try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) { reject(new Error('not JSON')); }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function parseServices(list) {
  const out = [];
  for (const s of [].concat(list || [])) {
    if (typeof s !== 'string') continue;
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--service wants NAME=URL, got '${s}'`);
    const url = s.slice(eq + 1).replace(/\/+$/, '');
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error(`--service ${s}: loopback URLs only`);
    out.push({ name: s.slice(0, eq), url });
  }
  return out;
}

function s3Entry(opts) {
  if (!opts.s3) return null;
  return svc.serviceInfo({
    id: 'org.impact.federation.s3',
    name: 'S3-compatible object storage (Ceph RGW)',
    type: { group: 'org.impact', artifact: 's3', version: '1.0.0' },
    description: 'S3 API (SigV4, path-style addressing) with an STS AssumeRoleWithWebIdentity front; no GA4GH service-info of its own',
    url: opts.s3,
    region: opts.region || process.env.FED_S3_REGION || 'us-east-1',
    sts_url: opts.sts || process.env.FED_STS_URL || null,
    results_bucket: opts.resultsBucket || process.env.FED_RESULTS_BUCKET || 'results',
    data_bucket: opts.dataBucket || process.env.FED_DATA_BUCKET || 'drs-data',
    addressing: 'path',
  });
}

function createRegistry({ services = [], s3 = null, selfUrl, log }) {
  const own = svc.serviceInfo({
    id: 'org.impact.federation.registry',
    name: 'Local federation service registry',
    type: { group: 'org.ga4gh', artifact: 'service-registry', version: '1.0.0' },
    description: 'Lists the services of the local test federation',
  });
  let cache = null;
  let cacheAt = 0;
  let inflight = null;

  async function fetchOne({ name, url }) {
    const origin = new URL(url).origin;
    const tries = [`${url}/service-info`];
    if (`${origin}/service-info` !== tries[0]) tries.push(`${origin}/service-info`);
    let lastErr;
    for (const t of tries) {
      try {
        const info = await fetchJson(t);
        if (info && typeof info === 'object' && info.id && info.type) return { ...info, url };
        lastErr = new Error('not a service-info object');
      } catch (e) {
        lastErr = e;
      }
    }
    if (log) log.warn(`service ${name} (${url}) not listed: ${lastErr && lastErr.message}`);
    return null;
  }

  async function list() {
    if (cache && Date.now() - cacheAt < CACHE_MS) return cache;
    if (!inflight) {
      inflight = Promise.all(services.map(fetchOne)).then((found) => {
        const seen = new Set();
        const out = [];
        for (const s of found.filter(Boolean).concat(s3 ? [s3] : [])) {
          if (seen.has(s.id)) { if (log) log.warn(`duplicate service id ${s.id} (${s.url}) skipped`); continue; }
          seen.add(s.id);
          out.push(s);
        }
        cache = out;
        cacheAt = Date.now();
        inflight = null;
        return out;
      }, (e) => { inflight = null; throw e; });
    }
    return inflight;
  }

  const r = svc.router({ log });
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, selfUrl ? { ...own, url: selfUrl } : own));
  r.get('/services', async (req, res) => svc.sendJson(res, 200, await list()));
  r.get('/services/types', async (req, res) => {
    const types = new Map();
    for (const s of await list()) types.set(`${s.type.group}:${s.type.artifact}:${s.type.version}`, s.type);
    svc.sendJson(res, 200, [...types.values()]);
  });
  r.get('/services/:id', async (req, res, ctx) => {
    const found = (await list()).find((s) => s.id === ctx.params.id);
    if (!found) svc.sendError(res, 404, `no service with id ${ctx.params.id}`);
    else svc.sendJson(res, 200, found);
  });
  return { handler: r.handler(), list };
}

async function main() {
  const args = svc.parseArgs();
  const log = svc.logger('registry');
  const port = args.port ?? 18000;
  const services = parseServices(args.service);
  const server = http.createServer();
  const bound = await svc.listen(server, port);
  const reg = createRegistry({
    services,
    s3: s3Entry({ s3: args.s3, sts: args.sts, region: args.region, resultsBucket: args.resultsBucket, dataBucket: args.dataBucket }),
    selfUrl: `http://127.0.0.1:${bound}`,
    log,
  });
  server.on('request', reg.handler);
  log.info(`listening on 127.0.0.1:${bound}; services: ${services.map((s) => `${s.name}=${s.url}`).join(' ') || '(none)'}${args.s3 ? ` s3=${args.s3}` : ''}`);
  svc.onShutdown(server, log);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`registry: ${e.message}\n`);
    process.exit(1);
  });
}

module.exports = { createRegistry, parseServices, s3Entry, fetchJson };
