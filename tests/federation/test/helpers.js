'use strict';
// Small helpers shared by the federation's test files.
//
//   const { tempDir, until, deviceLogin } = require('./helpers');

const fs = require('fs');
const os = require('os');
const path = require('path');
const assert = require('node:assert');
const { spawn } = require('child_process');

const ROOT = path.join(__dirname, '..');

// Temp dirs, removed at exit unless FED_TEST_KEEP is set.
const TEMP = [];
function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  TEMP.push(d);
  return d;
}
process.on('exit', () => {
  if (!process.env.FED_TEST_KEEP) for (const d of TEMP) try { fs.rmSync(d, { recursive: true, force: true }); } catch (e) { /* busy */ }
});

// Poll cond() (sync or async) every 100 ms until it returns something truthy; throws after ms.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (let i = 0; i < 5000 && Date.now() < end; i++) {
    const v = await cond();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// A device-flow login at the federation's provider (oidc/server.js), approved by oidc/approve.js as
// `user`; resolves to the token response (access_token, id_token, refresh_token, ...).
async function deviceLogin(issuer, user, scope = 'openid profile ga4gh_passport_v1') {
  const post = async (url, params) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(), signal: AbortSignal.timeout(10000) });
    return { status: res.status, json: await res.json() };
  };
  const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const da = await post(disc.device_authorization_endpoint, { client_id: 'impact-cli', scope });
  assert.strictEqual(da.status, 200, JSON.stringify(da.json));
  const approve = spawn(process.execPath, [path.join(ROOT, 'oidc', 'approve.js'), '--issuer', issuer, '--user-code', da.json.user_code, '--user', user], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  approve.stderr.on('data', (c) => { err += c; });
  const code = await new Promise((r) => approve.on('exit', r));
  assert.strictEqual(code, 0, `approve.js failed: ${err}`);
  return until(async () => {
    const r = await post(disc.token_endpoint, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: da.json.device_code, client_id: 'impact-cli' });
    if (r.status === 200) return r.json;
    if (!['authorization_pending', 'slow_down'].includes(r.json.error)) throw new Error(JSON.stringify(r.json));
    return null;
  }, 30000, 'device token');
}

// Start oidc/server.js on free ports with its own state folder and point this process at it (FED_ISSUER,
// FED_VISA_ISSUER, as lib/auth.js reads them). -> {urls: {issuer, visa_issuer, ...}, state, child, stop()};
// stop() ends the provider (TERM, then KILL after 20 s) and restores the environment.
async function startOidc(prefix = 'fed-oidc-') {
  const state = tempDir(prefix);
  const child = spawn(process.execPath, ['oidc/server.js', '--port', '0', '--bad-port', '0', '--visa-port', '0'], {
    cwd: ROOT, env: { ...process.env, FED_STATE: state, FED_DEVICE_INTERVAL: '1', FED_ISSUER: '', FED_BAD_ISSUER: '', FED_VISA_ISSUER: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const saved = { FED_ISSUER: process.env.FED_ISSUER, FED_VISA_ISSUER: process.env.FED_VISA_ISSUER };
  const stop = async () => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    if (child.exitCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((ok) => { setTimeout(ok, 20000).unref(); })]);
    if (child.exitCode === null) try { child.kill('SIGKILL'); } catch (e) { /* gone */ }
  };
  try {
    const urls = await new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`oidc not ready in 30 s: ${err}`)), 30000);
      child.stderr.on('data', (d) => { err += d; });
      child.stdout.on('data', (d) => { out += d; const m = /^READY (.*)$/m.exec(out); if (m) { clearTimeout(timer); resolve(JSON.parse(m[1])); } });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`oidc exited ${code}: ${err}`)); });
    });
    process.env.FED_ISSUER = urls.issuer;
    process.env.FED_VISA_ISSUER = urls.visa_issuer;
    return { urls, state, child, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

module.exports = { tempDir, until, deviceLogin, startOidc };
