'use strict';
// impact workflow (GA4GH TRS) against the federation's registry in both dialects (trs/server.js: WorkflowHub's
// numeric ids and versions, Dockstore's `#workflow/...` ids, checksums and page-number offsets), discovered
// through the service registry; and `run submit --trs` on the federation's WES.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { federation, home, impact, impactAsync, runHome, server, serviceInfo, userToken } = require('./helpers');

const fed = federation();
const MULTI = '#workflow/github.com/impact-fed/count-variants-multi';
const SOURCES = path.resolve(__dirname, '../federation/trs/workflows/count-variants-multi');
const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// A home whose profile 'local' was discovered from the federation's registry.
function setup(t) {
  const dir = home(t);
  const r = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
  assert.equal(r.code, 0, r.stderr);
  const run = (args, o = {}) => impact(dir, args, { timeout: 60000, ...o });
  const json = (args) => {
    const x = run(['--json', ...args]);
    assert.equal(x.code, 0, `impact --json ${args.join(' ')}: ${x.stderr}`);
    return JSON.parse(x.stdout);
  };
  return { dir, run, json };
}

test('the service registry gives the profile both TRS registries', (t) => {
  const s = setup(t);
  const p = s.json(['profile', 'show']);
  assert.equal(p.trs.workflowhub, fed.services['trs-workflowhub']);
  assert.equal(p.trs.dockstore, fed.services['trs-dockstore']);
  const info = s.json(['service-info', 'trs']);
  const kinds = JSON.stringify(info);
  assert.match(kinds, /org\.impact\.federation\.trs\.workflowhub/);
  assert.match(kinds, /org\.impact\.federation\.trs\.dockstore/);
});

test('search lists the workflows of both registries; text, type and registry filters apply', (t) => {
  const s = setup(t);
  const all = s.json(['workflow', 'search']);
  assert.deepEqual(all.failed, []);
  const ids = all.tools.map((x) => `${x.registry} ${x.id}`).sort();
  assert.deepEqual(ids, [
    'dockstore #workflow/github.com/impact-fed/count-variants',
    'dockstore #workflow/github.com/impact-fed/count-variants-multi',
    'dockstore #workflow/github.com/impact-fed/count-variants-smk',
    'dockstore #workflow/github.com/impact-fed/fails',
    'workflowhub 1', 'workflowhub 2', 'workflowhub 3', 'workflowhub 4',
  ]);  // the unlisted test entries stay unlisted

  const smk = s.json(['workflow', 'search', '--type', 'smk']);
  assert.deepEqual(smk.tools.map((x) => x.name), ['count-variants-smk', 'count-variants-smk']);
  // TEXT matches names or descriptions ("multi-file" is only in one description)
  const multi = s.json(['workflow', 'search', 'multi-file', '--trs', 'workflowhub']);
  assert.deepEqual(multi.tools.map((x) => [x.registry, x.id, x.name]), [['workflowhub', '2', 'count-variants-multi']]);
  assert.deepEqual(multi.tools[0].versions.map((v) => v.name), ['1', '2']);

  const none = s.run(['workflow', 'search', 'no-such-workflow-anywhere']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, '');
});

test('tables never cut ids: the name and description give way; pipes get TSV', (t) => {
  const s = setup(t);
  const tty = (width) => s.run(['workflow', 'search', 'count', '--trs', 'dockstore'], { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: String(width), NO_COLOR: '1' } });
  const wide = tty(150);
  assert.equal(wide.code, 0, wide.stderr);
  assert.match(wide.stdout, /^REGISTRY +ID +NAME +TYPES +VERSIONS +DESCRIPTION\n/);
  assert.match(wide.stdout, /…\n/);  // the description was cut
  for (const width of [150, 110]) {
    const r = tty(width);
    assert.ok(r.stdout.includes(`${MULTI} `), r.stdout);
    for (const line of r.stdout.trimEnd().split('\n')) assert.ok([...line].length <= width, `${width}: ${line}`);
  }
  // narrower: the name and the description give way (with …), never the id
  assert.match(tty(110).stdout, new RegExp(`^dockstore +${MULTI.replace(/[./]/g, '\\$&')} +count-varia… +CWL +v1\\.0,main +Counts the v…$`, 'm'));
  const tsv = s.run(['workflow', 'search', 'count', '--trs', 'dockstore']);
  const rows = tsv.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
  assert.ok(rows.some((r) => r[0] === 'dockstore' && r[1] === MULTI && r[3] === 'CWL' && r[5].endsWith('tools/)')), tsv.stdout);
});

test('show: versions, types, authors; with a version its files and checksums', (t) => {
  const s = setup(t);
  const tool = s.json(['workflow', 'show', MULTI]);
  assert.equal(tool.registry, 'dockstore');  // found in whichever registry knows it
  assert.deepEqual(tool.versions.map((v) => v.name), ['v1.0', 'main']);
  assert.deepEqual(tool.versions[0].author, ['Ada Lovelace', 'Rosalind Franklin']);
  const v = s.json(['workflow', 'show', `${MULTI}:main`]);
  assert.deepEqual(v.versions.map((x) => x.name), ['main']);
  const main = v.files.CWL.find((f) => f.path === 'main.cwl');
  assert.deepEqual(main.checksum, [{ type: 'sha-256', checksum: sha256(path.join(SOURCES, 'main.cwl')) }]);
  const text = s.run(['workflow', 'show', '2:1', '--trs', 'workflowhub']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /tools\/tally\.cwl\tSECONDARY_DESCRIPTOR/);
  const unknown = s.run(['workflow', 'show', '#workflow/github.com/impact-fed/nothing']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no TRS registry of the profile knows/);
});

test('files lists a version\'s files; a type the version lacks is refused by the registry', (t) => {
  const s = setup(t);
  const f = s.json(['workflow', 'files', '2:2', '--trs', 'workflowhub']);
  assert.equal(f.type, 'CWL');
  assert.deepEqual(f.files.map((x) => x.path), ['main.cwl', 'tools/tally.cwl', 'tools/sum.cwl', 'params.json', 'example.vcf']);
  const wdl = s.run(['workflow', 'files', '2:2', '--trs', 'workflowhub', '--type', 'WDL']);
  assert.equal(wdl.code, 1);
  assert.match(wdl.stderr, /Type: WDL not available/);
  const noVersion = s.run(['workflow', 'files', '2']);
  assert.equal(noVersion.code, 2);
  assert.match(noVersion.stderr, /names no version/);
});

test('fetch writes the multi-file workflow with its paths, verified where the registry gives checksums', (t) => {
  const s = setup(t);
  for (const [registry, ref, verified] of [['dockstore', `${MULTI}:main`, 'sha-256'], ['workflowhub', '2:2', '']]) {
    const out = path.join(s.dir, `wf-${registry}`);
    const got = s.json(['workflow', 'fetch', ref, '--trs', registry, '-o', out]);
    assert.equal(got.primary, 'main.cwl');
    assert.equal(got.descriptor_checksum, `sha-256:${sha256(path.join(SOURCES, 'main.cwl'))}`);
    for (const rel of ['main.cwl', 'tools/tally.cwl', 'tools/sum.cwl', 'params.json'])
      assert.equal(sha256(path.join(out, rel)), sha256(path.join(SOURCES, rel)), rel);
    assert.ok(got.files.every((f) => f.verified === verified), JSON.stringify(got.files));
    assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('.impact-')), []);
  }
});

test('fetch refuses a wrong checksum and a path that leaves the folder, writing nothing', (t) => {
  const s = setup(t);
  const bad = path.join(s.dir, 'bad');
  const mismatch = s.run(['workflow', 'fetch', '#workflow/github.com/impact-fed/checksum-mismatch:main', '-o', bad]);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /checksum does not match/);
  assert.equal(fs.existsSync(bad), false);
  const unsafe = s.run(['workflow', 'fetch', '#workflow/github.com/impact-fed/unsafe-path:main', '-o', path.join(s.dir, 'in', 'wf')]);
  assert.equal(unsafe.code, 1);
  assert.match(unsafe.stderr, /not a safe relative path/);
  assert.equal(fs.existsSync(path.join(s.dir, 'in')), false);
  assert.equal(fs.existsSync(path.join(s.dir, 'escape.cwl')), false);
});

test('a profile with --trs NAME=URL, several registries; errors name the missing one', (t) => {
  const dir = home(t);
  const add = impact(dir, ['profile', 'add', 'p', '--trs', `hub=${fed.services['trs-workflowhub']}`,
    '--trs', `dock=${fed.services['trs-dockstore']}`]);
  assert.equal(add.code, 0, add.stderr);
  const r = impact(dir, ['--json', 'workflow', 'search', '--trs', 'hub', '--type', 'CWL']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).tools.map((x) => x.id), ['1', '2', '4']);
  const missing = impact(dir, ['workflow', 'search', '--trs', 'nope']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no TRS registry named 'nope'/);
  const none = home(t);
  impact(none, ['profile', 'add', 'w', '--wes', fed.services.wes]);
  const e = impact(none, ['workflow', 'search']);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /has no TRS registry/);
});

test('run submit --trs sends the fetched multi-file workflow as attachments and tags the run', async (t) => {
  const token = (await userToken('alice')).access_token;
  const s = runHome(t, { token });
  impact(s.dir, ['profile', 'add', 'local', '--force', '--registry', fed.registry]);
  const params = path.join(s.dir, 'params.json');
  fs.copyFileSync(path.join(SOURCES, 'params.json'), params);
  const r = s.run(['submit', '--trs', `${MULTI}:main`, '--params', params, '--wait', '--timeout', '150s']);
  assert.equal(r.code, 0, r.stderr);
  const runId = r.stdout.trim().split('\n')[0];
  const shown = s.json(['show', runId]);
  assert.equal(shown.state, 'COMPLETE');
  const tags = shown.request.tags;
  assert.equal(tags.trs_id, MULTI);
  assert.equal(tags.trs_version, 'main');
  assert.equal(tags.trs_descriptor_checksum, `sha-256:${sha256(path.join(SOURCES, 'main.cwl'))}`);
  assert.equal(shown.request.workflow_url, 'main.cwl');
  // --trs-as uri: the WESkit-like WES takes trs:// without listing it (and, having no TRS, fails the run)
  const weskit = runHome(t, { token, wes: fed.services['wes-weskit'] });
  impact(weskit.dir, ['profile', 'add', 'local', '--force', '--wes', fed.services['wes-weskit'],
    '--trs', `workflowhub=${fed.services['trs-workflowhub']}`]);
  const uri = weskit.run(['submit', '--trs', '3:2', '--trs-as', 'uri']);
  assert.equal(uri.code, 0, uri.stderr);
  assert.match(uri.stderr, /sent as trs:\/\/127\.0\.0\.1:\d+\/ga4gh\/trs\/v2\/3\/2\/SMK/);
});

test('run submit --trs sends trs:// where the WES lists the trs protocol', async (t) => {
  const posts = [];
  const wes = await server(t, (req, body) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/ga4gh/wes/v1/service-info')
      return { status: 200, body: { ...serviceInfo('trs-wes', 'wes', wes.url), workflow_type_versions: { CWL: { workflow_type_version: ['v1.2'] } },
        supported_wes_versions: ['1.1.0'], supported_filesystem_protocols: ['file', 'https', 'trs'],
        workflow_engine_versions: {}, default_workflow_engine_parameters: [], system_state_counts: {}, auth_instructions_url: 'https://x', tags: {} } };
    if (req.method === 'GET' && url.pathname === '/ga4gh/wes/v1/runs') return { status: 200, body: { runs: [], next_page_token: '' } };
    if (req.method === 'POST' && url.pathname === '/ga4gh/wes/v1/runs') {
      posts.push(body);
      return { status: 200, body: { run_id: 'run-trs-1' } };
    }
    return { status: 404, body: { msg: 'no', status_code: 404 } };
  });
  const dir = home(t);
  impact(dir, ['profile', 'add', 'p', '--wes', `${wes.url}/ga4gh/wes/v1`, '--trs', `dock=${fed.services['trs-dockstore']}`]);
  const r = await impactAsync(dir, ['run', 'submit', '--trs', `${MULTI}:main`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'run-trs-1');
  assert.equal(posts.length, 1);
  const enc = encodeURIComponent(MULTI);
  assert.ok(posts[0].includes(`trs://127.0.0.1:${fed.base_port + 17}/api/ga4gh/trs/v2/${enc}/main/CWL`), posts[0]);
  assert.ok(!posts[0].includes('filename="main.cwl"'), 'no attachments');
  assert.match(posts[0], /trs_descriptor_checksum/);
});
