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

// Examples that work when pasted (issue 21): every example of every command's --help, of the manual pages and
// of the sh blocks of the docs is valid shell (bash -n), and holds no unquoted redirection, pipe or glob
// inside what is meant as one argument (`--filter age:>:P40Y` sends `age:` and writes a file `:P40Y`).
function surprises(cmd) {
  const found = [];
  let quote = '';
  for (let i = 0; i < cmd.length; ++i) {
    const c = cmd[i];
    const prev = i > 0 ? cmd[i - 1] : ' ';
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"') ++i;
      continue;
    }
    if (c === '\\') { ++i; continue; }
    if (c === "'" || c === '"') { quote = c; continue; }
    if (c === '#' && /\s/.test(prev)) break;  // a comment
    if (c === '$' && cmd[i + 1] === '{') { i = cmd.indexOf('}', i); if (i < 0) break; continue; }
    if ('*?['.includes(c)) found.push(`unquoted '${c}' (a glob) at ${i}`);
    if ((c === '<' || c === '>') && cmd[i + 1] !== '(') {
      // A redirection starts a word (optionally after a descriptor number or &); glued to a word it cuts it.
      const before = cmd.slice(0, i).replace(/[0-9&]*$/, '');
      if (before.length && !/[\s<>(]$/.test(before)) found.push(`'${c}' glued to a word at ${i}`);
      if (cmd[i + 1] === c) ++i;
    }
    if (c === '|' && cmd[i + 1] !== '|' && (!/\s/.test(prev) && prev !== '|' || !/\s/.test(cmd[i + 1] || ' '))) found.push(`'|' inside a word at ${i}`);
  }
  if (quote) found.push('an unclosed quote');
  return found;
}

// Lines joined where they end with a backslash (the help wraps long examples so).
const joined = (lines) => lines.reduce((acc, l) => {
  if (acc.length && acc[acc.length - 1].endsWith('\\')) acc[acc.length - 1] = `${acc[acc.length - 1].slice(0, -1).trimEnd()} ${l.trim()}`;
  else acc.push(l);
  return acc;
}, []);

function helpExamples() {
  const out = [];
  const walk = (cmd, depth) => {
    const text = impact(dir, [...cmd, '--help']).stdout;
    for (const m of text.matchAll(/(?:^|\n)Examples:\n((?: {2}.*\n?)+)/g))
      for (const l of joined(m[1].split('\n').filter((x) => x.trim()))) out.push({ where: `impact ${cmd.join(' ')} --help`, cmd: l.trim() });
    const subs = /\nSubcommands:\n([\s\S]*?)(\n\n|$)/.exec(text);
    if (subs && depth < 2) for (const l of subs[1].split('\n')) { const n = /^ {2}(\S+)/.exec(l); if (n) walk([...cmd, n[1].replace(/,$/, "")], depth + 1); }
  };
  walk([], 0);
  return out;
}

function manExamples() {
  const out = [];
  for (const p of pages.filter((x) => x.endsWith('.1'))) {
    for (const m of read(p).matchAll(/^\.nf\n([\s\S]*?)^\.fi$/gm)) {
      const lines = m[1].split('\n').map((l) => l.replace(/\\-/g, '-').replace(/\\\(aq/g, "'").replace(/\\\(dq/g, '"').replace(/\\&/g, '').replace(/\\e/g, '\\'));
      for (const l of joined(lines.filter((x) => x.trim()))) if (/(^|[\s($])impact /.test(l)) out.push({ where: `man ${p}`, cmd: l.trim() });
    }
  }
  return out;
}

function docExamples() {
  const out = [];
  for (const f of ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((x) => x.endsWith('.md')).map((x) => `docs/${x}`)]) {
    for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm))
      for (const l of joined(m[1].split('\n').filter((x) => x.trim()))) if (/(^|[\s($])impact /.test(l)) out.push({ where: f, cmd: l.replace(/^\$ /, '').trim() });
  }
  return out;
}

test('the example checker finds what a shell would do to an unquoted filter, and passes the quoted one', () => {
  assert.notDeepEqual(surprises('impact search individuals --filter age:>:P40Y'), []);
  assert.notDeepEqual(surprises('impact run list --state *_ERROR'), []);
  assert.notDeepEqual(surprises('impact run list --format table|tsv'), []);
  assert.deepEqual(surprises("impact search individuals --filter 'age:>:P40Y'"), []);
  assert.deepEqual(surprises('impact keys show --pem > work.pub 2>/dev/null'), []);
  assert.deepEqual(surprises('curl -H @<(printf \'Authorization: Bearer %s\\n\' "$(impact token)") URL   # [x]'), []);
});

test('every example in --help, the manual pages and the docs pastes as intended', () => {
  const all = [...helpExamples(), ...manExamples(), ...docExamples()];
  assert.ok(all.filter((e) => e.where.endsWith('--help')).length >= 60, 'examples found in --help');
  assert.ok(all.filter((e) => e.where.startsWith('man')).length >= 30, 'examples found in the manual pages');
  const bad = [];
  for (const e of all) {
    const n = spawnSync('bash', ['-n', '-c', e.cmd], { encoding: 'utf8', timeout: 10000 });
    if (n.status !== 0) bad.push(`${e.where}: ${e.cmd}\n    bash -n: ${n.stderr.trim()}`);
    const s = surprises(e.cmd);
    if (s.length) bad.push(`${e.where}: ${e.cmd}\n    ${s.join('; ')}`);
  }
  assert.deepEqual(bad, []);
});

// Each command's own examples (CLI11 copied a group's footer into its subcommands), the group pages with
// examples, and the global options named on every command's page.
test('every command shows examples of itself, names the global options, and fits 80 columns (a pipe)', () => {
  const missing = [];
  const walk = (cmd, depth) => {
    const text = impact(dir, [...cmd, '--help']).stdout;
    const ex = /\nExamples:\n((?: {2}.*\n?)+)/.exec(text);
    // Global options and --format's value may stand between `impact` and the command.
    const shown = ex ? ex[1].replace(/ \\\n\s+/g, ' ').replace(/ --(profile|format) \S+| --json| -v\b/g, '') : '';
    if (cmd.length && !shown.includes(`impact ${cmd.join(' ')}`)) missing.push(cmd.join(' '));
    for (const l of text.split('\n')) assert.ok([...l].length <= 80, `impact ${cmd.join(' ')} --help: a line longer than 80 columns: ${l}`);
    if (cmd.length) assert.match(text, /\nGlobal options \(see impact --help\):\n {2}--profile NAME, --json, --jq EXPR, --wide, --header,\s+--format table\|tsv\|json,\s+-v\/--verbose/, cmd.join(' '));
    const subs = /\nSubcommands:\n([\s\S]*?)(\n\n|$)/.exec(text);
    if (subs && depth < 2) for (const l of subs[1].split('\n')) { const n = /^ {2}(\S+)/.exec(l); if (n) walk([...cmd, n[1].replace(/,$/, "")], depth + 1); }
  };
  walk([], 0);
  assert.deepEqual(missing, [], `commands whose examples do not show them: ${missing.join(', ')}`);
});
