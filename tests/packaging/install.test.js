'use strict';
// `cmake --install` into a temporary prefix puts every file where its ecosystem looks for it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { ROOT, BUILD, run, tmp, manPages, COMPLETIONS } = require('./common');

test('cmake --install puts the binary, man pages and completions where the ecosystem expects them', (t) => {
  const prefix = tmp(t, 'impact-prefix-');
  run('cmake', ['--install', BUILD, '--prefix', prefix]);

  const bin = path.join(prefix, 'bin', 'impact');
  assert.ok(fs.statSync(bin).mode & 0o111, 'bin/impact is executable');
  assert.match(run(bin, ['--version']), /\b0\.1\.0\b/);
  // Man pages gzip-compressed (as Debian policy wants), with no name or time in the gzip header (-n), so
  // the same page always gives the same bytes.
  for (const page of manPages) {
    const installed = fs.readFileSync(path.join(prefix, 'share', 'man', `man${page.slice(-1)}`, `${page}.gz`));
    assert.equal(zlib.gunzipSync(installed).toString('utf8'), fs.readFileSync(path.join(ROOT, 'man', page), 'utf8'), page);
    assert.equal(installed.readUInt32LE(4), 0, `${page}.gz has no time stamp`);
    assert.equal(installed[3] & 0x08, 0, `${page}.gz has no file name`);
  }
  assert.ok(!fs.readdirSync(path.join(prefix, 'share', 'man', 'man1')).some((f) => !f.endsWith('.gz')), 'no uncompressed page');
  // Every name in a page's NAME line can be given to man: the others are links to the page.
  for (const page of manPages) {
    const line = /\n\.SH NAME\n([^\n]*)/.exec(fs.readFileSync(path.join(ROOT, 'man', page), 'utf8'))[1];
    const names = line.split(' \\- ')[0].replace(/\\-/g, '-').split(', ');
    const sec = page.slice(-1);
    for (const name of names) {
      const installed = path.join(prefix, 'share', 'man', `man${sec}`, `${name}.${sec}.gz`);
      assert.equal(fs.realpathSync(installed), fs.realpathSync(path.join(prefix, 'share', 'man', `man${sec}`, `${page}.gz`)), `man ${name} opens ${page}`);
    }
  }
  // The licence as a machine-readable copyright file, and the changelog, in the documentation folder.
  const doc = path.join(prefix, 'share', 'doc', 'impact');
  assert.match(fs.readFileSync(path.join(doc, 'copyright'), 'utf8'), /^License: Apache-2\.0$/m);
  assert.match(zlib.gunzipSync(fs.readFileSync(path.join(doc, 'changelog.gz'))).toString(), /^impact \(0\.1\.0\) /);
  for (const sec of ['1', '5', '7']) assert.ok(fs.readdirSync(path.join(prefix, 'share', 'man', `man${sec}`)).length > 0, `man${sec}`);
  for (const [dest, src] of Object.entries(COMPLETIONS))
    assert.equal(fs.readFileSync(path.join(prefix, dest), 'utf8'), fs.readFileSync(path.join(ROOT, src), 'utf8'), dest);
  // bash-completion loads the file by the command's name and finds the completion function in it.
  const complete = run('bash', ['-c', `. '${path.join(prefix, 'share/bash-completion/completions/impact')}' && complete -p impact`]);
  assert.match(complete, /-F \S+ impact$/m);
  // Everything went below the prefix.
  const manifest = fs.readFileSync(path.join(BUILD, 'install_manifest.txt'), 'utf8').trim().split('\n');
  assert.ok(manifest.length >= manPages.length + 4);
  assert.deepEqual(manifest.filter((f) => !f.startsWith(`${prefix}/`)), []);
});
