'use strict';
// Crypt4GH (samtools/hts-specs crypt4gh.tex, method 0: X25519 + ChaCha20-Poly1305) on Node's crypto, for the
// federation's services that serve encrypted data (the SDA archive, htsget's Crypt4GH mode). Written from the
// specification, independent of impact's C++ implementation, so the federation also checks impact.
//
// What an archive does: it stores each file encrypted for its own key (header + body) and, for each caller,
// replaces the header with one re-encrypted for the caller's public key; the body bytes are served unchanged.
const crypto = require('node:crypto');

const MAGIC = Buffer.from('crypt4gh');
const SEGMENT = 65536;                 // plaintext bytes per segment
const SEGMENT_SEALED = SEGMENT + 28;   // nonce (12) + ciphertext + MAC (16)
const MAX_PACKETS = 64;
const MAX_PACKET_LENGTH = 65536;

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function privateKeyObject(secret) {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' });
}
function publicKeyObject(pub) {
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: 'der', type: 'spki' });
}
function publicOf(secret) {
  return crypto.createPublicKey(privateKeyObject(secret)).export({ format: 'der', type: 'spki' }).subarray(-32);
}

// A fresh key pair as raw 32-byte buffers.
function generateKeyPair() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
  return {
    secret: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32),
    pub: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
  };
}

// The session key both sides derive: BLAKE2b-512(DH || reader public key || writer public key), first 32 bytes.
function sharedKey(secret, peerPub, readerPub, writerPub) {
  const dh = crypto.diffieHellman({ privateKey: privateKeyObject(secret), publicKey: publicKeyObject(peerPub) });
  return crypto.createHash('blake2b512').update(Buffer.concat([dh, readerPub, writerPub])).digest().subarray(0, 32);
}

function seal(key, plain) {
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

// null when the MAC does not match (a packet or segment for someone else, or tampered).
function open(key, sealed) {
  if (sealed.length < 28) return null;
  const d = crypto.createDecipheriv('chacha20-poly1305', key, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

// Key files: `-----BEGIN CRYPT4GH PUBLIC KEY-----` PEM or raw base64 of the 32 bytes; private keys `c4gh-v1` with
// KDF and cipher `none` (the federation keeps its own key unprotected).
function pemBody(text) {
  return Buffer.from(String(text).split(/\r?\n/).filter((l) => l.trim() && !l.startsWith('-----')).join(''), 'base64');
}
function parsePublicKey(text) {
  const raw = pemBody(text);
  if (raw.length !== 32) throw new Error('a Crypt4GH public key is 32 bytes');
  return raw;
}
function parsePrivateKey(text) {
  const blob = pemBody(text);
  if (blob.subarray(0, 7).toString() !== 'c4gh-v1') throw new Error('not a c4gh-v1 private key');
  let pos = 7;
  const fields = [];
  for (let i = 0; i < 3; i++) {
    const n = blob.readUInt16BE(pos);
    fields.push(blob.subarray(pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  if (fields[0].toString() !== 'none' || fields[1].toString() !== 'none') throw new Error('only unprotected keys');
  return fields[2];
}
function formatPublicKey(pub) {
  return `-----BEGIN CRYPT4GH PUBLIC KEY-----\n${pub.toString('base64')}\n-----END CRYPT4GH PUBLIC KEY-----\n`;
}
function formatPrivateKey(secret) {
  const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
  const none = Buffer.from('none');
  const blob = Buffer.concat([Buffer.from('c4gh-v1'), u16(4), none, u16(4), none, u16(32), secret]);
  return `-----BEGIN CRYPT4GH PRIVATE KEY-----\n${blob.toString('base64')}\n-----END CRYPT4GH PRIVATE KEY-----\n`;
}

// Reads the header of `buf` (at least the header's bytes) with `secret`. Returns { keys, edit, length } where
// `length` is the header's size in bytes (the body starts there). Throws on a malformed header or when no
// packet is for this key.
function readHeader(buf, secret) {
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) throw new Error('not a Crypt4GH file');
  if (buf.readUInt32LE(8) !== 1) throw new Error('unsupported Crypt4GH version');
  const count = buf.readUInt32LE(12);
  if (count === 0 || count > MAX_PACKETS) throw new Error(`impossible header packet count ${count}`);
  const readerPub = publicOf(secret);
  const keys = [];
  let edit = null;
  let pos = 16;
  for (let i = 0; i < count; i++) {
    if (pos + 8 > buf.length) throw new Error('truncated header');
    const length = buf.readUInt32LE(pos);
    const method = buf.readUInt32LE(pos + 4);
    if (length < 8 + 32 + 28 || length > MAX_PACKET_LENGTH || pos + length > buf.length) throw new Error('bad header packet length');
    if (method === 0) {
      const writerPub = buf.subarray(pos + 8, pos + 40);
      const plain = open(sharedKey(secret, writerPub, readerPub, writerPub), buf.subarray(pos + 40, pos + length));
      if (plain && plain.length >= 8) {
        const type = plain.readUInt32LE(0);
        if (type === 0 && plain.readUInt32LE(4) === 0 && plain.length === 40) keys.push(Buffer.from(plain.subarray(8, 40)));
        else if (type === 1) {
          const n = plain.readUInt32LE(4);
          if (plain.length !== 8 + 8 * n) throw new Error('bad edit list');
          edit = [];
          for (let k = 0; k < n; k++) edit.push(Number(plain.readBigUInt64LE(8 + 8 * k)));
        }
      }
    }
    pos += length;
  }
  if (keys.length === 0) throw new Error('no header packet is for this key');
  return { keys, edit, length: pos };
}

// A header that gives `keys` (and the edit list, if any) to every public key in `readers`.
function buildHeader({ keys, edit = null }, readers) {
  const writer = generateKeyPair();
  const plains = keys.map((k) => {
    const p = Buffer.alloc(8); p.writeUInt32LE(0, 0); p.writeUInt32LE(0, 4);
    return Buffer.concat([p, k]);
  });
  if (edit) {
    const p = Buffer.alloc(8 + 8 * edit.length);
    p.writeUInt32LE(1, 0); p.writeUInt32LE(edit.length, 4);
    edit.forEach((v, k) => p.writeBigUInt64LE(BigInt(v), 8 + 8 * k));
    plains.push(p);
  }
  const packets = [];
  for (const reader of readers) {
    const key = sharedKey(writer.secret, reader, reader, writer.pub);
    for (const plain of plains) {
      const sealed = seal(key, plain);
      const head = Buffer.alloc(8);
      head.writeUInt32LE(8 + 32 + sealed.length, 0); head.writeUInt32LE(0, 4);
      packets.push(Buffer.concat([head, writer.pub, sealed]));
    }
  }
  const top = Buffer.alloc(16);
  MAGIC.copy(top); top.writeUInt32LE(1, 8); top.writeUInt32LE(packets.length, 12);
  return Buffer.concat([top, ...packets]);
}

// The header of an archived file, re-encrypted for `readerPub`: what an SDA archive sends its caller.
function reencryptHeader(buf, secret, readerPub) {
  const { keys, edit, length } = readHeader(buf, secret);
  return { header: buildHeader({ keys, edit }, [readerPub]), bodyOffset: length };
}

// Encrypts `plain` (a Buffer) for every public key in `readers`; one data key; optional edit list.
function encrypt(plain, readers, { edit = null } = {}) {
  const key = crypto.randomBytes(32);
  const parts = [buildHeader({ keys: [key], edit }, readers)];
  for (let at = 0; at < plain.length; at += SEGMENT) parts.push(seal(key, plain.subarray(at, at + SEGMENT)));
  return Buffer.concat(parts);
}

// Body encryption for large files without holding them: returns { header, key } to write first, then
// `sealSegment(key, chunk)` for each 64 KiB chunk.
function startEncryption(readers, { edit = null } = {}) {
  const key = crypto.randomBytes(32);
  return { header: buildHeader({ keys: [key], edit }, readers), key };
}
function sealSegment(key, chunk) {
  return seal(key, chunk);
}

// Decrypts a whole file held in memory (tests).
function decrypt(buf, secret) {
  const { keys, edit, length } = readHeader(buf, secret);
  const out = [];
  for (let at = length, n = 0; at < buf.length; at += SEGMENT_SEALED, n++) {
    const sealed = buf.subarray(at, at + SEGMENT_SEALED);
    const plain = keys.map((k) => open(k, sealed)).find(Boolean);
    if (!plain) throw new Error(`segment ${n} failed authentication`);
    out.push(plain);
  }
  let plain = Buffer.concat(out);
  if (edit) {
    const kept = [];
    let at = 0;
    edit.forEach((v, i) => {
      if (i % 2 === 1) kept.push(plain.subarray(at, at + v));
      at += v;
    });
    if (edit.length % 2 === 1) kept.push(plain.subarray(at));
    plain = Buffer.concat(kept);
  }
  return plain;
}

module.exports = {
  SEGMENT, SEGMENT_SEALED, generateKeyPair, publicOf, parsePublicKey, parsePrivateKey, formatPublicKey,
  formatPrivateKey, readHeader, buildHeader, reencryptHeader, encrypt, startEncryption, sealSegment, decrypt,
};
