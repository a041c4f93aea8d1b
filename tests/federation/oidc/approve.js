#!/usr/bin/env node
'use strict';
// Scripted device-flow approval: does over HTTP what a person does in the browser.
//
//   node oidc/approve.js --issuer URL --user-code CODE --user alice [--deny] [--abort] [--timeout 20]
//
//   1. GET  <issuer>/device                  (the verification_uri; --verification-uri overrides)
//   2. POST the user code, then confirm it    (oidc-provider's code confirmation form)
//   3. GET  /interaction/<uid>, POST the username (dev login page of oidc/server.js)
//   4. GET  /interaction/<uid>, POST Allow     (consent), or Deny with --deny
//   5. expect the "Sign-in complete" page      (or the "aborted" page with --deny / --abort)
// --abort presses Abort on the code confirmation page instead of signing in.
//
//   node oidc/approve.js --issuer URL --auth-url 'URL of /auth?...' --user alice [--deny]
// authorization code flow instead: opens the authorization URL the client printed, signs in,
// consents and follows the redirect to the client's loopback redirect_uri (which must be listening);
// exit 0 when that redirect carried a code (or error=access_denied with --deny).
// Exit 0 on the expected outcome; otherwise a message on stderr and exit 1 (2 on bad usage).
// Bounded: at most 25 HTTP requests, each request and the whole run limited by --timeout seconds.

const svc = require('../lib/service');

class Jar {
  constructor() { this.cookies = new Map(); }

  store(url, res) {
    const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const line of list) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let cpath = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.trim().split('=');
        const key = k.toLowerCase();
        if (key === 'path') cpath = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name};${cpath}`;
      if (expired) this.cookies.delete(id); else this.cookies.set(id, { name, value, path: cpath });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    const out = [];
    for (const c of this.cookies.values()) {
      if (p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/') out.push(`${c.name}=${c.value}`);
    }
    return out.join('; ');
  }
}

const resultOf = (html) => {
  const m = /id="result" data-result="([^"]*)"/.exec(html);
  return m ? m[1] : null;
};
const hidden = (html, name) => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m ? m[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&') : null;
};
const formAction = (html, id) => {
  const m = new RegExp(`<form[^>]*id="${id.replace('.', '\\.')}"[^>]*action="([^"]*)"`).exec(html)
    || new RegExp(`<form[^>]*action="([^"]*)"[^>]*id="${id.replace('.', '\\.')}"`).exec(html);
  return m ? m[1].replace(/&amp;/g, '&') : null;
};

async function approve({
  issuer, userCode, user, deny = false, abort = false, timeoutMs = 20000, verificationUri, authUrl,
}) {
  const deadline = Date.now() + timeoutMs;
  const jar = new Jar();
  let requests = 0;
  const trail = [];

  // one request, following redirects (303/302) by hand so cookies are kept; returns {url, status, html}
  async function go(url, form) {
    let method = form ? 'POST' : 'GET';
    let body = form ? new URLSearchParams(form).toString() : undefined;
    let current = url;
    for (;;) {
      if (++requests > 25) throw new Error('too many requests (redirect loop?)');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms`);
      const u = new URL(current);
      if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error(`refusing to leave loopback: ${current}`);
      const headers = { Accept: 'text/html' };
      const cookie = jar.header(current);
      if (cookie) headers.Cookie = cookie;
      if (body !== undefined) headers['Content-Type'] = 'application/x-www-form-urlencoded';
      let res;
      try {
        res = await fetch(current, {
          method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(left),
        });
      } catch (e) {
        if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new Error(`timed out after ${timeoutMs} ms (${method} ${u.pathname})`);
        throw new Error(`cannot reach ${u.origin}: ${(e.cause && (e.cause.code || e.cause.message)) || e.message}`);
      }
      jar.store(current, res);
      trail.push(`${method} ${u.pathname} -> ${res.status}`);
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        await res.arrayBuffer();
        current = new URL(res.headers.get('location'), current).href;
        if (res.status !== 307 && res.status !== 308) { method = 'GET'; body = undefined; }
        continue;
      }
      const html = await res.text();
      return { url: current, status: res.status, html, result: resultOf(html) };
    }
  }

  const fail = (msg, r) => {
    const e = new Error(`${msg}${r ? ` (at ${new URL(r.url).pathname}, HTTP ${r.status}, page result ${r.result})` : ''}`);
    e.trail = trail;
    throw e;
  };

  const base = issuer.replace(/\/$/, '');
  let r;
  if (authUrl) return browserFlow();
  const verify = verificationUri || `${base}/device`;
  r = await go(verify);
  if (r.result !== 'enter-code') fail('verification page did not ask for a code', r);
  const xsrf = hidden(r.html, 'xsrf');
  const action1 = formAction(r.html, 'op.deviceInputForm') || verify;
  if (!xsrf) fail('no xsrf token on the verification page', r);

  r = await go(new URL(action1, verify).href, { xsrf, user_code: userCode });
  if (r.result !== 'confirm-code') fail(`user code ${userCode} was not accepted`, r);
  const action2 = formAction(r.html, 'op.deviceConfirmForm') || action1;
  const confirmForm = { xsrf: hidden(r.html, 'xsrf'), user_code: hidden(r.html, 'user_code') };
  if (abort) {
    r = await go(new URL(action2, verify).href, { ...confirmForm, abort: 'yes' });
    if (r.result !== 'aborted') fail('abort was not acknowledged', r);
    return { outcome: 'aborted', trail };
  }
  r = await go(new URL(action2, verify).href, { ...confirmForm, confirm: 'yes' });

  return signIn(r);

  // login + consent pages, until the device flow's success/aborted page (or, in the browser flow,
  // until the redirect back to the client has been followed)
  async function signIn(first) {
    r = first;
    for (let step = 0; step < 5; step++) {
      if (authUrl && new URL(r.url).origin !== new URL(base).origin) {
        const q = new URL(r.url).searchParams;
        if (q.has('code') && !deny) return { outcome: 'approved', trail, redirect: r.url.split('?')[0] };
        if (q.get('error') === 'access_denied' && deny) return { outcome: 'denied', trail };
        fail(`client redirect carried ${q.has('code') ? 'a code' : `error ${q.get('error')}`}`, r);
      }
      if (r.result === 'success') {
        if (deny) fail('expected a denial but the sign-in succeeded', r);
        return { outcome: 'approved', trail };
      }
      if (r.result === 'aborted' && deny) return { outcome: 'denied', trail };
      if (r.result === 'login') {
        r = await go(new URL('login', `${r.url.replace(/\/$/, '')}/`).href, { username: user });
        if (r.result === 'error:unknown_user') fail(`unknown user ${user}`, r);
        continue;
      }
      if (r.result === 'consent') {
        r = await go(new URL('confirm', `${r.url.replace(/\/$/, '')}/`).href, { decision: deny ? 'deny' : 'approve' });
        continue;
      }
      break;
    }
    return fail('unexpected page', r);
  }

  // authorization code flow: open the client's authorization URL, sign in, consent, and follow the
  // redirect back to the client's loopback redirect_uri (as a browser would)
  async function browserFlow() {
    const u = new URL(authUrl);
    if (u.origin !== new URL(base).origin) throw new Error(`--auth-url is not on the issuer ${base}`);
    return signIn(await go(authUrl));
  }
}

if (require.main === module) {
  const a = svc.parseArgs();
  const issuer = a.issuer || process.env.FED_ISSUER;
  const authUrl = typeof a.authUrl === 'string' ? a.authUrl : undefined;
  if (!issuer || !(authUrl || typeof a.userCode === 'string') || typeof a.user !== 'string') {
    process.stderr.write('usage: approve.js --issuer URL (--user-code CODE | --auth-url URL) --user NAME [--deny|--abort] [--timeout SECONDS] [--verification-uri URL]\n');
    process.exit(2);
  }
  const timeout = Number(a.timeout) > 0 ? Number(a.timeout) : 20;
  approve({
    issuer,
    userCode: a.userCode,
    authUrl,
    user: a.user,
    deny: !!a.deny,
    abort: !!a.abort,
    timeoutMs: timeout * 1000,
    verificationUri: typeof a.verificationUri === 'string' ? a.verificationUri : undefined,
  }).then(({ outcome }) => {
    process.stdout.write(`${outcome}: ${authUrl ? 'authorization request' : `user code ${a.userCode}`} for ${a.user}\n`);
    process.exit(0);
  }).catch((e) => {
    process.stderr.write(`approve.js: ${e.message}\n`);
    if (e.trail && process.env.FED_DEBUG) process.stderr.write(`${e.trail.join('\n')}\n`);
    process.exit(1);
  });
}

module.exports = { approve };
