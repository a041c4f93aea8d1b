'use strict';
// lib/openapi.js, lib/beacon-schema.js and lib/service.js helpers.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const openapi = require('../lib/openapi');
const beacon = require('../lib/beacon-schema');
const svc = require('../lib/service');

const MP = 'multipart/form-data; boundary=xyz';
const RUN = '/ga4gh/wes/v1/runs';
const goodFields = () => ({
  workflow_type: 'CWL',
  workflow_type_version: 'v1.2',
  workflow_url: 'hello.cwl',
  workflow_params: '{"name":"x"}',
  tags: '{"batch":"1"}',
  workflow_attachment: { filename: 'hello.cwl', size: 120, mimeType: 'application/octet-stream' },
});

test('WES RunRequest multipart fields (wes-strict)', () => {
  const api = openapi.load('wes-strict');
  assert.deepStrictEqual(api.checkRequest({ method: 'POST', path: RUN, body: goodFields(), contentType: MP }), []);
  // several attachments
  const many = { ...goodFields(), workflow_attachment: [{ filename: 'a.cwl', size: 1 }, { filename: 'b.yml', size: 2 }] };
  assert.deepStrictEqual(api.checkRequest({ method: 'POST', path: RUN, body: many, contentType: MP }), []);
  // no workflow_url
  const noUrl = goodFields();
  delete noUrl.workflow_url;
  const e1 = api.checkRequest({ method: 'POST', path: RUN, body: noUrl, contentType: MP });
  assert.ok(e1.some((e) => /workflow_url/.test(e)), e1.join('\n'));
  // workflow_url sent twice
  const twice = { ...goodFields(), workflow_url: ['a.cwl', 'b.cwl'] };
  assert.ok(api.checkRequest({ method: 'POST', path: RUN, body: twice, contentType: MP }).some((e) => /workflow_url must be string/.test(e)));
  // workflow_params not JSON / tags not an object of strings
  const badJson = { ...goodFields(), workflow_params: '{oops', tags: '{"n": 1}' };
  const e2 = api.checkRequest({ method: 'POST', path: RUN, body: badJson, contentType: MP });
  assert.ok(e2.some((e) => /workflow_params must be a JSON-encoded object/.test(e)), e2.join('\n'));
  assert.ok(e2.some((e) => /tags.*must be string/.test(e)), e2.join('\n'));
  // no body at all, wrong content type
  assert.deepStrictEqual(api.checkRequest({ method: 'POST', path: RUN }), ['request body is required']);
  const e3 = api.checkRequest({ method: 'POST', path: RUN, body: { workflow_url: 'x' }, contentType: 'application/json' });
  assert.match(e3[0], /content type 'application\/json' is not one of multipart\/form-data/);
});

test('WES upstream bundle gets the strict RunRequest fix; params and responses', () => {
  const api = openapi.load('wes');
  const noUrl = goodFields();
  delete noUrl.workflow_url;
  assert.ok(api.checkRequest({ method: 'POST', path: RUN, body: noUrl, contentType: MP }).length > 0);
  assert.deepStrictEqual(api.checkRequest({ method: 'GET', path: RUN, query: { page_size: '5', page_token: 'abc' } }), []);
  assert.match(api.checkRequest({ method: 'GET', path: RUN, query: { page_size: 'five' } })[0], /page_size.*integer/);
  assert.match(api.checkRequest({ method: 'GET', path: '/ga4gh/wes/v1/nope' })[0], /no such path/);
  assert.match(api.checkRequest({ method: 'DELETE', path: `${RUN}/r1` })[0], /method not allowed/);
  const status = (body, code = 200) => api.checkResponse({ method: 'GET', path: `${RUN}/r1/status`, status: code, body });
  assert.deepStrictEqual(status({ run_id: 'r1', state: 'COMPLETE' }), []);
  assert.ok(status({ run_id: 'r1', state: 'DONE' }).length > 0);
  assert.deepStrictEqual(status({ msg: 'not found', status_code: 404 }, 404), []);
  assert.match(status({}, 418)[0], /418 is not documented/);
  assert.deepStrictEqual(api.checkResponse({ method: 'POST', path: RUN, status: 200, body: { run_id: 'r1' } }), []);
});

test('DRS object responses and requests', () => {
  const api = openapi.load('drs');
  const obj = {
    id: 'obj1',
    self_uri: 'drs://127.0.0.1:18013/obj1',
    size: 12,
    created_time: '2024-01-01T00:00:00Z',
    checksums: [{ checksum: 'a'.repeat(64), type: 'sha-256' }],
    access_methods: [{ type: 'https', access_id: 'https', access_url: { url: 'http://127.0.0.1:18030/b/k', headers: ['X-A: b'] } }],
  };
  const get = (body, status = 200) => api.checkResponse({ method: 'GET', path: '/ga4gh/drs/v1/objects/obj1', status, body });
  assert.deepStrictEqual(get(obj), []);
  assert.ok(get({ ...obj, checksums: [] }).some((e) => /checksums/.test(e)));
  assert.ok(get({ ...obj, size: '12' }).some((e) => /size must be integer/.test(e)));
  assert.ok(get({ id: 'x' }).some((e) => /self_uri/.test(e)));
  assert.deepStrictEqual(get({ msg: 'no', status_code: 404 }, 404), []);
  assert.deepStrictEqual(api.checkResponse({ method: 'GET', path: '/ga4gh/drs/v1/objects/obj1/access/https', status: 200, body: { url: 'http://x/y' } }), []);
  assert.ok(api.checkResponse({ method: 'GET', path: '/ga4gh/drs/v1/objects/obj1/access/https', status: 200, body: { headers: 'X: y' } }).length > 0);
  assert.deepStrictEqual(api.checkRequest({ method: 'GET', path: '/ga4gh/drs/v1/objects/obj1', query: { expand: 'false' } }), []);
  assert.ok(api.checkRequest({ method: 'GET', path: '/ga4gh/drs/v1/objects/obj1', query: { expand: 'perhaps' } }).length > 0);
  // literal /objects/access wins over /objects/{object_id}
  assert.strictEqual(api.match('POST', '/ga4gh/drs/v1/objects/access').tpl, '/objects/access');
  assert.deepStrictEqual(api.checkRequest({ method: 'POST', path: '/ga4gh/drs/v1/objects/obj1', body: { passports: ['a.b.c'] }, contentType: 'application/json' }), []);
  assert.ok(api.checkRequest({ method: 'POST', path: '/ga4gh/drs/v1/objects/obj1', body: { passports: 'a.b.c' }, contentType: 'application/json' }).length > 0);
  assert.deepStrictEqual(api.validate('Checksum', { checksum: 'ab', type: 'md5' }), []);
});

test('service-info responses', () => {
  const api = openapi.load('service-info');
  const info = svc.serviceInfo({ id: 'org.impact.federation.test', name: 'test', type: { group: 'org.ga4gh', artifact: 'drs', version: '1.5.0' } });
  assert.deepStrictEqual(api.checkResponse({ method: 'GET', path: '/service-info', status: 200, body: info }), []);
  assert.strictEqual(info.environment, 'test');
  const bad = { ...info, organization: { name: 'x', url: 'not a url' }, createdAt: 'yesterday' };
  assert.strictEqual(api.checkResponse({ method: 'GET', path: '/service-info', status: 200, body: bad }).length, 2);
  assert.throws(() => svc.serviceInfo({ id: 'x', name: 'x', type: { group: 'g' } }));
  // the WES ServiceInfo requires its own fields
  const wes = openapi.load('wes');
  assert.ok(wes.checkResponse({ method: 'GET', path: '/ga4gh/wes/v1/service-info', status: 200, body: info }).some((e) => /workflow_type_versions/.test(e)));
});

test('convertSchema handles nullable, $ref siblings and examples', () => {
  const s = openapi.convertSchema({ type: 'string', nullable: true, example: 'x', enum: ['a'] }, 'urn:x');
  assert.deepStrictEqual(s, { type: ['string', 'null'], enum: ['a', null] });
  assert.deepStrictEqual(openapi.convertSchema({ $ref: '#/components/schemas/A', description: 'd' }, 'urn:x'), { $ref: 'urn:x#/components/schemas/A' });
  const p = openapi.convertSchema({ type: 'object', properties: { example: { type: 'integer', example: 3 } } }, 'urn:x');
  assert.deepStrictEqual(p, { type: 'object', properties: { example: { type: 'integer' } } });
});

// ---------------------------------------------------------------- Beacon

const meta = (granularity = 'count') => ({
  beaconId: 'org.impact.federation.beacon.public',
  apiVersion: 'v2.1.1',
  returnedGranularity: granularity,
  receivedRequestSummary: { apiVersion: 'v2.1.1', requestedSchemas: [], pagination: { skip: 0, limit: 10 }, requestedGranularity: granularity },
  returnedSchemas: [{ entityType: 'individual', schema: 'beacon-individual-v2.0.0' }],
});

test('Beacon responses: count, boolean, resultSet, error, info', () => {
  assert.deepStrictEqual(beacon.checkResponse('count', { meta: meta(), responseSummary: { exists: true, numTotalResults: 3 } }), []);
  assert.ok(beacon.checkResponse('count', { meta: meta(), responseSummary: { numTotalResults: 3 } }).some((e) => /exists/.test(e)));
  assert.ok(beacon.checkResponse('count', { responseSummary: { exists: true } }).some((e) => /meta/.test(e)));
  assert.deepStrictEqual(beacon.checkResponse('boolean', { meta: meta('boolean'), responseSummary: { exists: false } }), []);
  const rs = {
    meta: meta('record'),
    responseSummary: { exists: true, numTotalResults: 1 },
    response: { resultSets: [{ id: 'EGAD-PUBLIC-1', setType: 'dataset', exists: true, resultsCount: 1, results: [{ id: 'ind1', sex: { id: 'NCIT:C16576', label: 'female' } }] }] },
  };
  assert.deepStrictEqual(beacon.checkResponse('resultSet', rs, { entryType: 'individual' }), []);
  const badRec = JSON.parse(JSON.stringify(rs));
  delete badRec.response.resultSets[0].results[0].sex;
  const e = beacon.checkResponse('resultSet', badRec, { entryType: 'individual' });
  assert.ok(e.some((x) => /resultSets\[0\]\.results\[0\].*sex/.test(x)), e.join('\n'));
  assert.deepStrictEqual(beacon.checkResponse('error', { meta: meta(), error: { errorCode: 400, errorMessage: 'bad filter' } }), []);
  assert.ok(beacon.checkResponse('error', { meta: meta(), error: { errorMessage: 'x' } }).length > 0);
  const info = {
    meta: { beaconId: 'org.impact.b', apiVersion: 'v2.1.1', returnedSchemas: [] },
    response: { id: 'org.impact.b', name: 'B', apiVersion: 'v2.1.1', environment: 'test', organization: { id: 'impact', name: 'impact' } },
  };
  assert.deepStrictEqual(beacon.checkResponse('info', info), []);
  assert.ok(beacon.checkResponse('info', { ...info, response: { ...info.response, environment: 'lab' } }).length > 0);
  assert.deepStrictEqual(beacon.checkResponse('service-info', svc.serviceInfo({ id: 'org.b', name: 'b', type: { group: 'org.ga4gh', artifact: 'beacon', version: 'v2.1.1' } })), []);
  assert.throws(() => beacon.checkResponse('nonsense', {}));
});

test('Beacon records, request bodies, shipped examples', () => {
  assert.deepStrictEqual(beacon.checkRecord('individual', { id: 'i1', sex: { id: 'NCIT:C20197', label: 'male' } }), []);
  assert.ok(beacon.checkRecord('individuals', { id: 'i1' }).length > 0);
  assert.deepStrictEqual(beacon.checkRecord('dataset', { id: 'EGAD-1', name: 'd' }), []);
  assert.ok(beacon.checkRecord('biosample', { id: 'b1' }).length > 0);
  const v = { variantInternalId: 'v1', variation: { location: { type: 'SequenceLocation', sequence_id: 'refseq:NC_000017.11', interval: { type: 'SequenceInterval', start: { type: 'Number', value: 100 }, end: { type: 'Number', value: 101 } } }, referenceBases: 'A', alternateBases: 'G', variantType: 'SNP' } };
  assert.deepStrictEqual(beacon.checkRecord('genomicVariation', v), []);
  assert.ok(beacon.checkRecord('genomicVariation', { variation: v.variation }).some((x) => /variantInternalId/.test(x)));
  assert.deepStrictEqual(beacon.checkRequest({ meta: { apiVersion: 'v2.1.1' }, query: { filters: [{ id: 'NCIT:C20197' }], requestedGranularity: 'count', pagination: { skip: 0, limit: 5 } } }), []);
  assert.ok(beacon.checkRequest({ meta: { apiVersion: 'v2.1.1' }, query: { requestedGranularity: 'everything' } }).length > 0);
  // the shipped examples that SOURCES.md says are valid
  const ex = path.join(__dirname, '..', 'specs', 'beacon-v2.1.1', 'framework', 'json', 'responses', 'examples-fullDocuments');
  const read = (f) => JSON.parse(fs.readFileSync(path.join(ex, f), 'utf8'));
  assert.deepStrictEqual(beacon.checkResponse('info', read('beaconInfo-MAX-example.json')), []);
  assert.deepStrictEqual(beacon.checkResponse('map', read('beaconMapResponse-example.json')), []);
  assert.deepStrictEqual(beacon.checkResponse('configuration', read('beaconConfigurationResponse-example.json')), []);
  assert.deepStrictEqual(beacon.checkResponse('entryTypes', read('beaconEntryTypesResponse-example.json')), []);
  assert.deepStrictEqual(beacon.checkResponse('filteringTerms', read('beaconFilteringTermsResponse-example.json')), []);
  // ... and a known-bad one (lacks meta.returnedGranularity)
  assert.ok(beacon.checkResponse('count', read('beaconCountResponse-example.json')).some((x) => /returnedGranularity/.test(x)));
});

// ---------------------------------------------------------------- service.js + validated()

test('validated() answers 400 and records request and response violations', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-openapi-'));
  const old = process.env.FED_STATE;
  process.env.FED_STATE = dir;
  t.after(() => { if (old === undefined) delete process.env.FED_STATE; else process.env.FED_STATE = old; fs.rmSync(dir, { recursive: true, force: true }); });
  const api = openapi.load('wes-strict');
  const r = svc.router();
  let seen = null;
  r.post('/ga4gh/wes/v1/runs', openapi.validated(api, (req, res, ctx) => {
    seen = ctx;
    svc.sendJson(res, 200, { run_id: 'r1' });
  }, { service: 'wes-test' }));
  r.get('/ga4gh/wes/v1/runs/:run_id/status', openapi.validated(api, (req, res, ctx) => {
    svc.sendJson(res, 200, { run_id: ctx.params.run_id, state: 'BOGUS' });
  }, { service: 'wes-test' }));
  const server = http.createServer(r.handler());
  const port = await svc.listen(server, 0);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${port}`;

  const fd = new FormData();
  fd.append('workflow_type', 'CWL');
  fd.append('workflow_type_version', 'v1.2');
  fd.append('workflow_url', 'hello.cwl');
  fd.append('workflow_params', '{}');
  fd.append('workflow_attachment', new Blob(['cwlVersion: v1.2\n']), 'hello.cwl');
  let res = await fetch(`${base}/ga4gh/wes/v1/runs`, { method: 'POST', body: fd, headers: { Authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig' } });
  assert.strictEqual(res.status, 200, await res.clone().text());
  assert.deepStrictEqual(await res.json(), { run_id: 'r1' });
  assert.strictEqual(seen.multipart.files.workflow_attachment[0].data.toString(), 'cwlVersion: v1.2\n');
  assert.strictEqual(seen.body.workflow_url, 'hello.cwl');

  const bad = new FormData();
  bad.append('workflow_type', 'CWL');
  res = await fetch(`${base}/ga4gh/wes/v1/runs`, { method: 'POST', body: bad, headers: { Authorization: 'Bearer secret-token' } });
  assert.strictEqual(res.status, 400);
  const err = await res.json();
  assert.strictEqual(err.status_code, 400);
  assert.match(err.msg, /workflow_url/);

  res = await fetch(`${base}/ga4gh/wes/v1/runs/r1/status`);
  assert.strictEqual(res.status, 200); // not altered
  await res.json();

  const lines = fs.readFileSync(path.join(dir, 'violations.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.strictEqual(lines.length, 2, JSON.stringify(lines));
  assert.strictEqual(lines[0].kind, 'request');
  assert.strictEqual(lines[0].service, 'wes-test');
  assert.strictEqual(lines[1].kind, 'response');
  assert.ok(lines[1].errors.some((e) => /state/.test(e)));
  assert.ok(!fs.readFileSync(path.join(dir, 'violations.log'), 'utf8').includes('secret-token'));
});

test('service helpers: parseArgs, router, redact, readJson cap', async (t) => {
  assert.deepStrictEqual(svc.parseArgs(['--port', '18013', '--instance', 'public', '--verbose', '--control-port=9', 'x']),
    { _: ['x'], port: 18013, instance: 'public', verbose: true, controlPort: 9 });
  const r = svc.router();
  r.get('/a/:id', (req, res, ctx) => svc.sendJson(res, 200, { id: ctx.params.id, q: ctx.query.q }));
  r.post('/big', async (req, res) => svc.sendJson(res, 200, { got: await svc.readJson(req, 10) }));
  r.get('/files/:rest*', (req, res, ctx) => svc.sendJson(res, 200, { rest: ctx.params.rest }));
  const server = http.createServer(r.handler());
  const port = await svc.listen(server, 0);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${port}`;
  assert.deepStrictEqual(await (await fetch(`${base}/a/x%2Fy?q=1`)).json(), { id: 'x/y', q: '1' });
  assert.deepStrictEqual(await (await fetch(`${base}/files/a/b/c`)).json(), { rest: 'a/b/c' });
  assert.strictEqual((await fetch(`${base}/nope`)).status, 404);
  assert.strictEqual((await fetch(`${base}/a/x`, { method: 'DELETE' })).status, 405);
  assert.strictEqual((await fetch(`${base}/big`, { method: 'POST', body: '{"a":"0123456789"}' })).status, 413);
  assert.strictEqual((await fetch(`${base}/big`, { method: 'POST', body: '{x' })).status, 400);
  await assert.rejects(svc.listen(http.createServer(), port), /already in use/);
  const red = svc.redact({ headers: { authorization: 'Bearer x' }, note: 'tok eyJhbGciOi.eyJzdWIiOi.abc', access_token: 'y' });
  assert.deepStrictEqual(red, { headers: { authorization: '[redacted]' }, note: 'tok [jwt]', access_token: '[redacted]' });
  assert.strictEqual(svc.redactUrl('/x?access_token=abc&a=1'), '/x?access_token=[redacted]&a=1');
});
