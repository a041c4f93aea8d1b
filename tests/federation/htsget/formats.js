'use strict';
// The file formats htsget serves, read just far enough to answer tickets with real byte ranges:
//   BGZF   block boundaries of BAM, VCF.gz and BCF files; compressing new blocks (for data: URIs)
//   BAI    bins, chunks and linear index (SAMv1.pdf section 5.2)
//   TBI    the same binning, BGZF-compressed, with the sequence names (tabix.pdf)
//   CSI    generalised binning (min_shift, depth), BGZF-compressed (CSIv1.pdf)
//   CRAI   gzipped text: one line per slice: seq_id start span container_offset slice_offset slice_size
//   CRAM   file definition, header container (for the @SQ names), the 38-byte CRAM 3 EOF container
// Written from the hts-specs documents, independent of impact's C++ code. Virtual offsets are kept as
// Numbers (coffset * 65536 + uoffset): exact for files below 2^37 bytes.

const fs = require('fs');
const zlib = require('zlib');

const V = 65536;
const coff = (v) => Math.floor(v / V);
const uoff = (v) => v % V;
const readVoff = (buf, at) => Number(buf.readBigUInt64LE(at));

// The 28-byte empty BGZF block every BGZF file ends with (SAMv1.pdf 4.1.2).
const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');
// CRAM 3.0 EOF container (CRAMv3.pdf section 9).
const CRAM3_EOF = Buffer.from('0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b', 'hex');

// ---------------------------------------------------------------- BGZF

// A file read by ranges (a Buffer also works: tests, small files).
class Source {
  constructor(fileOrBuf) {
    if (Buffer.isBuffer(fileOrBuf)) { this.buf = fileOrBuf; this.length = fileOrBuf.length; } else {
      this.fd = fs.openSync(fileOrBuf, 'r');
      this.length = fs.fstatSync(this.fd).size;
    }
  }

  read(at, n) {
    if (this.buf) return this.buf.subarray(at, Math.min(at + n, this.length));
    const out = Buffer.alloc(Math.max(0, Math.min(n, this.length - at)));
    let got = 0;
    while (got < out.length) {
      const k = fs.readSync(this.fd, out, got, out.length - got, at + got);
      if (k <= 0) break;
      got += k;
    }
    return out.subarray(0, got);
  }

  close() { if (this.fd !== undefined) { fs.closeSync(this.fd); this.fd = undefined; } }
}

// Every block of a BGZF file: [{off, size, usize}] (usize = uncompressed bytes, from ISIZE). Reads only the
// block headers and trailers.
function bgzfBlocks(src) {
  const f = Buffer.isBuffer(src) ? new Source(src) : src;
  const blocks = [];
  let at = 0;
  while (at < f.length) {
    const h = f.read(at, 18 + 64);
    if (h.length < 18 || h[0] !== 0x1f || h[1] !== 0x8b || h[2] !== 8 || !(h[3] & 4)) {
      throw new Error(`not a BGZF block at byte ${at}`);
    }
    const xlen = h.readUInt16LE(10);
    const extra = xlen + 12 <= h.length ? h : f.read(at, 12 + xlen);
    let bsize = -1;
    for (let x = 12; x + 4 <= 12 + xlen && x + 4 <= extra.length;) {
      const slen = extra.readUInt16LE(x + 2);
      if (extra[x] === 66 && extra[x + 1] === 67 && slen === 2) bsize = extra.readUInt16LE(x + 4);
      x += 4 + slen;
    }
    if (bsize < 0) throw new Error(`BGZF block without BSIZE at byte ${at}`);
    const size = bsize + 1;
    if (at + size > f.length) throw new Error(`truncated BGZF block at byte ${at}`);
    blocks.push({ off: at, size, usize: f.read(at + size - 4, 4).readUInt32LE(0) });
    at += size;
  }
  return blocks;
}

function inflateBlock(src, block) {
  const f = Buffer.isBuffer(src) ? new Source(src) : src;
  return zlib.gunzipSync(f.read(block.off, block.size));
}

// `data` as BGZF blocks (each at most 65280 input bytes), without the EOF block.
function bgzfCompress(data) {
  const out = [];
  for (let at = 0; at < data.length || (at === 0 && out.length === 0); at += 65280) {
    const chunk = data.subarray(at, at + 65280);
    const cdata = zlib.deflateRawSync(chunk, { level: 6 });
    const head = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 66, 67, 2, 0, 0, 0]);
    const total = head.length + cdata.length + 8;
    head.writeUInt16LE(total - 1, 16);
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(zlib.crc32(chunk) >>> 0, 0);
    tail.writeUInt32LE(chunk.length, 4);
    out.push(head, cdata, tail);
    if (data.length === 0) break;
  }
  return Buffer.concat(out);
}

// A BGZF file's layout: blocks, where each starts in the uncompressed stream, lookups. `file`: a path
// (read by ranges, never whole) or a Buffer.
class Bgzf {
  constructor(file) {
    this.src = new Source(file);
    this.length = this.src.length;
    this.blocks = bgzfBlocks(this.src);
    this.byOff = new Map(this.blocks.map((b, i) => [b.off, i]));
    let u = 0;
    for (const b of this.blocks) { b.ustart = u; u += b.usize; }
    this.usize = u;
    const last = this.blocks[this.blocks.length - 1];
    this.hasEof = !!last && last.usize === 0;
    this.bodyEnd = this.hasEof ? last.off : this.length; // first byte after the data blocks
  }

  inflate(i) { return inflateBlock(this.src, this.blocks[i]); }

  // Uncompressed bytes [0, n) of the stream (inflates only the blocks needed).
  head(n) {
    const parts = [];
    let got = 0;
    for (const b of this.blocks) {
      if (got >= n) break;
      const d = inflateBlock(this.src, b);
      parts.push(d);
      got += d.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  }

  // Uncompressed stream position -> virtual offset.
  voffsetOf(upos) {
    for (const b of this.blocks) {
      if (upos < b.ustart + b.usize) return b.off * V + (upos - b.ustart);
    }
    return this.bodyEnd * V;
  }

  // The last byte (inclusive) of the block starting at `off`.
  blockLast(off) {
    const i = this.byOff.get(off);
    if (i === undefined) throw new Error(`no BGZF block starts at ${off}`);
    return off + this.blocks[i].size - 1;
  }

  // Inclusive file byte range [a, b] covering virtual offsets [vs, ve).
  rangeOf(vs, ve) {
    const a = coff(vs);
    const b = uoff(ve) === 0 ? coff(ve) - 1 : this.blockLast(coff(ve));
    return [a, Math.min(b, this.bodyEnd - 1)];
  }
}

// ---------------------------------------------------------------- binning (BAI, TBI, CSI)

// Bins overlapping the 0-based half-open [beg, end) (htslib's reg2bins, generalised as in CSIv1.pdf).
function reg2bins(beg, end, minShift, depth) {
  const bins = [];
  end -= 1;
  if (end < beg) end = beg;
  for (let l = 0, t = 0, s = minShift + depth * 3; l <= depth; s -= 3, t += 1 << (l * 3), l++) {
    const b = t + Math.floor(beg / 2 ** s);
    const e = t + Math.floor(end / 2 ** s);
    for (let i = b; i <= e; i++) bins.push(i);
  }
  return bins;
}

const pseudoBin = (depth) => ((1 << ((depth + 1) * 3)) - 1) / 7 + 1;

// refs: [{bins: Map(bin -> [[vs, ve], ...]), linear: [voff...] | null, loffset: Map(bin -> voff) | null}]
function parseBinned(buf, kind) {
  let at = 0;
  const u32 = () => { const v = buf.readUInt32LE(at); at += 4; return v; };
  const i32 = () => { const v = buf.readInt32LE(at); at += 4; return v; };
  const u64 = () => { const v = readVoff(buf, at); at += 8; return v; };
  const magic = buf.subarray(0, 4).toString('latin1');
  const want = { bai: 'BAI\x01', tbi: 'TBI\x01', csi: 'CSI\x01' }[kind];
  if (magic !== want) throw new Error(`not a ${kind.toUpperCase()} index`);
  at = 4;
  let minShift = 14;
  let depth = 5;
  let names = null;
  let nRef;
  if (kind === 'csi') {
    minShift = i32(); depth = i32();
    const lAux = i32();
    at += lAux;
    nRef = i32();
  } else if (kind === 'tbi') {
    nRef = i32();
    at += 6 * 4; // format col_seq col_beg col_end meta skip
    const lNm = i32();
    names = buf.subarray(at, at + lNm).toString('latin1').split('\0').filter((s) => s.length);
    at += lNm;
  } else {
    nRef = i32();
  }
  const pb = pseudoBin(depth);
  const refs = [];
  for (let r = 0; r < nRef; r++) {
    const bins = new Map();
    const loffset = kind === 'csi' ? new Map() : null;
    const nBin = i32();
    let meta = null;
    for (let i = 0; i < nBin; i++) {
      const bin = u32();
      if (kind === 'csi') loffset.set(bin, u64());
      const nChunk = i32();
      const chunks = [];
      for (let c = 0; c < nChunk; c++) chunks.push([u64(), u64()]);
      if (bin === pb) meta = chunks; else bins.set(bin, chunks);
    }
    let linear = null;
    if (kind !== 'csi') {
      const nIntv = i32();
      linear = [];
      for (let i = 0; i < nIntv; i++) linear.push(u64());
    }
    refs.push({ bins, linear, loffset, meta });
  }
  return { kind, minShift, depth, names, refs };
}

function readIndex(file, kind) {
  let buf = fs.readFileSync(file);
  if (kind !== 'bai') buf = zlib.gunzipSync(buf); // TBI and CSI are BGZF-compressed (gunzip reads all members)
  return parseBinned(buf, kind);
}

// Chunks [[vs, ve]] of reference `ref` that may hold records overlapping [beg, end), merged, in file order.
function chunksFor(index, ref, beg, end) {
  const r = index.refs[ref];
  if (!r) return [];
  let minOff = 0;
  if (r.linear && r.linear.length) minOff = r.linear[Math.min(Math.floor(beg / 16384), r.linear.length - 1)];
  const out = [];
  for (const bin of reg2bins(beg, end, index.minShift, index.depth)) {
    for (const [vs, ve] of r.bins.get(bin) || []) if (ve > minOff) out.push([vs, ve]);
  }
  return mergeIntervals(out);
}

// The largest chunk end of all references: where the unplaced unmapped records begin (0 when none).
function lastMappedEnd(index) {
  let m = 0;
  for (const r of index.refs) {
    for (const chunks of r.bins.values()) for (const [, ve] of chunks) if (ve > m) m = ve;
  }
  return m;
}

// Half-open or inclusive intervals [[a, b]], sorted, overlapping/adjacent ones merged (adjacent: b + gap >= a').
function mergeIntervals(list, gap = 0) {
  const s = list.slice().sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + gap) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

// ---------------------------------------------------------------- CRAI and CRAM

function readCrai(file) {
  const text = zlib.gunzipSync(fs.readFileSync(file)).toString('latin1');
  return text.split('\n').filter((l) => l.trim()).map((l) => {
    const f = l.trim().split('\t').map(Number);
    if (f.length < 6 || f.some((x) => !Number.isFinite(x))) throw new Error(`bad CRAI line: ${l}`);
    return { seq: f[0], start: f[1], span: f[2], container: f[3], slice: f[4], size: f[5] };
  });
}

// ITF8 / LTF8 (CRAMv3.pdf 2.3): -> [value, next position]
function itf8(buf, at) {
  const b0 = buf[at];
  if (b0 < 0x80) return [b0, at + 1];
  if (b0 < 0xc0) return [((b0 & 0x3f) << 8) | buf[at + 1], at + 2];
  if (b0 < 0xe0) return [((b0 & 0x1f) << 16) | (buf[at + 1] << 8) | buf[at + 2], at + 3];
  if (b0 < 0xf0) return [((b0 & 0x0f) << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3], at + 4];
  return [(((b0 & 0x0f) << 28) | (buf[at + 1] << 20) | (buf[at + 2] << 12) | (buf[at + 3] << 4) | (buf[at + 4] & 0x0f)) | 0, at + 5];
}
function ltf8(buf, at) {
  const b0 = buf[at];
  let n = 0;
  while (n < 8 && (b0 & (0x80 >> n))) n++;
  let v = n === 8 ? 0 : b0 & (0xff >> (n + 1));
  for (let i = 1; i <= n; i++) v = v * 256 + buf[at + i];
  return [v, at + 1 + n];
}

// -> {headerEnd (first byte of the first data container), names: [@SQ SN...], eofStart, major}
// `file`: a path or a Buffer; reads the file definition, the header container and the last 38 bytes.
function readCram(file) {
  const f = new Source(file);
  try {
    const top = f.read(0, 26 + 128);
    if (top.subarray(0, 4).toString('latin1') !== 'CRAM') throw new Error('not a CRAM file');
    const major = top[4];
    if (major !== 3) throw new Error(`CRAM ${major}.x is not supported here (3.x only)`);
    let at = 26;
    const length = top.readInt32LE(at); at += 4;
    let v;
    for (let i = 0; i < 4; i++) [v, at] = itf8(top, at); // ref seq id, start, span, n records
    [v, at] = ltf8(top, at); [v, at] = ltf8(top, at);     // record counter, bases
    let nBlocks; [nBlocks, at] = itf8(top, at);
    let nLand; [nLand, at] = itf8(top, at);
    for (let i = 0; i < nLand; i++) [v, at] = itf8(top, at);
    at += 4; // crc32
    if (at > top.length) throw new Error('CRAM header container header too long');
    const dataStart = at;
    const headerEnd = dataStart + length;
    if (length <= 0 || headerEnd > f.length) throw new Error('bad CRAM header container length');
    // its first block: the SAM header (raw or gzip)
    const buf = f.read(dataStart, length);
    at = 0;
    const method = buf[at]; at += 2; // method, content type
    [v, at] = itf8(buf, at); // content id
    let csize; [csize, at] = itf8(buf, at);
    let rsize; [rsize, at] = itf8(buf, at);
    let data = buf.subarray(at, at + csize);
    if (method === 1) data = zlib.gunzipSync(data);
    else if (method !== 0) throw new Error(`CRAM header block compression ${method} not supported`);
    if (data.length !== rsize) throw new Error('CRAM header block size mismatch');
    const lText = data.readInt32LE(0);
    const names = samNames(data.subarray(4, 4 + lText).toString('utf8'));
    const tail = f.read(f.length - CRAM3_EOF.length, CRAM3_EOF.length);
    if (!tail.equals(CRAM3_EOF)) throw new Error('CRAM file does not end with the CRAM 3 EOF container');
    return { headerEnd, names, eofStart: f.length - CRAM3_EOF.length, major, nBlocks };
  } finally {
    f.close();
  }
}

function samNames(text) {
  return text.split('\n').filter((l) => l.startsWith('@SQ\t')).map((l) => {
    const sn = l.split('\t').find((f) => f.startsWith('SN:'));
    return sn ? sn.slice(3) : '';
  });
}

// ---------------------------------------------------------------- headers of BAM, VCF.gz, BCF

// -> {end (uncompressed header length), names}
function bamHeader(bg) {
  const need = (n) => bg.head(n);
  let h = need(12);
  if (h.subarray(0, 4).toString('latin1') !== 'BAM\x01') throw new Error('not a BAM file');
  const lText = h.readInt32LE(4);
  let pos = 8 + lText;
  h = need(pos + 4 + 1);
  const nRef = h.readInt32LE(pos); pos += 4;
  const names = [];
  for (let i = 0; i < nRef; i++) {
    if (h.length < pos + 4) h = need(pos + 4 + 4096);
    const lName = h.readInt32LE(pos);
    if (h.length < pos + 4 + lName + 4) h = need(pos + 8 + lName + 65536);
    names.push(h.subarray(pos + 4, pos + 4 + lName - 1).toString('latin1'));
    pos += 4 + lName + 4;
  }
  return { end: pos, names };
}

function vcfHeader(bg) {
  let n = 65536;
  for (let round = 0; round < 4096; round++) {
    const h = bg.head(n);
    let pos = 0;
    while (pos < h.length && h[pos] === 0x23) { // '#'
      const nl = h.indexOf(0x0a, pos);
      if (nl < 0) { pos = -1; break; }
      pos = nl + 1;
    }
    if (pos >= 0 && (pos < h.length || h.length >= bg.usize)) return { end: pos };
    if (h.length >= bg.usize) return { end: h.length };
    n *= 2;
  }
  throw new Error('VCF header too long');
}

function bcfHeader(bg) {
  const h = bg.head(9);
  if (h.subarray(0, 3).toString('latin1') !== 'BCF' || h[3] !== 2) throw new Error('not a BCF 2 file');
  const lText = h.readUInt32LE(5);
  const text = bg.head(9 + lText).subarray(9).toString('utf8');
  // contigs in dictionary order: IDX= when given, else their order in the header
  const contigs = [];
  let next = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('##contig=<')) continue;
    const id = /[<,]ID=([^,>]+)/.exec(line);
    const idx = /[<,]IDX=(\d+)/.exec(line);
    if (!id) continue;
    const at = idx ? Number(idx[1]) : next;
    contigs[at] = id[1];
    next = at + 1;
  }
  return { end: 9 + lText, names: contigs };
}

module.exports = {
  V, coff, uoff, BGZF_EOF, CRAM3_EOF, Source, Bgzf, bgzfBlocks, bgzfCompress, inflateBlock, reg2bins, readIndex,
  parseBinned, chunksFor, lastMappedEnd, mergeIntervals, readCrai, readCram, itf8, ltf8, bamHeader, vcfHeader,
  bcfHeader, samNames,
};
