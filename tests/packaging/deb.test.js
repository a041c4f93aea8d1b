'use strict';
// `cpack -G DEB` makes a .deb whose Depends names the Debian package of every library the binary links,
// with every file below /usr.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { BUILD, BIN, run, tmp, manPages, COMPLETIONS } = require('./common');

// The Debian package that owns each library the binary links directly (its NEEDED entries, found by ldd).
function runtimePackages() {
  const needed = [...run('readelf', ['-d', BIN]).matchAll(/\(NEEDED\)\s+Shared library: \[(\S+)\]/g)].map((m) => m[1]);
  const where = new Map([...run('ldd', [BIN]).matchAll(/^\s*(\S+) => (\/\S+)/gm)].map((m) => [m[1], m[2]]));
  const pkgs = new Set();
  for (const so of needed) {
    if (/^ld-linux/.test(so)) { pkgs.add('libc6'); continue; }  // the dynamic loader itself (libc6's)
    const file = where.get(so);
    assert.ok(file, `ldd finds ${so}`);
    const owner = spawnSync('dpkg', ['-S', file], { encoding: 'utf8' });
    const out = owner.status === 0 ? owner.stdout : run('dpkg', ['-S', fs.realpathSync(file)]);
    pkgs.add(out.split(':')[0].trim());
  }
  assert.ok(pkgs.has('libc6'), [...pkgs].join(' '));
  return pkgs;
}

// Start-up (issue 23): a build with the default IMPACT_STATIC_CXX_RUNTIME (and no sanitizer) names no C++
// library at all, only libc's: each shared library costs its loading and relocations at every start.
test('the binary links no shared C++ library (fmt, toml++, pugixml, libstdc++ are built in)', () => {
  const cache = fs.readFileSync(path.join(BUILD, 'CMakeCache.txt'), 'utf8');
  const on = (name) => new RegExp(`^${name}:BOOL=(ON|TRUE|1)$`, 'm').test(cache);
  const needed = [...run('readelf', ['-d', BIN]).matchAll(/\(NEEDED\)\s+Shared library: \[(\S+)\]/g)].map((m) => m[1]);
  for (const lib of ['libfmt', 'libtomlplusplus', 'libpugixml', 'libqrencode', 'libcurl', 'libcrypto'])
    assert.ok(!needed.some((n) => n.startsWith(lib)), `${lib} is not linked: ${needed.join(' ')}`);
  if (on('IMPACT_STATIC_CXX_RUNTIME') && !on('IMPACT_SANITIZE') && !on('IMPACT_FUZZ'))
    assert.deepEqual(needed.filter((n) => !/^(libc|libm|ld-linux[-\w]*)\.so/.test(n)), [], needed.join(' '));
});

test('cpack -G DEB: a package that depends on the Debian libraries it links and installs below /usr', (t) => {
  const out = tmp(t, 'impact-deb-');
  run('cpack', ['-G', 'DEB', '-B', out, '--config', path.join(BUILD, 'CPackConfig.cmake')], { cwd: BUILD, timeout: 300000 });
  const debs = fs.readdirSync(out).filter((f) => f.endsWith('.deb'));
  assert.equal(debs.length, 1, fs.readdirSync(out).join(' '));
  const deb = path.join(out, debs[0]);
  const arch = run('dpkg', ['--print-architecture']).trim();
  assert.equal(debs[0], `impact_0.1.0_${arch}.deb`);

  const info = run('dpkg-deb', ['-I', deb]);
  const field = (name) => (new RegExp(`^ ${name}: (.*)$`, 'm').exec(info) || [])[1] || '';
  assert.equal(field('Package'), 'impact');
  assert.equal(field('Version'), '0.1.0');
  assert.equal(field('Architecture'), arch);
  assert.equal(field('Section'), 'science');
  const depends = field('Depends').split(',').map((d) => d.trim().split(/[ (]/)[0]);
  for (const lib of ['libc6', 'libcurl4', 'libssl3']) assert.ok(depends.includes(lib), `Depends names ${lib}: ${field('Depends')}`);
  for (const p of runtimePackages()) assert.ok(depends.includes(p), `the binary links a library of ${p}, which Depends lacks`);
  assert.ok(!depends.some((d) => /-dev$/.test(d)), 'no development packages');

  const files = run('dpkg-deb', ['-c', deb]).trim().split('\n').map((l) => l.split(/\s+/).slice(5).join(' '));
  const want = ['./usr/bin/impact', ...Object.keys(COMPLETIONS).map((f) => `./usr/${f}`),
    ...manPages.map((p) => `./usr/share/man/man${p.slice(-1)}/${p}.gz`),
    './usr/share/doc/impact/copyright', './usr/share/doc/impact/changelog.gz'];
  for (const f of want) assert.ok(files.includes(f), `the package has ${f}`);
  assert.deepEqual(files.filter((f) => !f.startsWith('./usr/')), []);

  // The packaged binary is stripped and runs.
  const root = tmp(t, 'impact-debx-');
  run('dpkg-deb', ['-x', deb, root]);
  const packaged = path.join(root, 'usr', 'bin', 'impact');
  assert.ok(!/\.debug_info/.test(run('readelf', ['-S', packaged])), 'stripped');
  assert.match(run(packaged, ['--version']), /\b0\.1\.0\b/);

  // Debian's own package checker finds nothing to report: no error, no warning, no informational tag (the
  // profile's default set; pedantic and experimental tags are not asked for).
  const lint = spawnSync('lintian', ['--no-tag-display-limit', '--display-info', deb], { encoding: 'utf8', timeout: 300000 });
  assert.ok(!lint.error, `lintian runs (tests/install-deps.sh installs it): ${lint.error}`);
  // The one override (packaging/debian/lintian-overrides: "words" in machine code) is unused in a build whose
  // code happens to hold none: that is not a finding either.
  const tags = lint.stdout.split('\n').filter((l) => /^[EWI]: /.test(l) && !/unused-override spelling-error-in-binary/.test(l));
  assert.deepEqual(tags, [], lint.stdout + lint.stderr);
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);
});
