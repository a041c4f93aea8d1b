'use strict';
// Install and packaging, from the build folder the suite was built in (IMPACT_BUILD_DIR):
// `cmake --install` into a temporary prefix puts every file where its ecosystem looks for it, and
// `cpack -G DEB` makes a .deb whose Depends names the Debian packages of every library the binary links.
const test = require('node:test');
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

// The Debian package that owns each shared library the binary needs (from ldd and dpkg -S).
function runtimePackages() {
  const pkgs = new Set();
  for (const line of run('ldd', [BIN]).split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line);
    if (!m) continue;
    const real = fs.realpathSync(m[1]);
    const owner = spawnSync('dpkg', ['-S', m[1]], { encoding: 'utf8' });
    const out = owner.status === 0 ? owner.stdout : run('dpkg', ['-S', real]);
    pkgs.add(out.split(':')[0].trim());
  }
  return pkgs;
}

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
  for (const lib of ['libc6', 'libstdc++6', 'libcurl4', 'libssl3', 'libfmt9']) assert.ok(depends.includes(lib), `Depends names ${lib}: ${field('Depends')}`);
  for (const p of runtimePackages()) assert.ok(depends.includes(p), `the binary links a library of ${p}, which Depends lacks`);
  assert.ok(!depends.some((d) => /-dev$/.test(d)), 'no development packages');

  const files = run('dpkg-deb', ['-c', deb]).trim().split('\n').map((l) => l.split(/\s+/).slice(5).join(' '));
  const want = ['./usr/bin/impact', ...Object.keys(COMPLETIONS).map((f) => `./usr/${f}`),
    ...manPages.map((p) => `./usr/share/man/man${p.slice(-1)}/${p}`)];
  for (const f of want) assert.ok(files.includes(f), `the package has ${f}`);
  assert.deepEqual(files.filter((f) => !f.startsWith('./usr/')), []);

  // The packaged binary is stripped and runs.
  const root = tmp(t, 'impact-debx-');
  run('dpkg-deb', ['-x', deb, root]);
  const packaged = path.join(root, 'usr', 'bin', 'impact');
  assert.ok(!/\.debug_info/.test(run('readelf', ['-S', packaged])), 'stripped');
  assert.match(run(packaged, ['--version']), /\b0\.1\.0\b/);
});
