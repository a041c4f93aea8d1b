'use strict';
// An SDA ("Sensitive Data Archive", NeIC / GDI) download service for the local federation: the archive's
// Crypt4GH files, each header re-encrypted for the caller's key (docs/servers.md, "SDA download").
//
//   node sda/server.js --port P [--api v2|v1] [--data DIR]
//
// API v2 (default; swagger_v2.yml of neicnordic/sensitive-data-archive, read for behaviour):
//   GET /datasets[?pageSize&pageToken]                       {datasets: [...], nextPageToken}
//   GET /datasets/{id}                                       {datasetId, date, files, size}
//   GET /datasets/{id}/files[?filePath|pathPrefix][&pageSize&pageToken]
//                                                            {files: [{fileId, filePath, size, decryptedSize,
//                                                              checksums: [{type: sha256, checksum}], downloadUrl}], nextPageToken}
//   GET /files/{id}/header   (X-C4GH-Public-Key: base64 of the raw 32-byte key, or of the PEM text)
//   GET /files/{id}/content  (Range: bytes=a-b | a-; If-Range: the ETag) the encrypted segments
//   GET /files/{id}          the header and the segments in one stream (no Range)
// Errors are RFC 9457 problem details; 403 means "no access or no such file"; 401 without a valid token.
// API v1 (--api v1; sda-download/api/api.md, sda-cli downloadclient/v1.go): /metadata/datasets (an array),
// /metadata/datasets/{id}/files (an array of {fileId, datasetId, displayFileName, filePath, fileSize,
// decryptedFileSize, decryptedFileChecksum, decryptedFileChecksumType}), GET /s3/{dataset}/{filePath} with
// Client-Public-Key: the re-encrypted header and the segments, Range over that stream. v2's paths are then 404.
//
// Access: a dataset is listed and served to a caller whose bearer token's passport holds a verified
// ControlledAccessGrants visa for it (trusted iss + jku, lib/visas.js). Datasets: EGAD-CONTROLLED-1 (alice's
// visa), EGAD-CONTROLLED-2 (nobody's).
//
// Test controls (loopback only, no auth):
//   POST /_fed/faults {file: ID|PATH, drop_after_bytes?, corrupt_segment?, unavailable?, retry_after?, times?}
//        drop: the connection is cut after that many body bytes of a content response; corrupt: one byte
//        of that 64 KiB segment flipped as it is served; unavailable: the next N content requests get
//        503 with Retry-After. `times` (default 1) bounds drop/corrupt.
//   GET  /_fed/stats   {files: {ID: {path, content_bytes, content_requests, header_requests}}}
//   POST /_fed/reset   faults and counters cleared
//   POST /_fed/large {size}  adds large/blob-SIZE to EGAD-CONTROLLED-1 (made once, kept in DIR); answers its entry
// Plaintexts are written to DIR/plain/<dataset>/<path> for tests to compare.
// Also a module: start(opts) -> {server, port, url, files, close()}.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const svc = require('../lib/service');
const c4gh = require('../lib/crypt4gh');
const identityLib = require('../beacon/identity');

const DATASETS = ['EGAD-CONTROLLED-1', 'EGAD-CONTROLLED-2'];
const MAX_PAGE = 1000;
const SEG = c4gh.SEGMENT_SEALED;

// Deterministic pseudo-random bytes: an AES-128-CTR keystream keyed by the seed (fast enough for GiBs).
function pseudo(size, seed) {
  const key = crypto.createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  return crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}
function textFile(lines, seed) {
  const rows = [];
  for (let i = 0; i < lines; i++) rows.push(`chr1\t${1000 + i * 7}\trs${seed}${i}\tA\tG\t50\tPASS\t.`);
  return Buffer.from(`##fileformat=VCFv4.3\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n${rows.join('\n')}\n`);
}

async function start(opts = {}) {
  const name = opts.name || 'sda';
  const log = opts.log || svc.logger(name);
  const api = opts.api || 'v2';
  const dir = path.resolve(opts.data || (process.env.FED_STATE ? path.join(process.env.FED_STATE, 'data', 'sda') : path.join(os.tmpdir(), `impact-fed-sda-${process.pid}`)));
  const identity = opts.identity || identityLib.create();
  const archive = c4gh.generateKeyPair(); // the archive's own key: files are stored encrypted for it
  fs.mkdirSync(path.join(dir, 'archive'), { recursive: true });
  const files = new Map(); // fileId -> {id, dataset, path, enc (file), headerLength, size, decryptedSize, sha256}
  let baseUrl = null;

  // Writes the archived file (encrypted for the archive's key) and its plaintext; streams large ones.
  function addFile(dataset, rel, make, size) {
    const id = `urn:neic:${crypto.createHash('sha256').update(`${dataset}/${rel}`).digest('hex').slice(0, 16)}`;
    const plainPath = path.join(dir, 'plain', dataset, rel);
    const encPath = path.join(dir, 'archive', `${id.replace(/:/g, '_')}.c4gh`);
    fs.mkdirSync(path.dirname(plainPath), { recursive: true });
    const { header, key } = c4gh.startEncryption([archive.pub]);
    const sha = crypto.createHash('sha256');
    const plainFd = fs.openSync(plainPath, 'w');
    const encFd = fs.openSync(encPath, 'w');
    try {
      fs.writeSync(encFd, header);
      let at = 0;
      while (at < size) {
        const chunk = make(at, Math.min(c4gh.SEGMENT * 64, size - at));
        fs.writeSync(plainFd, chunk);
        sha.update(chunk);
        for (let k = 0; k < chunk.length; k += c4gh.SEGMENT) fs.writeSync(encFd, c4gh.sealSegment(key, chunk.subarray(k, k + c4gh.SEGMENT)));
        at += chunk.length;
      }
    } finally {
      fs.closeSync(plainFd);
      fs.closeSync(encFd);
    }
    const total = fs.statSync(encPath).size;
    const f = { id, dataset, path: rel, enc: encPath, plain: plainPath, headerLength: header.length, size: total - header.length,
      decryptedSize: size, sha256: sha.digest('hex'), etag: `"${crypto.createHash('sha256').update(`${id}:${total}`).digest('hex').slice(0, 20)}"` };
    files.set(id, f);
    return f;
  }
  const fromBuffer = (buf) => (at, n) => buf.subarray(at, at + n);
  const small = [
    ['EGAD-CONTROLLED-1', 'README.txt', Buffer.from('Synthetic controlled dataset EGAD-CONTROLLED-1 of the impact local federation.\n')],
    ['EGAD-CONTROLLED-1', 'samples/s1.vcf', textFile(2000, 'a')],
    ['EGAD-CONTROLLED-1', 'samples/s2.vcf', textFile(30, 'b')],
    ['EGAD-CONTROLLED-1', 'samples/segment.bin', pseudo(c4gh.SEGMENT, 'seg')],
    ['EGAD-CONTROLLED-1', 'empty.txt', Buffer.alloc(0)],
    ['EGAD-CONTROLLED-2', 'other/secret.vcf', textFile(10, 'c')],
  ];
  for (const [ds, rel, buf] of small) addFile(ds, rel, fromBuffer(buf), buf.length);
  const MB3 = 3 * (1 << 20) + 12345;
  addFile('EGAD-CONTROLLED-1', 'reads/sample.bam', (at, n) => pseudo(n, `bam:${at}`), MB3);
  log.info(`${files.size} archived files in ${dir}`);

  // ------------------------------------------------------------- faults and counters
  let faults = [];
  const stats = new Map();
  const stat = (f) => {
    if (!stats.has(f.id)) stats.set(f.id, { path: `${f.dataset}/${f.path}`, content_bytes: 0, content_requests: 0, header_requests: 0 });
    return stats.get(f.id);
  };
  const faultFor = (f, kind) => faults.find((x) => (x.file === f.id || x.file === f.path || x.file === `${f.dataset}/${f.path}`) && x[kind] !== undefined && x.left > 0);

  // ------------------------------------------------------------- helpers
  const problem = (res, status, title, detail, extra = {}, headers = {}) => {
    const body = JSON.stringify({ type: 'about:blank', title, status, detail, ...extra });
    res.writeHead(status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const forbidden = (res) => problem(res, 403, 'Forbidden', 'You do not have access to this dataset or file.');
  // The datasets the caller may see, or null after answering 401.
  async function allowed(req, res) {
    let who;
    try { who = await identity.caller(req); } catch (e) {
      if (e.status === 503) { problem(res, 503, 'Service Unavailable', e.message); return null; }
      problem(res, 401, 'Unauthorized', 'Missing, invalid, or expired bearer token.');
      return null;
    }
    if (!who.user) { problem(res, 401, 'Unauthorized', 'Missing, invalid, or expired bearer token.'); return null; }
    return new Set(DATASETS.filter((d) => identityLib.hasGrant(who.visas, d)));
  }
  function readerKey(req, res, v1) {
    const names = v1 ? ['client-public-key'] : ['x-c4gh-public-key', 'htsget-context-public-key'];
    const given = names.filter((n) => req.headers[n] !== undefined);
    if (given.length !== 1) {
      problem(res, 400, 'Bad Request', given.length ? 'Send X-C4GH-Public-Key or Htsget-Context-Public-Key, not both.' : `The ${v1 ? 'Client-Public-Key' : 'X-C4GH-Public-Key'} header is required.`, { errorCode: 'PUBLIC_KEY_MISSING' });
      return null;
    }
    const raw = Buffer.from(String(req.headers[given[0]]).trim(), 'base64');
    try {
      if (raw.length === 32) return raw;
      return c4gh.parsePublicKey(raw.toString('utf8')); // legacy: base64 of the PEM text
    } catch (e) {
      problem(res, 400, 'Bad Request', 'The public key is not a Crypt4GH public key.', { errorCode: 'PUBLIC_KEY_INVALID' });
      return null;
    }
  }
  function reencrypted(f, reader) {
    const fd = fs.openSync(f.enc, 'r');
    try {
      const buf = Buffer.alloc(f.headerLength);
      fs.readSync(fd, buf, 0, f.headerLength, 0);
      return c4gh.reencryptHeader(buf, archive.secret, reader).header;
    } finally { fs.closeSync(fd); }
  }
  // -> [start, end] inclusive, null for the whole, or 'bad' / 'unsatisfiable'
  function parseRange(h, size) {
    if (h === undefined) return null;
    const m = /^bytes=(\d+)-(\d*)$/.exec(String(h).trim());
    if (!m) return 'bad';
    const a = Number(m[1]);
    const b = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (a >= size || a > b) return 'unsatisfiable';
    return [a, b];
  }
  // Streams encrypted body bytes [a, b] (body offsets) of `f`, applying the faults; `prefix` goes first.
  function streamBody(req, res, f, a, b, prefix) {
    const st = stat(f);
    st.content_requests++;
    const drop = faultFor(f, 'drop_after_bytes');
    const corrupt = faultFor(f, 'corrupt_segment');
    if (drop) drop.left--;
    if (corrupt) corrupt.left--;
    if (prefix && prefix.length) res.write(prefix);
    if (req.method === 'HEAD' || b < a) return res.end();
    let sent = 0;
    let pos = a;
    const stream = fs.createReadStream(f.enc, { start: f.headerLength + a, end: f.headerLength + b, highWaterMark: 1 << 20 });
    stream.on('data', (chunk) => {
      if (corrupt) {
        const at = corrupt.corrupt_segment * SEG + 100; // a ciphertext byte of that segment
        if (at >= pos && at < pos + chunk.length) { chunk = Buffer.from(chunk); chunk[at - pos] ^= 0x55; }
      }
      pos += chunk.length;
      if (drop && sent + chunk.length >= drop.drop_after_bytes) {
        const part = chunk.subarray(0, Math.max(0, drop.drop_after_bytes - sent));
        st.content_bytes += part.length;
        stream.destroy();
        res.write(part, () => res.socket && res.socket.destroy());
        return;
      }
      sent += chunk.length;
      st.content_bytes += chunk.length;
      if (!res.write(chunk)) { stream.pause(); res.once('drain', () => stream.resume()); }
    });
    stream.on('end', () => res.end());
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
  }
  function unavailable(res, f) {
    const u = faultFor(f, 'unavailable');
    if (!u) return false;
    u.unavailable--;
    if (u.unavailable <= 0) u.left = 0;
    problem(res, 503, 'Service Unavailable', 'The archive is busy; try again.', {}, { 'Retry-After': String(u.retry_after || 1) });
    return true;
  }
  // Pages: the token is the offset, bound to the query it was made for.
  function page(items, ctx, res, scope) {
    const size = ctx.query.pageSize === undefined ? 100 : Number(ctx.query.pageSize);
    if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) {
      problem(res, 400, 'Bad Request', `pageSize must be between 1 and ${MAX_PAGE}.`, { errorCode: 'INVALID_PAGE_SIZE' });
      return null;
    }
    let from = 0;
    if (ctx.query.pageToken !== undefined) {
      const m = /^ptk_(\d+)_([0-9a-f]{8})$/.exec(String(ctx.query.pageToken));
      const want = (n) => crypto.createHash('sha256').update(`${scope}:${size}:${n}`).digest('hex').slice(0, 8);
      if (!m || want(m[1]) !== m[2]) {
        problem(res, 400, 'Bad Request', 'The pageToken is invalid, expired, or does not match the current query parameters.', { errorCode: 'INVALID_PAGE_TOKEN' });
        return null;
      }
      from = Number(m[1]);
    }
    const next = from + size < items.length ? `ptk_${from + size}_${crypto.createHash('sha256').update(`${scope}:${size}:${from + size}`).digest('hex').slice(0, 8)}` : null;
    return { items: items.slice(from, from + size), next };
  }
  const inDataset = (ds) => [...files.values()].filter((f) => f.dataset === ds).sort((x, y) => (x.path < y.path ? -1 : 1));

  // ------------------------------------------------------------- v2
  async function listDatasets(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return;
    const p = page([...ok], ctx, res, 'datasets');
    if (p) svc.sendJson(res, 200, { datasets: p.items, nextPageToken: p.next });
  }
  async function getDataset(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return;
    if (!ok.has(ctx.params.id)) return forbidden(res);
    const all = inDataset(ctx.params.id);
    return svc.sendJson(res, 200, { datasetId: ctx.params.id, date: process.env.FED_STARTED_AT || new Date().toISOString(), files: all.length, size: all.reduce((s, f) => s + f.size, 0) });
  }
  async function listFiles(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return;
    if (!ok.has(ctx.params.id)) return forbidden(res);
    const { filePath, pathPrefix } = ctx.query;
    if (filePath !== undefined && pathPrefix !== undefined) return problem(res, 400, 'Bad Request', 'filePath and pathPrefix are mutually exclusive; provide at most one.', { errorCode: 'FILTER_CONFLICT' });
    if (filePath !== undefined && (typeof filePath !== 'string' || !filePath.trim() || filePath.startsWith('/'))) return problem(res, 400, 'Bad Request', 'filePath must be a non-empty dataset-relative path without leading slash.', { errorCode: 'INVALID_FILE_PATH' });
    let all = inDataset(ctx.params.id);
    if (filePath !== undefined) all = all.filter((f) => f.path === filePath);
    if (pathPrefix !== undefined) all = all.filter((f) => f.path.startsWith(String(pathPrefix)));
    const p = page(all, ctx, res, `files:${ctx.params.id}:${filePath}:${pathPrefix}`);
    if (!p) return;
    svc.sendJson(res, 200, {
      files: p.items.map((f) => ({ fileId: f.id, filePath: f.path, size: f.size, decryptedSize: f.decryptedSize,
        checksums: [{ type: 'sha256', checksum: f.sha256 }], downloadUrl: `/files/${encodeURIComponent(f.id)}` })),
      nextPageToken: p.next,
    });
  }
  async function fileOf(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return null;
    const f = files.get(ctx.params.id);
    if (!f || !ok.has(f.dataset)) { forbidden(res); return null; }
    return f;
  }
  async function getHeader(req, res, ctx) {
    const f = await fileOf(req, res, ctx);
    if (!f) return;
    const reader = readerKey(req, res, false);
    if (!reader) return;
    stat(f).header_requests++;
    const header = reencrypted(f, reader);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': header.length, 'SDA-Content-ETag': f.etag });
    res.end(req.method === 'HEAD' ? undefined : header);
  }
  async function getContent(req, res, ctx) {
    const f = await fileOf(req, res, ctx);
    if (!f) return;
    if (unavailable(res, f)) return;
    let range = parseRange(req.headers.range, f.size);
    if (range === 'bad') return problem(res, 400, 'Bad Request', 'The Range header is invalid. Only a single byte range is supported.', { errorCode: 'RANGE_INVALID' });
    if (range === 'unsatisfiable') return problem(res, 416, 'Range Not Satisfiable', 'The requested range is outside the file bounds.', { errorCode: 'RANGE_NOT_SATISFIABLE' }, { 'Content-Range': `bytes */${f.size}` });
    if (range && req.headers['if-range'] !== undefined && req.headers['if-range'] !== f.etag) range = null;
    const [a, b] = range || [0, f.size - 1];
    const headers = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: f.etag, 'Content-Length': Math.max(0, b - a + 1) };
    if (range) headers['Content-Range'] = `bytes ${a}-${b}/${f.size}`;
    res.writeHead(range ? 206 : 200, headers);
    streamBody(req, res, f, a, b);
  }
  async function getCombined(req, res, ctx) {
    const f = await fileOf(req, res, ctx);
    if (!f) return;
    const reader = readerKey(req, res, false);
    if (!reader) return;
    const header = reencrypted(f, reader);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': header.length + f.size });
    streamBody(req, res, f, 0, f.size - 1, header);
  }

  // ------------------------------------------------------------- v1
  async function v1Datasets(req, res) {
    const ok = await allowed(req, res);
    if (ok) svc.sendJson(res, 200, [...ok]);
  }
  async function v1Files(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return;
    if (!ok.has(ctx.params.id)) return problem(res, 403, 'Forbidden', 'You do not have access to this dataset or file.');
    svc.sendJson(res, 200, inDataset(ctx.params.id).map((f) => ({ fileId: f.id, datasetId: f.dataset, displayFileName: path.basename(f.path),
      filePath: f.path, fileName: f.id, fileSize: f.headerLength + f.size, decryptedFileSize: f.decryptedSize,
      decryptedFileChecksum: f.sha256, decryptedFileChecksumType: 'SHA256', fileStatus: 'ready' })));
  }
  async function v1S3(req, res, ctx) {
    const ok = await allowed(req, res);
    if (!ok) return;
    const rest = ctx.params.rest;
    const slash = rest.indexOf('/');
    const ds = rest.slice(0, slash);
    const f = [...files.values()].find((x) => x.dataset === ds && x.path === rest.slice(slash + 1));
    if (slash < 0 || !f || !ok.has(ds)) return problem(res, 403, 'Forbidden', 'You do not have access to this dataset or file.');
    if (unavailable(res, f)) return;
    const reader = readerKey(req, res, true);
    if (!reader) return;
    stat(f).header_requests++;
    const header = reencrypted(f, reader); // same length for every reader: one data key, no edit list
    const total = header.length + f.size;
    let range = parseRange(req.headers.range, total);
    if (range === 'bad') return problem(res, 400, 'Bad Request', 'bad Range header');
    if (range === 'unsatisfiable') return problem(res, 416, 'Range Not Satisfiable', 'range outside the file', {}, { 'Content-Range': `bytes */${total}` });
    const [a, b] = range || [0, total - 1];
    const headers = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Content-Length': b - a + 1 };
    if (range) headers['Content-Range'] = `bytes ${a}-${b}/${total}`;
    res.writeHead(range ? 206 : 200, headers);
    const prefix = a < header.length ? header.subarray(a, Math.min(b + 1, header.length)) : null;
    const bodyA = Math.max(0, a - header.length);
    const bodyB = b - header.length;
    streamBody(req, res, f, bodyA, bodyB, prefix);
  }

  // ------------------------------------------------------------- test controls
  async function setFaults(req, res) {
    const body = await svc.readJson(req);
    if (!body || typeof body.file !== 'string') throw svc.httpError(400, 'give {file: ID or PATH, ...}');
    faults.push({ ...body, left: Number(body.times || 1) });
    svc.sendJson(res, 200, { faults: faults.length });
  }
  async function addLarge(req, res) {
    const body = await svc.readJson(req);
    const size = Number(body && body.size);
    if (!Number.isInteger(size) || size < 1 || size > 4 * 1024 ** 3) throw svc.httpError(400, 'size: 1 .. 4 GiB');
    const rel = `large/blob-${size}`;
    let f = [...files.values()].find((x) => x.path === rel);
    if (!f) {
      f = addFile('EGAD-CONTROLLED-1', rel, (at, n) => pseudo(n, `large:${at}`), size);
      log.info(`made ${rel} (${size} bytes)`);
    }
    svc.sendJson(res, 200, { fileId: f.id, filePath: f.path, dataset: f.dataset, size: f.size, decryptedSize: f.decryptedSize, sha256: f.sha256, plain: f.plain });
  }

  const r = svc.router({ log });
  const serviceInfo = () => svc.serviceInfo({
    id: 'org.impact.federation.sda.download', name: 'SDA Download (impact local federation)',
    type: { group: 'org.ga4gh', artifact: 'drs', version: '1.0.0' }, // what the real service says
    description: `NeIC SDA download API ${api} over synthetic Crypt4GH files`, version: api === 'v2' ? '2.0.0' : '1.0.0',
    url: baseUrl,
  });
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, serviceInfo()));
  r.get('/health/live', (req, res) => svc.sendJson(res, 200, { status: 'ok' }));
  if (api === 'v2') {
    r.get('/datasets', listDatasets);
    r.get('/datasets/:id', getDataset);
    r.get('/datasets/:id/files', listFiles);
    r.get('/files/:id/header', getHeader);
    r.get('/files/:id/content', getContent);
    r.get('/files/:id', getCombined);
  } else {
    r.get('/metadata/datasets', v1Datasets);
    r.get('/metadata/datasets/:id/files', v1Files);
    r.get('/s3/:rest*', v1S3);
  }
  r.post('/_fed/faults', setFaults);
  r.get('/_fed/stats', (req, res) => svc.sendJson(res, 200, { files: Object.fromEntries(stats) }));
  r.post('/_fed/reset', (req, res) => { faults = []; stats.clear(); svc.sendJson(res, 200, { ok: true }); });
  r.post('/_fed/large', addLarge);
  const notFound = (req, res, ctx) => problem(res, 404, 'Not Found', `no such endpoint: ${req.method} ${ctx.path}`);
  const server = http.createServer(r.handler({ notFound }));
  const port = await svc.listen(server, opts.port || 0);
  baseUrl = `http://127.0.0.1:${port}`;
  log.info(`${name} (API ${api}) listening on ${baseUrl}; archive key ${c4gh.formatPublicKey(archive.pub).split('\n')[1]}`);
  return { server, port, url: baseUrl, files, dir,
    close: () => new Promise((ok) => { if (server.closeAllConnections) server.closeAllConnections(); server.close(() => ok()); }) };
}

if (require.main === module) {
  const args = svc.parseArgs();
  start({ port: args.port, api: args.api, data: args.data })
    .then(({ server }) => svc.onShutdown(server, null))
    .catch((e) => { process.stderr.write(`sda: ${e.stack || e}\n`); process.exit(1); });
}

module.exports = { start, DATASETS };
