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

module.exports = { tempDir, until, deviceLogin };
