'use strict';
// Completion as a user meets it: bash, zsh and fish, each in a pseudo-terminal (tmux), loading the committed
// scripts the way they are installed, and Tab pressed on real command lines: after on/off flags (--json, -v,
// -f, --wait), run ids from a WES, profiles and files. And help in terminals of 80 and 200 columns.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, fork } = require('node:child_process');
const { BIN, home, impact } = require('./helpers');

const DIR = path.resolve(__dirname, '../../completions');
const RUN_IDS = ['seed-000001', 'seed-000002', 'seed-000003'];

// The federation's WES program with three finished runs of alice's, its fake identities on (`Bearer user:alice`,
// a test-only switch), so no OIDC provider is needed.
async function seededWes(t) {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-wes-'));
  t.after(() => fs.rmSync(state, { recursive: true, force: true }));
  const child = fork(path.resolve(__dirname, '../federation/wes/server.js'), ['--port', '0', '--seed-runs', '3', '--state', state], {
    env: { PATH: process.env.PATH, HOME: state, FED_STATE: state, FED_WES_FAKE_AUTH: '1' },
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  t.after(() => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }));
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    child.once('exit', (c) => reject(new Error(`wes exited (${c})`)));
  });
  return `http://127.0.0.1:${port}/ga4gh/wes/v1`;
}

// A home with the profiles alpha (the default: the WES) and beta, and a work folder with two files.
async function homeWithWes(t) {
  const dir = home(t);
  const wes = await seededWes(t);
  for (const [name, flag] of [['alpha', `--wes=${wes}`], ['beta', '--beacon=http://127.0.0.1:9/api']]) {
    const r = impact(dir, ['profile', 'add', name, flag]);
    assert.equal(r.code, 0, r.stderr);
  }
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  fs.writeFileSync(path.join(work, 'workflow.cwl'), 'cwlVersion: v1.2\n');
  fs.writeFileSync(path.join(work, 'params.json'), '{}');
  const env = {
    PATH: `${path.dirname(path.resolve(BIN))}:${process.env.PATH}`, HOME: dir, LANG: 'C.UTF-8', TERM: 'screen',
    XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_DATA_HOME: path.join(dir, 'data'), IMPACT_TOKEN: 'user:alice',
  };
  // The run ids come from `impact run list`: check that it answers before a shell asks it.
  const ls = impact(dir, ['run', 'list', '--format', 'tsv'], { env: { IMPACT_TOKEN: 'user:alice' } });
  assert.equal(ls.code, 0, ls.stderr);
  for (const id of RUN_IDS) assert.match(ls.stdout, new RegExp(`^${id}\\t`, 'm'));
  return { dir, work, env };
}

const PROMPT = 'READY>';

// One shell in a tmux session of its own (its own server socket), 200 columns wide.
class Pty {
  constructor(t, { dir, work, env }, argv, columns = 200) {
    this.env = env;
    this.sock = path.join(dir, `tmux-${argv[0]}-${columns}.sock`);
    this.tmux(['-f', '/dev/null', 'new-session', '-d', '-x', String(columns), '-y', '100', '-c', work, '--', ...argv]);
    t.after(() => this.tmux(['kill-server'], { check: false }));
  }

  tmux(args, { check = true } = {}) {
    const r = spawnSync('tmux', ['-S', this.sock, ...args], { env: this.env, encoding: 'utf8', timeout: 10000 });
    if (check) assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  type(text) { this.tmux(['send-keys', '-t', '0', '-l', text]); }
  keys(...k) { this.tmux(['send-keys', '-t', '0', ...k]); }
  screen(join = false) { return this.tmux(['capture-pane', '-p', ...(join ? ['-J'] : []), '-t', '0']).replace(/\s+$/, ''); }

  // Polls the screen until `ok(screen)` holds, up to 15 s; returns the screen.
  async until(ok, what) {
    const deadline = Date.now() + 15000;
    let s = this.screen();
    while (!ok(s)) {
      if (Date.now() > deadline) assert.fail(`${what}; the screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
      s = this.screen();
    }
    return s;
  }

  // An empty command line on a clear screen: the line killed and the screen cleared by the line editor itself
  // (not Ctrl-C: its signal may be handled after the keys that follow).
  async fresh() {
    for (let attempt = 0; ; ++attempt) {
      this.keys('C-e', 'C-u', 'C-l');
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        if (this.screen() === PROMPT) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (attempt === 4) assert.fail(`no clear screen with the prompt; the screen:\n${this.screen()}`);
    }
  }

  // Types `line`, presses Tab `tabs` times and waits for `ok(screen)`; returns the screen.
  async complete(line, tabs, ok, what) {
    await this.fresh();
    this.type(line);
    await this.until((s) => s.includes(line.trimEnd()), `the typed line '${line}'`);
    for (let i = 0; i < tabs; ++i) this.keys('Tab');
    return this.until(ok, `${what} after '${line}<Tab>'`);
  }
}

const words = (s) => new Set(s.split(/\s+/));
// fish's pager shows `…eed-000001` for seed-000001 when `seed-00000` is typed already.
const listing = (want) => (s) => want.every((w) => words(s).has(w) ||
  [...words(s)].some((x) => x.startsWith('…') && x.length > 4 && w.endsWith(x.slice(1))));
const promptLine = (s) => s.split('\n').find((l) => l.startsWith(PROMPT)) || '';
const completedTo = (line) => (s) => promptLine(s).startsWith(`${PROMPT} ${line}`);

// The same command lines in every shell; one Tab lists the choices (bash with show-all-if-ambiguous, zsh
// with no_list_ambiguous: else a Tab that inserts a common prefix lists nothing).
async function checkShell(pty) {
  const list = 1;
  // After the on/off --json, the subcommands of run, not the top-level commands.
  let s = await pty.complete('impact --json run ', list, listing(['submit', 'list', 'logs', 'cancel']), 'the run subcommands');
  for (const top of ['profile', 'login', 'doctor']) assert.ok(!words(s).has(top), `top-level '${top}' offered after 'impact --json run'`);
  // After the on/off -f, run ids from the WES.
  await pty.complete('impact run logs -f ', list, listing(RUN_IDS), 'the run ids');
  await pty.complete('impact --json run show s', list, listing(RUN_IDS), 'the run ids after --json');
  // After the on/off --wait, the flags of run submit.
  s = await pty.complete('impact run submit x.cwl --wait --', list, listing(['--params', '--attach', '--timeout']), 'the flags of run submit');
  // -v takes no value: `sh` under run is show, not search.
  s = await pty.complete('impact -v run sh', 1, completedTo('impact -v run show'), 'run show');
  assert.ok(!promptLine(s).includes('search'));
  // Profiles, for --profile and for profile use.
  await pty.complete('impact --profile ', list, listing(['alpha', 'beta']), 'the profiles');
  await pty.complete('impact profile use b', 1, completedTo('impact profile use beta'), 'the profile beta');
  // Files, for the workflow of run submit and for --params after an on/off flag.
  await pty.complete('impact run submit wo', 1, completedTo('impact run submit workflow.cwl'), 'the workflow file');
  await pty.complete('impact run submit workflow.cwl --wait --params pa', 1,
    completedTo('impact run submit workflow.cwl --wait --params params.json'), 'the params file');
}

// Starts `argv` in a terminal, runs `setup` there (loading the script as it is installed) and checks.
async function inShell(t, argv, setup) {
  const pty = new Pty(t, await homeWithWes(t), argv);
  pty.type(`${setup}; echo LOADED`);
  pty.keys('Enter');
  await pty.until((s) => /^LOADED\n/m.test(s) && s.endsWith(PROMPT), 'the script loaded');
  await checkShell(pty);
}

test('bash: completion through a terminal after on/off flags, for run ids, profiles and files', (t) =>
  inShell(t, ['bash', '--norc', '--noprofile'],
    `PS1='${PROMPT} '; bind 'set show-all-if-ambiguous on'; source ${path.join(DIR, 'impact.bash')}`));

test('zsh: completion through a terminal (the script found on $fpath by compinit)', (t) =>
  inShell(t, ['zsh', '-f'],
    `PS1='${PROMPT} '; fpath=(${DIR} $fpath); autoload -Uz compinit; compinit -u -d $HOME/.zcompdump; setopt no_list_ambiguous`));

test('fish: completion through a terminal', (t) =>
  inShell(t, ['fish', '--no-config'], `function fish_prompt; echo -n '${PROMPT} '; end; source ${path.join(DIR, 'impact.fish')}`));

// Help in a terminal (its width read from the terminal itself): wrapped at words by impact, so the terminal
// never wraps a line (a word cut at the edge), and wider lines where the terminal is wider.
test('help follows the terminal width: 80 and 200 columns', async (t) => {
  const dir = home(t);
  const env = { PATH: `${path.dirname(path.resolve(BIN))}:${process.env.PATH}`, HOME: dir, LANG: 'C.UTF-8', TERM: 'screen',
    XDG_CONFIG_HOME: path.join(dir, 'config') };
  const longest = {};
  for (const columns of [80, 200]) {
    const pty = new Pty(t, { dir, work: dir, env }, ['sh', '-c', 'impact run submit --help; echo HELP-DONE; read x'], columns);
    const s = await pty.until((x) => x.includes('HELP-DONE'), 'the help printed');
    assert.equal(pty.screen(true), s, `at ${columns} columns the terminal wrapped a line of the help`);
    assert.match(s, /^Usage: impact run submit/m);
    longest[columns] = Math.max(...s.split('\n').map((l) => [...l].length));
    assert.ok(longest[columns] <= columns, `${columns}: ${longest[columns]}`);
  }
  assert.ok(longest[200] > 80, 'the help uses a wider terminal');
});
