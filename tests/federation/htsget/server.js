'use strict';
// htsget 1.3 (samtools/hts-specs htsget.md, pub/htsget-openapi.yaml) for the local federation, over the
// htsget-rs test files (BAM+BAI, CRAM+CRAI, VCF.gz+TBI, BCF+CSI, and their Crypt4GH copies).
//
//   node htsget/server.js --port P [--block-port Q] [--data DIR ...] [--max-block-bytes N] [--anonymous]
//
// Two origins: the ticket API on P (/reads/{id}, /variants/{id}, GET and POST, /reads/service-info,
// /variants/service-info, /service-info, and the test controls /__fault, /__log, /__config, /__reset),
// and the block origin on Q (default P+1): /blocks/{file}, byte ranges, each request must carry the
// X-Htsget-Block-Token header its ticket lists. Tickets hold real BGZF / CRAM byte ranges found through the
// indexes, the header as a data: URI, and the EOF marker as a data: URI. Crypt4GH mode
// (encryptionScheme=C4GH + Htsget-Context-Public-Key) returns a Crypt4GH stream for the caller's key.
// Details: htsget/README.md. Also a module: start(opts) -> {url, blockUrl, port, blockPort, state, close()}.

const fs = require('fs');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const svc = require('../lib/service');
const auth = require('../lib/auth');
const c4gh = require('../lib/crypt4gh');
const openapi = require('../lib/openapi');
const F = require('./formats');

const REPO_DATA = path.join(__dirname, '..', '..', 'data');
const DEFAULT_DIRS = [
  path.join(REPO_DATA, 'htsget'),
  path.join(REPO_DATA, 'crypt4gh', 'htsget-rs', 'plain'),
  path.join(REPO_DATA, 'crypt4gh', 'htsget-rs', 'c4gh'),
];
const DEFAULT_KEY = path.join(REPO_DATA, 'crypt4gh', 'htsget-rs', 'c4gh', 'keys', 'bob.sec');
const TOKEN_TTL_S = 900;
const MD5_LIMIT = 64 << 20;
const MEDIA = { BAM: 'application/vnd.ga4gh.bam', CRAM: 'application/vnd.ga4gh.cram', VCF: 'application/vnd.ga4gh.vcf', BCF: 'application/vnd.ga4gh.bcf' };
const KINDS = { reads: ['BAM', 'CRAM'], variants: ['VCF', 'BCF'] };
const EXT = { BAM: ['.bam', 'bai'], CRAM: ['.cram', 'crai'], VCF: ['.vcf.gz', 'tbi'], BCF: ['.bcf', 'csi'] };
const FIELDS = ['QNAME', 'FLAG', 'RNAME', 'POS', 'MAPQ', 'CIGAR', 'RNEXT', 'PNEXT', 'TLEN', 'SEQ', 'QUAL'];
const GET_PARAMS = ['format', 'class', 'referenceName', 'start', 'end', 'fields', 'tags', 'notags', 'encryptionScheme'];
// ids besides the file names: one with a '/' inside, one only alice may read (PermissionDenied for others)
const ALIASES = { 'by-sample/NA12878': 'htsnexus_test_NA12878', 'NA12878-restricted': 'htsnexus_test_NA12878' };
const RESTRICTED = { 'NA12878-restricted': 'alice' };

class HtsgetError extends Error {
  constructor(status, error, message) { super(message); this.status = status; this.error = error; }
}
const invalid = (m) => new HtsgetError(400, 'InvalidInput', m);

function sendHtsgetError(res, e) {
  svc.sendJson(res, e.status, { htsget: { error: e.error, message: e.message } });
}

// ---------------------------------------------------------------- the catalogue

function findFile(dirs, name) {
  for (const d of dirs) {
    const p = path.join(d, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

// One servable file: its layout, reference names, index, and where the header ends.
function loadSource(format, file, indexFile) {
  const src = { format, file, name: path.basename(file), size: fs.statSync(file).size };
  if (format === 'CRAM') {
    const c = F.readCram(file);
    Object.assign(src, { cram: c, names: c.names, crai: F.readCrai(indexFile), headerEnd: c.headerEnd });
    const offs = [...new Set(src.crai.map((l) => l.container))].sort((a, b) => a - b);
    src.containers = offs.map((o, i) => [o, (i + 1 < offs.length ? offs[i + 1] : c.eofStart) - 1]);
  } else {
    const bg = new F.Bgzf(file);
    const index = F.readIndex(indexFile, EXT[format][1]);
    const h = format === 'BAM' ? F.bamHeader(bg) : format === 'VCF' ? F.vcfHeader(bg) : F.bcfHeader(bg);
    Object.assign(src, { bg, index, names: index.names || h.names, headerV: bg.voffsetOf(h.end) });
    if (!bg.hasEof) throw new Error(`${file}: no BGZF EOF block`);
    // the block holding the end of the header, when records follow it in the same block
    const hc = F.coff(src.headerV);
    const hu = F.uoff(src.headerV);
    if (hu > 0) {
      const block = bg.inflate(bg.byOff.get(hc));
      src.headTail = { off: hc, head: F.bgzfCompress(block.subarray(0, hu)), rest: F.bgzfCompress(block.subarray(hu)), next: hc + bg.blocks[bg.byOff.get(hc)].size };
    }
  }
  return src;
}

function attachCrypt4gh(src, encFile, secret) {
  const size = fs.statSync(encFile).size;
  const { keys, edit, length } = c4gh.readHeader(readRange(encFile, [0, Math.min(size, 1 << 20) - 1]), secret);
  if (edit) throw new Error(`${encFile}: archived file with an edit list is not supported`);
  src.c4gh = { file: encFile, name: path.basename(encFile), keys, bodyOffset: length, size };
  const segs = Math.ceil(src.size / c4gh.SEGMENT);
  const expect = length + src.size + segs * 28;
  if (expect !== size) throw new Error(`${encFile}: size ${size} does not match its plain copy (${expect})`);
}

function loadCatalogue(dirs, secret, log) {
  const entries = new Map(); // id -> {id, kind, sources: {FORMAT: src}}
  const blockFiles = new Map(); // block name -> path
  const seen = new Set();
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    for (const name of fs.readdirSync(d).sort()) {
      for (const [format, [ext, ixExt]] of Object.entries(EXT)) {
        if (!name.endsWith(ext) || seen.has(name)) continue;
        const indexFile = findFile(dirs, `${name}.${ixExt}`) || (format === 'VCF' ? findFile(dirs, `${name}.csi`) : null);
        if (!indexFile) { log.warn(`${name}: no index (${ixExt}); not served`); continue; }
        seen.add(name);
        const id = name.slice(0, -ext.length);
        const kind = KINDS.reads.includes(format) ? 'reads' : 'variants';
        let src;
        try {
          src = loadSource(format, path.join(d, name), indexFile);
          const enc = secret ? findFile(dirs, `${name}.c4gh`) : null;
          if (enc) attachCrypt4gh(src, enc, secret);
        } catch (e) {
          log.warn(`${name}: not served: ${e.message}`);
          continue;
        }
        if (!entries.has(id)) entries.set(id, { id, kind, sources: {} });
        entries.get(id).sources[format] = src;
        blockFiles.set(src.name, src.file);
        if (src.c4gh) blockFiles.set(src.c4gh.name, src.c4gh.file);
      }
    }
  }
  for (const [alias, target] of Object.entries(ALIASES)) {
    if (entries.has(target)) entries.set(alias, { ...entries.get(target), id: alias, restrictedTo: RESTRICTED[alias] || null });
  }
  return { entries, blockFiles };
}

// ---------------------------------------------------------------- requests

const isUint = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

// GET query -> the request in the POST shape: {format, class, fields, tags, notags, regions, encryptionScheme}
function fromQuery(q) {
  for (const [k, v] of Object.entries(q)) {
    if (Array.isArray(v)) throw invalid(`query parameter ${k} given more than once`);
  }
  const r = { format: q.format, class: q.class, encryptionScheme: q.encryptionScheme };
  const num = (k) => {
    if (q[k] === undefined) return undefined;
    if (!/^\d+$/.test(q[k]) || !isUint(Number(q[k]))) throw invalid(`${k} must be an unsigned 32-bit integer`);
    return Number(q[k]);
  };
  const start = num('start');
  const end = num('end');
  if ((start !== undefined || end !== undefined) && (q.referenceName === undefined || q.referenceName === '*')) {
    throw invalid('start and end need a referenceName (other than "*")');
  }
  if (start !== undefined && end !== undefined && start > end) throw new HtsgetError(400, 'InvalidRange', `start ${start} is greater than end ${end}`);
  if (q.referenceName !== undefined) r.regions = [{ referenceName: q.referenceName, start, end }];
  const list = (k) => (q[k] === undefined ? undefined : q[k] === '' ? [] : q[k].split(','));
  r.fields = list('fields');
  r.tags = list('tags');
  r.notags = list('notags');
  r.given = Object.keys(q);
  return r;
}

function fromBody(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('the POST body must be a JSON object');
  const known = ['format', 'class', 'fields', 'tags', 'notags', 'regions', 'encryptionScheme'];
  for (const k of Object.keys(body)) if (!known.includes(k)) throw invalid(`unknown field ${k} in the POST body`);
  const strs = (k) => {
    if (body[k] === undefined) return undefined;
    if (!Array.isArray(body[k]) || body[k].some((x) => typeof x !== 'string')) throw invalid(`${k} must be an array of strings`);
    return body[k];
  };
  for (const k of ['format', 'class', 'encryptionScheme']) {
    if (body[k] !== undefined && typeof body[k] !== 'string') throw invalid(`${k} must be a string`);
  }
  let regions;
  if (body.regions !== undefined) {
    if (!Array.isArray(body.regions) || body.regions.length === 0) throw invalid('regions must be a non-empty array');
    if (body.regions.length > 1000) throw invalid('at most 1000 regions');
    regions = body.regions.map((g, i) => {
      if (!g || typeof g !== 'object' || Array.isArray(g)) throw invalid(`regions[${i}] must be an object`);
      for (const k of Object.keys(g)) if (!['referenceName', 'start', 'end'].includes(k)) throw invalid(`regions[${i}]: unknown field ${k}`);
      if (typeof g.referenceName !== 'string' || !g.referenceName) throw invalid(`regions[${i}]: referenceName is required`);
      for (const k of ['start', 'end']) if (g[k] !== undefined && !isUint(g[k])) throw invalid(`regions[${i}]: ${k} must be an unsigned 32-bit integer`);
      if ((g.start !== undefined || g.end !== undefined) && g.referenceName === '*') throw invalid(`regions[${i}]: start/end with referenceName "*"`);
      if (g.start !== undefined && g.end !== undefined && g.start >= g.end) throw new HtsgetError(400, 'InvalidRange', `regions[${i}]: start ${g.start} is not less than end ${g.end}`);
      return { referenceName: g.referenceName, start: g.start, end: g.end };
    });
  }
  return {
    format: body.format, class: body.class, encryptionScheme: body.encryptionScheme, regions,
    fields: strs('fields'), tags: strs('tags'), notags: strs('notags'), given: Object.keys(body),
  };
}

// Common checks; -> {entry, src, format, headerOnly, c4ghKey}
function resolve(kind, id, r, catalogue, headers) {
  const entry = catalogue.entries.get(id);
  let format = kind === 'reads' ? 'BAM' : 'VCF';
  if (r.format !== undefined) {
    format = String(r.format).toUpperCase();
    if (!KINDS[kind].includes(format)) throw new HtsgetError(400, 'UnsupportedFormat', `format ${r.format} is not served by the ${kind} endpoint (${KINDS[kind].join(', ')})`);
  }
  if (r.class !== undefined && r.class !== 'header') throw invalid(`class must be "header" (or absent), not ${JSON.stringify(r.class)}`);
  const headerOnly = r.class === 'header';
  if (headerOnly) {
    const extra = r.given.filter((k) => !['format', 'class', 'encryptionScheme'].includes(k));
    if (extra.length) throw invalid(`class=header cannot be combined with ${extra.join(', ')}`);
  }
  if (r.fields) {
    if (kind === 'variants') throw invalid('fields applies to reads only');
    const bad = r.fields.filter((f) => !FIELDS.includes(f));
    if (bad.length) throw invalid(`unknown field(s) ${bad.join(', ')} (fields: ${FIELDS.join(', ')})`);
  }
  if (r.tags && r.notags) {
    const both = r.tags.filter((t) => r.notags.includes(t));
    if (both.length) throw invalid(`tags and notags both name ${both.join(', ')}`);
  }
  let c4ghKey = null;
  if (r.encryptionScheme !== undefined) {
    if (String(r.encryptionScheme).toUpperCase() !== 'C4GH') throw invalid(`encryptionScheme must be C4GH, not ${JSON.stringify(r.encryptionScheme)}`);
    c4ghKey = publicKeyFrom(headers['htsget-context-public-key']);
  }
  if (!entry || entry.kind !== kind) throw new HtsgetError(404, 'NotFound', `no ${kind} with id ${JSON.stringify(id)}`);
  const src = entry.sources[format];
  if (!src) throw new HtsgetError(400, 'UnsupportedFormat', `${id} is not available as ${format} (available: ${Object.keys(entry.sources).join(', ')})`);
  if (c4ghKey && !src.c4gh) throw new HtsgetError(400, 'UnsupportedFormat', `${id} has no Crypt4GH copy as ${format}`);
  for (const g of r.regions || []) {
    if (g.referenceName === '*') {
      if (kind !== 'reads') throw invalid('referenceName "*" applies to reads only');
    } else if (!src.names.includes(g.referenceName)) {
      throw new HtsgetError(404, 'NotFound', `reference ${JSON.stringify(g.referenceName)} is not in ${id}`);
    }
  }
  return { entry, src, format, headerOnly, c4ghKey };
}

// Htsget-Context-Public-Key: base64 of the public key file (PEM, as htsget-rs and sda-cli send it), or of
// the raw 32 bytes.
function publicKeyFrom(value) {
  if (typeof value !== 'string' || !value.trim()) throw invalid('encryptionScheme=C4GH needs the Htsget-Context-Public-Key header (base64 of the Crypt4GH public key)');
  const raw = Buffer.from(value.trim(), 'base64');
  if (raw.length === 32) return raw;
  const text = raw.toString('utf8');
  if (/BEGIN CRYPT4GH PUBLIC KEY/.test(text)) {
    try { return c4gh.parsePublicKey(text); } catch (e) { throw invalid(`Htsget-Context-Public-Key: ${e.message}`); }
  }
  throw invalid('Htsget-Context-Public-Key is not a base64 Crypt4GH public key');
}

// ---------------------------------------------------------------- tickets

// The plain stream as pieces: {data: Buffer, class} or {range: [a, b] (inclusive), class}, in order.
// `aligned`: body ranges as whole BGZF blocks / containers (for Crypt4GH, where no data: piece can be
// spliced in): then the block holding the header's end is included whole.
function plainPieces(src, { headerOnly, regions }) {
  if (src.format === 'CRAM') {
    const header = [0, src.headerEnd - 1];
    if (headerOnly) return { header, body: [], eof: null };
    let picked;
    if (!regions) picked = src.containers.map((c) => c[0]);
    else {
      const offs = new Set();
      for (const g of regions) {
        const ref = g.referenceName === '*' ? -1 : src.names.indexOf(g.referenceName);
        const beg = (g.start || 0) + 1;
        const end = g.end === undefined ? Infinity : g.end;
        for (const l of src.crai) {
          if (l.seq === -2) { offs.add(l.container); continue; } // multi-reference containers: always
          if (l.seq !== ref) continue;
          if (ref === -1 || (l.start <= end && l.start + l.span - 1 >= beg)) offs.add(l.container);
        }
      }
      picked = [...offs];
    }
    const ranges = src.containers.filter((c) => picked.includes(c[0])).map((c) => [c[0], c[1]]);
    return { header, body: F.mergeIntervals(ranges, 1), eof: [src.cram.eofStart, src.size - 1] };
  }
  const { bg, index } = src;
  const hv = src.headerV;
  if (headerOnly) return { headerV: hv, body: [], eof: null };
  let vranges = [];
  if (!regions) vranges = [[hv, bg.bodyEnd * F.V]];
  else {
    const maxPos = 2 ** (index.minShift + index.depth * 3);
    for (const g of regions) {
      if (g.referenceName === '*') {
        vranges.push([Math.max(F.lastMappedEnd(index), hv), bg.bodyEnd * F.V]);
        continue;
      }
      const ref = src.names.indexOf(g.referenceName);
      const beg = g.start || 0;
      const end = g.end === undefined ? maxPos : Math.min(g.end, maxPos);
      if (end <= beg) continue;
      vranges.push(...F.chunksFor(index, ref, beg, end));
    }
  }
  const ranges = [];
  for (const [vs, ve] of vranges) {
    const s = Math.max(vs, hv);
    if (ve <= s) continue;
    const [a, b] = bg.rangeOf(s, ve);
    if (b >= a) ranges.push([a, b]);
  }
  return { headerV: hv, body: F.mergeIntervals(ranges, 1), eof: [bg.bodyEnd, bg.length - 1] };
}

function splitRange([a, b], max) {
  const out = [];
  for (let s = a; s <= b; s += max) out.push([s, Math.min(b, s + max - 1)]);
  return out;
}

function dataUrl(buf, format) {
  return `data:${MEDIA[format] || 'application/octet-stream'};base64,${buf.toString('base64')}`;
}

function readRange(file, [a, b]) {
  const fd = fs.openSync(file, 'r');
  try {
    const out = Buffer.alloc(b - a + 1);
    let got = 0;
    while (got < out.length) {
      const n = fs.readSync(fd, out, got, out.length - got, a + got);
      if (n <= 0) throw new Error(`short read of ${file}`);
      got += n;
    }
    return out;
  } finally { fs.closeSync(fd); }
}

class Tickets {
  constructor({ secret, blockUrl, ticketUrl, state }) {
    this.secret = secret;
    this.blockUrl = blockUrl;
    this.ticketUrl = ticketUrl;
    this.state = state;
  }

  token(name, exp = Math.floor(Date.now() / 1000) + TOKEN_TTL_S) {
    const mac = crypto.createHmac('sha256', this.secret).update(`${name}\n${exp}`).digest('base64url');
    return `${exp}.${mac}`;
  }

  checkToken(name, tok) {
    const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(tok || '');
    if (!m) return false;
    if (Number(m[1]) < Date.now() / 1000) return false;
    const want = Buffer.from(this.token(name, Number(m[1])));
    const got = Buffer.from(tok);
    return want.length === got.length && crypto.timingSafeEqual(want, got);
  }

  blockEntry(name, range, cls) {
    const tok = this.token(name);
    const headers = { Range: `bytes=${range[0]}-${range[1]}` };
    if (this.state.config.block_auth === 'authorization') headers.Authorization = `Bearer ${tok}`;
    else headers['X-Htsget-Block-Token'] = tok;
    const base = this.state.config.block_origin === 'same' ? this.ticketUrl : this.blockUrl;
    const e = { url: `${base}/blocks/${encodeURIComponent(name)}`, headers };
    if (cls) e.class = cls;
    return e;
  }

  // -> {urls, md5?}
  plain(src, req) {
    const p = plainPieces(src, req);
    const urls = [];
    const payload = []; // for md5: Buffers or [file, range]
    const pushData = (buf, cls) => { urls.push({ url: dataUrl(buf, src.format), class: cls }); payload.push(buf); };
    const pushRange = (r, cls) => {
      for (const part of splitRange(r, this.state.config.max_block_bytes)) {
        urls.push(this.blockEntry(src.name, part, cls));
        payload.push([src.file, part]);
      }
    };
    if (src.format === 'CRAM') {
      pushData(readRange(src.file, p.header), 'header');
    } else {
      const hc = F.coff(p.headerV);
      const head = [];
      if (hc > 0) head.push(readRange(src.file, [0, hc - 1]));
      if (src.headTail) head.push(src.headTail.head);
      pushData(Buffer.concat(head), 'header');
    }
    for (const r of p.body) {
      if (src.headTail && r[0] === src.headTail.off) {
        // the records that share the header's last block: that block's rest, recompressed
        pushData(src.headTail.rest, 'body');
        if (r[1] >= src.headTail.next) pushRange([src.headTail.next, r[1]], 'body');
      } else {
        pushRange(r, 'body');
      }
    }
    if (p.eof) pushData(src.format === 'CRAM' ? F.CRAM3_EOF : F.BGZF_EOF, 'body');
    return { urls, md5: this.md5(payload) };
  }

  // Crypt4GH: a header for the caller's key (with an edit list) as a data: URI, then the encrypted
  // segments that hold the needed plaintext (whole BGZF blocks / CRAM containers), as byte ranges of the
  // archived .c4gh file. No `class` (segments mix header and body bytes).
  crypt4gh(src, req, readerPub) {
    const p = plainPieces(src, req);
    let pieces = [];
    if (src.format === 'CRAM') pieces.push(p.header);
    else {
      const hc = F.coff(p.headerV);
      const hu = F.uoff(p.headerV);
      pieces.push([0, hu === 0 ? hc - 1 : src.bg.blockLast(hc)]);
    }
    pieces.push(...p.body);
    if (p.eof) pieces.push(p.eof);
    pieces = F.mergeIntervals(pieces.filter(([a, b]) => b >= a), 1);
    const S = c4gh.SEGMENT;
    const segs = [...new Set(pieces.flatMap(([a, b]) => {
      const out = [];
      for (let s = Math.floor(a / S); s <= Math.floor(b / S); s++) out.push(s);
      return out;
    }))].sort((x, y) => x - y);
    const slot = new Map(segs.map((s, i) => [s, i]));
    const pos = (x) => slot.get(Math.floor(x / S)) * S + (x % S);
    const plainLen = src.size;
    const selLen = segs.reduce((n, s) => n + Math.min(S, plainLen - s * S), 0);
    const edit = [];
    let at = 0;
    for (const [a, b] of pieces) {
      edit.push(pos(a) - at, b - a + 1);
      at = pos(b) + 1;
    }
    const trivial = edit.length === 2 && edit[0] === 0 && edit[1] === selLen;
    const header = c4gh.buildHeader({ keys: src.c4gh.keys, edit: trivial ? null : edit }, [readerPub]);
    const urls = [{ url: dataUrl(header, null) }];
    const payload = [header];
    const SS = c4gh.SEGMENT_SEALED;
    const ranges = F.mergeIntervals(segs.map((s) => [src.c4gh.bodyOffset + s * SS, Math.min(src.c4gh.bodyOffset + (s + 1) * SS, src.c4gh.size) - 1]), 1);
    for (const r of ranges) {
      for (const part of splitRange(r, this.state.config.max_block_bytes)) {
        const e = this.blockEntry(src.c4gh.name, part, null);
        urls.push(e);
        payload.push([src.c4gh.file, part]);
      }
    }
    return { urls, md5: this.md5(payload), edit: trivial ? null : edit };
  }

  md5(payload) {
    if (!this.state.config.md5) return undefined;
    const total = payload.reduce((n, x) => n + (Buffer.isBuffer(x) ? x.length : x[1][1] - x[1][0] + 1), 0);
    if (total > MD5_LIMIT) return undefined;
    const h = crypto.createHash('md5');
    for (const x of payload) h.update(Buffer.isBuffer(x) ? x : readRange(x[0], x[1]));
    return h.digest('hex');
  }
}

// ---------------------------------------------------------------- faults and the test log

const FAULTS = ['ticket_500', 'no_post', 'drop_block', 'short_body', 'short_range', 'redirect', 'slow_block'];
const DEFAULT_CONFIG = { max_block_bytes: 16 << 20, block_auth: 'header', md5: true, require_auth: true, block_origin: 'separate' };

function newState() {
  return { faults: [], tickets: [], blocks: [], userTokens: new Set(), config: { ...DEFAULT_CONFIG } };
}

// The first armed rule of `kind` matching `what` (an id or a block file name) fires: -> rule | null
function takeFault(state, kind, what) {
  for (const f of state.faults) {
    if (f.fault !== kind || f.times === 0) continue;
    if (f.match && !String(what).includes(f.match)) continue;
    f.seen += 1;
    if (f.seen <= f.after) continue;
    if (f.times > 0) f.times -= 1;
    f.fired += 1;
    return f;
  }
  return null;
}

function remember(list, entry, max = 2000) {
  list.push(entry);
  if (list.length > max) list.splice(0, list.length - max);
}

const tokenHash = (t) => crypto.createHash('sha256').update(t).digest('hex');

// ---------------------------------------------------------------- servers

async function start(opts = {}) {
  const name = opts.name || 'htsget';
  const log = opts.log || svc.logger(name);
  const fakeAuth = opts.fakeAuth !== undefined ? opts.fakeAuth : process.env.FED_HTSGET_FAKE_AUTH === '1';
  const extra = opts.data || (process.env.FED_HTSGET_DATA ? process.env.FED_HTSGET_DATA.split(':').filter(Boolean) : []);
  const dirs = [].concat(extra, DEFAULT_DIRS).map((d) => path.resolve(d));
  const secret = c4gh.parsePrivateKey(fs.readFileSync(opts.key || DEFAULT_KEY, 'utf8'));
  const catalogue = loadCatalogue(dirs, secret, log);
  const state = newState();
  if (opts.maxBlockBytes) state.config.max_block_bytes = Number(opts.maxBlockBytes);
  if (opts.anonymous) state.config.require_auth = false;
  const defaults = { ...state.config };
  const api = openapi.load('htsget');
  const hmacKey = crypto.randomBytes(32);
  let url = null;
  let blockUrl = null;
  let tickets = null;

  // ------------------------------------------------------------- block origin (and the redirect target)
  function serveBlock(origin) {
    return async (req, res, ctx) => {
      const bname = ctx.params.name;
      const file = catalogue.blockFiles.get(bname);
      const entry = { time: new Date().toISOString(), origin, method: req.method, name: bname, range: req.headers.range || null };
      const a = req.headers.authorization;
      const bearerTok = a ? (/^Bearer\s+(\S+)\s*$/i.exec(a) || [])[1] : null;
      if (!a) entry.authorization = 'none';
      else if (bearerTok && state.userTokens.has(tokenHash(bearerTok))) entry.authorization = 'user-token';
      else if (bearerTok && state.config.block_auth === 'authorization' && file && tickets.checkToken(bname, bearerTok)) entry.authorization = 'block-token';
      else entry.authorization = 'other';
      entry.leaked = entry.authorization === 'user-token' || entry.authorization === 'other';
      if (entry.leaked) log.warn(`block request to ${origin} carried an Authorization header the ticket did not list (${entry.authorization})`);
      const done = (status, extra = {}) => { Object.assign(entry, { status }, extra); remember(state.blocks, entry); };
      if (!file) { done(404); svc.sendJson(res, 404, { error: 'NotFound', message: `no block file ${bname}` }); return; }
      const tok = state.config.block_auth === 'authorization' ? bearerTok : req.headers['x-htsget-block-token'];
      entry.block_token = !tok ? 'missing' : tickets.checkToken(bname, tok) ? 'ok' : 'bad';
      if (entry.block_token !== 'ok') {
        const status = entry.block_token === 'missing' ? 401 : 403;
        done(status);
        svc.sendJson(res, status, { error: status === 401 ? 'InvalidAuthentication' : 'PermissionDenied', message: `block requests need the ${state.config.block_auth === 'authorization' ? 'Authorization' : 'X-Htsget-Block-Token'} header of their ticket` });
        return;
      }
      if (origin === 'blocks') {
        const f = takeFault(state, 'redirect', bname);
        if (f) {
          done(307, { fault: 'redirect' });
          res.writeHead(307, { Location: `${url}/blocks/${encodeURIComponent(bname)}`, 'Content-Length': 0 });
          res.end();
          return;
        }
      }
      const slow = takeFault(state, 'slow_block', bname);
      if (slow) {
        entry.fault = 'slow_block';
        await new Promise((ok) => { const t = setTimeout(ok, Math.min(Number(slow.ms) || 2000, 60000)); res.on('close', () => { clearTimeout(t); ok(); }); });
        if (res.destroyed) { done(0, { fault: 'slow_block', bytes_sent: 0 }); return; }
      }
      const size = fs.statSync(file).size;
      let a0 = 0;
      let b0 = size - 1;
      let status = 200;
      const rh = req.headers.range;
      if (rh && !rh.includes(',')) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(rh.trim());
        if (!m || (m[1] === '' && m[2] === '')) { done(416); res.writeHead(416, { 'Content-Range': `bytes */${size}` }); res.end(); return; }
        if (m[1] === '') { a0 = Math.max(0, size - Number(m[2])); } else { a0 = Number(m[1]); if (m[2] !== '') b0 = Math.min(Number(m[2]), size - 1); }
        if (a0 >= size || a0 > b0) { done(416); res.writeHead(416, { 'Content-Range': `bytes */${size}` }); res.end(); return; }
        status = 206;
      }
      let len = b0 - a0 + 1;
      const headers = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Content-Length': len };
      if (status === 206) headers['Content-Range'] = `bytes ${a0}-${b0}/${size}`;
      let fault = null;
      for (const k of ['drop_block', 'short_body', 'short_range']) { fault = takeFault(state, k, bname) && k; if (fault) break; }
      if (fault === 'short_range' && len > 1) {
        len = Math.max(1, Math.floor(len / 2));
        b0 = a0 + len - 1;
        headers['Content-Length'] = len;
        if (status === 206) headers['Content-Range'] = `bytes ${a0}-${b0}/${size}`;
        else status = 206, headers['Content-Range'] = `bytes ${a0}-${b0}/${size}`;
      }
      res.writeHead(status, headers);
      if (req.method === 'HEAD') { done(status); res.end(); return; }
      if (fault === 'drop_block' || fault === 'short_body') {
        const part = readRange(file, [a0, a0 + Math.max(0, Math.floor(len / 2) - 1)]);
        done(status, { fault, bytes_sent: part.length });
        res.write(part, () => {
          if (fault === 'drop_block') res.socket.destroy(); else res.socket.end();
        });
        return;
      }
      done(status, fault ? { fault, bytes_sent: len } : { bytes_sent: len });
      fs.createReadStream(file, { start: a0, end: b0 }).on('error', () => res.destroy()).pipe(res);
    };
  }

  const br = svc.router({ log });
  br.get('/service-info', (req, res) => svc.sendJson(res, 200, { name: 'htsget block origin (test)', note: 'not a GA4GH service' }));
  br.get('/blocks/:name', serveBlock('blocks'));
  const blockServer = http.createServer(br.handler());

  // ------------------------------------------------------------- ticket API
  const info = (datatype) => svc.serviceInfo({
    id: datatype ? `org.impact.federation.htsget.${datatype}` : 'org.impact.federation.htsget',
    name: datatype ? `impact federation htsget ${datatype}` : 'impact federation htsget',
    type: { group: 'org.ga4gh', artifact: 'htsget', version: '1.3.0' },
    description: `htsget 1.3 over the htsget-rs test files (local test federation)${datatype ? `: ${datatype}` : ''}`,
    htsget: {
      ...(datatype ? { datatype } : {}),
      formats: datatype ? KINDS[datatype] : [...KINDS.reads, ...KINDS.variants],
      fieldsParameterEffective: false,
      tagsParametersEffective: false,
    },
    ...(datatype ? { url: `${url}/${datatype}` } : {}),
  });

  async function ticket(kind, req, res, ctx) {
    const started = { time: new Date().toISOString(), method: req.method, kind, id: ctx.params.id };
    const t = { ...started };
    const finish = (status, extra = {}) => remember(state.tickets, Object.assign(t, { status }, extra));
    try {
      if (req.method === 'POST' && takeFault(state, 'no_post', ctx.params.id)) {
        finish(405, { fault: 'no_post' });
        svc.sendJson(res, 405, { htsget: { error: 'MethodNotAllowed', message: 'POST is not offered (fault switch no_post)' } }, { Allow: 'GET' });
        return;
      }
      const f = takeFault(state, 'ticket_500', ctx.params.id);
      if (f) {
        finish(f.status || 500, { fault: 'ticket_500' });
        svc.sendJson(res, f.status || 500, { htsget: { error: 'InternalServerError', message: 'injected failure (fault switch ticket_500)' } }, f.retry_after ? { 'Retry-After': String(f.retry_after) } : {});
        return;
      }
      // who: a bearer token of the federation's provider
      // (require_auth false: requests without Authorization are served as `anonymous`, as the spec allows
      // servers to; htslib sends no token over plain http, so samtools needs this)
      let who;
      try {
        if (!state.config.require_auth && !req.headers.authorization) who = { username: 'anonymous' };
        else who = await auth.identifyBearer(req, { fakeAuth });
      } catch (e) {
        if (e.status === 401) throw new HtsgetError(401, 'InvalidAuthentication', e.message);
        throw new HtsgetError(500, 'InternalServerError', e.message);
      }
      const tok = auth.bearer(req) || (/^Bearer\s+(\S+)/i.exec(req.headers.authorization || '') || [])[1];
      if (tok) { state.userTokens.add(tokenHash(tok)); if (state.userTokens.size > 5000) state.userTokens.clear(); }
      t.user = who.username;
      let r;
      if (req.method === 'POST') {
        if (Object.keys(ctx.query).length) throw invalid('a POST request must not have query parameters');
        let body;
        try { body = await svc.readJson(req, 64 << 10); } catch (e) {
          if (e.status === 413) throw new HtsgetError(413, 'PayloadTooLarge', e.message);
          throw invalid(e.message);
        }
        r = fromBody(body === undefined ? {} : body);
      } else {
        const unknown = Object.keys(ctx.query).filter((k) => !GET_PARAMS.includes(k));
        if (unknown.length) throw invalid(`unknown query parameter(s) ${unknown.join(', ')}`);
        r = fromQuery(ctx.query);
      }
      const { entry, src, format, headerOnly, c4ghKey } = resolve(kind, ctx.params.id, r, catalogue, req.headers);
      if (entry.restrictedTo && who.username !== entry.restrictedTo) {
        throw new HtsgetError(403, 'PermissionDenied', `${entry.id} is not shared with ${who.username}`);
      }
      const q = { headerOnly, regions: r.regions || null };
      const out = c4ghKey ? tickets.crypt4gh(src, q, c4ghKey) : tickets.plain(src, q);
      const body = { htsget: { format, urls: out.urls, ...(out.md5 ? { md5: out.md5 } : {}) } };
      finish(200, { format, encrypted: !!c4ghKey, blocks: out.urls.length, edit_list: out.edit || null });
      svc.sendJson(res, 200, body);
    } catch (e) {
      if (!(e instanceof HtsgetError)) {
        log.error('ticket failed:', e);
        e = new HtsgetError(500, 'InternalServerError', e.message);
      }
      finish(e.status, { error: e.error });
      sendHtsgetError(res, e);
    }
  }

  const r = svc.router({ log });
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, info(null)));
  for (const kind of ['reads', 'variants']) {
    r.get(`/${kind}/service-info`, (req, res) => svc.sendJson(res, 200, info(kind)));
    const h = (req, res, ctx) => {
      // ids may hold '/': checked as the one path segment the spec's {id} is
      openapi.watchResponse(api, { method: req.method, url: `/${kind}/${encodeURIComponent(ctx.params.id)}` }, res, { service: name });
      return ticket(kind, req, res, ctx);
    };
    r.get(`/${kind}/:id*`, h);
    r.post(`/${kind}/:id*`, h);
  }
  // blocks on the ticket origin: the redirect target of the `redirect` fault, and where block_origin=same
  // tickets point (same rules, same log)
  r.get('/blocks/:name', serveBlock('ticket-origin'));
  // test controls
  r.get('/__fault', (req, res) => svc.sendJson(res, 200, state.faults));
  r.post('/__fault', async (req, res) => {
    const body = await svc.readJson(req);
    const list = Array.isArray(body) ? body : [body];
    for (const f of list) {
      if (!f || !FAULTS.includes(f.fault)) { svc.sendError(res, 400, `fault must be one of ${FAULTS.join(', ')}`); return; }
    }
    for (const f of list) {
      state.faults.push({
        fault: f.fault, times: Number.isInteger(f.times) ? f.times : 1, after: Number(f.after) || 0, match: f.match || null,
        status: f.status, retry_after: f.retry_after, ms: f.ms, seen: 0, fired: 0,
      });
    }
    svc.sendJson(res, 200, state.faults);
  });
  r.delete('/__fault', (req, res) => { state.faults.length = 0; svc.sendJson(res, 200, []); });
  r.get('/__log', (req, res) => svc.sendJson(res, 200, {
    tickets: state.tickets, blocks: state.blocks, leaks: state.blocks.filter((b) => b.leaked).length,
  }));
  r.delete('/__log', (req, res) => { state.tickets.length = 0; state.blocks.length = 0; svc.sendJson(res, 200, {}); });
  r.get('/__config', (req, res) => svc.sendJson(res, 200, state.config));
  r.post('/__config', async (req, res) => {
    const body = (await svc.readJson(req)) || {};
    if (body.max_block_bytes !== undefined && !(Number.isInteger(body.max_block_bytes) && body.max_block_bytes >= 1)) { svc.sendError(res, 400, 'max_block_bytes: a positive integer'); return; }
    if (body.block_auth !== undefined && !['header', 'authorization'].includes(body.block_auth)) { svc.sendError(res, 400, 'block_auth: header or authorization'); return; }
    if (body.block_origin !== undefined && !['separate', 'same'].includes(body.block_origin)) { svc.sendError(res, 400, 'block_origin: separate or same'); return; }
    for (const k of ['md5', 'require_auth']) if (body[k] !== undefined && typeof body[k] !== 'boolean') { svc.sendError(res, 400, `${k}: a boolean`); return; }
    for (const k of Object.keys(DEFAULT_CONFIG)) if (body[k] !== undefined) state.config[k] = body[k];
    svc.sendJson(res, 200, state.config);
  });
  r.post('/__reset', (req, res) => {
    state.faults.length = 0; state.tickets.length = 0; state.blocks.length = 0;
    state.config = { ...defaults };
    svc.sendJson(res, 200, state.config);
  });
  const server = http.createServer(r.handler({
    notFound: (req, res) => sendHtsgetError(res, new HtsgetError(404, 'NotFound', `no such endpoint: ${req.method} ${req.pathname}`)),
  }));

  const port = await svc.listen(server, opts.port || 0);
  let blockPort;
  try {
    blockPort = await svc.listen(blockServer, opts.blockPort !== undefined ? opts.blockPort : (opts.port ? opts.port + 1 : 0));
  } catch (e) {
    server.close();
    throw e;
  }
  url = `http://127.0.0.1:${port}`;
  blockUrl = `http://127.0.0.1:${blockPort}`;
  tickets = new Tickets({ secret: hmacKey, blockUrl, ticketUrl: url, state });
  const ids = [...catalogue.entries.values()].map((e) => `${e.id} (${e.kind}: ${Object.entries(e.sources).map(([f, s]) => (s.c4gh ? `${f}+C4GH` : f)).join(', ')})`);
  log.info(`ticket API ${url}, block origin ${blockUrl}; ids: ${ids.join('; ')}`);
  return {
    url, blockUrl, port, blockPort, state, catalogue, server, blockServer,
    close: () => Promise.all([server, blockServer].map((s) => new Promise((ok) => {
      if (s.closeAllConnections) s.closeAllConnections();
      s.close(() => ok());
    }))),
  };
}

module.exports = { start, plainPieces, fromQuery, fromBody, publicKeyFrom, HtsgetError };

if (require.main === module) {
  const args = svc.parseArgs();
  const log = svc.logger('htsget');
  start({
    port: Number(args.port || 0), blockPort: args.blockPort !== undefined ? Number(args.blockPort) : undefined,
    data: args.data, key: args.key, maxBlockBytes: args.maxBlockBytes, anonymous: args.anonymous === true, log,
  }).then((s) => {
    console.log(`htsget listening on ${s.url} (blocks ${s.blockUrl})`);
    if (process.send) process.send({ port: s.port, blockPort: s.blockPort });
    svc.onShutdown(s.server, log, () => new Promise((ok) => { s.blockServer.closeAllConnections(); s.blockServer.close(() => ok()); }));
  }).catch((e) => {
    console.error(`htsget: ${e.message}`);
    process.exit(1);
  });
}
