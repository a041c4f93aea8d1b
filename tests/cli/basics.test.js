'use strict';
// The command line itself: help, usage errors, version, output modes. No network.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { home, impact } = require('./helpers');

test('no arguments prints the overview and exits 0', (t) => {
  const r = impact(home(t), []);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /The usual journey/);
  assert.match(r.stdout, /impact profile add/);
});

test('--help lists the commands and the global options', (t) => {
  const r = impact(home(t), ['--help']);
  assert.equal(r.code, 0);
  for (const cmd of ['profile', 'service-info', 'doctor', 'version']) assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
  for (const opt of ['--profile', '--json', '--format', '--verbose', '--debug', '--no-color', '--config', '--cacert'])
    assert.ok(r.stdout.includes(opt), opt);
});

test('subcommand help shows examples', (t) => {
  const r = impact(home(t), ['profile', 'add', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Examples:/);
  assert.match(r.stdout, /--registry/);
});

test('an unknown command is a usage error (exit 2) with a hint, never a CLI11 code', (t) => {
  const r = impact(home(t), ['frobnicate']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^impact: unknown command 'frobnicate'/);
  assert.match(r.stderr, /hint: run: impact --help/);
});

test('an unknown flag and a missing argument are usage errors', (t) => {
  const dir = home(t);
  let r = impact(dir, ['profile', 'list', '--bogus']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^impact: /);
  assert.match(r.stderr, /impact profile list --help/);
  r = impact(dir, ['profile', 'add']);
  assert.equal(r.code, 2);
  r = impact(dir, ['--format', 'xml', 'version']);
  assert.equal(r.code, 2);
  // A group alone is not a mistake: its help, exit 0 (as gh and kubectl).
  r = impact(dir, ['profile']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: impact profile \[OPTIONS\] SUBCOMMAND$/m);
  assert.equal(r.stderr, '');
});

test('typos are echoed with "did you mean", in one line, exit 2 (never CLI11\'s own words)', (t) => {
  const dir = home(t);
  const cases = [
    [['run', 'lst'], "impact: unknown command 'lst' for 'impact run'\nhint: did you mean list? (run: impact run --help)\n"],
    [['serch'], "impact: unknown command 'serch'\nhint: did you mean search? (run: impact --help)\n"],
    [['--jsn', 'version'], "impact: unknown option '--jsn' for 'impact version'\nhint: did you mean --json? (run: impact version --help)\n"],
    [['profile', 'list', '--bogus'], "impact: unknown option '--bogus' for 'impact profile list'\nhint: run: impact profile list --help\n"],
    [['help', 'serch'], "impact: unknown command 'serch'\nhint: did you mean search? (run: impact --help)\n"],
  ];
  for (const [args, stderr] of cases) {
    const r = impact(dir, args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, stderr, args.join(' '));
    assert.equal(r.stdout, '');
  }
  const help = impact(dir, ['help', 'profile', 'add']);
  assert.equal(help.code, 0);
  assert.equal(help.stdout, impact(dir, ['profile', 'add', '--help']).stdout);
});

test('version and --version print the versions of impact, libcurl and OpenSSL', (t) => {
  const dir = home(t);
  for (const args of [['version'], ['--version']]) {
    const r = impact(dir, args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^impact \d+\.\d+\.\d+ \(libcurl \d+\.\d+\.\d+, OpenSSL \d/);
  }
  const j = JSON.parse(impact(dir, ['version', '--json']).stdout);
  assert.match(j.version, /^\d+\.\d+\.\d+$/);
  assert.match(j.curl, /^\d+\./);
  assert.match(j.tls, /OpenSSL/);
  assert.ok(j.build_type);
});

test('--help-exit-codes prints the documented table', (t) => {
  const r = impact(home(t), ['--help-exit-codes']);
  assert.equal(r.code, 0);
  for (const code of ['0', '1', '2', '4', '5', '6', '8', '130']) assert.match(r.stdout, new RegExp(`^\\s+${code}\\s`, 'm'));
});

test('tables on a TTY are styled; NO_COLOR and --no-color turn colour off; pipes get TSV', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', 'https://wes.example.org/ga4gh/wes/v1']).code, 0);
  const tty = impact(dir, ['profile', 'list'], { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '100' } });
  assert.equal(tty.code, 0);
  assert.match(tty.stdout, /\x1b\[1mNAME/);
  const plain = impact(dir, ['profile', 'list'], { env: { IMPACT_FORCE_TTY: '1', NO_COLOR: '1' } });
  assert.doesNotMatch(plain.stdout, /\x1b\[/);
  assert.match(plain.stdout, /^NAME\s+DEFAULT/);
  const flag = impact(dir, ['profile', 'list', '--no-color'], { env: { IMPACT_FORCE_TTY: '1' } });
  assert.doesNotMatch(flag.stdout, /\x1b\[/);
  const pipe = impact(dir, ['profile', 'list']);
  assert.equal(pipe.stdout, 'a\t*\t\t0\t0\tyes\t-\n');
  const forced = impact(dir, ['profile', 'list', '--format', 'table']);
  assert.match(forced.stdout, /^NAME/);
});

test('a URL wider than the terminal is never cut, in a table or with --format table in a pipe', (t) => {
  const dir = home(t);
  const long = 'https://' + 'w'.repeat(120) + '.example.org/ga4gh/wes/v1';
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', long]).code, 0);
  const r = impact(dir, ['profile', 'show', '--no-color'], { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '60' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^wes\\s+${long.replace(/[./]/g, '\\$&')}$`, 'm'));
  assert.doesNotMatch(r.stdout, /…/);
  const piped = impact(dir, ['profile', 'show', '--format', 'table']);
  assert.ok(piped.stdout.includes(long), piped.stdout);
});

// Start-up (issue 23): a command that needs no network opens none of the libraries impact opens on first use
// (libcurl, libcrypto, libqrencode, libjq). LD_DEBUG=files makes the dynamic loader name every object it opens;
// `impact version`, which reports libcurl's version, shows that the check sees a library that is opened.
test('the commands that need no network open none of the libraries loaded on first use', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'local', '--wes', 'http://127.0.0.1:9/ga4gh/wes/v1']).code, 0);
  const opened = (args) => {
    const r = impact(dir, args, { env: { LD_DEBUG: 'files' } });
    assert.equal(r.signal, null);
    return [...r.stderr.matchAll(/file=(lib(?:curl|crypto|ssl|qrencode|jq)\.so[.\d]*)/g)].map((m) => m[1]);
  };
  for (const args of [['--version'], ['--help'], ['profile', 'list'], ['__complete', 'profile'], ['auth', 'status'],
    ['token'], ['run', '--help']])
    assert.deepEqual(opened(args), [], `impact ${args.join(' ')}`);
  assert.ok(opened(['version']).includes('libcurl.so.4'));
});

// libcurl is opened on the first request (dlopen), not at start-up: with a libcurl.so.4 that cannot be loaded
// first on the library path, the commands that need no network still work, and one that needs it fails with
// a one-line error naming libcurl (exit 1), not a crash.
test('libcurl is loaded on the first request; without it, a network command is a clear error', (t) => {
  const dir = home(t);
  const libs = path.join(dir, 'libs');
  fs.mkdirSync(libs);
  fs.writeFileSync(path.join(libs, 'libcurl.so.4'), '');  // not an ELF file: dlopen fails
  const env = { LD_LIBRARY_PATH: libs };
  let r = impact(dir, ['profile', 'add', 'local', '--wes', 'http://127.0.0.1:9/ga4gh/wes/v1'], { env });
  assert.equal(r.code, 0, r.stderr);
  r = impact(dir, ['--help'], { env });
  assert.equal(r.code, 0, r.stderr);
  r = impact(dir, ['profile', 'list'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /local/);
  r = impact(dir, ['version'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /libcurl not available/);
  // --version, on the fast path, loads nothing: the versions impact was built against, the same first line.
  r = impact(dir, ['--version'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^impact \d+\.\d+\.\d+ \(libcurl \d+\.\d+\.\d+, OpenSSL \d/);
  r = impact(dir, ['service-info', 'wes'], { env });
  assert.equal(r.signal, null);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot use libcurl.*libcurl\.so\.4/);
  assert.match(r.stderr, /hint: install libcurl/);
  // With the real library the same command gets as far as the network.
  r = impact(dir, ['service-info', 'wes']);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /libcurl/);
  assert.match(r.stderr, /cannot connect to 127\.0\.0\.1:9/);
});
