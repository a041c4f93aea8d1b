'use strict';
// htsget part: htsget/server.js checked against the htsget 1.3 spec (specs/htsget-1.3.0) and against Debian's
// samtools/bcftools: for each region, the records of the file assembled from a ticket equal those that
// `samtools view FILE REGION` / `bcftools view -r REGION FILE` print from the local indexed file. Also the
// errors of the spec, the block origin's token rule and leak log, the fault switches, the Crypt4GH mode.
//   cd tests/federation && node --test test/htsget.test.js
// Identities: fakeAuth (TEST ONLY: `Bearer user:alice`); up starts it with the federation's provider.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, execFile } = require('node:child_process');
const { tempDir } = require('./helpers');
const openapi = require('../lib/openapi');
const c4gh = require('../lib/crypt4gh');

const state = tempDir('impact-fed-htsget-');
process.env.FED_STATE = state;
const htsget = require('../htsget/server');

const DATA = path.join(__dirname, '..', '..', 'data');
const PLAIN = path.join(DATA, 'crypt4gh', 'htsget-rs', 'plain');
const KEYS = path.join(DATA, 'crypt4gh', 'htsget-rs', 'c4gh', 'keys');
const ALICE = 'Bearer user:alice';
const BOB = 'Bearer user:bob';
const api = openapi.load('htsget');
const work = tempDir('impact-fed-htsget-work-');
// CRAM: never let htslib look for a reference on the network
const ENV = { ...process.env, REF_PATH: '/nonexistent', REF_CACHE: '/nonexistent', HTS_CACHE_SIZE: '0' };

let srv;
before(async () => {
  fs.mkdirSync(path.join(state, 'logs'), { recursive: true });
  srv = await htsget.start({ port: 0, blockPort: 0, fakeAuth: true });
  // local copies of the files with their indexes, for samtools/bcftools
  for (const f of fs.readdirSync(PLAIN)) fs.copyFileSync(path.join(PLAIN, f), path.join(work, f));
  for (const f of fs.readdirSync(path.join(DATA, 'htsget'))) fs.copyFileSync(path.join(DATA, 'htsget', f), path.join(work, f));
});
after(async () => { await srv.close(); });

const control = async (method, p, body) => {
  const r = await fetch(`${srv.url}${p}`, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(5000),
  });
  return r.json();
};

async function ticket(kind, id, { query = {}, body, who = ALICE, headers = {} } = {}) {
  const qs = new URLSearchParams(query).toString();
  const url = `${srv.url}/${kind}/${id}${qs ? `?${qs}` : ''}`;
  const res = await fetch(url, {
    method: body ? 'POST' : 'GET',
    headers: { ...(who ? { authorization: who } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const json = await res.json();
  const errs = api.checkResponse({ method: body ? 'POST' : 'GET', path: `/${kind}/x`, status: res.status, body: json });
  assert.deepStrictEqual(errs, [], `${url}: response does not conform: ${errs.join('; ')}`);
  return { status: res.status, json };
}

// The client side of a ticket: data: URIs decoded, block URLs fetched with exactly the ticket's headers.
async function assemble(t) {
  const parts = [];
  for (const u of t.htsget.urls) {
    if (u.url.startsWith('data:')) {
      parts.push(Buffer.from(u.url.slice(u.url.indexOf(',') + 1), 'base64'));
      continue;
    }
    const res = await fetch(u.url, { headers: u.headers || {}, signal: AbortSignal.timeout(10000) });
    assert.ok(res.status === 200 || res.status === 206, `block ${u.url}: HTTP ${res.status}`);
    const buf = Buffer.from(await res.arrayBuffer());
    const m = /^bytes=(\d+)-(\d+)$/.exec(u.headers.Range);
    assert.strictEqual(buf.length, Number(m[2]) - Number(m[1]) + 1, 'block length');
    parts.push(buf);
  }
  const out = Buffer.concat(parts);
  if (t.htsget.md5) assert.strictEqual(require('crypto').createHash('md5').update(out).digest('hex'), t.htsget.md5, 'md5 of the payload');
  return out;
}

// samtools/bcftools reading from the in-process server must not block its event loop
const runAsync = (cmd, args) => new Promise((resolve, reject) => {
  execFile(cmd, args, { env: ENV, timeout: 30000, maxBuffer: 1 << 28 }, (e, stdout, stderr) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || e.message}`)) : resolve(stdout)));
});
const run = (cmd, args) => execFileSync(cmd, args, { env: ENV, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const region = (g) => (g.start === undefined ? g.referenceName : `${g.referenceName}:${g.start + 1}-${g.end}`);

// records of `file` in `regions` (samtools for reads, bcftools for variants); the file gets an index first
function records(kind, file, regions) {
  if (kind === 'reads') {
    if (!fs.existsSync(`${file}.bai`) && !fs.existsSync(`${file}.crai`)) run('samtools', ['index', file]);
    return regions.map((g) => run('samtools', ['view', file, region(g)])).join('');
  }
  if (!fs.existsSync(`${file}.tbi`) && !fs.existsSync(`${file}.csi`)) run('bcftools', ['index', ...(file.endsWith('.vcf.gz') ? ['-t'] : []), file]);
  return regions.map((g) => run('bcftools', ['view', '-H', '-r', region(g), file])).join('');
}

let n = 0;
async function checkRegions(kind, id, format, file, regions, { post = false, expectBlocks = 0 } = {}) {
  const t = post
    ? await ticket(kind, id, { body: { format, regions } })
    : await ticket(kind, id, { query: { format, referenceName: regions[0].referenceName, ...(regions[0].start !== undefined ? { start: regions[0].start, end: regions[0].end } : {}) } });
  assert.strictEqual(t.status, 200, JSON.stringify(t.json));
  assert.strictEqual(t.json.htsget.format, format);
  const urls = t.json.htsget.urls;
  assert.ok(urls.every((u) => u.class === 'header' || u.class === 'body'), 'every url has a class');
  assert.strictEqual(urls[0].class, 'header');
  assert.match(urls[urls.length - 1].url, /^data:/, 'EOF marker inline');
  assert.ok(urls.filter((u) => !u.url.startsWith('data:')).length >= expectBlocks, `at least ${expectBlocks} block URLs`);
  for (const u of urls.filter((x) => !x.url.startsWith('data:'))) {
    assert.ok(u.url.startsWith(srv.blockUrl), 'blocks live on the second origin');
    assert.deepStrictEqual(Object.keys(u.headers).sort(), ['Range', 'X-Htsget-Block-Token']);
  }
  const bytes = await assemble(t.json);
  const ext = { BAM: 'bam', CRAM: 'cram', VCF: 'vcf.gz', BCF: 'bcf' }[format];
  const out = path.join(work, `out-${n++}.${ext}`);
  fs.writeFileSync(out, bytes);
  const want = records(kind, path.join(work, file), regions);
  const got = records(kind, out, regions);
  assert.ok(want.length > 0, 'the region has records');
  assert.strictEqual(got, want);
  return { ticket: t.json, bytes, out };
}

test('service-info: reads and variants conform to the htsget OpenAPI and name their formats', async () => {
  for (const kind of ['reads', 'variants']) {
    const res = await fetch(`${srv.url}/${kind}/service-info`);
    const body = await res.json();
    assert.deepStrictEqual(api.checkResponse({ method: 'GET', path: `/${kind}/service-info`, status: 200, body }), []);
    assert.deepStrictEqual(body.type, { group: 'org.ga4gh', artifact: 'htsget', version: '1.3.0' });
    assert.strictEqual(body.htsget.datatype, kind);
    assert.deepStrictEqual(body.htsget.formats, kind === 'reads' ? ['BAM', 'CRAM'] : ['VCF', 'BCF']);
    assert.strictEqual(body.url, `${srv.url}/${kind}`);
  }
});

test('BAM: GET regions give exactly the records samtools finds in the indexed file', async () => {
  const bam = 'htsnexus_test_NA12878.bam';
  await checkRegions('reads', 'htsnexus_test_NA12878', 'BAM', bam, [{ referenceName: '11', start: 4999976, end: 5000100 }]);
  await checkRegions('reads', 'htsnexus_test_NA12878', 'BAM', bam, [{ referenceName: '20', start: 5999999, end: 6000300 }]);
  await checkRegions('reads', 'htsnexus_test_NA12878', 'BAM', bam, [{ referenceName: '20' }], { expectBlocks: 1 });
  // a region without reads: still a valid BAM (header + EOF), no records
  const t = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '1', start: 100, end: 200 } });
  const empty = path.join(work, 'empty.bam');
  fs.writeFileSync(empty, await assemble(t.json));
  assert.strictEqual(run('samtools', ['view', '-c', empty]).trim(), '0');
  assert.match(run('samtools', ['view', '-H', empty]), /@SQ\tSN:11\t/);
});

test('BAM: one POST with several regions (out of order, overlapping) = the union samtools finds', async () => {
  const regions = [{ referenceName: '20', start: 6000000, end: 6000500 }, { referenceName: '11', start: 5000000, end: 5050000 }, { referenceName: '11', start: 5040000, end: 5060000 }];
  const { out } = await checkRegions('reads', 'htsnexus_test_NA12878', 'BAM', 'htsnexus_test_NA12878.bam', regions, { post: true });
  // records come in file order, each once
  const all = run('samtools', ['view', out]).split('\n').filter(Boolean);
  assert.strictEqual(new Set(all).size, all.length);
});

test('BAM: the whole file and the unplaced unmapped reads ("*")', async () => {
  const t = await ticket('reads', 'htsnexus_test_NA12878');
  const whole = path.join(work, 'whole.bam');
  fs.writeFileSync(whole, await assemble(t.json));
  const src = path.join(work, 'htsnexus_test_NA12878.bam');
  assert.strictEqual(run('samtools', ['view', whole]), run('samtools', ['view', src]));
  const u = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '*' } });
  const un = path.join(work, 'unmapped.bam');
  fs.writeFileSync(un, await assemble(u.json));
  const want = records('reads', src, [{ referenceName: '*' }]);
  assert.ok(want.length > 0);
  assert.strictEqual(records('reads', un, [{ referenceName: '*' }]), want);
  // and nothing else than those (the unplaced reads sit at the end of the file)
  assert.ok(Number(run('samtools', ['view', '-c', un]).trim()) < Number(run('samtools', ['view', '-c', src]).trim()) / 2);
});

test('class=header: the header only, as samtools prints it', async () => {
  for (const [format, file] of [['BAM', 'htsnexus_test_NA12878.bam'], ['CRAM', 'htsnexus_test_NA12878.cram']]) {
    const t = await ticket('reads', 'htsnexus_test_NA12878', { query: { format, class: 'header' } });
    assert.ok(t.json.htsget.urls.every((u) => u.class === 'header'));
    const out = path.join(work, `header.${format.toLowerCase()}`);
    fs.writeFileSync(out, await assemble(t.json));
    assert.strictEqual(run('samtools', ['view', '--no-PG', '-H', out]), run('samtools', ['view', '--no-PG', '-H', path.join(work, file)]));
  }
  const v = await ticket('variants', 'spec-v4.3', { query: { class: 'header' } });
  const vout = path.join(work, 'header.vcf.gz');
  fs.writeFileSync(vout, await assemble(v.json));
  assert.strictEqual(run('bcftools', ['view', '--no-version', '-h', vout]), run('bcftools', ['view', '--no-version', '-h', path.join(work, 'spec-v4.3.vcf.gz')]));
});

test('CRAM: container ranges from the CRAI give the records samtools finds', async () => {
  const cram = 'htsnexus_test_NA12878.cram';
  await checkRegions('reads', 'htsnexus_test_NA12878', 'CRAM', cram, [{ referenceName: '11', start: 5000000, end: 5000100 }], { expectBlocks: 1 });
  await checkRegions('reads', 'htsnexus_test_NA12878', 'CRAM', cram, [{ referenceName: '20', start: 6050000, end: 6060000 }, { referenceName: '11', start: 5070000, end: 5080000 }], { post: true });
});

test('VCF.gz and BCF: regions as bcftools finds them (the header shares its BGZF block with records)', async () => {
  await checkRegions('variants', 'spec-v4.3', 'VCF', 'spec-v4.3.vcf.gz', [{ referenceName: '20', start: 14000, end: 1110000 }]);
  await checkRegions('variants', 'sample1-bcbio-cancer', 'VCF', 'sample1-bcbio-cancer.vcf.gz', [{ referenceName: 'chrM', start: 0, end: 16571 }]);
  await checkRegions('variants', 'spec-v4.3', 'BCF', 'spec-v4.3.bcf', [{ referenceName: '20' }]);
  await checkRegions('variants', 'sample1-bcbio-cancer', 'BCF', 'sample1-bcbio-cancer.bcf', [{ referenceName: 'chr22' }, { referenceName: 'chrM', start: 100, end: 5000 }], { post: true });
});

test('small max_block_bytes: many block URLs, same records', async () => {
  await control('POST', '/__config', { max_block_bytes: 4096 });
  try {
    const { ticket: t } = await checkRegions('reads', 'htsnexus_test_NA12878', 'BAM', 'htsnexus_test_NA12878.bam', [{ referenceName: '11', start: 5000000, end: 5090000 }], { expectBlocks: 10 });
    assert.ok(t.htsget.urls.filter((u) => u.headers).every((u) => { const m = /^bytes=(\d+)-(\d+)$/.exec(u.headers.Range); return m[2] - m[1] + 1 <= 4096; }));
  } finally {
    await control('POST', '/__reset');
  }
});

test('errors as the spec names them, with their status codes', async () => {
  const err = async (args, status, error, kind = 'reads', id = 'htsnexus_test_NA12878') => {
    const r = await ticket(kind, id, args);
    assert.strictEqual(r.status, status, JSON.stringify(r.json));
    assert.strictEqual(r.json.htsget.error, error);
    assert.strictEqual(typeof r.json.htsget.message, 'string');
  };
  await err({ who: null }, 401, 'InvalidAuthentication');
  await err({ who: 'Bearer' }, 401, 'InvalidAuthentication');
  await err({ who: BOB }, 403, 'PermissionDenied', 'reads', 'NA12878-restricted');
  assert.strictEqual((await ticket('reads', 'NA12878-restricted')).status, 200);
  await err({}, 404, 'NotFound', 'reads', 'no-such-id');
  await err({}, 404, 'NotFound', 'variants', 'htsnexus_test_NA12878');
  await err({ query: { referenceName: 'chrNope' } }, 404, 'NotFound');
  await err({ query: { format: 'VCF' } }, 400, 'UnsupportedFormat');
  await err({ query: { format: 'SAM' } }, 400, 'UnsupportedFormat');
  await err({ query: { referenceName: '11', start: 10, end: 5 } }, 400, 'InvalidRange');
  await err({ query: { start: 10 } }, 400, 'InvalidInput');
  await err({ query: { referenceName: '*', start: 10 } }, 400, 'InvalidInput');
  await err({ query: { referenceName: '11', start: '-1' } }, 400, 'InvalidInput');
  await err({ query: { class: 'body' } }, 400, 'InvalidInput');
  await err({ query: { class: 'header', referenceName: '11' } }, 400, 'InvalidInput');
  await err({ query: { fields: 'QNAME,NOPE' } }, 400, 'InvalidInput');
  await err({ query: { tags: 'MD,NM', notags: 'NM' } }, 400, 'InvalidInput');
  await err({ body: { regions: [] } }, 400, 'InvalidInput');
  await err({ body: { regions: [{ start: 1 }] } }, 400, 'InvalidInput');
  await err({ body: { regions: [{ referenceName: '11', start: 5, end: 5 }] } }, 400, 'InvalidRange');
  await err({ body: { regions: [{ referenceName: 'chrNope' }] } }, 404, 'NotFound');
  await err({ query: { encryptionScheme: 'C4GH' } }, 400, 'InvalidInput'); // no public key header
  const q = await fetch(`${srv.url}/reads/htsnexus_test_NA12878?format=BAM`, { method: 'POST', headers: { authorization: ALICE, 'content-type': 'application/json' }, body: '{}' });
  assert.strictEqual(q.status, 400);
  assert.strictEqual((await q.json()).htsget.error, 'InvalidInput');
  // an id with a '/' inside and a lower-case POST format (as htsget.md's example writes it)
  const s = await ticket('reads', 'by-sample/NA12878', { body: { format: 'bam', regions: [{ referenceName: '11', start: 5000000, end: 5000001 }] } });
  assert.strictEqual(s.status, 200);
  assert.strictEqual(s.json.htsget.format, 'BAM');
});

test('block origin: the ticket header is required, a leaked user token is logged', async () => {
  await control('DELETE', '/__log');
  const t = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '11', start: 5000000, end: 5000100 } });
  const block = t.json.htsget.urls.find((u) => !u.url.startsWith('data:'));
  const none = await fetch(block.url, { headers: { Range: block.headers.Range } });
  assert.strictEqual(none.status, 401);
  const bad = await fetch(block.url, { headers: { Range: block.headers.Range, 'X-Htsget-Block-Token': `${block.headers['X-Htsget-Block-Token']}x` } });
  assert.strictEqual(bad.status, 403);
  let log = await control('GET', '/__log');
  assert.strictEqual(log.leaks, 0);
  const leaky = await fetch(block.url, { headers: { ...block.headers, Authorization: ALICE } });
  assert.strictEqual(leaky.status, 206);
  await leaky.arrayBuffer();
  log = await control('GET', '/__log');
  assert.strictEqual(log.leaks, 1);
  const last = log.blocks[log.blocks.length - 1];
  assert.strictEqual(last.authorization, 'user-token');
  assert.strictEqual(last.leaked, true);
  assert.ok(!JSON.stringify(log).includes('user:alice'), 'the log holds no token');
  assert.strictEqual(log.tickets[log.tickets.length - 1].user, 'alice');
  // block_auth=authorization: the ticket lists its own Authorization for the block; sending it is no leak
  await control('POST', '/__config', { block_auth: 'authorization' });
  try {
    const t2 = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '11', start: 5000000, end: 5000100 } });
    const b2 = t2.json.htsget.urls.find((u) => !u.url.startsWith('data:'));
    assert.deepStrictEqual(Object.keys(b2.headers).sort(), ['Authorization', 'Range']);
    await control('DELETE', '/__log');
    await assemble(t2.json);
    log = await control('GET', '/__log');
    assert.ok(log.blocks.length > 0 && log.blocks.every((b) => b.authorization === 'block-token' && !b.leaked));
  } finally {
    await control('POST', '/__reset');
  }
  // block_origin=same: block URLs on the ticket's own origin; the user's token is a leak there too
  await control('POST', '/__config', { block_origin: 'same' });
  try {
    const t3 = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '11', start: 5000000, end: 5000100 } });
    const b3 = t3.json.htsget.urls.find((u) => !u.url.startsWith('data:'));
    assert.ok(b3.url.startsWith(`${srv.url}/blocks/`));
    await control('DELETE', '/__log');
    await assemble(t3.json);
    const same = await fetch(b3.url, { headers: { ...b3.headers, Authorization: ALICE } });
    await same.arrayBuffer();
    log = await control('GET', '/__log');
    assert.strictEqual(log.leaks, 1);
    assert.ok(log.blocks.every((b) => b.origin === 'ticket-origin'));
  } finally {
    await control('POST', '/__reset');
  }
});

test('fault switches: dropped block, short body, short range, 500 on the ticket, no POST, redirect to another origin', async () => {
  const t = await ticket('reads', 'htsnexus_test_NA12878', { query: { referenceName: '11', start: 5000000, end: 5000100 } });
  const block = t.json.htsget.urls.find((u) => !u.url.startsWith('data:'));
  const m = /^bytes=(\d+)-(\d+)$/.exec(block.headers.Range);
  const len = Number(m[2]) - Number(m[1]) + 1;
  const fetchBlock = async () => {
    const r = await fetch(block.url, { headers: block.headers, signal: AbortSignal.timeout(5000) });
    return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
  };
  for (const fault of ['drop_block', 'short_body']) {
    await control('POST', '/__fault', { fault, times: 1 });
    await assert.rejects(fetchBlock(), `${fault}: the body is cut short`);
    const ok = await fetchBlock(); // times: 1, then served normally
    assert.strictEqual(ok.body.length, len);
  }
  await control('POST', '/__fault', { fault: 'short_range' });
  const short = await fetchBlock();
  assert.strictEqual(short.status, 206);
  assert.ok(short.body.length < len, 'fewer bytes than the ticket range');
  assert.strictEqual(Number(short.headers.get('content-length')), short.body.length);
  assert.notStrictEqual(short.headers.get('content-range'), `bytes ${m[1]}-${m[2]}/${fs.statSync(path.join(work, 'htsnexus_test_NA12878.bam')).size}`);

  await control('POST', '/__fault', { fault: 'ticket_500', times: 2, match: 'htsnexus' });
  for (let i = 0; i < 2; i++) {
    const r = await ticket('reads', 'htsnexus_test_NA12878');
    assert.strictEqual(r.status, 500);
    assert.strictEqual(r.json.htsget.error, 'InternalServerError');
  }
  assert.strictEqual((await ticket('reads', 'htsnexus_test_NA12878')).status, 200);

  await control('POST', '/__fault', { fault: 'no_post' });
  const np = await fetch(`${srv.url}/reads/htsnexus_test_NA12878`, { method: 'POST', headers: { authorization: ALICE, 'content-type': 'application/json' }, body: '{}' });
  assert.strictEqual(np.status, 405);
  assert.strictEqual(np.headers.get('allow'), 'GET');

  await control('DELETE', '/__log');
  await control('POST', '/__fault', { fault: 'redirect', times: -1 });
  const manual = await fetch(block.url, { headers: block.headers, redirect: 'manual' });
  assert.strictEqual(manual.status, 307);
  assert.ok(manual.headers.get('location').startsWith(`${srv.url}/blocks/`), 'redirects to the other origin');
  const followed = await fetchBlock(); // fetch follows with the same headers
  assert.strictEqual(followed.body.length, len);
  const log = await control('GET', '/__log');
  assert.ok(log.blocks.some((b) => b.origin === 'ticket-origin' && b.status === 206 && b.block_token === 'ok'));
  const stripped = await fetch(manual.headers.get('location'), { headers: { Range: block.headers.Range } });
  assert.strictEqual(stripped.status, 401, 'the redirect target wants the block header too');
  await control('POST', '/__reset');
  const faults = await control('GET', '/__fault');
  assert.deepStrictEqual(faults, []);

  await control('POST', '/__fault', { fault: 'slow_block', ms: 1500 });
  const t0 = Date.now();
  await assert.rejects(fetch(block.url, { headers: block.headers, signal: AbortSignal.timeout(300) }), 'a stalled block times out');
  assert.ok(Date.now() - t0 < 1400);
  const late = await fetchBlock(); // fired once: served normally again
  assert.strictEqual(late.body.length, len);
  await control('POST', '/__reset');
});

test('Crypt4GH: a stream for the caller\'s key whose plaintext holds the region (BAM, CRAM, VCF, BCF)', async () => {
  const alicePub = fs.readFileSync(path.join(KEYS, 'alice.pub'), 'utf8');
  const aliceSec = c4gh.parsePrivateKey(fs.readFileSync(path.join(KEYS, 'alice.sec'), 'utf8'));
  const keyHeader = { 'Htsget-Context-Public-Key': Buffer.from(alicePub).toString('base64') };
  const cases = [
    ['reads', 'htsnexus_test_NA12878', 'BAM', 'htsnexus_test_NA12878.bam', [{ referenceName: '11', start: 5000000, end: 5000100 }]],
    ['reads', 'htsnexus_test_NA12878', 'BAM', 'htsnexus_test_NA12878.bam', [{ referenceName: '20', start: 6000000, end: 6010000 }, { referenceName: '11', start: 5090000, end: 5100000 }]],
    ['reads', 'htsnexus_test_NA12878', 'CRAM', 'htsnexus_test_NA12878.cram', [{ referenceName: '20', start: 6000000, end: 6000100 }]],
    ['variants', 'spec-v4.3', 'VCF', 'spec-v4.3.vcf.gz', [{ referenceName: '20', start: 14000, end: 1110000 }]],
    ['variants', 'sample1-bcbio-cancer', 'BCF', 'sample1-bcbio-cancer.bcf', [{ referenceName: 'chrM' }]],
  ];
  for (const [kind, id, format, file, regions] of cases) {
    const t = await ticket(kind, id, { body: { format, regions, encryptionScheme: 'C4GH' }, headers: keyHeader });
    assert.strictEqual(t.status, 200, JSON.stringify(t.json));
    const urls = t.json.htsget.urls;
    assert.match(urls[0].url, /^data:/, 'the re-encrypted header is inline');
    assert.ok(urls.slice(1).every((u) => u.url.includes('.c4gh') && u.headers['X-Htsget-Block-Token']), 'then ranges of the archived .c4gh file');
    assert.ok(urls.every((u) => u.class === undefined), 'no class in Crypt4GH mode');
    const stream = await assemble(t.json);
    assert.throws(() => c4gh.decrypt(stream, c4gh.parsePrivateKey(fs.readFileSync(path.join(KEYS, 'bob.sec'), 'utf8'))), 'bob (the archive key) is not a reader of the ticket');
    const plain = c4gh.decrypt(stream, aliceSec);
    const ext = { BAM: 'bam', CRAM: 'cram', VCF: 'vcf.gz', BCF: 'bcf' }[format];
    const out = path.join(work, `c4gh-${n++}.${ext}`);
    fs.writeFileSync(out, plain);
    assert.strictEqual(records(kind, out, regions), records(kind, path.join(work, file), regions));
  }
  // a raw 32-byte key (base64) is accepted too; the whole file decrypts to the original bytes
  const raw = { 'Htsget-Context-Public-Key': c4gh.parsePublicKey(alicePub).toString('base64') };
  const w = await ticket('variants', 'spec-v4.3', { query: { encryptionScheme: 'C4GH' }, headers: raw });
  assert.strictEqual(w.status, 200);
  assert.deepStrictEqual(c4gh.decrypt(await assemble(w.json), aliceSec), fs.readFileSync(path.join(work, 'spec-v4.3.vcf.gz')));
  const badKey = await ticket('variants', 'spec-v4.3', { query: { encryptionScheme: 'C4GH' }, headers: { 'Htsget-Context-Public-Key': 'bm9wZQ==' } });
  assert.strictEqual(badKey.json.htsget.error, 'InvalidInput');
});

test('Debian samtools/bcftools as htsget clients (anonymous mode): the same records for the region', async () => {
  await control('POST', '/__config', { require_auth: false });
  await control('DELETE', '/__log');
  try {
    const cases = [
      ['reads', 'htsnexus_test_NA12878', 'BAM', 'htsnexus_test_NA12878.bam', { referenceName: '11', start: 5000000, end: 5000100 }, 'bam'],
      ['reads', 'htsnexus_test_NA12878', 'CRAM', 'htsnexus_test_NA12878.cram', { referenceName: '20', start: 6000000, end: 6000100 }, 'cram'],
      ['variants', 'sample1-bcbio-cancer', 'VCF', 'sample1-bcbio-cancer.vcf.gz', { referenceName: 'chrM', start: 100, end: 9000 }, 'vcf.gz'],
    ];
    for (const [kind, id, format, file, g, ext] of cases) {
      const url = `${srv.url}/${kind}/${id}?format=${format}&referenceName=${g.referenceName}&start=${g.start}&end=${g.end}`;
      const out = path.join(work, `tool-${n++}.${ext}`);
      if (kind === 'reads') await runAsync('samtools', ['view', '--no-PG', '-O', format, '-o', out, url]);
      else await runAsync('bcftools', ['view', '--no-version', '-Oz', '-o', out, url]);
      assert.strictEqual(records(kind, out, [g]), records(kind, path.join(work, file), [g]), `${format} through ${kind === 'reads' ? 'samtools' : 'bcftools'}`);
    }
    const log = await control('GET', '/__log');
    assert.strictEqual(log.leaks, 0);
    const served = log.tickets.filter((t) => t.status === 200);
    assert.strictEqual(served.length, 3, JSON.stringify(log.tickets));
    assert.ok(served.every((t) => t.user === 'anonymous'));
    // bcftools also probes for an index next to the URL (`<id>.csi`, `<id>.tbi` before the query): NotFound
    assert.ok(log.tickets.filter((t) => t.status !== 200).every((t) => /\.(csi|tbi)$/.test(t.id) && t.status === 404), JSON.stringify(log.tickets));
    await control('POST', '/__config', { require_auth: true });
    assert.strictEqual((await ticket('reads', 'htsnexus_test_NA12878', { who: null })).status, 401);
  } finally {
    await control('POST', '/__reset');
  }
});

test('no spec violation was recorded', () => {
  const file = path.join(state, 'violations.log');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  assert.strictEqual(text, '');
});
