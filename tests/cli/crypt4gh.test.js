'use strict';
// impact keys / encrypt / decrypt as a user runs them: the key store, the test vectors of two other
// implementations, an independent implementation both ways (tests/crypt4gh_reference.py on Debian's
// python3-cryptography), and failures that leave no file behind.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { BIN, home, impact } = require('./helpers');

const DATA = path.join(__dirname, '../data/crypt4gh');
const RUST = path.join(DATA, 'htsget-rs');
const REFERENCE = path.join(__dirname, '../crypt4gh_reference.py');
const PASS = { IMPACT_C4GH_PASSPHRASE: 'correct horse' };

// impact with binary stdin/stdout.
function raw(dir, args, { input, env = {} } = {}) {
  const r = spawnSync(BIN, args, {
    input, timeout: 60000, maxBuffer: 64 << 20,
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'),
      XDG_CACHE_HOME: path.join(dir, 'cache'), LANG: 'C.UTF-8', ...env },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function python(args, input) {
  const r = spawnSync('python3', [REFERENCE, ...args], { input, timeout: 60000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

// A private key file the user owns, mode 0600 (impact refuses keys others may read, as OpenSSH does).
function keyCopy(dir, from) {
  const to = path.join(dir, path.basename(path.dirname(from)) + '-' + path.basename(from));
  fs.copyFileSync(from, to);
  fs.chmodSync(to, 0o600);
  return to;
}

test('keys generate, list, show, import and remove; files 0600 in a 0700 folder; no passphrase in argv', (t) => {
  const dir = home(t);
  let r = impact(dir, ['keys', 'generate', 'me'], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  const keys = path.join(dir, '.local/share/impact/keys');
  assert.equal(fs.statSync(keys).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(keys, 'me.sec')).mode & 0o777, 0o600);
  assert.ok(!fs.readFileSync(path.join(keys, 'me.sec'), 'utf8').includes('correct horse'));
  r = impact(dir, ['keys', 'generate', 'open', '--no-passphrase']);
  assert.equal(r.code, 0, r.stderr);
  r = impact(dir, ['keys', 'import', path.join(RUST, 'c4gh/keys/alice.pub'), '--name', 'alice']);
  assert.equal(r.code, 0, r.stderr);
  r = impact(dir, ['--json', 'keys', 'list']);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout).keys;
  assert.deepEqual(list.map((k) => [k.name, k.private, k.kdf]), [['alice', false, null], ['me', true, 'scrypt'], ['open', true, 'none']]);
  assert.equal(list[0].public_key, fs.readFileSync(path.join(RUST, 'c4gh/keys/alice.pub'), 'utf8').split('\n')[1]);
  assert.match(list[1].fingerprint, /^[0-9a-f]{16}$/);
  r = impact(dir, ['keys', 'show', 'me', '--pem']);
  assert.match(r.stdout, /^-----BEGIN CRYPT4GH PUBLIC KEY-----\n[A-Za-z0-9+/]{43}=\n-----END CRYPT4GH PUBLIC KEY-----\n$/);
  r = impact(dir, ['--json', 'keys', 'show', 'me']);
  assert.equal(JSON.parse(r.stdout).fingerprint, list[1].fingerprint);
  r = impact(dir, ['keys', 'generate', 'me'], { env: PASS });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exists already/);
  r = impact(dir, ['keys', 'generate', 'tty-less']);   // no passphrase, no terminal
  assert.equal(r.code, 2);
  assert.match(r.stderr, /IMPACT_C4GH_PASSPHRASE/);
  r = impact(dir, ['keys', 'remove', 'open']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!fs.existsSync(path.join(keys, 'open.sec')));
  r = impact(dir, ['keys', 'remove', 'open']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no Crypt4GH key named 'open'/);
});

test('every htsget-rs vector decrypts byte-identical, from a file and from stdin', (t) => {
  const dir = home(t);
  const bob = keyCopy(dir, path.join(RUST, 'c4gh/keys/bob.sec'));
  let n = 0;
  for (const plain of fs.readdirSync(path.join(RUST, 'plain'))) {
    const out = path.join(dir, plain);
    const enc = path.join(RUST, 'c4gh', plain + '.c4gh');
    let r = raw(dir, ['decrypt', enc, '--key', bob, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.readFileSync(out).equals(fs.readFileSync(path.join(RUST, 'plain', plain))), plain);
    r = raw(dir, ['decrypt', '-', '--key', bob], { input: fs.readFileSync(enc) });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(fs.readFileSync(path.join(RUST, 'plain', plain))), plain);
    n += 1;
  }
  assert.equal(n, 6);
});

test('the Python implementation\'s bcrypt-protected key imports with its passphrase and decrypts', (t) => {
  const dir = home(t);
  const sec = path.join(DATA, 'crypt4gh-python/alice.sec');
  let r = impact(dir, ['keys', 'import', sec, '--name', 'ega'], { env: { IMPACT_C4GH_PASSPHRASE: 'wrong' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /wrong passphrase/);
  r = impact(dir, ['keys', 'import', sec, '--name', 'ega'], { env: { IMPACT_C4GH_PASSPHRASE: 'alice' } });
  assert.equal(r.code, 0, r.stderr);
  const plain = crypto.randomBytes(70000);
  const enc = raw(dir, ['encrypt', '-', '-r', path.join(DATA, 'crypt4gh-python/alice.pub')], { input: plain });
  assert.equal(enc.code, 0, enc.stderr);
  const dec = raw(dir, ['decrypt', '-', '--key', 'ega'], { input: enc.stdout, env: { IMPACT_C4GH_PASSPHRASE: 'alice' } });
  assert.equal(dec.code, 0, dec.stderr);
  assert.ok(dec.stdout.equals(plain));
});

test('an independent implementation reads what impact writes, and impact reads what it writes (edit list too)', (t) => {
  const dir = home(t);
  const bobSec = keyCopy(dir, path.join(RUST, 'c4gh/keys/bob.sec'));
  const bobPub = path.join(RUST, 'c4gh/keys/bob.pub');
  const plain = crypto.randomBytes(3 * 65536 + 1234);
  // impact -> reference, two recipients
  const mine = raw(dir, ['encrypt', '-', '-r', bobPub, '-r', path.join(RUST, 'c4gh/keys/alice.pub')], { input: plain });
  assert.equal(mine.code, 0, mine.stderr);
  assert.ok(python(['decrypt', bobSec], mine.stdout).equals(plain));
  // reference -> impact, with an edit list ending in a skip (the rest is kept)
  const theirs = python(['encrypt', bobPub, '10,100,65536'], plain);
  const r = raw(dir, ['decrypt', '-', '--key', bobSec], { input: theirs });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(Buffer.concat([plain.subarray(10, 110), plain.subarray(110 + 65536)])));
});

test('a wrong key, a flipped byte, a truncated file and a hostile header fail clearly and leave no output file', (t) => {
  const dir = home(t);
  const alice = keyCopy(dir, path.join(RUST, 'c4gh/keys/alice.sec'));
  const bob = keyCopy(dir, path.join(RUST, 'c4gh/keys/bob.sec'));
  const good = fs.readFileSync(path.join(RUST, 'c4gh/htsnexus_test_NA12878.bam.c4gh'));
  const out = path.join(dir, 'out.bam');
  const attempt = (bytes, key) => {
    const f = path.join(dir, 'in.c4gh');
    fs.writeFileSync(f, bytes);
    const r = raw(dir, ['decrypt', f, '--key', key, '-o', out]);
    assert.ok(!fs.existsSync(out), 'no file at the output path');
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('impact-tmp')), [], 'no temporary file left');
    return r;
  };
  let r = attempt(good, alice);
  assert.equal(r.code, 5);
  assert.match(r.stderr, /none of the 1 header packets is for key [0-9a-f]{16}/);
  const flipped = Buffer.from(good);
  flipped[good.length - 100000] ^= 1;
  r = attempt(flipped, bob);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /segment \d+ of the Crypt4GH file failed authentication/);
  r = attempt(good.subarray(0, good.length - 20), bob);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /truncated|failed authentication/);
  const hostile = Buffer.from(good);
  hostile.writeUInt32LE(0xffffffff, 12);
  r = attempt(hostile, bob);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /claims 4294967295 packets/);
  r = attempt(Buffer.from('not a crypt4gh file at all'), bob);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /magic/);
});

test('encrypt refuses a terminal, needs a recipient, and names a bad recipient', (t) => {
  const dir = home(t);
  // No input: each is refused before standard input is read, and bytes written to a process that has
  // exited would fail the write (EPIPE), not the test's point.
  let r = impact(dir, ['encrypt', '-'], {});
  assert.equal(r.code, 2);
  r = impact(dir, ['encrypt', '-', '-r', 'nobody'], {});
  assert.equal(r.code, 1);
  assert.match(r.stderr, /'nobody' is neither a stored key/);
  r = impact(dir, ['encrypt', '-', '-r', path.join(RUST, 'c4gh/keys/bob.sec')], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /private key/);
  r = impact(dir, ['encrypt', '-', '-r', path.join(RUST, 'c4gh/keys/bob.pub')], { env: { IMPACT_FORCE_TTY: '1' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /terminal/);
});

test('decrypt uses the only stored key, or the one named default, and says what to do when it cannot choose', (t) => {
  const dir = home(t);
  const plain = Buffer.from('a line of controlled data\n');
  let r = raw(dir, ['decrypt', '-'], { input: Buffer.alloc(0) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no Crypt4GH private key/);
  assert.equal(impact(dir, ['keys', 'generate', 'work', '--no-passphrase']).code, 0);
  const enc = raw(dir, ['encrypt', '-', '-r', 'work'], { input: plain });
  assert.equal(enc.code, 0, enc.stderr);
  r = raw(dir, ['decrypt', '-'], { input: enc.stdout });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(plain));
  assert.equal(impact(dir, ['keys', 'generate', 'home', '--no-passphrase']).code, 0);
  r = raw(dir, ['decrypt', '-'], { input: enc.stdout });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /2 Crypt4GH keys are stored/);
  assert.match(r.stderr, /--key NAME/);
});

// Runs impact under script(1) so that it has a terminal, answering each passphrase prompt as it appears.
function onTerminal(dir, args, answers) {
  const { spawn } = require('node:child_process');
  const cmd = [BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], {
      env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), LANG: 'C.UTF-8' } });
    let out = '';
    let asked = 0;
    child.stdout.on('data', (d) => {
      out += d;
      const prompts = (out.match(/passphrase[^\n]*: /gi) || []).length;
      while (asked < prompts && asked < answers.length) child.stdin.write(`${answers[asked++]}\n`);
    });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out: ${out}`)); }, 30000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, asked }); });
  });
}

test('on a terminal the passphrase is asked (twice for a new key) with echo off', async (t) => {
  const dir = home(t);
  let r = await onTerminal(dir, ['keys', 'generate', 'tty'], ['typed secret', 'typed secret']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.asked, 2);
  assert.ok(!r.out.includes('typed secret'), 'the passphrase is not echoed');
  assert.match(r.out, /protection: passphrase \(scrypt\)/);
  r = await onTerminal(dir, ['keys', 'generate', 'typo'], ['one', 'two']);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /the two passphrases differ/);
  const enc = raw(dir, ['encrypt', '-', '-r', 'tty'], { input: 'hello\n' });
  assert.equal(enc.code, 0, enc.stderr);
  fs.writeFileSync(path.join(dir, 'h.c4gh'), enc.stdout);
  r = await onTerminal(dir, ['decrypt', path.join(dir, 'h.c4gh'), '--key', 'tty'], ['typed secret']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /hello/);
});
