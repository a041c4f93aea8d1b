'use strict';
// `impact search` and `impact beacon` against the local federation's three beacons (public, registered,
// controlled; requests validated against the Beacon v2 schemas), extra in-process beacons that hang or fail,
// and small scripted beacons for the implementation quirks (GET only, nested requestParameters, caching).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { BIN, FED_STATE, federation, home, impact, impactAsync, server, userToken } = require('./helpers');

const fed = federation();
process.env.FED_ISSUER = fed.issuer; // for the in-process beacons' token checks
const beaconServer = require('../federation/beacon/server');

const violationsAtStart = violations().length;

function violations() {
  const f = path.join(FED_STATE, 'violations.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

function localProfile(t, extra = []) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

function search(dir, args, env = {}) {
  const r = impact(dir, ['search', ...args, '--json'], { env });
  return { ...r, json: r.stdout ? JSON.parse(r.stdout) : null };
}

const byName = (j) => Object.fromEntries(j.beacons.map((b) => [b.name, b]));

let aliceToken;
let bobToken;
test.before(async () => {
  aliceToken = (await userToken('alice')).access_token;
  bobToken = (await userToken('bob')).access_token;
});

test('anonymous search asks every beacon and each grants boolean only', (t) => {
  const dir = localProfile(t);
  const r = search(dir, ['individuals', '--filter', 'HP:0001250', '--granularity', 'count']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.entry_type, 'individuals');
  assert.equal(r.json.requested_granularity, 'count');
  assert.deepEqual(r.json.summary, { asked: 3, answered: 3, failed: 0, exists: true, count: null });
  for (const b of r.json.beacons) {
    assert.equal(b.answered, true, b.name);
    assert.equal(b.exists, true, b.name);
    assert.equal(b.granularity, 'boolean', b.name);
    assert.equal(b.method, 'POST');
    assert.match(b.messages.join(' '), /reduced to boolean/);
  }
});

test('a logged-in user gets what each beacon grants her: count, records with the visa', (t) => {
  const dir = localProfile(t);
  const count = search(dir, ['individuals', '--filter', 'HP:0001250', '--granularity', 'count'], { IMPACT_TOKEN: aliceToken });
  assert.equal(count.code, 0, count.stderr);
  const c = byName(count.json);
  assert.equal(c.public.granularity, 'boolean');
  assert.equal(c.registered.count, 8);
  assert.equal(c.controlled.count, 6);
  assert.equal(count.json.summary.count, 14);

  const rec = search(dir, ['individuals', '--filter', 'HP:0001250', '--granularity', 'record'], { IMPACT_TOKEN: aliceToken });
  const r = byName(rec.json);
  assert.equal(r.controlled.granularity, 'record');
  assert.equal(r.controlled.records.length, 6);
  assert.ok(r.controlled.records.every((x) => /^IND-/.test(x.id)), JSON.stringify(r.controlled.records[0]));
  assert.equal(r.registered.granularity, 'count');
  assert.deepEqual(r.registered.records, []);

  const bob = byName(search(dir, ['individuals', '--filter', 'HP:0001250', '--granularity', 'record'], { IMPACT_TOKEN: bobToken }).json);
  assert.equal(bob.controlled.granularity, 'count', 'no visa, no records');
  assert.equal(bob.controlled.count, 6);
});

test('record output on stdout lists records; the per-beacon summary goes to stderr', (t) => {
  const dir = localProfile(t);
  const r = impact(dir, ['search', 'individuals', '--filter', 'HP:0001250', '--granularity', 'record', '--beacon', 'controlled'],
    { env: { IMPACT_TOKEN: aliceToken } });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 6);
  assert.ok(lines.every((l) => /^controlled\tIND-\d+\t/.test(l)), r.stdout);
  assert.match(r.stderr, /controlled: exists yes, count 6/);
});

test('variant queries: the anchors are found where their carriers are', (t) => {
  const dir = localProfile(t);
  const env = { IMPACT_TOKEN: aliceToken };
  const all = search(dir, ['variants', '--chrom', '17', '--start', '43045711', '--ref', 'A', '--alt', 'G', '--assembly', 'GRCh38', '--granularity', 'count'], env);
  assert.equal(all.code, 0, all.stderr);
  for (const b of all.json.beacons) assert.equal(b.exists, true, b.name);
  assert.deepEqual(byName(all.json).controlled.ignored_parameters, [], 'the beacon echoed every parameter (as g_variant)');

  const ctl = search(dir, ['variants', '--chrom', 'chr17', '--start', '43057062', '--ref', 'G', '--alt', 'T', '--granularity', 'record'], env);
  const c = byName(ctl.json);
  assert.equal(c.public.exists, false);
  assert.equal(c.registered.exists, false);
  assert.equal(c.controlled.exists, true);
  assert.equal(c.controlled.records[0].variantInternalId, 'fedv_anchor_controlled');

  const ins = search(dir, ['variants', '--chrom', '2', '--start', '166036277', '--ref', 'C', '--alt', 'CTT', '--min-length', '3', '--max-length', '3'], env);
  assert.ok(ins.json.beacons.every((b) => b.exists), JSON.stringify(ins.json.beacons));
  const tooLong = search(dir, ['variants', '--chrom', '2', '--start', '166036277', '--ref', 'C', '--alt', 'CTT', '--min-length', '4'], env);
  assert.ok(tooLong.json.beacons.every((b) => !b.exists));

  const gene = search(dir, ['variants', '--gene', 'BRCA1', '--granularity', 'count'], env);
  assert.equal(byName(gene.json).registered.count, 57);
  const range = search(dir, ['variants', '--chrom', '17', '--start', '43045700', '--end', '43045720', '--granularity', 'count'], env);
  assert.ok(byName(range.json).registered.count >= 1);

  const bracket = (s2) => byName(search(dir, ['variants', '--chrom', '17', '--start', '43045700', '--start', s2, '--end', '43045712', '--end', '43045720', '--beacon', 'public']).json).public.exists;
  assert.equal(bracket('43045711'), true, 'a bracket query around the anchor finds it');
  assert.equal(bracket('43045701'), false, 'a bracket that ends before it does not');

  const bad = impact(dir, ['search', 'variants', '--start', '5', '--alt', 'G']);
  assert.equal(bad.code, 2, 'a query the spec forbids is refused before anything is sent');
  assert.match(bad.stderr, /--start needs --chrom/);
});

test('alphanumeric, custom and exact ontology filters; unknown filters are pointed out', (t) => {
  const dir = localProfile(t);
  const env = { IMPACT_TOKEN: aliceToken };
  const age = byName(search(dir, ['individuals', '--filter', 'age:>:P40Y', '--granularity', 'count'], env).json);
  assert.equal(age.registered.count, 12);
  assert.equal(age.controlled.count, 11);
  const blood = byName(search(dir, ['biosamples', '--filter', 'sampleOrigin:blood', '--granularity', 'count'], env).json);
  assert.equal(blood.registered.count, 14);
  const exact = byName(search(dir, ['individuals', '--filter', 'HP:0001250', '--no-descendants', '--granularity', 'count'], env).json);
  assert.equal(exact.registered.count, 7);

  // A filter no beacon knows: the answers are printed, but they ignore it, so the search is not a success.
  const unknown = search(dir, ['individuals', '--filter', 'HP:0001250', '--filter', 'HP:9999999', '--granularity', 'count'], env);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /^impact: no beacon that answered knows the filter 'HP:9999999': the answers ignore it\nhint: list the filters a beacon knows: impact beacon filters NAME; quote a filter with > or < in it: --filter 'age:>:P40Y'\n$/m);
  for (const b of unknown.json.beacons) assert.deepEqual(b.unknown_filters, ['HP:9999999'], b.name);
  const text = impact(dir, ['search', 'individuals', '--filter', 'HP:9999999', '--beacon', 'public']);
  assert.equal(text.code, 2);
  assert.match(text.stderr, /public: filter 'HP:9999999' is unknown to this beacon/);
  assert.match(text.stdout, /^public\tyes\t\w+\t-\tboolean\t.*unknown filters: HP:9999999/m);
  // What a shell leaves of an unquoted --filter age:>:P40Y is refused before any request.
  const cut = impact(dir, ['search', 'individuals', '--filter', 'age:']);
  assert.equal(cut.code, 2);
  assert.match(cut.stderr, /^impact: the --filter term 'age:' ends with ':'\nhint: .*quote them for a shell \('age:>:P40Y'\)/);
  assert.equal(cut.stdout, '');
});

test('datasets and cohorts come back as records; --limit and --skip page through records', (t) => {
  const dir = localProfile(t);
  const ds = search(dir, ['datasets']);
  assert.equal(ds.code, 0, ds.stderr);
  assert.deepEqual(ds.json.beacons.map((b) => b.records[0].id).sort(), ['DS-PUBLIC-1', 'DS-REGISTERED-1', 'EGAD-CONTROLLED-1']);
  assert.ok(search(dir, ['cohorts']).json.beacons.every((b) => b.records.length === 1));

  const env = { IMPACT_TOKEN: aliceToken };
  const page = (skip) => byName(search(dir, ['runs', '--granularity', 'record', '--beacon', 'controlled', '--limit', '3', '--skip', String(skip)], env).json)
    .controlled.records.map((x) => x.id);
  const first = page(0);
  const second = page(1);
  assert.equal(first.length, 3);
  assert.equal(second.length, 3);
  assert.equal(new Set([...first, ...second]).size, 6, 'skip counts pages');
  assert.equal(byName(search(dir, ['analyses', '--granularity', 'record', '--beacon', 'controlled', '--limit', '0'], env).json).controlled.records.length, 20);
});

test('a hanging beacon and a failing one are reported; the rest answer; exit code 6', async (t) => {
  const slow = await beaconServer.start({ port: 0, instance: 'public', name: 'beacon-slow', delayMs: 20000 });
  const broken = await beaconServer.start({ port: 0, instance: 'registered', name: 'beacon-broken', fail: 'always' });
  t.after(() => Promise.all([slow.close(), broken.close()]));
  const dir = localProfile(t, ['--beacon', `slow=${slow.apiUrl}`, '--beacon', `broken=${broken.apiUrl}`]);
  const started = Date.now();
  const r = await impactAsync(dir, ['search', 'individuals', '--filter', 'HP:0001250', '--timeout', '2s', '--json']);
  const took = Date.now() - started;
  assert.equal(r.code, 6, r.stderr);
  assert.ok(took < 8000, `the search took ${took} ms: the hanging beacon was waited for too long`);
  const j = JSON.parse(r.stdout);
  assert.deepEqual({ ...j.summary, exists: undefined, count: undefined }, { asked: 5, answered: 3, failed: 2, exists: undefined, count: undefined });
  const b = byName(j);
  assert.equal(b.slow.answered, false);
  assert.equal(b.slow.error.kind, 'timeout');
  assert.equal(b.broken.error.kind, 'server');
  assert.equal(b.broken.error.status, 500);
  assert.match(b.broken.error.message, /injected failure/);
  for (const n of ['public', 'registered', 'controlled']) assert.equal(b[n].answered, true, n);

  const text = await impactAsync(dir, ['search', 'individuals', '--timeout', '1s']);
  assert.equal(text.code, 6);
  assert.match(text.stderr, /slow: no complete answer from 127\.0\.0\.1:\d+ within 1000 ms/);
  assert.match(text.stderr, /broken: beacon 'broken' answered HTTP 500/);
  assert.match(text.stdout, /^slow\tno\t/m);

  const onlyBroken = await impactAsync(dir, ['search', 'individuals', '--beacon', 'broken']);
  assert.equal(onlyBroken.code, 1, 'when every beacon fails the search fails');
});

test('a beacon whose query hangs behind the fault proxy (no /map there) times out; the others answer', async (t) => {
  const { startProxy } = require('../federation/proxy/server');
  const proxy = await startProxy({ target: new URL(fed.services['beacon-public']).origin, port: 0 });
  t.after(() => proxy.close());
  proxy.addFault({ path: '^/api/map', status: 404, times: -1 });
  proxy.addFault({ method: 'POST', path: '^/api/individuals', stall_ms: 20000, times: -1 });
  const dir = localProfile(t, ['--beacon', `proxied=${proxy.url}/api`]);
  const started = Date.now();
  const r = await impactAsync(dir, ['search', 'individuals', '--timeout', '2s', '--json']);
  const took = Date.now() - started;
  assert.equal(r.code, 6, r.stderr);
  assert.ok(took < 8000, `took ${took} ms`);
  const b = byName(JSON.parse(r.stdout));
  assert.equal(b.proxied.error.kind, 'timeout');
  assert.equal(b.proxied.method, 'POST');
  assert.equal(b.public.answered, true);
  const posts = proxy.requests().filter((x) => x.method === 'POST');
  assert.equal(posts.length, 1, 'asked once, at the conventional path, and not retried');
  assert.equal(posts[0].url, '/api/individuals');
});

// A scripted beacon with the quirks seen in the wild: GET only, nested echo, its own filtering terms.
function quirkyBeacon(t) {
  return server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/api/map') return { status: 200, body: { meta: { apiVersion: 'v2.0' }, response: { endpointSets: { individual: { rootUrl: `http://${req.headers.host}/api/individuals` } } } } };
    if (u.pathname === '/api/filtering_terms') return { status: 200, body: { response: { filteringTerms: [{ type: 'ontologyTerm', id: 'HP:0001250' }] } } };
    if (u.pathname === '/api/individuals' && req.method === 'POST') return { status: 405, body: { error: { errorCode: 405, errorMessage: 'GET only' } } };
    if (u.pathname === '/api/individuals') {
      return { status: 200, body: { meta: { receivedRequestSummary: { requestParameters: { g_variant: {} } } }, responseSummary: { exists: true, numTotalResults: 2 } } };
    }
    return { status: 404, body: {} };
  });
}

test('GET-only beacons, minimal meta, its /filtering_terms cached and consulted', async (t) => {
  const q = await quirkyBeacon(t);
  const dir = localProfile(t, ['--beacon', `quirky=${q.url}/api`]);
  const args = ['search', 'individuals', '--beacon', 'quirky', '--filter', 'HP:0001250', '--filter', 'sampleOrigin:blood', '--granularity', 'count', '--json'];
  const r = await impactAsync(dir, args);
  assert.equal(r.code, 2, r.stderr);  // the one beacon does not know sampleOrigin:blood
  assert.match(r.stderr, /no beacon that answered knows the filter 'sampleOrigin:blood'/);
  const b = JSON.parse(r.stdout).beacons[0];
  assert.equal(b.method, 'GET');
  assert.equal(b.count, 2);
  assert.equal(b.granularity, 'count', 'inferred without meta.returnedGranularity');
  assert.deepEqual(b.unknown_filters, ['sampleOrigin:blood']);
  const get = q.seen.find((s) => s.method === 'GET' && s.url.startsWith('/api/individuals'));
  assert.match(get.url, /filters=HP%3A0001250%2CsampleOrigin%3Ablood/);
  assert.match(get.url, /requestedGranularity=count/);

  const metaRequests = () => q.seen.filter((s) => /\/api\/(map|filtering_terms)$/.test(s.url)).length;
  assert.equal(metaRequests(), 2);
  await impactAsync(dir, args);
  assert.equal(metaRequests(), 2, 'cached');
  const cached = fs.readdirSync(path.join(dir, 'cache', 'impact', 'beacon'));
  assert.ok(cached.some((f) => f.endsWith('-map.json')) && cached.some((f) => f.endsWith('-filtering_terms.json')), cached.join());
  await impactAsync(dir, [...args, '--refresh']);
  assert.equal(metaRequests(), 4, '--refresh fetches again');

  const alpha = await impactAsync(dir, ['search', 'individuals', '--beacon', 'quirky', '--filter', 'age:>:P40Y']);
  assert.equal(alpha.code, 2);
  assert.match(alpha.stderr, /only answers GET/);
});

test('the token goes only to the profile\'s beacons', async (t) => {
  const q = await quirkyBeacon(t);
  const dir = localProfile(t, ['--beacon', `mine=${q.url}/api`]);
  const env = { IMPACT_TOKEN: aliceToken };
  const own = await impactAsync(dir, ['search', 'individuals', '--beacon', 'mine'], { env });
  assert.equal(own.code, 0, own.stderr);
  assert.ok(q.seen.length > 0 && q.seen.every((s) => s.headers.authorization === `Bearer ${aliceToken}`));
  const n = q.seen.length;

  const other = await quirkyBeacon(t);
  const r = await impactAsync(dir, ['search', 'individuals', '--beacon', `${other.url}/api`, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(other.seen.length > 0 && other.seen.every((s) => s.headers.authorization === undefined), 'no token to a stranger');
  assert.equal(q.seen.length, n);
  await impactAsync(dir, ['search', 'individuals', '--beacon', 'mine', '--anonymous'], { env });
  assert.ok(q.seen.slice(n).every((s) => s.headers.authorization === undefined), '--anonymous sends none');

  // The one rule (the library's): same origin as a service of the profile, whatever the path.
  const sameOrigin = await quirkyBeacon(t);
  const dir2 = localProfile(t, ['--beacon', `elsewhere=${sameOrigin.url}/another/api`]);
  const same = await impactAsync(dir2, ['search', 'individuals', '--beacon', `${sameOrigin.url}/api`, '--json'], { env });
  assert.equal(same.code, 0, same.stderr);
  assert.ok(sameOrigin.seen.length > 0 && sameOrigin.seen.every((s) => s.headers.authorization === `Bearer ${aliceToken}`),
    'the token goes to a beacon of the same origin as the profile\'s');
});

test('beacon list, info and filters', (t) => {
  const dir = localProfile(t);
  const list = impact(dir, ['beacon', 'list']);
  assert.equal(list.code, 0);
  assert.equal(list.stdout, `controlled\t${fed.services['beacon-controlled']}\npublic\t${fed.services['beacon-public']}\nregistered\t${fed.services['beacon-registered']}\n`);
  const listed = impact(dir, ['beacon', 'list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout), { beacons: [
    { name: 'controlled', url: fed.services['beacon-controlled'] },
    { name: 'public', url: fed.services['beacon-public'] },
    { name: 'registered', url: fed.services['beacon-registered'] }] }, 'an object like every listing');
  const header = impact(dir, ['beacon', 'list', '--header']);
  assert.equal(header.stdout.split('\n')[0], 'NAME\tURL');

  const info = impact(dir, ['beacon', 'info', '--json']);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.beacons.length, 3);
  const ctl = j.beacons.find((b) => b.name === 'controlled');
  assert.equal(ctl.info.id, 'org.impact.federation.beacon.controlled');
  assert.deepEqual(ctl.configuration.securityAttributes.securityLevels, ['CONTROLLED']);
  assert.deepEqual(ctl.entry_types, ['individuals', 'biosamples', 'g_variants', 'runs', 'analyses', 'datasets', 'cohorts']);
  const one = impact(dir, ['beacon', 'info', 'public']);
  assert.match(one.stdout, /^public\torg\.impact\.federation\.beacon\.public\t.*\tv2\.1\.1\t.*\tPUBLIC\tindividuals,/);

  const filters = impact(dir, ['beacon', 'filters', 'registered']);
  assert.equal(filters.code, 0);
  assert.match(filters.stdout, /^registered\tontologyTerm\tHP:0001250\t/m);
  assert.match(filters.stdout, /^registered\talphanumeric\tage\t/m);
  assert.match(filters.stdout, /^registered\tcustom\tsampleOrigin:blood\t/m);
  const unknown = impact(dir, ['beacon', 'info', 'nosuch']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no beacon named 'nosuch'/);
});

test('no request of ours broke the Beacon specification', () => {
  const fresh = violations().slice(violationsAtStart).filter((l) => /beacon/.test(JSON.parse(l).service || ''));
  assert.deepEqual(fresh, []);
});

// A hostile beacon (issue 22): a /map nested 100,000 levels, or record ids that carry terminal escape sequences.
function hostileBeacon(t, { deepMap = false } = {}) {
  const evil = '\u001b]0;pwned\u0007\u001b[2J';
  return server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/api/info' || u.pathname === '/api') return { status: 200, body: { meta: { apiVersion: 'v2.0' }, response: { id: 'org.example.evil', name: 'evil' } } };
    if (u.pathname === '/api/map') {
      if (deepMap) return { status: 200, body: `{"meta":{},"response":${'['.repeat(100000)}${']'.repeat(100000)}}` };
      return { status: 200, body: { meta: { apiVersion: 'v2.0' }, response: { endpointSets: { individual: { rootUrl: `http://${req.headers.host}/api/individuals` } } } } };
    }
    if (u.pathname === '/api/individuals') {
      return {
        status: 200,
        body: {
          meta: { apiVersion: 'v2.0', returnedGranularity: 'record' },
          responseSummary: { exists: true, numTotalResults: 1 },
          response: { resultSets: [{ id: `set${evil}`, exists: true, resultsCount: 1, results: [{ id: `ind-1${evil}`, sex: { label: `female${evil}` } }] }] },
        },
      };
    }
    return { status: 404, body: {} };
  });
}

test('a hostile beacon: a /map nested 100,000 levels is refused (no crash); escape sequences in records are shown, not executed', async (t) => {
  const deep = await hostileBeacon(t, { deepMap: true });
  const dir = localProfile(t, ['--beacon', `deep=${deep.url}/api`]);
  // search does without a /map it cannot use (the conventional paths); beacon info reports it
  const started = Date.now();
  const search = await impactAsync(dir, ['search', 'individuals', '--beacon', 'deep', '--json']);
  assert.equal(search.signal, null, `search crashed: ${search.stderr}`);
  assert.equal(search.code, 0, search.stderr);
  assert.equal(JSON.parse(search.stdout).beacons[0].answered, true);
  const info = await impactAsync(dir, ['--json', 'beacon', 'info', 'deep']);
  assert.equal(info.signal, null, `beacon info crashed: ${info.stderr}`);
  assert.equal(info.code, 0, info.stderr);
  assert.match(JSON.parse(info.stdout).beacons[0].missing.map, /nests JSON deeper than 128 levels/);
  assert.ok(Date.now() - started < 10000);

  const evil = await hostileBeacon(t);
  const dir2 = localProfile(t, ['--beacon', `evil=${evil.url}/api`]);
  for (const fmt of [[], ['--format', 'table'], ['--format', 'tsv']]) {
    const r = await impactAsync(dir2, [...fmt, 'search', 'individuals', '--beacon', 'evil', '--granularity', 'record'], { env: { IMPACT_WIDTH: '300' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!/[\u001b\u0007]/.test(r.stdout + r.stderr), JSON.stringify(r.stdout + r.stderr));
    assert.match(r.stdout, /ind-1\^\[\]0;pwned\^G\^\[\[2J/);
  }
  const j = await impactAsync(dir2, ['--json', 'search', 'individuals', '--beacon', 'evil', '--granularity', 'record']);
  assert.equal(j.code, 0, j.stderr);
  assert.ok(!/[\u001b\u0007]/.test(j.stdout), 'JSON escapes control characters');
  assert.equal(JSON.parse(j.stdout).beacons[0].records[0].id, 'ind-1\u001b]0;pwned\u0007\u001b[2J');
});

test('Ctrl-C while a large answer is being printed ends impact (exit 130)', async (t) => {
  const big = 'x'.repeat(4 << 20);
  const s = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/api/map') return { status: 200, body: { meta: { apiVersion: 'v2.0' }, response: { endpointSets: { individual: { rootUrl: `http://${req.headers.host}/api/individuals` } } } } };
    if (u.pathname === '/api/individuals') {
      return { status: 200, body: { meta: { returnedGranularity: 'record' }, responseSummary: { exists: true, numTotalResults: 1 }, response: { resultSets: [{ id: 's', exists: true, results: [{ id: 'i1', note: big }] }] } } };
    }
    return { status: 404, body: {} };
  });
  const dir = localProfile(t, ['--beacon', `big=${s.url}/api`]);
  const child = spawn(BIN, ['--json', 'search', 'individuals', '--beacon', 'big', '--granularity', 'record'], {
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache') },
  });
  child.stdout.pause();  // nobody reads: impact blocks writing its answer into the full pipe
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const closed = new Promise((ok) => child.on('close', (code, signal) => ok({ code, signal })));
  t.after(() => child.kill('SIGKILL'));
  // wait (bounded) until it sits in write(2): the syscall number of write is 1 on x86-64, 64 on arm64
  const write = process.arch === 'arm64' ? '64' : '1';
  const deadline = Date.now() + 15000;
  const inWrite = () => { try { return fs.readFileSync(`/proc/${child.pid}/syscall`, 'utf8').split(' ')[0] === write; } catch { return false; } };
  while (Date.now() < deadline && !inWrite()) await new Promise((ok) => setTimeout(ok, 20));
  assert.ok(inWrite(), 'impact is blocked printing');
  child.kill('SIGINT');
  child.stdout.resume();
  const r = await closed;
  assert.equal(r.code, 130, `exit ${r.code} ${r.signal}: ${stderr}`);
  assert.match(stderr, /interrupted/);
});
