'use strict';
// Discovery, service-info and doctor against the local federation (started by ctest) and against small
// scripted servers for the failure cases.
const test = require('node:test');
const assert = require('node:assert/strict');
const { federation, home, impact, impactAsync, server, serviceInfo } = require('./helpers');

const fed = federation();

function localProfile(t) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

test('profile add --registry fills every service from the federation registry', (t) => {
  const dir = localProfile(t);
  const p = JSON.parse(impact(dir, ['profile', 'show', '--json']).stdout);
  assert.equal(p.registry, fed.registry);
  assert.equal(p.issuer, fed.issuer);
  assert.equal(p.client_id, 'impact-cli');
  assert.equal(p.wes, fed.services.wes);
  assert.equal(p.tes, fed.services.tes);
  assert.equal(p.archive, fed.services.sda);
  assert.deepEqual(p.beacons, {
    public: fed.services['beacon-public'],
    registered: fed.services['beacon-registered'],
    controlled: fed.services['beacon-controlled'],
  });
  assert.deepEqual(Object.values(p.drs), [fed.services.drs]);
  assert.equal(p.storage.url, fed.services.s3);
  assert.equal(p.storage.sts, fed.services.sts);
  assert.equal(p.storage.bucket, 'results');
  assert.deepEqual(p.trusted_visa_issuers, { [fed.visa_issuer]: new URL('/jwks', fed.visa_issuer).href });
});

test('service-info lists what each service says of itself', (t) => {
  const dir = localProfile(t);
  const r = impact(dir, ['service-info', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.failed, []);
  const kinds = j.services.map((s) => s.kind).sort();
  assert.deepEqual(kinds, ['archive', 'beacon', 'beacon', 'beacon', 'drs', 'htsget', 'htsget', 'storage', 'tes', 'trs', 'trs', 'wes']);
  const wes = j.services.find((s) => s.kind === 'wes');
  assert.equal(wes.type.artifact, 'wes');
  assert.equal(wes.type.version, '1.1.0');
  assert.ok(wes.details.workflow_type_versions.CWL, 'WES-specific fields are kept under details');

  const only = impact(dir, ['service-info', 'wes']);
  assert.equal(only.code, 0);
  const lines = only.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const cols = lines[0].split('\t');
  assert.equal(cols[0], 'wes');
  assert.equal(cols[2], 'org.ga4gh:wes:1.1.0');
  assert.equal(cols[5], fed.services.wes);
});

test('doctor passes on a healthy federation and says so per line', (t) => {
  const dir = localProfile(t);
  const r = impact(dir, ['doctor', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, true);
  assert.equal(j.profile, 'local');
  const services = new Set(j.checks.map((c) => c.service));
  for (const s of ['registry', 'issuer', 'beacon public', 'beacon registered', 'beacon controlled', 'wes', 'storage'])
    assert.ok(services.has(s), s);
  for (const s of services) {
    if (s === 'identity') continue;
    const names = j.checks.filter((c) => c.service === s).map((c) => c.check);
    assert.deepEqual(names, ['reach', 'api', 'clock'], s);
  }
  // not logged in yet: a warning with the way out, not a failure
  const login = j.checks.filter((c) => c.service === 'identity');
  assert.deepEqual(login.map((c) => [c.check, c.status, c.detail, c.hint]), [['login', 'warn', 'not logged in', 'run: impact login']]);
  const services_ = j.checks.filter((c) => c.service !== 'identity');
  assert.ok(services_.every((c) => c.status === 'ok'), JSON.stringify(services_.filter((c) => c.status !== 'ok')));
  const tsv = impact(dir, ['doctor']);
  assert.equal(tsv.code, 0);
  assert.match(tsv.stdout, /^issuer\tapi\tok\tOpenID provider with device flow$/m);
});

test('-v prints one redacted line per request on stderr; stdout stays clean', (t) => {
  const dir = localProfile(t);
  const r = impact(dir, ['-v', 'service-info', 'wes', '--json']);
  assert.equal(r.code, 0);
  JSON.parse(r.stdout);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^\\* GET ${fed.services.wes}/service-info 200 \\d+ms$`));
  const d = impact(dir, ['--debug', 'service-info', 'wes', '--json']);
  assert.match(d.stderr, /^> User-Agent: impact\/\d/m);
  assert.match(d.stderr, /^< Content-Type: application\/json/m);
});

test('doctor fails on a service that is down, naming the phase', async (t) => {
  const dir = home(t);
  // A port nothing listens on: take one from a server we close again.
  const closed = await new Promise((resolve) => {
    const s = require('node:http').createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  assert.equal(impact(dir, ['profile', 'add', 'x', '--wes', `http://127.0.0.1:${closed}/ga4gh/wes/v1`]).code, 0);
  const r = await impactAsync(dir, ['doctor', '--json']);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, false);
  const reach = j.checks.find((c) => c.check === 'reach');
  assert.equal(reach.status, 'fail');
  assert.match(reach.detail, new RegExp(`^TCP: cannot connect to 127\\.0\\.0\\.1:${closed}`));
  assert.ok(reach.hint);
});

test('doctor reports a skewed clock and a service of the wrong kind', async (t) => {
  const dir = home(t);
  const skewed = new Date(Date.now() - 5 * 60 * 1000).toUTCString();
  const srv = await server(t, (req) => {
    if (req.url === '/wes/service-info') return { status: 200, headers: { Date: skewed }, body: serviceInfo('x.wes', 'wes', '') };
    if (req.url === '/drs/service-info') return { status: 200, body: serviceInfo('x.beacon', 'beacon', '') };
    return { status: 404, body: {} };
  });
  assert.equal(impact(dir, ['profile', 'add', 'x', '--wes', `${srv.url}/wes`, '--drs', `d=${srv.url}/drs`]).code, 0);
  const r = await impactAsync(dir, ['doctor', '--json']);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  const clock = j.checks.find((c) => c.service === 'wes' && c.check === 'clock');
  assert.equal(clock.status, 'fail');
  assert.match(clock.detail, /this machine's clock is 30[01] s ahead of the server's/);
  const kind = j.checks.find((c) => c.service === 'drs d' && c.check === 'api');
  assert.equal(kind.status, 'fail');
  assert.match(kind.detail, /this is a beacon/);
});

test('service-info retries a 503 with Retry-After, and reports partial failure with exit 6', async (t) => {
  const dir = home(t);
  let calls = 0;
  const srv = await server(t, (req) => {
    if (req.url === '/wes/service-info') {
      calls += 1;
      return calls === 1 ? { status: 503, headers: { 'Retry-After': '0' }, body: { msg: 'busy' } }
        : { status: 200, body: serviceInfo('x.wes', 'wes', '') };
    }
    if (req.url === '/b/service-info') return { status: 500, body: { msg: 'beacon exploded' } };
    return { status: 404, body: {} };
  });
  assert.equal(impact(dir, ['profile', 'add', 'x', '--wes', `${srv.url}/wes`, '--beacon', `b=${srv.url}/b`]).code, 0);
  const r = await impactAsync(dir, ['-v', 'service-info', '--json']);
  assert.equal(r.code, 6, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.services.length, 1);
  assert.equal(j.services[0].kind, 'wes');
  assert.equal(j.failed.length, 1);
  assert.equal(j.failed[0].service, 'beacon b');
  assert.match(j.failed[0].error, /HTTP 500: beacon exploded/);
  assert.equal(calls, 2);
  assert.match(r.stderr, /service-info 503 .*\n.*service-info 200 \d+ms \(attempt 2\)/);
  // Only failures: the error itself, exit 1, one line plus a hint.
  const only = await impactAsync(dir, ['service-info', 'beacon']);
  assert.equal(only.code, 1);
  assert.match(only.stderr, /^impact: beacon b: fetching service-info of beacon b failed: HTTP 500: beacon exploded/);
});

test('a registry with malformed entries: bad ones are skipped with a warning', async (t) => {
  const dir = home(t);
  const srv = await server(t, (req) => {
    if (req.url === '/services') {
      return { status: 200, body: [
        serviceInfo('ok.wes', 'wes', 'http://127.0.0.1:1/ga4gh/wes/v1'),
        { id: 'broken' },
        serviceInfo('remote.drs', 'drs', 'http://drs.example.org/ga4gh/drs/v1'),
        serviceInfo('odd.thing', 'rnaget', 'https://rnaget.example.org'),
        serviceInfo('a.tes', 'tes', 'https://tes.example.org/ga4gh/tes/v1'),
      ] };
    }
    return { status: 404, body: {} };
  });
  const r = await impactAsync(dir, ['profile', 'add', 'r', '--registry', srv.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: skipped an entry: invalid service-info/);
  assert.match(r.stderr, /warning: skipped remote\.drs: refusing plain http to drs\.example\.org/);
  assert.match(r.stderr, /warning: ignored odd\.thing \(type org\.ga4gh:rnaget\)/);
  const p = JSON.parse(impact(dir, ['profile', 'show', '--json']).stdout);
  assert.equal(p.wes, 'http://127.0.0.1:1/ga4gh/wes/v1');
  assert.equal(p.tes, 'https://tes.example.org/ga4gh/tes/v1');  // type tes: the profile's TES
  assert.deepEqual(p.drs, {});
  const notjson = await server(t, () => ({ status: 200, headers: { 'Content-Type': 'text/html' }, body: '<html>' }));
  const bad = await impactAsync(dir, ['profile', 'add', 's', '--registry', notjson.url]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /the service registry: the server did not answer with JSON/);
});
