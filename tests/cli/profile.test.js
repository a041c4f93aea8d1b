'use strict';
// impact profile add|list|show|use|remove, and the configuration file they keep.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { home, impact } = require('./helpers');

const cfg = (dir) => path.join(dir, 'config', 'impact', 'config.toml');

test('add, list, show, use and remove round trip', (t) => {
  const dir = home(t);
  let r = impact(dir, ['profile', 'add', 'node1', '--issuer', 'https://login.example.org/realms/x',
    '--beacon', 'https://beacon.example.org/api', '--beacon', 'eu=https://eu.example.org/beacon/api',
    '--drs', 'https://drs.example.org/ga4gh/drs/v1', '--wes', 'https://wes.example.org/ga4gh/wes/v1',
    '--storage', 'https://s3.example.org', '--bucket', 'results', '--scope', 'openid', '--scope', 'offline_access',
    '--trust-visa-issuer', 'https://visas.example.org/=https://visas.example.org/jwks']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Saved profile 'node1' with 6 service\(s\).*\(default\)/);
  r = impact(dir, ['profile', 'add', 'node2', '--wes', 'https://other.example.org/ga4gh/wes/v1']);
  assert.equal(r.code, 0, r.stderr);

  const list = JSON.parse(impact(dir, ['profile', 'list', '--json']).stdout).profiles;
  assert.deepEqual(list.map((p) => [p.name, p.default]), [['node1', true], ['node2', false]]);

  const shown = JSON.parse(impact(dir, ['profile', 'show', 'node1', '--json']).stdout);
  assert.equal(shown.issuer, 'https://login.example.org/realms/x');
  assert.equal(shown.client_id, 'impact-cli');
  assert.deepEqual(shown.scopes, ['openid', 'offline_access']);
  assert.deepEqual(shown.beacons, { 'beacon.example.org': 'https://beacon.example.org/api', eu: 'https://eu.example.org/beacon/api' });
  assert.deepEqual(shown.drs, { 'drs.example.org': 'https://drs.example.org/ga4gh/drs/v1' });
  assert.equal(shown.storage.bucket, 'results');
  assert.equal(shown.storage.region, 'us-east-1');
  assert.deepEqual(shown.trusted_visa_issuers, { 'https://visas.example.org/': 'https://visas.example.org/jwks' });

  // show without a name shows the profile in use; --profile and IMPACT_PROFILE select.
  assert.equal(JSON.parse(impact(dir, ['profile', 'show', '--json']).stdout).name, 'node1');
  assert.equal(JSON.parse(impact(dir, ['--profile', 'node2', 'profile', 'show', '--json']).stdout).name, 'node2');
  assert.equal(JSON.parse(impact(dir, ['profile', 'show', '--json'], { env: { IMPACT_PROFILE: 'node2' } }).stdout).name, 'node2');

  assert.equal(impact(dir, ['profile', 'use', 'node2']).code, 0);
  assert.equal(JSON.parse(impact(dir, ['profile', 'show', '--json']).stdout).name, 'node2');
  assert.equal(impact(dir, ['profile', 'remove', 'node2']).code, 0);
  const after = JSON.parse(impact(dir, ['profile', 'list', '--json']).stdout).profiles;
  assert.deepEqual(after.map((p) => [p.name, p.default]), [['node1', false]]);
  // With one profile left it is used even though none is the default.
  assert.equal(JSON.parse(impact(dir, ['profile', 'show', '--json']).stdout).name, 'node1');
});

test('the configuration file is private and human-readable TOML', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'x', '--wes', 'https://wes.example.org/ga4gh/wes/v1']).code, 0);
  const st = fs.statSync(cfg(dir));
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(cfg(dir))).mode & 0o777, 0o700);
  const text = fs.readFileSync(cfg(dir), 'utf8');
  assert.match(text, /^default_profile = ['"]x['"]$/m);
  assert.match(text, /^\[profiles\.x\]$/m);
  assert.match(text, /^wes = ['"]https:\/\/wes\.example\.org\/ga4gh\/wes\/v1['"]$/m);
  assert.deepEqual(fs.readdirSync(path.dirname(cfg(dir))), ['config.toml']);  // no temp files left
});

test('IMPACT_CONFIG and --config choose the file', (t) => {
  const dir = home(t);
  const alt = path.join(dir, 'elsewhere.toml');
  assert.equal(impact(dir, ['--config', alt, 'profile', 'add', 'y', '--wes', 'https://w.example.org']).code, 0);
  assert.ok(fs.existsSync(alt));
  assert.ok(!fs.existsSync(cfg(dir)));
  const r = impact(dir, ['profile', 'list', '--json'], { env: { IMPACT_CONFIG: alt } });
  assert.deepEqual(JSON.parse(r.stdout).profiles.map((p) => p.name), ['y']);
});

test('refusals: duplicate name, plain http to a remote host, bad names, empty profiles', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', 'https://wes.example.org']).code, 0);
  const before = fs.readFileSync(cfg(dir), 'utf8');

  let r = impact(dir, ['profile', 'add', 'a', '--wes', 'https://other.example.org']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exists already/);
  assert.match(r.stderr, /--force/);

  r = impact(dir, ['profile', 'add', 'b', '--wes', 'http://wes.example.org/ga4gh/wes/v1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing plain http to wes\.example\.org/);

  r = impact(dir, ['profile', 'add', 'bad name', '--wes', 'https://w.example.org']);
  assert.equal(r.code, 2);
  r = impact(dir, ['profile', 'add', 'empty']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no services/);
  r = impact(dir, ['profile', 'add', 'c', '--bucket', 'b']);
  assert.equal(r.code, 2);
  assert.equal(fs.readFileSync(cfg(dir), 'utf8'), before);

  r = impact(dir, ['profile', 'add', 'a', '--force', '--wes', 'https://other.example.org']);
  assert.equal(r.code, 0);
  assert.equal(JSON.parse(impact(dir, ['profile', 'show', 'a', '--json']).stdout).wes, 'https://other.example.org');
});

test('profile set changes one service and keeps the rest; the missing-service hints name it as it works', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'w', '--wes', 'https://wes.example.org/ga4gh/wes/v1']).code, 0);
  const missing = impact(dir, ['htsget', 'reads', 'NA12878', '-o', 'x.bam']);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /\nhint: run: impact profile set w --htsget URL\n$/);
  const set = impact(dir, ['profile', 'set', 'w', '--htsget', 'https://htsget.example.org/reads', '--tes', 'https://tes.example.org/ga4gh/tes/v1']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stderr, /Profile 'w' updated; its other settings are as they were/);
  const shown = JSON.parse(impact(dir, ['--json', 'profile', 'show', 'w']).stdout);
  assert.equal(shown.htsget, 'https://htsget.example.org');
  assert.equal(shown.tes, 'https://tes.example.org/ga4gh/tes/v1');
  assert.equal(shown.wes, 'https://wes.example.org/ga4gh/wes/v1');
  const nothing = impact(dir, ['profile', 'set', 'w']);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /nothing to set\nhint: give --wes, --tes, --archive or --htsget URL/);
  const plain = impact(dir, ['profile', 'set', 'w', '--archive', 'http://archive.example.org']);
  assert.notEqual(plain.code, 0, 'plain http to a remote host is refused as in profile add');
});

test('unknown profiles are reported with a hint', (t) => {
  const dir = home(t);
  let r = impact(dir, ['profile', 'show']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no profile is configured/);
  assert.match(r.stderr, /hint: run: impact profile add/);
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', 'https://w.example.org']).code, 0);
  for (const args of [['profile', 'use', 'zz'], ['profile', 'remove', 'zz'], ['profile', 'show', 'zz'], ['--profile', 'zz', 'doctor']]) {
    r = impact(dir, args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /no profile named 'zz'/);
  }
});

test('a malformed configuration file gives a clear error and is left untouched', (t) => {
  const dir = home(t);
  fs.mkdirSync(path.dirname(cfg(dir)), { recursive: true });
  const broken = '[profiles.a]\nwes = "https://w.example.org"\n[profiles.b\n';
  fs.writeFileSync(cfg(dir), broken);
  for (const args of [['profile', 'list'], ['profile', 'add', 'c', '--wes', 'https://w.example.org'], ['doctor']]) {
    const r = impact(dir, args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /^impact: .*config\.toml:3:\d+: /);
    assert.match(r.stderr, /hint: fix the file/);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 2);
  }
  assert.equal(fs.readFileSync(cfg(dir), 'utf8'), broken);
});

test('unknown settings are warned about, not fatal', (t) => {
  const dir = home(t);
  fs.mkdirSync(path.dirname(cfg(dir)), { recursive: true });
  fs.writeFileSync(cfg(dir), '[profiles.a]\nwes = "https://w.example.org"\nwsm = "typo"\n');
  const r = impact(dir, ['profile', 'list']);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /warning: .*unknown setting 'profiles\.a\.wsm'/);
});

test('a client secret file is stored by path; the secret never enters the config or argv', (t) => {
  const dir = home(t);
  const secretFile = path.join(dir, 'ci.secret');
  fs.writeFileSync(secretFile, 'super-secret-value-123', { mode: 0o600 });
  const r = impact(dir, ['profile', 'add', 'ci', '--issuer', 'https://id.example.org', '--client-id', 'impact-ci',
    '--client-secret-file', secretFile]);
  assert.equal(r.code, 0, r.stderr);
  const text = fs.readFileSync(cfg(dir), 'utf8');
  assert.ok(!text.includes('super-secret-value-123'));
  assert.ok(text.includes(secretFile));
  const missing = impact(dir, ['profile', 'add', 'ci2', '--issuer', 'https://id.example.org', '--client-secret-file', '/nonexistent']);
  assert.equal(missing.code, 2);
});

test('a configuration file named by --config or IMPACT_CONFIG must exist, except for profile add', (t) => {
  const dir = home(t);
  const missing = path.join(dir, 'no-such.toml');
  let r = impact(dir, ['--config', missing, 'profile', 'list']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^impact: the configuration file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist\n`));
  assert.match(r.stderr, /hint: check the path given to --config, or create the file with: impact --config .* profile add NAME/);
  assert.equal(r.stdout, '');
  r = impact(dir, ['doctor'], { env: { IMPACT_CONFIG: missing } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /hint: check the path given to \$IMPACT_CONFIG/);
  assert.ok(!fs.existsSync(missing), 'reading creates nothing');
  // The default file may be missing: no profiles yet.
  r = impact(dir, ['--json', 'profile', 'list']);
  assert.equal(r.code, 0, r.stderr);
  // profile add creates the named file.
  assert.equal(impact(dir, ['--config', missing, 'profile', 'add', 'n', '--wes', 'https://w.example.org']).code, 0);
  assert.ok(fs.existsSync(missing));
});

test('profile remove forgets the profile\'s login: a new profile of the same name starts logged out', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'gone', '--wes', 'https://w.example.org']).code, 0);
  const tokens = path.join(dir, 'state', 'impact', 'tokens');
  fs.mkdirSync(tokens, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(tokens, 'gone.json'), '{"access_token": "x"}', { mode: 0o600 });
  const r = impact(dir, ['--json', 'profile', 'remove', 'gone']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { removed: 'gone', logged_out: true });
  assert.ok(!fs.existsSync(path.join(tokens, 'gone.json')), 'the stored tokens are gone');
  // Without a login the removal says so and still succeeds.
  assert.equal(impact(dir, ['profile', 'add', 'gone', '--wes', 'https://w.example.org']).code, 0);
  assert.deepEqual(JSON.parse(impact(dir, ['--json', 'profile', 'remove', 'gone']).stdout), { removed: 'gone', logged_out: false });
});
