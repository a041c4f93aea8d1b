'use strict';
// The manual pages in man/ against the binary and the code: every command group has a page, every page lints
// clean (groff, mandoc), references only pages that exist, and impact(1), impact-config(5) and impact-json(7)
// cover what the program has (groups, exit codes, configuration keys).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { home, impact } = require('./helpers');

const ROOT = path.resolve(__dirname, '../..');
const MAN = path.join(ROOT, 'man');
const pages = fs.readdirSync(MAN).filter((f) => /^impact.*\.[157]$/.test(f)).sort();
const read = (page) => fs.readFileSync(path.join(MAN, page), 'utf8');
// The text of a section (.SH NAME up to the next .SH), with roff's escaped dashes made plain.
const section = (page, name) => {
  const m = new RegExp(`^\\.SH "?${name}"?\\n([\\s\\S]*?)(?=^\\.SH |(?![\\s\\S]))`, 'm').exec(read(page));
  return m ? m[1].replace(/\\-/g, '-') : '';
};

const dir = home(null);
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const help = impact(dir, ['--help']);
const groups = /\nSubcommands:\n([\s\S]*?)(\n\n|$)/.exec(help.stdout)[1].split('\n')
  .map((l) => /^ {2}(\S+)/.exec(l)).filter(Boolean).map((m) => m[1]);

test('impact --help lists the command groups', () => {
  assert.equal(help.code, 0);
  for (const g of ['profile', 'login', 'search', 'drs', 'run', 'results', 'completion']) assert.ok(groups.includes(g), g);
});

test('every command group has a man page that names it', () => {
  const named = new Map();   // impact-GROUP -> page
  for (const p of pages) for (const n of section(p, 'NAME').split(' - ')[0].split(',')) named.set(n.trim(), p);
  const missing = groups.filter((g) => !named.has(`impact-${g}`));
  assert.deepEqual(missing, [], `groups without a page: ${missing.join(', ')}`);
  for (const g of groups) assert.match(read(named.get(`impact-${g}`)), new RegExp(`^\\.B(R)? impact ${g.replace('-', '\\\\-')}\\b`, 'm'),
    `${named.get(`impact-${g}`)} shows how to call impact ${g}`);
});

test('every page lints clean with groff -man -ww and mandoc -T lint', () => {
  for (const p of pages) {
    const g = spawnSync('groff', ['-man', '-ww', '-z', path.join(MAN, p)], { encoding: 'utf8' });
    assert.equal(g.status, 0, `${p}: ${g.stderr}`);
    assert.equal(g.stderr, '', `groff on ${p}`);
    const m = spawnSync('mandoc', ['-T', 'lint', '-W', 'warning', path.join(MAN, p)], { encoding: 'utf8' });
    assert.ok(!m.error, 'mandoc is installed (tests/install-deps.sh)');
    assert.equal(m.stdout + m.stderr, '', `mandoc on ${p}`);
    assert.equal(m.status, 0, p);
  }
});

test('SEE ALSO points only at pages that exist, and impact(1) points at every page', () => {
  const refs = (p) => [...section(p, 'SEE ALSO').matchAll(/\.BR (impact[a-z0-9-]*) \((\d)\)/g)].map((m) => `${m[1]}.${m[2]}`);
  for (const p of pages) {
    assert.ok(refs(p).length > 0 || p === 'impact.1', `${p} has a SEE ALSO`);
    for (const r of refs(p)) assert.ok(pages.includes(r), `${p} refers to ${r}, which does not exist`);
  }
  const fromMain = new Set(refs('impact.1'));
  assert.deepEqual(pages.filter((p) => p !== 'impact.1' && !fromMain.has(p)), []);
  const commands = section('impact.1', 'COMMANDS').replace(/\\f[BRI]/g, '');
  for (const g of groups) assert.match(commands, new RegExp(`^\\.B [^\\n]*(?<![a-z-])${g}\\b`, 'm'), `impact(1) COMMANDS has ${g}`);
});

test('impact(1) has every exit code of --help-exit-codes, the run wait codes, environment, files and examples', () => {
  const codes = impact(dir, ['--help-exit-codes']).stdout.split('\n').map((l) => /^\s+(\d+)\s/.exec(l)).filter(Boolean).map((m) => m[1]);
  const documented = [...section('impact.1', 'EXIT STATUS').matchAll(/^\.TP\n\.B (\d+)$/gm)].map((m) => m[1]);
  for (const c of new Set([...codes, '10', '11', '12', '13'])) assert.ok(documented.includes(c), `exit code ${c}`);
  const status = section('impact.1', 'EXIT STATUS');
  for (const s of ['EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'PREEMPTED']) assert.match(status, new RegExp(s));
  const env = section('impact.1', 'ENVIRONMENT');
  for (const v of ['IMPACT_PROFILE', 'IMPACT_CONFIG', 'IMPACT_TOKEN', 'IMPACT_CLIENT_SECRET', 'NO_COLOR', 'XDG_STATE_HOME']) assert.match(env, new RegExp(v));
  assert.match(section('impact.1', 'FILES'), /config\.toml/);
  assert.match(section('impact.1', 'EXAMPLES'), /impact auth status --min-valid/);
});

test('impact-config(5) documents every key the configuration reader knows, and its example loads cleanly', () => {
  const src = fs.readFileSync(path.join(ROOT, 'lib/src/config.cpp'), 'utf8');
  // Keys are compared by name in the reader, or listed in its field tables as {"key", &Struct::member}.
  const keys = [...src.matchAll(/\b(?:k|fk|sk) == "([a-z_]+)"|\{"([a-z_]+)", &\w+::\w+\}/g)].map((m) => m[1] ?? m[2]);
  assert.ok(keys.length >= 15, `found ${keys.length} keys in config.cpp`);
  const page = read('impact-config.5');
  for (const k of keys) assert.match(page, new RegExp(`^\\.BR ${k} " \\(`, 'm'), `key ${k}`);

  const example = /^\.SH EXAMPLE\n\.nf\n([\s\S]*?)^\.fi$/m.exec(page)[1].replace(/\\-/g, '-');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'impact-cfg-')), 'config.toml');
  fs.writeFileSync(file, example);
  const r = impact(dir, ['--config', file, '--json', 'profile', 'list']);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no unknown keys');
  const profiles = JSON.parse(r.stdout).profiles;
  assert.deepEqual(profiles.map((p) => p.name).sort(), ['ci', 'local']);
  assert.equal(profiles.find((p) => p.name === 'local').storage.result_prefix, 'runs/{run_id}/');
});

test('impact-json(7) describes the output of each group that prints data', () => {
  const page = read('impact-json.7').replace(/\\-/g, '-');
  for (const g of groups.filter((x) => !['login', 'logout', 'completion'].includes(x)))
    assert.match(page, new RegExp(`^\\.B(R)? "?${g}\\b`, 'm'), `impact-json(7) has ${g}`);
});

// Help that teaches: every command a user can run says what it is for and shows examples.
test('every command (and subcommand) has a purpose and examples in --help', () => {
  const subcommands = (text) => {
    const m = /\nSubcommands:\n([\s\S]*?)(\n\n|$)/.exec(text);
    return m ? m[1].split('\n').map((l) => /^ {2}(\S+)\s+(\S.*)$/.exec(l)).filter(Boolean).map((x) => [x[1], x[2]]) : [];
  };
  const missing = [];
  const walk = (cmd, depth) => {
    const r = impact(dir, [...cmd, '--help']);
    assert.equal(r.code, 0, cmd.join(' '));
    const subs = subcommands(r.stdout);
    if (subs.length === 0 || depth === 0) {
      if (depth > 0 && !/\nExamples:\n {2}[^\n]*\bimpact\b/.test(r.stdout)) missing.push(cmd.join(' '));
    }
    for (const [name, purpose] of subs) {
      assert.ok(purpose.length > 10, `impact ${[...cmd, name].join(' ')} has a one-line purpose`);
      if (depth < 2) walk([...cmd, name], depth + 1);
    }
  };
  walk([], 0);
  assert.deepEqual(missing, [], `commands without examples: ${missing.join(', ')}`);
});
