'use strict';
// impact htsget against the federation's htsget 1.3 server (tests/federation/htsget): the records of what
// impact writes equal those Debian's samtools/bcftools print for the same region of the local indexed file
// (records compared, not bytes); POST and the GET fallback; Crypt4GH (decrypted here, or kept); the fault
// switches (dropped block, short body, short range, cross-origin redirect) survived; a block that keeps
// failing leaves nothing at the -o path; the user's token never reaches the block origin.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { federation, home, impact, userToken } = require('./helpers');

const ROOT = path.resolve(__dirname, '../..');
const DATA = path.join(ROOT, 'tests/data');
const PLAIN = path.join(DATA, 'crypt4gh/htsget-rs/plain');
const KEYS = path.join(DATA, 'crypt4gh/htsget-rs/c4gh/keys');
// CRAM: htslib must never look for a reference on the network
const TOOL_ENV = { ...process.env, REF_PATH: '/nonexistent', REF_CACHE: '/nonexistent' };
const tool = (cmd, args) => execFileSync(cmd, args, { env: TOOL_ENV, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const BAM_ID = 'htsnexus_test_NA12878';
const R11 = '11:5000000-5010000';
const R20 = '20:6000000-6003000';

let fed;
let htsgetUrl;
let token;
let dir;
let work;
const env = () => ({ IMPACT_TOKEN: token });

test.before(async () => {
  fed = federation();
  htsgetUrl = fed.services.htsget;
  assert.ok(htsgetUrl, 'the federation runs htsget');
  token = (await userToken('alice')).access_token;
  dir = home(null);
  work = fs.mkdtempSync(path.join(dir, 'work-'));
  for (const f of fs.readdirSync(PLAIN)) fs.copyFileSync(path.join(PLAIN, f), path.join(work, f));
  for (const f of fs.readdirSync(path.join(DATA, 'htsget'))) fs.copyFileSync(path.join(DATA, 'htsget', f), path.join(work, f));
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
  assert.equal(r.code, 0, r.stderr);
  await control('POST', '/__reset');
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function control(method, p, body) {
  const r = await fetch(`${htsgetUrl}${p}`, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(5000),
  });
  return r.json();
}

// The records of `file` in each region: samtools view for reads, bcftools view -H for variants (the file is
// indexed first when it has no index).
function records(kind, file, regions) {
  if (kind === 'reads') {
    if (!fs.existsSync(`${file}.bai`) && !fs.existsSync(`${file}.crai`)) tool('samtools', ['index', file]);
    return regions.map((g) => tool('samtools', ['view', file, g])).join('');
  }
  if (!fs.existsSync(`${file}.tbi`) && !fs.existsSync(`${file}.csi`)) tool('bcftools', ['index', ...(file.endsWith('.vcf.gz') ? ['-t'] : []), file]);
  return regions.map((g) => tool('bcftools', ['view', '-H', '-r', g, file])).join('');
}

let n = 0;
// Runs impact htsget and checks the records of its output against the local file's.
function fetchAndCompare(kind, id, local, regions, { format, ext, extra = [], json = true } = {}) {
  const out = path.join(work, `out-${n++}.${ext}`);
  const args = [...(json ? ['--json'] : []), 'htsget', kind, id, ...regions.flatMap((g) => ['--region', g]),
    ...(format ? ['--format', format] : []), ...extra, '-o', out];
  const r = impact(dir, args, { env: env(), timeout: 60000 });
  assert.equal(r.code, 0, r.stderr);
  const want = records(kind, path.join(work, local), regions);
  assert.ok(want.length > 0, 'the regions have records');
  assert.equal(records(kind, out, regions), want);
  return { out, summary: json ? JSON.parse(r.stdout) : null, stderr: r.stderr };
}

test('service-info htsget: the reads and variants endpoints with their formats', () => {
  const r = impact(dir, ['--json', 'service-info', 'htsget'], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  const { services } = JSON.parse(r.stdout);
  assert.equal(services.length, 2);
  assert.deepEqual(services.map((s) => s.details.formats), [['BAM', 'CRAM'], ['VCF', 'BCF']]);
});

test('BAM: one region, the records samtools finds in the local file; the summary counts bytes and blocks', () => {
  const { out, summary } = fetchAndCompare('reads', BAM_ID, `${BAM_ID}.bam`, [R11], { ext: 'bam' });
  assert.equal(summary.bytes, fs.statSync(out).size);
  assert.ok(summary.blocks >= 3, 'header, body blocks, EOF');
  assert.equal(summary.tickets, 1);
  assert.equal(summary.md5_verified, true);
});

test('BAM: two regions in one POST; the same through one GET per region when the server refuses POST', async () => {
  const post = fetchAndCompare('reads', BAM_ID, `${BAM_ID}.bam`, [R11, R20], { ext: 'bam' });
  assert.equal(post.summary.tickets, 1);
  await control('POST', '/__fault', { fault: 'no_post', times: 1 });
  const get = fetchAndCompare('reads', BAM_ID, `${BAM_ID}.bam`, [R11, R20], { ext: 'bam' });
  assert.equal(get.summary.tickets, 2);
  const fired = (await control('GET', '/__fault')).find((f) => f.fault === 'no_post');
  assert.equal(fired?.fired, 1);
  await control('DELETE', '/__fault');
});

test('CRAM, VCF and BCF regions', () => {
  fetchAndCompare('reads', BAM_ID, `${BAM_ID}.cram`, [R11], { format: 'CRAM', ext: 'cram' });
  fetchAndCompare('variants', 'spec-v4.3', 'spec-v4.3.vcf.gz', ['20:14000-1300000'], { ext: 'vcf.gz' });
  fetchAndCompare('variants', 'sample1-bcbio-cancer', 'sample1-bcbio-cancer.bcf', ['chrM:1-16000'], { format: 'BCF', ext: 'bcf' });
});

test('--header-only: a header samtools reads, to standard output', () => {
  const r = execFileSync('sh', ['-c', `"$IMPACT_BIN" htsget reads ${BAM_ID} --header-only | samtools view --no-PG -H -`], {
    env: { ...TOOL_ENV, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'),
      XDG_CACHE_HOME: path.join(dir, 'cache'), IMPACT_TOKEN: token, IMPACT_BIN: require('./helpers').BIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  assert.equal(r, tool('samtools', ['view', '--no-PG', '-H', path.join(work, `${BAM_ID}.bam`)]));
});

test('Crypt4GH: --encrypted is decrypted here; --keep-encrypted writes what impact decrypt reads', () => {
  const imp = impact(dir, ['keys', 'import', path.join(KEYS, 'alice.sec'), '--name', 'alice']);
  assert.equal(imp.code, 0, imp.stderr);
  const plain = fetchAndCompare('reads', BAM_ID, `${BAM_ID}.bam`, [R11], { ext: 'bam', extra: ['--encrypted'] });
  assert.equal(plain.summary.decrypted, true);
  const kept = path.join(work, 'kept.bam.c4gh');
  const r = impact(dir, ['htsget', 'reads', BAM_ID, '-r', R11, '--encrypted', '--keep-encrypted', '-o', kept], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(kept).subarray(0, 8).toString(), 'crypt4gh');
  const dec = path.join(work, 'kept.bam');
  const d = impact(dir, ['decrypt', kept, '--key', 'alice', '-o', dec]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(records('reads', dec, [R11]), records('reads', path.join(work, `${BAM_ID}.bam`), [R11]));
});

test('faults: a dropped block, a short body, a short range and a cross-origin redirect are survived', async () => {
  await control('POST', '/__config', { max_block_bytes: 65536 });  // several blocks per ticket
  for (const fault of ['drop_block', 'short_body', 'short_range', 'redirect']) {
    await control('DELETE', '/__fault');
    await control('POST', '/__fault', { fault, times: 1, match: '.bam' });
    fetchAndCompare('reads', BAM_ID, `${BAM_ID}.bam`, [R11], { ext: 'bam' });
    const rule = (await control('GET', '/__fault')).find((f) => f.fault === fault);
    assert.equal(rule?.fired, 1, `${fault} fired`);
  }
  await control('DELETE', '/__fault');
  await control('POST', '/__config', { max_block_bytes: 16 << 20 });
});

test('a block that keeps failing fails the command and leaves nothing at the -o path', async () => {
  await control('POST', '/__fault', { fault: 'short_range', times: -1, match: '.bam' });
  const out = path.join(work, 'never.bam');
  const r = impact(dir, ['htsget', 'reads', BAM_ID, '-r', R11, '-o', out], { env: env(), timeout: 60000 });
  await control('DELETE', '/__fault');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /block \d+ of \d+/);
  assert.ok(!fs.existsSync(out), 'no output file');
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('never')), [], 'no temporary left');
});

test('errors: an unknown id, a bad region, a format the server lacks', () => {
  let r = impact(dir, ['htsget', 'reads', 'no-such-id', '-o', path.join(work, 'x.bam')], { env: env() });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NotFound/);
  r = impact(dir, ['htsget', 'reads', BAM_ID, '-r', '11:0-5', '-o', path.join(work, 'x.bam')], { env: env() });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /positions start at 1/);
  r = impact(dir, ['htsget', 'variants', 'spec-v4.3', '--format', 'BAM', '-o', path.join(work, 'x.vcf')], { env: env() });
  assert.equal(r.code, 2);
});

test('the user token never reached the block origin', async () => {
  const log = await control('GET', '/__log');
  assert.ok(log.blocks.length > 0, 'blocks were fetched');
  assert.equal(log.leaks, 0, JSON.stringify(log.blocks.filter((b) => b.authorization !== 'none' && b.authorization !== 'block-token')));
});
