'use strict';
// Beacon part: framework endpoints, schema validity of every response kind, filters, variant queries,
// granularity per instance and user, pagination, errors, the --delay-ms / --fail knobs.
// Identity: beacon/fake-issuer.js (real ES256 signatures through lib/auth.js + lib/visas.js); one test
// uses the real OIDC provider (oidc/server.js + oidc/approve.js) when it is there.
//   cd tests/federation && node --test test/beacon.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFile } = require('node:child_process');
const { startOidc } = require('./helpers');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

const ROOT = path.join(__dirname, '..');
const DATA = path.join(ROOT, 'data', 'out');
const beaconSchema = require('../lib/beacon-schema');

let state;
let fake;
const servers = {};
const load = (f) => JSON.parse(fs.readFileSync(path.join(DATA, f), 'utf8'));
const individuals = load('individuals.json');
const ontology = load('ontology.json');

before(async () => {
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-beacon-'));
  process.env.FED_STATE = state;
  fake = await require('../beacon/fake-issuer').start();
  Object.assign(process.env, fake.env);
  const { start } = require('../beacon/server');
  for (const instance of ['public', 'registered', 'controlled']) servers[instance] = await start({ port: 0, instance });
});

after(async () => {
  for (const s of Object.values(servers)) await s.close();
  if (fake) await fake.close();
  fs.rmSync(state, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

async function call(instance, p, { token, body, method } = {}) {
  const base = typeof instance === 'string' && instance.startsWith('http') ? instance : servers[instance].url;
  const res = await fetch(`${base}${p}`, {
    method: method || (body ? 'POST' : 'GET'),
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  return { status: res.status, json, text, headers: res.headers };
}
const post = (instance, entry, query, opts = {}) => call(instance, `/api/${entry}`, { ...opts, body: { meta: { apiVersion: 'v2.0' }, query } });
const kindOf = (j) => (j.error ? 'error' : j.response && j.response.resultSets ? 'resultSet' : j.response && j.response.collections ? 'collections'
  : j.responseSummary && 'numTotalResults' in j.responseSummary ? 'count' : 'boolean');
function assertValid(kind, body, entryType) {
  const errors = beaconSchema.checkResponse(kind, body, entryType ? { entryType } : {});
  assert.deepStrictEqual(errors, [], `${kind} response does not validate`);
}
function violations() {
  const f = path.join(state, 'violations.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}
const ofDataset = (ds) => individuals.filter((i) => i._datasetId === ds);
function descendants(term) {
  const out = new Set([term]);
  for (let grew = true, n = 0; grew && n < 50; n++) {
    grew = false;
    for (const [c, p] of Object.entries(ontology.parents)) if (out.has(p) && !out.has(c)) { out.add(c); grew = true; }
  }
  return out;
}
const hasTerm = (ind, set) => ind.phenotypicFeatures.some((f) => set.has(f.featureType.id));
const years = (iso) => { const m = /^P(\d+)Y(?:(\d+)M)?$/.exec(iso); return Number(m[1]) + Number(m[2] || 0) / 12; };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(url, ms = 15000) {
  const deadline = Date.now() + ms;
  for (let i = 0; Date.now() < deadline && i < 300; i++) {
    try { const r = await fetch(url, { signal: AbortSignal.timeout(1000) }); if (r.ok) return; } catch (e) { /* not yet */ }
    await new Promise((ok) => { setTimeout(ok, 100); });
  }
  throw new Error(`${url} not ready in ${ms} ms`);
}

async function stopChild(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((ok) => { setTimeout(ok, 5000).unref(); })]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

// ------------------------------------------------------------------ framework endpoints

test('framework endpoints answer and validate', async () => {
  for (const instance of ['public', 'registered', 'controlled']) {
    for (const [p, kind] of [['/api', 'info'], ['/api/info', 'info'], ['/api/service-info', 'service-info'], ['/service-info', 'service-info'],
      ['/api/map', 'map'], ['/api/configuration', 'configuration'], ['/api/entry_types', 'entryTypes'], ['/api/filtering_terms', 'filteringTerms']]) {
      const r = await call(instance, p);
      assert.strictEqual(r.status, 200, `${instance} ${p}: ${r.text}`);
      assertValid(kind, r.json);
    }
  }
  const si = (await call('public', '/service-info')).json;
  assert.deepStrictEqual(si.type, { group: 'org.ga4gh', artifact: 'beacon', version: '2.1.1' });
  assert.strictEqual(si.url, `${servers.public.url}/api`);
  const cfg = (await call('controlled', '/api/configuration')).json.response;
  assert.deepStrictEqual(Object.keys(cfg.entryTypes).sort(), ['analysis', 'biosample', 'cohort', 'dataset', 'genomicVariant', 'individual', 'run']);
  assert.deepStrictEqual(cfg.securityAttributes.securityLevels, ['CONTROLLED']);
  const map = (await call('public', '/api/map')).json.response;
  assert.strictEqual(map.endpointSets.genomicVariant.rootUrl, `${servers.public.url}/api/g_variants`);
  const ft = (await call('public', '/api/filtering_terms')).json.response.filteringTerms;
  for (const id of ['HP:0000707', 'HP:0001250', 'NCIT:C16576', 'age']) assert.ok(ft.some((t) => t.id === id), id);
  assert.ok(ft.some((t) => t.type === 'custom'));
});

test('every entry type answers, with valid responses at every granularity', async () => {
  const alice = fake.token('alice');
  for (const entry of ['individuals', 'biosamples', 'g_variants', 'runs', 'analyses', 'datasets', 'cohorts']) {
    for (const g of ['boolean', 'count', 'record']) {
      const r = await call('controlled', `/api/${entry}?requestedGranularity=${g}&limit=3`, { token: alice });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.meta.returnedGranularity, g);
      const kind = kindOf(r.json);
      assertValid(kind, r.json, ['datasets', 'cohorts'].includes(entry) ? undefined : r.json.meta.returnedSchemas[0].entityType);
      if (g === 'record' && kind === 'resultSet') {
        assert.ok(r.json.response.resultSets[0].results.length <= 3);
        assert.strictEqual(r.json.response.resultSets[0].id, 'EGAD-CONTROLLED-1');
      }
    }
  }
  // collections list by default
  const ds = await call('public', '/api/datasets');
  assert.strictEqual(ds.json.meta.returnedGranularity, 'record');
  assert.deepStrictEqual(ds.json.response.collections.map((c) => c.id), ['DS-PUBLIC-1']);
  // single entries and cross-entry lookups
  const one = await call('controlled', '/api/individuals/IND-041?requestedGranularity=record', { token: alice });
  assert.deepStrictEqual(one.json.response.resultSets[0].results.map((x) => x.id), ['IND-041']);
  const bs = await call('controlled', '/api/individuals/IND-041/biosamples?requestedGranularity=record', { token: alice });
  assert.deepStrictEqual(bs.json.response.resultSets[0].results.map((x) => x.id), ['BS-041']);
  const vars = await call('controlled', '/api/biosamples/BS-041/g_variants?requestedGranularity=record&limit=0', { token: alice });
  assert.ok(vars.json.response.resultSets[0].results.every((v) => v.caseLevelData.some((c) => c.biosampleId === 'BS-041')));
  const none = await call('controlled', '/api/individuals/IND-001?requestedGranularity=count', { token: alice });
  assert.strictEqual(none.json.responseSummary.numTotalResults, 0); // IND-001 belongs to another beacon
  assert.deepStrictEqual(violations().filter((v) => v.kind === 'response'), []);
});

// ------------------------------------------------------------------ filters

test('ontology filters with and without descendant terms', async () => {
  const alice = fake.token('alice');
  const mine = ofDataset('EGAD-CONTROLLED-1');
  const count = async (filters) => {
    const r = await post('controlled', 'individuals', { filters, requestedGranularity: 'count' }, { token: alice });
    assert.strictEqual(r.status, 200, r.text);
    return r.json.responseSummary.numTotalResults;
  };
  const nervous = descendants('HP:0000707');
  const expectNervous = mine.filter((i) => hasTerm(i, nervous)).length;
  assert.ok(expectNervous > 0);
  assert.strictEqual(await count([{ id: 'HP:0000707' }]), expectNervous); // default includeDescendantTerms: true
  assert.strictEqual(await count([{ id: 'HP:0000707', includeDescendantTerms: false }]), 0);
  const seizure = mine.filter((i) => hasTerm(i, descendants('HP:0001250'))).length;
  const seizureExact = mine.filter((i) => hasTerm(i, new Set(['HP:0001250']))).length;
  assert.strictEqual(await count([{ id: 'HP:0001250', includeDescendantTerms: true }]), seizure);
  assert.strictEqual(await count([{ id: 'HP:0001250', includeDescendantTerms: false }]), seizureExact);
  assert.ok(seizure >= seizureExact);
  // AND of two filters: phenotype and sex
  const females = mine.filter((i) => i.sex.id === 'NCIT:C16576' && hasTerm(i, nervous)).length;
  assert.strictEqual(await count([{ id: 'HP:0000707' }, { id: 'NCIT:C16576' }]), females);
  // GET form
  const g = await call('controlled', '/api/individuals?filters=HP:0000707,NCIT:C16576&requestedGranularity=count', { token: alice });
  assert.strictEqual(g.json.responseSummary.numTotalResults, females);
});

test('alphanumeric and custom filters, unknown filters reported', async () => {
  const alice = fake.token('alice');
  const mine = ofDataset('EGAD-CONTROLLED-1');
  const r = await post('controlled', 'individuals', { filters: [{ id: 'age', operator: '>', value: 'P40Y' }], requestedGranularity: 'record', pagination: { skip: 0, limit: 0 } }, { token: alice });
  assert.strictEqual(r.status, 200, r.text);
  const expected = mine.filter((i) => years(i._age) > 40).map((i) => i.id);
  assert.deepStrictEqual(r.json.response.resultSets[0].results.map((x) => x.id), expected);
  const le = await post('controlled', 'individuals', { filters: [{ id: 'age', operator: '<=', value: 'P40Y' }], requestedGranularity: 'count' }, { token: alice });
  assert.strictEqual(le.json.responseSummary.numTotalResults, mine.length - expected.length);
  const xx = await post('controlled', 'individuals', { filters: [{ id: 'karyotypicSex', operator: '=', value: 'XX' }], requestedGranularity: 'count' }, { token: alice });
  assert.strictEqual(xx.json.responseSummary.numTotalResults, mine.filter((i) => i.karyotypicSex === 'XX').length);
  const custom = await post('controlled', 'biosamples', { filters: [{ id: 'sampleOrigin:blood' }], requestedGranularity: 'count' }, { token: alice });
  const blood = load('biosamples.json').filter((b) => b._datasetId === 'EGAD-CONTROLLED-1' && b.sampleOriginType.label === 'blood').length;
  assert.strictEqual(custom.json.responseSummary.numTotalResults, blood);
  const unknown = await post('controlled', 'individuals', { filters: [{ id: 'XX:9999999' }], requestedGranularity: 'count' }, { token: alice });
  assert.strictEqual(unknown.status, 200);
  assert.deepStrictEqual(unknown.json.info.warnings.unsupportedFilters, ['XX:9999999']);
  assertValid('count', unknown.json);
});

// ------------------------------------------------------------------ variants

test('variant queries: sequence, range, bracket, length, gene, assembly', async () => {
  const alice = fake.token('alice');
  const exists = async (instance, rp, token) => {
    const r = await post(instance, 'g_variants', { requestParameters: rp }, { token });
    assert.strictEqual(r.status, 200, r.text);
    assertValid(kindOf(r.json), r.json);
    return r.json.responseSummary.exists;
  };
  const anchorAll = { referenceName: '17', start: [43045711], referenceBases: 'A', alternateBases: 'G', assemblyId: 'GRCh38' };
  const anchorCtl = { referenceName: '17', start: [43057062], referenceBases: 'G', alternateBases: 'T' };
  for (const i of ['public', 'registered', 'controlled']) assert.strictEqual(await exists(i, anchorAll), true, i);
  assert.strictEqual(await exists('public', anchorCtl), false);
  assert.strictEqual(await exists('controlled', anchorCtl), true);
  assert.strictEqual(await exists('public', { ...anchorAll, alternateBases: 'T' }), false);
  assert.strictEqual(await exists('public', { ...anchorAll, referenceName: 'chr17' }), true);
  assert.strictEqual(await exists('public', { ...anchorAll, referenceName: 'NC_000017.11' }), true);
  assert.strictEqual(await exists('public', { ...anchorAll, assemblyId: 'GRCh37' }), false);
  // GET form of a sequence query
  const g = await call('public', '/api/g_variants?referenceName=17&start=43045711&referenceBases=A&alternateBases=G');
  assert.strictEqual(g.json.responseSummary.exists, true);

  const records = async (rp) => {
    const r = await post('controlled', 'g_variants', { requestParameters: rp, requestedGranularity: 'record', pagination: { skip: 0, limit: 0 } }, { token: alice });
    assert.strictEqual(r.status, 200, r.text);
    assertValid('resultSet', r.json, 'genomicVariant');
    return r.json.response.resultSets.length ? r.json.response.resultSets[0].results : [];
  };
  const loc = (v) => v.variation.location.interval;
  const brca = await records({ referenceName: '17', start: [43044294], end: [43125483] });
  assert.ok(brca.length > 10);
  assert.ok(brca.every((v) => loc(v).end.value > 43044294 && loc(v).start.value < 43125483));
  const byGene = await records({ geneId: 'BRCA1' });
  assert.deepStrictEqual(byGene.map((v) => v.variantInternalId).sort(), brca.filter((v) => (v.molecularAttributes || {}).geneIds).map((v) => v.variantInternalId).sort());
  const long = await records({ referenceName: '17', start: [43044294], end: [43125483], variantMinLength: 2 });
  assert.ok(long.length > 0 && long.length < brca.length);
  assert.ok(long.every((v) => Math.max(v.variation.referenceBases.length, v.variation.alternateBases.length) >= 2));
  const snvOnly = await records({ referenceName: '17', start: [43044294], end: [43125483], variantMaxLength: 1 });
  assert.strictEqual(snvOnly.length + long.length, brca.length);
  const bracket = await records({ referenceName: '17', start: [43045700, 43045720], end: [43045705, 43045730] });
  assert.ok(bracket.some((v) => v.variantInternalId === 'fedv_anchor_all'));
  const ins = await records({ referenceName: '2', start: [166036277], referenceBases: 'C', alternateBases: 'CTT' });
  assert.deepStrictEqual(ins.map((v) => v.variantInternalId), ['fedv_anchor_ins']);
  assert.strictEqual(ins[0].variation.variantType, 'INS');
  // phenotype filter on variants: variants carried by someone with a seizure phenotype
  const seiz = await post('controlled', 'g_variants', { requestParameters: { geneId: 'BRCA1' }, filters: [{ id: 'HP:0001250' }], requestedGranularity: 'count' }, { token: alice });
  assert.ok(seiz.json.responseSummary.numTotalResults <= byGene.length);
});

test('bad requests answer 400 in the beacon error shape', async () => {
  for (const p of ['/api/g_variants?start=100', '/api/g_variants?referenceName=1&start=x', '/api/individuals?requestedGranularity=all',
    '/api/g_variants?referenceName=1&end=5', '/api/individuals?limit=-1']) {
    const r = await call('public', p);
    assert.strictEqual(r.status, 400, `${p}: ${r.text}`);
    assertValid('error', r.json);
    assert.strictEqual(r.json.error.errorCode, 400);
  }
  const before_ = violations().filter((v) => v.kind === 'request').length;
  const noMeta = await call('public', '/api/individuals', { body: { query: {} } });
  assert.strictEqual(noMeta.status, 400);
  assertValid('error', noMeta.json);
  const badBases = await post('public', 'g_variants', { requestParameters: { referenceName: '1', start: [5], referenceBases: 'XYZ' } });
  assert.strictEqual(badBases.status, 400);
  assert.match(badBases.json.error.errorMessage, /referenceBases/);
  assert.strictEqual(violations().filter((v) => v.kind === 'request').length, before_ + 2);
  const nf = await call('public', '/api/nonsense');
  assert.strictEqual(nf.status, 404);
  assertValid('error', nf.json);
});

// ------------------------------------------------------------------ granularity and pagination

test('granularity per instance and user; returnedGranularity is honest', async () => {
  const alice = fake.token('alice');
  const bob = fake.token('bob');
  const g = async (instance, token) => {
    const r = await call(instance, '/api/individuals?requestedGranularity=record', { token });
    assert.strictEqual(r.status, 200, r.text);
    assertValid(kindOf(r.json), r.json, 'individual');
    const want = r.json.meta.returnedGranularity;
    assert.strictEqual(kindOf(r.json), { boolean: 'boolean', count: 'count', record: 'resultSet' }[want]);
    return want;
  };
  assert.strictEqual(await g('public'), 'boolean');
  assert.strictEqual(await g('public', alice), 'boolean');
  assert.strictEqual(await g('registered'), 'boolean');
  assert.strictEqual(await g('registered', bob), 'count');
  assert.strictEqual(await g('controlled'), 'boolean');
  assert.strictEqual(await g('controlled', bob), 'count');
  assert.strictEqual(await g('controlled', alice), 'record');
  // a lower requested granularity is honoured
  const c = await call('controlled', '/api/individuals?requestedGranularity=count', { token: alice });
  assert.strictEqual(c.json.meta.returnedGranularity, 'count');
  // a bad token is a 401, not a silent downgrade
  const bad = await call('controlled', '/api/individuals', { token: 'not-a-token' });
  assert.strictEqual(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate') || '', /Bearer/);
  assertValid('error', bad.json);
  // a Passport JWT as bearer token works too (lib/auth.js)
  const pp = await call('controlled', '/api/individuals?requestedGranularity=record', { token: fake.passport('alice') });
  assert.strictEqual(pp.json.meta.returnedGranularity, 'record');
});

test('pagination: skip counts pages of `limit` records', async () => {
  const alice = fake.token('alice');
  const page = async (skip, limit) => {
    const r = await post('controlled', 'individuals', { requestedGranularity: 'record', pagination: { skip, limit } }, { token: alice });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json.meta.receivedRequestSummary.pagination, { skip, limit });
    return r.json.response.resultSets[0];
  };
  const all = ofDataset('EGAD-CONTROLLED-1').map((i) => i.id);
  const p0 = await page(0, 5);
  const p1 = await page(1, 5);
  assert.deepStrictEqual(p0.results.map((x) => x.id), all.slice(0, 5));
  assert.deepStrictEqual(p1.results.map((x) => x.id), all.slice(5, 10));
  assert.strictEqual(p1.resultsCount, all.length);
  assert.deepStrictEqual((await page(0, 0)).results.map((x) => x.id), all);
  assert.deepStrictEqual((await page(10, 5)).results, []);
  const miss = await post('controlled', 'individuals', { requestedGranularity: 'record', filters: [{ id: 'HP:0000707', includeDescendantTerms: false }], includeResultsetResponses: 'ALL' }, { token: alice });
  assert.strictEqual(miss.json.response.resultSets.length, 1);
  assert.strictEqual(miss.json.response.resultSets[0].exists, false);
  const hit = await post('controlled', 'individuals', { requestedGranularity: 'record', filters: [{ id: 'HP:0000707', includeDescendantTerms: false }] }, { token: alice });
  assert.deepStrictEqual(hit.json.response.resultSets, []);
});

// ------------------------------------------------------------------ test knobs, as a separate process

test('command line: --delay-ms and --fail always, extra instances on other ports', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const env = { ...process.env, FED_STATE: state };
  const slow = spawn(process.execPath, ['beacon/server.js', '--port', String(p1), '--instance', 'public', '--name', 'beacon-slow', '--delay-ms', '700'], { cwd: ROOT, env, stdio: 'ignore' });
  const failing = spawn(process.execPath, ['beacon/server.js', '--port', String(p2), '--instance', 'registered', '--name', 'beacon-failing', '--fail', 'always'], { cwd: ROOT, env, stdio: 'ignore' });
  try {
    await waitFor(`http://127.0.0.1:${p1}/service-info`);
    await waitFor(`http://127.0.0.1:${p2}/service-info`);
    const t0 = Date.now();
    const r = await call(`http://127.0.0.1:${p1}`, '/api/individuals');
    assert.strictEqual(r.status, 200);
    assert.ok(Date.now() - t0 >= 650, `answered after ${Date.now() - t0} ms`);
    assert.notStrictEqual(r.json.meta.beaconId, (await call('public', '/api/info')).json.meta.beaconId);
    const f = await call(`http://127.0.0.1:${p2}`, '/api/individuals');
    assert.strictEqual(f.status, 500);
    assertValid('error', f.json);
    assert.ok(fs.existsSync(path.join(state, 'logs', 'beacon-slow.log')));
  } finally {
    await stopChild(slow);
    await stopChild(failing);
  }
});

// ------------------------------------------------------------------ the real provider, when present

test('real OIDC provider: device login of alice and bob, granularity on the controlled beacon', { timeout: 90000 }, async (t) => {
  if (!fs.existsSync(path.join(ROOT, 'oidc', 'server.js')) || !fs.existsSync(path.join(ROOT, 'oidc', 'approve.js'))) {
    t.skip('oidc/server.js or oidc/approve.js not present');
    return;
  }
  const oidc = await startOidc('fed-beacon-oidc-');
  const { urls } = oidc;
  let beacon;
  try {
    const login = async (user) => {
      const form = (o) => ({ method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o).toString(), signal: AbortSignal.timeout(10000) });
      const da = await (await fetch(`${urls.issuer}/device/auth`, form({ client_id: 'impact-cli', scope: 'openid profile ga4gh_passport_v1' }))).json();
      const code = await new Promise((resolve) => {
        execFile(process.execPath, ['oidc/approve.js', '--issuer', urls.issuer, '--user-code', da.user_code, '--user', user], { cwd: ROOT, timeout: 30000 },
          (e, so, se) => resolve(e ? `${e.code}: ${se}` : 0));
      });
      assert.strictEqual(code, 0);
      const tok = await (await fetch(`${urls.issuer}/token`, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'impact-cli', device_code: da.device_code }))).json();
      assert.ok(tok.access_token, JSON.stringify(tok));
      return tok.access_token;
    };
    beacon = await require('../beacon/server').start({ port: 0, instance: 'controlled', name: 'beacon-controlled-real' });
    const gran = async (token) => (await call(beacon.url, '/api/individuals?requestedGranularity=record', { token })).json.meta.returnedGranularity;
    assert.strictEqual(await gran(await login('alice')), 'record');
    assert.strictEqual(await gran(await login('bob')), 'count');
    assert.strictEqual(await gran(), 'boolean');
  } finally {
    if (beacon) await beacon.close();
    await oidc.stop();
  }
});

test('no response violations were recorded', () => {
  assert.deepStrictEqual(violations().filter((v) => v.kind === 'response'), []);
});
