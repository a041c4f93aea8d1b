'use strict';
// lib/crypt4gh.js, the federation's Crypt4GH (for the archive and htsget's Crypt4GH mode), against files of two
// other implementations: the Rust one's vectors (tests/data/crypt4gh/htsget-rs) and tests/crypt4gh_reference.py
// (Debian's python3-cryptography), both ways.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const c4gh = require('../lib/crypt4gh');

const RUST = path.join(__dirname, '../../data/crypt4gh/htsget-rs');
const REFERENCE = path.join(__dirname, '../../crypt4gh_reference.py');
const bob = c4gh.parsePrivateKey(fs.readFileSync(path.join(RUST, 'c4gh/keys/bob.sec'), 'utf8'));
const alice = c4gh.parsePrivateKey(fs.readFileSync(path.join(RUST, 'c4gh/keys/alice.sec'), 'utf8'));

function python(args, input) {
  const r = spawnSync('python3', [REFERENCE, ...args], { input, timeout: 60000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test('the Rust vectors decrypt to their plaintexts, and only for their reader', () => {
  const files = fs.readdirSync(path.join(RUST, 'c4gh')).filter((f) => f.endsWith('.c4gh'));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const plain = fs.readFileSync(path.join(RUST, 'plain', f.replace(/\.c4gh$/, '')));
    const enc = fs.readFileSync(path.join(RUST, 'c4gh', f));
    assert.ok(c4gh.decrypt(enc, bob).equals(plain), f);
    assert.throws(() => c4gh.decrypt(enc, alice), /no header packet is for this key/);
  }
});

test('a re-encrypted header gives the same body to a new reader, and the reference decrypts it', () => {
  const f = 'htsnexus_test_NA12878.bam';
  const enc = fs.readFileSync(path.join(RUST, 'c4gh', f + '.c4gh'));
  const plain = fs.readFileSync(path.join(RUST, 'plain', f));
  const reader = c4gh.generateKeyPair();
  const { header, bodyOffset } = c4gh.reencryptHeader(enc, bob, reader.pub);
  const served = Buffer.concat([header, enc.subarray(bodyOffset)]);
  assert.ok(c4gh.decrypt(served, reader.secret).equals(plain));
  assert.throws(() => c4gh.decrypt(served, bob), /no header packet/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-c4gh-'));
  try {
    const key = path.join(dir, 'reader.sec');
    fs.writeFileSync(key, c4gh.formatPrivateKey(reader.secret), { mode: 0o600 });
    assert.ok(python(['decrypt', key], served).equals(plain));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('files of the reference implementation decrypt, an edit list included; a flipped byte names its segment', () => {
  const reader = c4gh.generateKeyPair();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fed-c4gh-'));
  try {
    const pub = path.join(dir, 'reader.pub');
    fs.writeFileSync(pub, c4gh.formatPublicKey(reader.pub));
    const plain = Buffer.alloc(200000, 7).map((_, i) => i % 251);
    assert.ok(c4gh.decrypt(python(['encrypt', pub], plain), reader.secret).equals(plain));
    const edited = c4gh.decrypt(python(['encrypt', pub, '10,100,70000,5'], plain), reader.secret);
    assert.ok(edited.equals(Buffer.concat([plain.subarray(10, 110), plain.subarray(70110, 70115)])));
    const mine = c4gh.encrypt(plain, [reader.pub]);
    mine[mine.length - 100] ^= 1;
    assert.throws(() => c4gh.decrypt(mine, reader.secret), /segment 3 failed authentication/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hostile headers are refused, not trusted', () => {
  const top = Buffer.concat([Buffer.from('crypt4gh'), Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])]);
  assert.throws(() => c4gh.readHeader(top, bob), /impossible header packet count/);
  const enc = c4gh.encrypt(Buffer.from('x'), [c4gh.publicOf(bob)]);
  assert.throws(() => c4gh.readHeader(enc.subarray(0, 40), bob), /bad header packet length|truncated/);
});
