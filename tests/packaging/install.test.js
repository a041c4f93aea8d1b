'use strict';
// `cmake --install` into a temporary prefix puts every file where its ecosystem looks for it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, BUILD, run, tmp, manPages, COMPLETIONS } = require('./common');

test('cmake --install puts the binary, man pages and completions where the ecosystem expects them', (t) => {
  const prefix = tmp(t, 'impact-prefix-');
  run('cmake', ['--install', BUILD, '--prefix', prefix]);

  const bin = path.join(prefix, 'bin', 'impact');
  assert.ok(fs.statSync(bin).mode & 0o111, 'bin/impact is executable');
  assert.match(run(bin, ['--version']), /\b0\.1\.0\b/);
  for (const page of manPages) {
    const installed = path.join(prefix, 'share', 'man', `man${page.slice(-1)}`, page);
    assert.equal(fs.readFileSync(installed, 'utf8'), fs.readFileSync(path.join(ROOT, 'man', page), 'utf8'), page);
  }
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
