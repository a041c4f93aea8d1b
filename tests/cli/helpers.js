'use strict';
// Runs the impact binary as a user would, each test in its own temporary XDG home.
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const BIN = process.env.IMPACT_BIN || path.resolve(__dirname, '../../build/cli/impact');
const FED_STATE = process.env.FED_STATE || '';

function federation() {
  if (!FED_STATE) throw new Error('FED_STATE is not set: these tests need the local federation (ctest starts it)');
  return JSON.parse(fs.readFileSync(path.join(FED_STATE, 'federation.json'), 'utf8'));
}

function home(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-cli-'));
  if (t) t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function baseEnv(dir) {
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    LANG: 'C.UTF-8',
  };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  return env;
}

// Synchronous run with a bounded time; returns {code, stdout, stderr}.
// `bin` runs another program (a shell around impact, say) with impact's environment.
function impact(dir, args, { env = {}, input, timeout = 30000, bin = BIN } = {}) {
  const r = spawnSync(bin, args, { env: { ...baseEnv(dir), ...env }, input, timeout, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// Asynchronous run, for tests whose server lives in this process.
function impactAsync(dir, args, { env = {}, timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { ...baseEnv(dir), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`impact ${args.join(' ')} timed out`)); }, timeout);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

function serviceInfo(id, artifact, url) {
  return {
    id, name: `test ${artifact}`, type: { group: 'org.ga4gh', artifact, version: '1.0.0' },
    organization: { name: 'tests', url: 'https://example.org' }, version: '1.0.0', url,
  };
}

// A loopback server for one test, answering with `handler(req, body)` -> {status, headers, body}, or
// 'drop' to close the connection without an answer.
async function server(t, handler) {
  const seen = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const r = handler(req, body) || { status: 404, body: '' };
      if (r === 'drop') { req.socket.destroy(); return; }
      const payload = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      res.writeHead(r.status, { 'Content-Type': 'application/json', ...(r.headers || {}) });
      res.end(payload);
    });
  });
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); }));
  return { url: `http://127.0.0.1:${s.address().port}`, seen };
}

// An access token of a federation user, got the way a person would (device flow + scripted approval),
// for tests that pass it to impact as IMPACT_TOKEN. Returns the provider's token response.
async function userToken(user = 'alice', scope = 'openid profile email offline_access ga4gh_passport_v1') {
  const fed = federation();
  const post = async (url, form) => {
    const r = await fetch(url, { method: 'POST', body: new URLSearchParams(form), signal: AbortSignal.timeout(10000) });
    return r.json();
  };
  const da = await post(`${fed.issuer}/device/auth`, { client_id: 'impact-cli', scope });
  if (!da.device_code) throw new Error(`device authorization failed: ${JSON.stringify(da)}`);
  const approve = spawnSync(process.execPath,
    [path.join(__dirname, '../federation/oidc/approve.js'), '--issuer', fed.issuer, '--user-code', da.user_code, '--user', user],
    { encoding: 'utf8', timeout: 30000 });
  if (approve.status !== 0) throw new Error(`approval failed: ${approve.stderr}`);
  const t = await post(`${fed.issuer}/token`,
    { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'impact-cli', device_code: da.device_code });
  if (!t.access_token) throw new Error(`token request failed: ${JSON.stringify(t)}`);
  return t;
}

module.exports = { BIN, FED_STATE, federation, home, impact, impactAsync, server, serviceInfo, userToken };

// A home with the profile 'local' for the federation's services (or only the WES at `wes`), and functions
// that run `impact run ...` there with IMPACT_TOKEN=token: run (sync), runAsync, json (parsed --json).
function runHome(t, { token, wes } = {}) {
  const dir = home(t);
  const args = wes ? ['profile', 'add', 'local', '--wes', wes] : ['profile', 'add', 'local', '--registry', federation().registry];
  const r = impact(dir, args);
  if (r.code !== 0) throw new Error(`profile add failed: ${r.stderr}`);
  const env = { IMPACT_TOKEN: token };
  return {
    dir,
    env,
    run: (a, o = {}) => impact(dir, ['run', ...a], { env, timeout: 180000, ...o }),
    runAsync: (a, o = {}) => impactAsync(dir, ['run', ...a], { env, timeout: 300000, ...o }),
    json: (a) => {
      const r2 = impact(dir, ['--json', 'run', ...a], { env, timeout: 180000 });
      if (r2.code !== 0) throw new Error(`impact --json run ${a.join(' ')} exited ${r2.code}: ${r2.stderr}`);
      return JSON.parse(r2.stdout);
    },
  };
}

// A WES server of our own (seeded, or with injected faults: wes/README.md) on a free port, checking tokens
// with the federation's provider; its state (and violations.log) in a temporary folder. -> {state, port}
async function startWes(t, args) {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-wes-'));
  t.after(() => fs.rmSync(state, { recursive: true, force: true }));
  const child = require('node:child_process').fork(path.resolve(__dirname, '../federation/wes/server.js'), ['--port', '0', ...args], {
    env: { PATH: process.env.PATH, HOME: state, FED_STATE: state, FED_ISSUER: federation().issuer },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  t.after(() => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }));
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    child.once('exit', (c) => reject(new Error(`wes exited (${c})`)));
  });
  return { state, port };
}

module.exports.runHome = runHome;
module.exports.startWes = startWes;

// Login helpers (the federation's OIDC provider and its scripted approval), shared by auth, resilience and
// security tests. Token state lives in <home>/state/impact/tokens/<profile>.json.
async function getJson(url, opts = {}) {
  const r = await fetch(url, { ...opts, signal: AbortSignal.timeout(10000) });
  return { status: r.status, json: await r.json().catch(() => null) };
}
const oidcStats = async () => (await getJson(`${federation().issuer}/__stats`)).json;
const resetOidcStats = () => fetch(`${federation().issuer}/__stats`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
const userinfo = (token) => getJson(`${federation().issuer}/me`, { headers: { authorization: `Bearer ${token}` } });
const tokenFile = (dir, name = 'local') => path.join(dir, 'state', 'impact', 'tokens', `${name}.json`);
const readTokenState = (dir) => JSON.parse(fs.readFileSync(tokenFile(dir), 'utf8'));
// Makes the stored access token look expired, as it will be after its lifetime: the next use refreshes.
function expireAccessToken(dir) {
  const s = readTokenState(dir);
  s.access_expires = Math.floor(Date.now() / 1000) - 10;
  fs.writeFileSync(tokenFile(dir), JSON.stringify(s), { mode: 0o600 });
  return s;
}

// Runs `impact login` as a process; once it prints the user code, `onCode(code, child)` acts as the person
// at the browser. Resolves with the finished process' {code, signal, stdout, stderr}.
function login(dir, args, onCode, { env = {}, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['login', ...args], { env: { ...baseEnv(dir), ...env } });
    let stdout = '';
    let stderr = '';
    let acted = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`impact login timed out; stderr: ${stderr}`)); }, timeout);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /enter the code:\s+(\S+)/.exec(stderr);
      if (m && !acted) { acted = true; Promise.resolve(onCode(m[1], child)).catch(reject); }
    });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}
const approve = (code, user = 'alice', extra = []) => require('node:child_process').execFileSync(process.execPath,
  [path.join(__dirname, '../federation/oidc/approve.js'), '--issuer', federation().issuer, '--user-code', code, '--user', user, ...extra],
  { encoding: 'utf8', timeout: 30000 });

// A home with the profile 'local' (from the registry) where `user` logged in with the device flow.
async function loggedIn(t, user = 'alice') {
  const dir = home(t);
  const p = impact(dir, ['profile', 'add', 'local', '--registry', federation().registry]);
  if (p.code !== 0) throw new Error(`profile add failed: ${p.stderr}`);
  const r = await login(dir, ['--no-qr'], (code) => approve(code, user));
  if (r.code !== 0) throw new Error(`impact login exited ${r.code}: ${r.stderr}`);
  return dir;
}

Object.assign(module.exports, {
  getJson, oidcStats, resetOidcStats, userinfo, tokenFile, readTokenState, expireAccessToken, login, approve, loggedIn,
});
