'use strict';
// Output for people and scripts (issue 21, items 1, 10 and 11): ids never cut in a real terminal (tmux at 80
// and 200 columns) nor in any format, --wide, --header, --json FIELDS, --jq, one JSON shape per listing,
// run show in a pipe, and the output flags that contradict each other. The servers are fakes in this process.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, home, impact, impactAsync, server, serviceInfo } = require('./helpers');

const RUN_IDS = ['9e32b9aa-c036-4f8c-9abb-8546a1f0c0de', '0b7f4c2e-51aa-4e0b-b7f3-0c1d2e3f4a5b'];
const LONG_TAG = 'an experiment whose description goes on and on well past any terminal width ' + 'x'.repeat(60);
const TASK_ID = 'task-7f3e2d1c-0a9b-4c8d-8e7f-6a5b4c3d2e1f';

function wesHandler(base) {
  return (req) => {
    const u = new URL(req.url, 'http://x');
    const p = u.pathname.replace(/^\/ga4gh\/wes\/v1/, '');
    if (p === '/service-info') return { status: 200, body: serviceInfo('org.test.wes', 'wes', base) };
    if (p === '/runs' && req.method === 'GET') {
      return { status: 200, body: { runs: RUN_IDS.map((id, i) => ({
        run_id: id, state: 'COMPLETE', start_time: `2026-12-04T1${i}:00:00Z`, end_time: `2026-12-04T1${i}:05:00Z`,
        tags: { impact_request_id: `req-${i}`, experiment: LONG_TAG } })), next_page_token: '' } };
    }
    const m = /^\/runs\/([^/]+)(\/status|\/tasks)?$/.exec(p);
    if (!m || !RUN_IDS.includes(m[1])) return { status: 404, body: { msg: 'run not found', status_code: 404 } };
    if (m[2] === '/status') return { status: 200, body: { run_id: m[1], state: 'COMPLETE' } };
    if (m[2] === '/tasks') {
      return { status: 200, body: { task_logs: [{ id: TASK_ID, name: 'a step with a name far longer than it needs to be '.repeat(3),
        exit_code: 0, start_time: '2026-12-04T10:01:00Z', end_time: '2026-12-04T10:02:00Z' }], next_page_token: '' } };
    }
    return { status: 200, body: {
      run_id: m[1], state: 'COMPLETE',
      request: { workflow_url: 'wf.cwl', workflow_type: 'CWL', workflow_type_version: 'v1.2', workflow_params: {},
        tags: { impact_request_id: 'req-0', experiment: 'short' } },
      run_log: { name: 'wf', start_time: '2026-12-04T10:00:00Z', end_time: '2026-12-04T10:05:00Z', exit_code: 0 },
      outputs: { out: 's3://bucket/runs/' + m[1] + '/out.txt' }, task_logs: [],
    } };
  };
}

async function wesHome(t) {
  const dir = home(t);
  let base = '';
  const srv = await server(t, (req, body) => wesHandler(base)(req, body));
  base = `${srv.url}/ga4gh/wes/v1`;
  const r = impact(dir, ['profile', 'add', 'local', '--wes', base]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, base, env: { IMPACT_TOKEN: 'test-token' } };
}

// Runs impact in a detached tmux session `width` columns wide (a real terminal: isatty, TIOCGWINSZ) and
// returns the screen (wrapped lines joined, as a user copying from it sees them) and the exit status, once
// the command has printed its exit marker. Bounded: 20 s.
function sh(args) { return args.map((a) => `'${String(a).replace(/'/g, "'\\''")}'`).join(' '); }
function tmux(sock, args, env) {
  return new Promise((resolve, reject) => {
    execFile('tmux', ['-S', sock, '-f', '/dev/null', ...args], { env, timeout: 10000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}
async function inTerminal(t, dir, args, { width, env = {} }) {
  const sock = path.join(dir, `tmux-${width}-${Math.random().toString(36).slice(2)}.sock`);
  const fullEnv = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache'), LANG: 'C.UTF-8', TERM: 'xterm', ...env };
  const marker = 'impact-exited';
  // The pane's shell holds the screen open after impact ends, until the server is killed below.
  const cmd = `${sh([BIN, ...args])}; echo "${marker} $?"; exec sleep 120`;
  await tmux(sock, ['new-session', '-d', '-x', String(width), '-y', '60', cmd], fullEnv);
  t.after(() => tmux(sock, ['kill-server'], fullEnv).catch(() => {}));
  const deadline = Date.now() + 20000;
  for (;;) {
    const screen = await tmux(sock, ['capture-pane', '-p', '-J', '-S', '-', '-E', '-'], fullEnv);
    const m = new RegExp(`^${marker} (\\d+)$`, 'm').exec(screen);
    if (m) return { code: Number(m[1]), screen: screen.slice(0, m.index) };
    if (Date.now() > deadline) throw new Error(`impact ${args.join(' ')} did not finish in tmux: ${screen}`);
    await new Promise((resolve) => setTimeout(resolve, 50));  // polling the screen, bounded by the deadline
  }
}

test('run list in a terminal: every run id whole at 80 and 200 columns; tags cut with … at 80, whole with --wide', async (t) => {
  const { dir, env } = await wesHome(t);
  for (const width of [80, 200]) {
    const r = await inTerminal(t, dir, ['run', 'list'], { width, env });
    assert.equal(r.code, 0, r.screen);
    for (const id of RUN_IDS) assert.match(r.screen, new RegExp(`^${id}\\s+COMPLETE\\s+2026-12-04T1\\d:00:00Z`, 'm'), `${width}: ${r.screen}`);
    assert.doesNotMatch(r.screen, /impact_request_id/, 'impact\'s own tag is not shown');
    if (width === 80) assert.match(r.screen, /^\S+\s+COMPLETE\s+\S+\s+\S+\s+experim…$/m, 'the tags give way');
    else assert.match(r.screen, /experiment=an experiment whose description goes on.*x…$/m, 'the tags fill what is left');
    // At 200 columns the table fits; at 80 the ids and times alone are wider, and the terminal wraps the rows
    // (as kubectl's) rather than impact cutting an id: the joined screen still holds each id whole.
    if (width === 200) for (const line of r.screen.trimEnd().split('\n')) assert.ok([...line].length <= width, line);
  }
  const wide = await inTerminal(t, dir, ['run', 'list', '--wide'], { width: 80, env });
  assert.equal(wide.code, 0, wide.screen);
  assert.ok(wide.screen.includes(`experiment=${LONG_TAG}`), wide.screen);
  assert.doesNotMatch(wide.screen, /…/);
});

test('run show and drs-like ids stay whole at 80 columns; free text (the task name) is cut', async (t) => {
  const { dir, env } = await wesHome(t);
  const r = await inTerminal(t, dir, ['run', 'show', RUN_IDS[0]], { width: 80, env });
  assert.equal(r.code, 0, r.screen);
  assert.match(r.screen, new RegExp(`^Run\\s+${RUN_IDS[0]}$`, 'm'));
  assert.match(r.screen, new RegExp(`^${TASK_ID}\\s+a step …\\s+0\\s+2026-12-04T10:01:00Z\\s+2026-12-04T10:02:00Z$`, 'm'));
  assert.match(r.screen, new RegExp(`^Output\\s+out: s3://bucket/runs/${RUN_IDS[0]}/out.txt$`, 'm'));
  assert.match(r.screen, /^Tags\s+experiment=short$/m, 'no impact_request_id');
});

test('--format table in a pipe is never cut; TSV and --header; run list hides impact_request_id', async (t) => {
  const { dir, env } = await wesHome(t);
  const table = await impactAsync(dir, ['run', 'list', '--format', 'table'], { env });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^RUN_ID\s+STATE\s+STARTED\s+ENDED\s+TAGS$/m);
  assert.ok(table.stdout.includes(`experiment=${LONG_TAG}`), 'not cut to 80 columns in a pipe');
  const tsv = await impactAsync(dir, ['run', 'list', '--header'], { env });
  assert.equal(tsv.code, 0, tsv.stderr);
  assert.equal(tsv.stdout, 'RUN_ID\tSTATE\tSTARTED\tENDED\tTAGS\n' +
    `${RUN_IDS[1]}\tCOMPLETE\t2026-12-04T11:00:00Z\t2026-12-04T11:05:00Z\texperiment=${LONG_TAG}\n` +
    `${RUN_IDS[0]}\tCOMPLETE\t2026-12-04T10:00:00Z\t2026-12-04T10:05:00Z\texperiment=${LONG_TAG}\n`);
  const json = await impactAsync(dir, ['--json', 'run', 'list'], { env });
  assert.equal(JSON.parse(json.stdout).runs[0].tags.impact_request_id, 'req-1', '--json keeps the server\'s data');
});

test('run show in a pipe: every line names what it holds, tasks included', async (t) => {
  const { dir, env } = await wesHome(t);
  const r = await impactAsync(dir, ['run', 'show', RUN_IDS[0]], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => l.split('\t')[0]),
    ['run', 'state', 'workflow', 'type', 'started', 'ended', 'exit_code', 'tags', 'params', 'output', 'task']);
  assert.equal(lines[0], `run\t${RUN_IDS[0]}`);
  assert.equal(lines[7], 'tags\texperiment=short');
  assert.match(lines[10], new RegExp(`^task\\t${TASK_ID}\\ta step with a name[^\\t]*\\t0\\t2026-12-04T10:01:00Z\\t2026-12-04T10:02:00Z$`));
});

test('--json FIELDS selects fields of each item; an unknown field exits 2 naming the fields there are', async (t) => {
  const { dir, env } = await wesHome(t);
  for (const args of [['run', 'list', '--json=run_id,state'], ['--json=run_id,state', 'run', 'list']]) {
    const r = await impactAsync(dir, args, { env });
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), { runs: [{ run_id: RUN_IDS[1], state: 'COMPLETE' }, { run_id: RUN_IDS[0], state: 'COMPLETE' }] });
  }
  const plain = await impactAsync(dir, ['--json', 'run', 'list'], { env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok('start_time' in JSON.parse(plain.stdout).runs[0], 'plain --json is unchanged');
  const one = await impactAsync(dir, ['run', 'show', RUN_IDS[0], '--json=state'], { env });
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), { state: 'COMPLETE' });
  const bad = await impactAsync(dir, ['run', 'list', '--json=id,state'], { env });
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.equal(bad.stderr, "impact: unknown JSON field 'id'\nhint: the fields here are: end_time, run_id, start_time, state, tags\n");
  const syntax = impact(dir, ['--json=run id', 'profile', 'list']);
  assert.equal(syntax.code, 2);
  assert.match(syntax.stderr, /^impact: --json=run id: not a list of field names\nhint: name the fields with commas between them/);
});

test('--jq filters with libjq: strings as text, other values one per line; bad programs exit 2', async (t) => {
  const { dir, env } = await wesHome(t);
  const ids = await impactAsync(dir, ['run', 'list', '--jq', '.runs[].run_id'], { env });
  assert.equal(ids.code, 0, ids.stderr);
  assert.equal(ids.stdout, `${RUN_IDS[1]}\n${RUN_IDS[0]}\n`);
  const objs = await impactAsync(dir, ['run', 'list', '--json=run_id', '--jq', '.runs[]'], { env });
  assert.equal(objs.stdout, `{"run_id":"${RUN_IDS[1]}"}\n{"run_id":"${RUN_IDS[0]}"}\n`);
  const bad = impact(dir, ['profile', 'list', '--jq', '.[[']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^impact: --jq: .*syntax error/);
  assert.match(bad.stderr, /\nhint: see jq\(1\) for the language/);
  const runtime = impact(dir, ['profile', 'list', '--jq', '.profiles | error("stop here")']);
  assert.equal(runtime.code, 1);
  assert.match(runtime.stderr, /^impact: --jq: stop here\n/);
});

test('--jq without libjq on the library path: a clear error, exit 1', (t) => {
  const dir = home(t);
  // A libjq.so.1 that is no library, first on the path: dlopen fails as it would without the package.
  const libs = path.join(dir, 'libs');
  fs.mkdirSync(libs);
  fs.writeFileSync(path.join(libs, 'libjq.so.1'), 'not a library');
  const r = impact(dir, ['profile', 'list', '--jq', '.'], { env: { LD_LIBRARY_PATH: libs } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^impact: --jq needs libjq, which cannot be used: .*libjq\.so\.1/);
  assert.match(r.stderr, /\nhint: install libjq \(Debian and Ubuntu: the libjq1 package\), or pipe --json into jq\(1\)\n$/);
  const plain = impact(dir, ['profile', 'list', '--json'], { env: { LD_LIBRARY_PATH: libs } });
  assert.equal(plain.code, 0, 'libjq is only opened for --jq');
});

test('--json (or --jq) with --format tsv or table is refused, exit 2; --format json is fine', (t) => {
  const dir = home(t);
  for (const [args, first] of [
    [['--json', '--format', 'tsv', 'profile', 'list'], '--json and --format tsv'],
    [['--format', 'table', 'profile', 'list', '--json'], '--json and --format table'],
    [['--jq', '.', '--format', 'tsv', 'profile', 'list'], '--jq and --format tsv'],
  ]) {
    const r = impact(dir, args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^impact: ${first} ask for two output formats\\nhint: use one of them: --json \\(or --format json\\) for JSON, --format \\w+ for `));
  }
  const ok = impact(dir, ['--json', '--format', 'json', 'profile', 'list']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { profiles: [] });
});

test('listings are objects: profile list and keys list', (t) => {
  const dir = home(t);
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', 'https://wes.example.org/ga4gh/wes/v1']).code, 0);
  const r = impact(dir, ['profile', 'list', '--json=name,default']);
  // The word after a plain --json is never FIELDS: it may be an id that reads like a field name.
  const shown = impact(dir, ['profile', 'show', '--json', 'a']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(JSON.parse(shown.stdout).name, 'a');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { profiles: [{ name: 'a', default: true }] });
  const k = impact(dir, ['keys', 'list', '--json']);
  assert.equal(k.code, 0, k.stderr);
  assert.deepEqual(JSON.parse(k.stdout), { keys: [] });
});

test('the TSV columns documented in impact(1) are the ones --header prints', (t) => {
  const dir = home(t);
  const page = fs.readFileSync(path.resolve(__dirname, '../../man/impact.1'), 'utf8');
  const section = /^\.SH OUTPUT\n([\s\S]*?)^\.SH /m.exec(page)[1];
  const documented = (cmd) => new RegExp(`^\\.B ${cmd.replace(/ /g, ' ')}\\n(.*)$`, 'm').exec(section)[1].split(', ').join('\t');
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', 'https://wes.example.org/ga4gh/wes/v1']).code, 0);
  for (const [cmd, args] of [['profile list', ['profile', 'list']], ['beacon list', ['beacon', 'list']]]) {
    const r = impact(dir, [...args, '--header']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], documented(cmd), cmd);
  }
});

test('doctor with colour on: the escape codes do not shift the columns', async (t) => {
  const dir = home(t);
  const srv = await server(t, (req) => (req.url.endsWith('/service-info')
    ? { status: 200, body: serviceInfo('org.test.wes', 'wes', 'x') } : { status: 404, body: '' }));
  assert.equal(impact(dir, ['profile', 'add', 'a', '--wes', `${srv.url}/ga4gh/wes/v1`]).code, 0);
  const r = await inTerminal(t, dir, ['doctor'], { width: 200 });
  const lines = r.screen.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('SERVICE'));
  assert.ok(header, r.screen);
  const at = header.indexOf('DETAIL');
  const rows = lines.slice(lines.indexOf(header) + 1).filter((l) => /\s(ok|warn|FAIL)\s/.test(l));
  assert.ok(rows.length > 0, r.screen);
  for (const row of rows) assert.match(row.slice(at - 2, at), /^ {2}$/, `the DETAIL column starts at the same place: ${row}`);
  // and in colour, the status is coloured once, plainly laid out
  const coloured = await impactAsync(dir, ['doctor'], { env: { IMPACT_FORCE_TTY: '1', IMPACT_WIDTH: '200' } });
  assert.match(coloured.stdout, /\x1b\[32mok\x1b\[0m/);
  assert.doesNotMatch(coloured.stdout, /\^\[/, 'no escape code made visible');
});

// A DRS server with one object whose bytes it serves itself.
async function drsHome(t, id = 'obj-5a1e0c7d-6b2f-4e8a-9c3d-1f2e3d4c5b6a') {
  const dir = home(t);
  const bytes = Buffer.from('hello, federation\n');
  const sha = require('node:crypto').createHash('sha256').update(bytes).digest('hex');
  let base = '';
  const srv = await server(t, (req) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/drs/service-info') return { status: 200, body: serviceInfo('t.drs', 'drs', '') };
    if (u.pathname === `/data/${id}`) return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: bytes.toString() };
    if (u.pathname === `/drs/objects/${id}` && req.method === 'GET') {
      return { status: 200, body: { id, name: 'a file with a rather long and descriptive name.txt', self_uri: `drs://x/${id}`,
        size: bytes.length, created_time: '2024-01-01T00:00:00Z', checksums: [{ type: 'sha-256', checksum: sha }],
        access_methods: [{ type: 'https', access_url: { url: `${base}/data/${id}` } }] } };
    }
    return { status: 404, body: { msg: 'no such object', status_code: 404 } };
  });
  base = srv.url;
  assert.equal(impact(dir, ['profile', 'add', 'x', '--drs', `d=${srv.url}/drs`]).code, 0);
  return { dir, uri: `drs://${new URL(srv.url).host}/${id}`, sha };
}

test('drs info of one object at 80 columns: the URI and the checksum whole', async (t) => {
  const { dir, uri, sha } = await drsHome(t);
  const r = await inTerminal(t, dir, ['drs', 'info', uri], { width: 80 });
  assert.equal(r.code, 0, r.screen);
  assert.ok(r.screen.includes(uri), r.screen);
  assert.ok(r.screen.includes(sha), r.screen);
});

test('a download into a folder that cannot be made: the error once, naming the folder, not the .impact-part file', async (t) => {
  const { dir, uri } = await drsHome(t);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'not a folder');
  const r = await impactAsync(dir, ['drs', 'download', uri, '-o', path.join(file, 'sub')]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `impact: ${uri}: cannot create ${path.join(file, 'sub')}: Not a directory\nhint: check the folder's permissions\n`);
  // A folder where no file can be made (sysfs: root too is refused): the file asked for, once.
  const ro = await impactAsync(dir, ['drs', 'download', uri, '-o', '/sys/kernel']);
  assert.equal(ro.code, 1);
  assert.equal(ro.stderr, `impact: ${uri}: cannot create a file with a rather long and descriptive name.txt in /sys/kernel: Permission denied\nhint: check the folder's permissions\n`);
  const gone = await impactAsync(dir, ['drs', 'download', uri, '-o', '/proc/1']);
  assert.equal(gone.code, 1);
  assert.doesNotMatch(gone.stderr, /impact-part|does not exist/);
  assert.equal(gone.stderr.split('\n').filter((l) => l.startsWith('impact:')).length, 1, gone.stderr);
});

test('run cancel of an unknown run: the error once, the run named once, exit 1', async (t) => {
  const { dir, env } = await wesHome(t);
  const r = await impactAsync(dir, ['run', 'cancel', 'nope-run'], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'impact: cancelling run nope-run failed: HTTP 404: run not found\n');
  const two = await impactAsync(dir, ['run', 'cancel', 'nope-run', 'other-run'], { env });
  assert.equal(two.code, 1);
  assert.equal(two.stderr, 'impact: cancelling run nope-run failed: HTTP 404: run not found\n' +
    'impact: cancelling run other-run failed: HTTP 404: run not found\n' +
    'impact: all 2 runs failed; the first: cancelling run nope-run failed: HTTP 404: run not found\n');
});

test('service-info at 80 columns: the URL keeps its port; the free-text name gives way', async (t) => {
  const { dir, base, env } = await wesHome(t);
  const r = await inTerminal(t, dir, ['service-info'], { width: 80, env });
  assert.equal(r.code, 0, r.screen);
  assert.ok(r.screen.includes(base), `${base} whole in: ${r.screen}`);
});

test('every table the commands print has its columns in impact(1), OUTPUT', () => {
  const page = fs.readFileSync(path.resolve(__dirname, '../../man/impact.1'), 'utf8');
  const section = /^\.SH OUTPUT\n([\s\S]*?)^\.SH /m.exec(page)[1].replace(/\n(?!\.)/g, ' ');
  const cli = path.resolve(__dirname, '../../cli');
  let found = 0;
  for (const file of fs.readdirSync(cli).filter((f) => /^cmd_.*\.cpp$/.test(f))) {
    const src = fs.readFileSync(path.join(cli, file), 'utf8');
    for (const m of src.matchAll(/Table \w+\{\{((?:"[^"]*",? ?)+)\}/g)) {
      const columns = [...m[1].matchAll(/"([^"]*)"/g)].map((c) => c[1]).join(', ');
      assert.ok(section.includes(columns), `${file}: the columns ${columns} are not documented in impact(1)`);
      found += 1;
    }
  }
  assert.ok(found >= 20, `only ${found} tables found: the pattern no longer matches the sources`);
});
