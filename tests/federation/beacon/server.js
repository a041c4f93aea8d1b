'use strict';
// Beacon v2 (framework v2.1.1, default model) for the local federation. One program, three instances:
//
//   node beacon/server.js --port P --instance public|registered|controlled [--data DIR]
//        [--delay-ms N] [--fail-rate 0.5 | --fail always] [--name NAME]
//
// public      DS-PUBLIC-1,        answers at most `boolean`
// registered  DS-REGISTERED-1,    `count` for a valid bearer token, else `boolean`
// controlled  EGAD-CONTROLLED-1,  `record` when the caller's passport (userinfo ga4gh_passport_v1) holds a
//             ControlledAccessGrants visa for https://ega-archive.org/datasets/EGAD-CONTROLLED-1,
//             `count` for other logged-in users, `boolean` for anonymous ones.
// Test knobs (also env FED_BEACON_DELAY_MS, FED_BEACON_FAIL_RATE): --delay-ms answers every /api request
// N ms late; --fail-rate R answers a fraction R of /api requests with 500 (--fail always: all of them).
// Every response is checked with lib/beacon-schema.js; violations go to $FED_STATE/violations.log.
// Also a module: start({port, instance, ...}) -> {server, port, url, close()} (tests run it in-process).

const http = require('http');
const path = require('path');
const svc = require('../lib/service');
const { Model, ENTRY_TYPES } = require('./model');
const identityLib = require('./identity');

const beaconSchema = require('../lib/beacon-schema');

const API_VERSION = 'v2.1.1';
const GRAN = ['boolean', 'count', 'record'];
const INSTANCES = {
  public: { dataset: 'DS-PUBLIC-1', security: 'PUBLIC', name: 'Public beacon' },
  registered: { dataset: 'DS-REGISTERED-1', security: 'REGISTERED', name: 'Registered-access beacon' },
  controlled: { dataset: 'EGAD-CONTROLLED-1', security: 'CONTROLLED', name: 'Controlled-access beacon' },
};
const PAGE_MAX = 100;
const VARIANT_PARAMS = ['referenceName', 'start', 'end', 'referenceBases', 'alternateBases', 'assemblyId', 'variantType',
  'variantMinLength', 'variantMaxLength', 'geneId', 'mateName', 'aminoacidChange', 'genomicAlleleShortForm'];

function badRequest(msg) { const e = new Error(msg); e.status = 400; return e; }

function gVariantValidator() {
  try {
    return beaconSchema.init().ajv.getSchema(`${beaconSchema.RAW}models/json/beacon-v2-default-model/genomicVariations/requestParameters.json#/g_variant`) || null;
  } catch (e) { return null; }
}

function start(opts = {}) {
  const instance = opts.instance || 'public';
  const inst = INSTANCES[instance];
  if (!inst) throw new Error(`--instance must be one of ${Object.keys(INSTANCES).join(', ')}`);
  const name = opts.name || `beacon-${instance}`;
  const log = opts.log || svc.logger(name);
  const dataDir = path.resolve(opts.data || process.env.FED_DATA_DIR || path.join(__dirname, '..', 'data', 'out'));
  const model = new Model(dataDir, inst.dataset);
  const identity = opts.identity || identityLib.create();
  const delayMs = Number(opts.delayMs ?? process.env.FED_BEACON_DELAY_MS ?? 0) || 0;
  const failRate = opts.fail === 'always' ? 1 : Number(opts.failRate ?? process.env.FED_BEACON_FAIL_RATE ?? 0) || 0;
  const beaconId = `org.impact.federation.beacon.${instance}${name !== `beacon-${instance}` ? `.${name}` : ''}`;
  const gvCheck = gVariantValidator();
  let baseUrl = opts.url || null; // set after listen

  const violation = (req, status, kind, errors) => svc.recordViolation({ service: name, kind, method: req.method, path: req.pathname || req.url, status, errors });
  const send = (req, res, status, kind, body, entryType, headers) => {
    let errors;
    try { errors = beaconSchema.checkResponse(kind, body, entryType ? { entryType: ENTRY_TYPES[entryType].id } : {}); } catch (e) { errors = [`validator failed: ${e.message}`]; }
    if (errors.length) { violation(req, status, 'response', errors); log.warn(`response violation ${req.method} ${req.pathname}: ${errors.slice(0, 3).join('; ')}`); }
    svc.sendJson(res, status, body, headers);
  };
  const infoMeta = (entity = 'info', schema = 'beacon-info-v2.0.0') => ({ beaconId, apiVersion: API_VERSION, returnedSchemas: [{ entityType: entity, schema }] });
  const summaryOf = (q) => {
    const s = { apiVersion: q.apiVersion, requestedSchemas: q.requestedSchemas || [], pagination: { skip: q.skip, limit: q.limit }, requestedGranularity: q.requestedGranularity };
    if (q.filterIds.length) s.filters = q.filterIds;
    if (q.includeResultsetResponses) s.includeResultsetResponses = q.includeResultsetResponses;
    const vp = Object.fromEntries(Object.entries(q.requestParameters).filter(([k]) => k !== '$schema'));
    if (Object.keys(vp).length) s.requestParameters = { g_variant: vp }; // model form: framework wants object values
    if (q.testMode !== undefined) s.testMode = q.testMode;
    return s;
  };
  const errorBody = (status, message, q) => ({
    meta: { beaconId, apiVersion: API_VERSION, returnedSchemas: [], returnedGranularity: 'boolean',
      receivedRequestSummary: summaryOf(q || blankQuery()) },
    error: { errorCode: status, errorMessage: message },
  });
  const sendBeaconError = (req, res, status, message, q, headers) => send(req, res, status, 'error', errorBody(status, message, q), null, headers);

  // --------------------------------------------------------------- who is asking -> max granularity
  function maxGranularity(entryType, who) {
    if (ENTRY_TYPES[entryType].collection) return 'record';
    if (instance === 'public') return 'boolean';
    if (instance === 'registered') return who.user ? 'count' : 'boolean';
    if (who.user && identityLib.hasGrant(who.visas, identityLib.CONTROLLED_DATASET_URL)) return 'record';
    return who.user ? 'count' : 'boolean';
  }

  // --------------------------------------------------------------- request parsing
  function blankQuery() {
    return { apiVersion: API_VERSION, requestedGranularity: 'boolean', skip: 0, limit: 10, filters: [], filterIds: [], requestParameters: {} };
  }
  function pageNum(v, name, def) {
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw badRequest(`${name} must be a non-negative integer`);
    return n;
  }
  function checkGranularity(g) {
    if (g !== undefined && !GRAN.includes(g)) throw badRequest(`requestedGranularity must be one of ${GRAN.join(', ')}`);
    return g;
  }
  function fromGet(query) {
    const q = blankQuery();
    const one = (k) => (Array.isArray(query[k]) ? query[k][query[k].length - 1] : query[k]);
    q.requestedGranularity = checkGranularity(one('requestedGranularity') || one('granularity'));
    q.skip = pageNum(one('skip'), 'skip', 0);
    q.limit = pageNum(one('limit'), 'limit', 10);
    if (one('includeResultsetResponses')) q.includeResultsetResponses = String(one('includeResultsetResponses')).toUpperCase();
    if (one('testMode') !== undefined) q.testMode = one('testMode') === 'true';
    const f = [].concat(query.filters || []).join(',');
    q.filters = f ? f.split(',').map((s) => s.trim()).filter(Boolean).map((id) => ({ id })) : [];
    for (const k of VARIANT_PARAMS) {
      if (query[k] === undefined) continue;
      let v = one(k);
      if (k === 'start' || k === 'end') v = String([].concat(query[k]).join(',')).split(',').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
      else if (k === 'variantMinLength' || k === 'variantMaxLength') v = /^\d+$/.test(v) ? Number(v) : v;
      q.requestParameters[k] = v;
    }
    return q;
  }
  function fromPost(body, req) {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('request body must be a JSON object (beaconRequestBody)');
    // upstream defect: the framework's requestParameters.json wants object values; the model's
    // genomicVariations/requestParameters.json#/g_variant has the real (flat) shape. Check that instead.
    const errs = beaconSchema.checkRequest(body).filter((e) => !/^request\/query\/requestParameters\/[^/]+ must be object$/.test(e));
    const qb = body.query || {};
    let rp = qb.requestParameters || {};
    if (rp.g_variant && typeof rp.g_variant === 'object') rp = { ...rp.g_variant };
    if (gvCheck && rp && typeof rp === 'object') {
      const flat = { ...rp };
      if (typeof flat.start === 'number') flat.start = [flat.start];
      if (typeof flat.end === 'number') flat.end = [flat.end];
      if (!gvCheck(flat)) for (const e of gvCheck.errors) errs.push(`request/query/requestParameters${e.instancePath} ${e.message}`);
    }
    if (errs.length) {
      violation(req, 400, 'request', errs);
      throw badRequest(`request does not conform to beaconRequestBody: ${errs.join('; ')}`);
    }
    const q = blankQuery();
    q.apiVersion = body.meta.apiVersion || API_VERSION;
    q.requestedSchemas = body.meta.requestedSchemas || [];
    q.requestedGranularity = checkGranularity(qb.requestedGranularity);
    q.skip = pageNum(qb.pagination && qb.pagination.skip, 'skip', 0);
    q.limit = pageNum(qb.pagination && qb.pagination.limit, 'limit', 10);
    if (qb.includeResultsetResponses) q.includeResultsetResponses = qb.includeResultsetResponses;
    if (qb.testMode !== undefined) q.testMode = qb.testMode;
    q.filters = (qb.filters || []).map((f) => (typeof f === 'string' ? { id: f } : f));
    q.requestParameters = { ...rp };
    if (typeof q.requestParameters.start === 'number') q.requestParameters.start = [q.requestParameters.start];
    if (typeof q.requestParameters.end === 'number') q.requestParameters.end = [q.requestParameters.end];
    return q;
  }

  // --------------------------------------------------------------- entry queries
  async function entryQuery(req, res, ctx, { entryType, id, via }) {
    let q = blankQuery();
    try {
      if (!ENTRY_TYPES[entryType]) { sendBeaconError(req, res, 404, `no such entry type: ${entryType}`, q); return; }
      if (via && !ENTRY_TYPES[via.entryType]) { sendBeaconError(req, res, 404, `no such entry type: ${via.entryType}`, q); return; }
      if (req.method === 'POST') {
        let body;
        try { body = await svc.readJson(req); } catch (e) { throw badRequest(e.message); }
        q = fromPost(body, req);
      } else {
        q = fromGet(ctx.query);
      }
      q.filterIds = q.filters.map((f) => f.id).filter((x) => typeof x === 'string');
      // spec default is boolean; collections (datasets, cohorts) default to record, i.e. the list
      if (!q.requestedGranularity) q.requestedGranularity = ENTRY_TYPES[entryType].collection ? 'record' : 'boolean';
      const who = await identity.caller(req);
      const max = maxGranularity(entryType, who);
      const granularity = GRAN[Math.min(GRAN.indexOf(q.requestedGranularity), GRAN.indexOf(max))];
      const { matches, warnings, notFound } = model.query(entryType, { filters: q.filters, requestParameters: q.requestParameters, id, via });
      const et = ENTRY_TYPES[entryType];
      const meta = {
        beaconId, apiVersion: API_VERSION,
        returnedSchemas: [{ entityType: et.id, schema: `beacon-${et.schema}-v2.0.0` }],
        returnedGranularity: granularity,
        receivedRequestSummary: summaryOf(q),
      };
      if (q.testMode) meta.testMode = true;
      const total = matches.length;
      const body = { meta, responseSummary: { exists: total > 0 } };
      const info = {};
      if (Object.keys(warnings).length) info.warnings = warnings;
      if (notFound) info.messages = [`${via.entryType}/${via.id} not found`];
      if (granularity !== q.requestedGranularity) {
        (info.messages = info.messages || []).push(`requested granularity ${q.requestedGranularity} reduced to ${granularity} for ${who.user ? 'this user' : 'anonymous users'} on the ${instance} beacon`);
      }
      if (Object.keys(info).length) body.info = info;
      if (granularity === 'boolean') { send(req, res, 200, 'boolean', body); return; }
      body.responseSummary.numTotalResults = total;
      if (granularity === 'count') { send(req, res, 200, 'count', body); return; }
      const limit = q.limit === 0 ? PAGE_MAX : Math.min(q.limit, PAGE_MAX);
      const offset = q.limit === 0 ? 0 : q.skip * limit; // spec: skip counts pages
      const page = matches.slice(offset, offset + limit).map((e) => e.rec);
      if (et.collection) {
        body.response = { collections: page };
        send(req, res, 200, 'collections', body, entryType);
        return;
      }
      const incl = q.includeResultsetResponses || 'HIT';
      const rs = { id: inst.dataset, setType: 'dataset', exists: total > 0, resultsCount: total, results: page };
      const keep = incl === 'ALL' || (incl === 'HIT' && total > 0) || (incl === 'MISS' && total === 0);
      body.response = { resultSets: keep ? [rs] : [] };
      send(req, res, 200, 'resultSet', body, entryType);
    } catch (e) {
      if (e.status === 401) {
        sendBeaconError(req, res, 401, e.message, q, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      } else if (e.status && (e.status < 500 || e.status === 503)) {
        sendBeaconError(req, res, e.status, e.message, q);
      } else {
        log.error('query failed:', e);
        sendBeaconError(req, res, 500, `internal error: ${e.message}`, q);
      }
    }
  }

  // --------------------------------------------------------------- framework documents
  const entryTypeDefs = () => Object.fromEntries(Object.entries(ENTRY_TYPES).map(([, et]) => [et.id, {
    id: et.id, name: et.name, partOfSpecification: 'Beacon v2.1.1',
    ontologyTermForThisType: { id: et.ontology, label: et.label },
    defaultSchema: { id: `ga4gh-beacon-${et.id}-v2.0.0`, name: `Default schema for ${et.name}`, referenceToSchemaDefinition: beaconSchema.schemaUrl(`models/json/beacon-v2-default-model/${et.schema}/defaultSchema.json`), schemaVersion: 'v2.1.1' },
    nonFilteredQueriesAllowed: true,
  }]));
  const apiBase = () => `${baseUrl}/api`;
  const docs = {
    info: () => ({
      meta: infoMeta(),
      response: {
        id: beaconId, name: `${inst.name} (impact local federation)`, apiVersion: API_VERSION, environment: 'test',
        organization: { id: 'org.impact.federation', name: 'impact local federation (test)', welcomeUrl: 'https://github.com/impact-cli/impact' },
        description: `Synthetic data only. Dataset ${inst.dataset}, security level ${inst.security}.`,
        version: 'v2.1.1', createDateTime: '2024-01-15T10:00:00Z', updateDateTime: '2024-06-01T12:00:00Z',
        welcomeUrl: apiBase(), alternativeUrl: baseUrl,
        info: { instance, dataset: inst.dataset, securityLevel: inst.security },
      },
    }),
    configuration: () => ({
      meta: infoMeta('configuration', 'beacon-configuration-v2.0.0'),
      response: {
        $schema: beaconSchema.schemaUrl('framework/json/configuration/beaconConfigurationSchema.json'),
        maturityAttributes: { productionStatus: 'TEST' },
        securityAttributes: { defaultGranularity: 'boolean', securityLevels: [inst.security] },
        entryTypes: entryTypeDefs(),
      },
    }),
    entryTypes: () => ({ meta: infoMeta('entryType', 'beacon-entry-types-v2.0.0'), response: { entryTypes: entryTypeDefs() } }),
    map: () => ({
      meta: infoMeta('map', 'beacon-map-v2.0.0'),
      response: {
        $schema: beaconSchema.schemaUrl('framework/json/configuration/beaconMapSchema.json'),
        endpointSets: Object.fromEntries(Object.entries(ENTRY_TYPES).map(([path_, et]) => [et.id, {
          entryType: et.id,
          rootUrl: `${apiBase()}/${path_}`,
          singleEntryUrl: `${apiBase()}/${path_}/{id}`,
          endpoints: Object.fromEntries(Object.entries(ENTRY_TYPES).filter(([p2]) => p2 !== path_ && !(ENTRY_TYPES[p2].collection)).map(([p2, et2]) => [
            `${et2.id}Lookup`, { returnedEntryType: et2.id, url: `${apiBase()}/${path_}/{id}/${p2}` }])),
        }])),
      },
    }),
    filteringTerms: () => ({
      meta: infoMeta('filteringTerm', 'beacon-filtering-terms-v2.0.0'),
      response: {
        filteringTerms: model.filteringTerms(),
        resources: [
          { id: 'hp', name: 'Human Phenotype Ontology', url: 'https://purl.obolibrary.org/obo/hp.owl', nameSpacePrefix: 'HP', iriPrefix: 'http://purl.obolibrary.org/obo/HP_' },
          { id: 'ncit', name: 'NCI Thesaurus', url: 'http://purl.obolibrary.org/obo/ncit.owl', nameSpacePrefix: 'NCIT', iriPrefix: 'http://purl.obolibrary.org/obo/NCIT_' },
          { id: 'mondo', name: 'Mondo Disease Ontology', url: 'http://purl.obolibrary.org/obo/mondo.owl', nameSpacePrefix: 'MONDO', iriPrefix: 'http://purl.obolibrary.org/obo/MONDO_' },
          { id: 'uberon', name: 'Uberon', url: 'http://purl.obolibrary.org/obo/uberon.owl', nameSpacePrefix: 'UBERON', iriPrefix: 'http://purl.obolibrary.org/obo/UBERON_' },
        ],
      },
    }),
    serviceInfo: () => svc.serviceInfo({
      id: beaconId, name: `${inst.name} (impact local federation)`,
      type: { group: 'org.ga4gh', artifact: 'beacon', version: '2.1.1' },
      description: `Beacon v2 over synthetic dataset ${inst.dataset} (security level ${inst.security}).`,
      version: '2.1.1', url: apiBase(),
    }),
  };

  // --------------------------------------------------------------- routes
  const r = svc.router({ log });
  const knobs = (handler) => async (req, res, ctx) => {
    if (delayMs > 0) await new Promise((ok) => setTimeout(ok, delayMs));
    if (failRate > 0 && (failRate >= 1 || Math.random() < failRate)) {
      sendBeaconError(req, res, 500, 'injected failure (--fail-rate/--fail test knob)', null);
      return;
    }
    await handler(req, res, ctx);
  };
  r.get('/service-info', (req, res) => send(req, res, 200, 'service-info', docs.serviceInfo()));
  const doc = (kind, fn) => knobs((req, res) => send(req, res, 200, kind, fn()));
  for (const [p, kind, fn] of [['', 'info', docs.info], ['/info', 'info', docs.info], ['/service-info', 'service-info', docs.serviceInfo],
    ['/map', 'map', docs.map], ['/configuration', 'configuration', docs.configuration], ['/entry_types', 'entryTypes', docs.entryTypes],
    ['/filtering_terms', 'filteringTerms', docs.filteringTerms]]) {
    r.get(`/api${p}`, doc(kind, fn));
    if (p === '/filtering_terms') r.post(`/api${p}`, doc(kind, fn));
  }
  for (const m of ['get', 'post']) {
    r[m]('/api/:entry', knobs((req, res, ctx) => entryQuery(req, res, ctx, { entryType: ctx.params.entry })));
    r[m]('/api/:entry/:id', knobs((req, res, ctx) => entryQuery(req, res, ctx, { entryType: ctx.params.entry, id: ctx.params.id })));
    r[m]('/api/:entry/:id/:target', knobs((req, res, ctx) => entryQuery(req, res, ctx, {
      entryType: ctx.params.target, via: { entryType: ctx.params.entry, id: ctx.params.id } })));
  }
  const handler = r.handler({
    notFound: (req, res, ctx) => {
      if (ctx.path.startsWith('/api/')) sendBeaconError(req, res, 404, `no such endpoint: ${req.method} ${ctx.path}`, null);
      else svc.sendError(res, 404, `no such endpoint: ${req.method} ${ctx.path}`);
    },
  });
  const server = http.createServer(handler);
  return svc.listen(server, opts.port || 0).then((port) => {
    baseUrl = baseUrl || `http://127.0.0.1:${port}`;
    log.info(`${name} (${instance}, ${inst.dataset}) listening on ${baseUrl}/api; delay ${delayMs} ms, fail rate ${failRate}`);
    return { server, port, url: baseUrl, apiUrl: `${baseUrl}/api`, model,
      close: () => new Promise((ok) => { if (server.closeAllConnections) server.closeAllConnections(); server.close(() => ok()); }) };
  });
}

if (require.main === module) {
  const args = svc.parseArgs();
  start({ port: args.port, instance: args.instance, data: args.data, delayMs: args.delayMs, failRate: args.failRate,
    fail: args.fail, name: args.name }).then(({ server }) => {
    svc.onShutdown(server, null);
  }).catch((e) => { process.stderr.write(`beacon: ${e.stack || e}\n`); process.exit(1); });
}

module.exports = { start, INSTANCES, API_VERSION };
