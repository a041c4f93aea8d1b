'use strict';
// Shared by the packaging tests: the build folder the suite was built in (IMPACT_BUILD_DIR), a checked
// command runner, temporary folders, and the files an install must hold.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '../..');
const BUILD = process.env.IMPACT_BUILD_DIR || path.join(ROOT, 'build');
const BIN = path.join(BUILD, 'cli', 'impact');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
function tmp(t, prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}
const manPages = fs.readdirSync(path.join(ROOT, 'man')).filter((f) => /\.[157]$/.test(f));
const COMPLETIONS = {
  'share/bash-completion/completions/impact': 'completions/impact.bash',
  'share/zsh/site-functions/_impact': 'completions/_impact',
  'share/fish/vendor_completions.d/impact.fish': 'completions/impact.fish',
};

module.exports = { ROOT, BUILD, BIN, run, tmp, manPages, COMPLETIONS };
