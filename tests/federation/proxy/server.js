'use strict';
// Fault-injection HTTP proxy for tests (loopback only).
//
//   node proxy/server.js --port P --target http://127.0.0.1:Q [--control-port C] [--faults FILE] [--name NAME]
//
// Forwards every request to the target (Host header kept, so SigV4 signatures made for the proxy's
// address stay valid). Faults are rules, matched in order against each request:
//
//   { "method": "GET", "path": "^/ga4gh/drs/v1/objects/", "times": 1, "after": 0, <one fault> }
//
//   method / path         regular expressions (anchoring is up to you; path includes the query string)
//   times                 how many matching requests get the fault (default 1; negative = always)
//   after                 let this many matching requests through untouched first (default 0)
//   faults:
//   "reset_after_bytes": N   forward, send the headers and N body bytes, then reset the connection (RST)
//   "truncate_body": N       forward, send headers with the full Content-Length but only N bytes, then close (FIN)
//   "status": 429|503|...    answer without forwarding; "retry_after": S adds Retry-After, "body": {...} optional
//   "stall_ms": N            forward, then hold the response N ms (at most 120000) before relaying it
//   "trickle": BYTES_PER_SEC relay the response body at that rate (at most 120 s, then reset)
//   "corrupt_body": true|N   flip the byte at offset N (true: the middle) of the body; length unchanged
//   "drop_after_request": true  forward the whole request, wait for the target's answer, then reset the
//                            client connection without answering (the target did act on it)
//   "set_headers": {name: value}  forward, and add (or replace) these response headers; a value of null
//                            removes the header (e.g. checksums a storage does not send itself)
//
// Control API (on --control-port when given, else on the proxy port itself under /__):
//   POST   /__fault   add a rule (or {"rules": [...]}) -> {"ids": [...]}
//   GET    /__fault   the rules with their remaining counts
//   DELETE /__fault   remove all rules
//   GET    /__log     [{seq, time, method, url, rule, fault, reached_target, status, bytes_sent}]
//   DELETE /__log     clear the log
//   POST   /__reset   remove rules and clear the log
// --faults FILE: a JSON array of rules, re-read whenever the file changes.
//
// As a module: const p = await require('./proxy/server').startProxy({target, port: 0});
//   p.url, p.port, p.controlUrl, p.addFault(rule), p.clearFaults(), p.requests(), p.clearLog(), p.close()

const http = require('http');
const fs = require('fs');
const svc = require('../lib/service');

const MAX_STALL_MS = 120000;
const MAX_TRICKLE_MS = 120000;
const MAX_BUFFER = 256 << 20;
const MAX_LOG = 10000;
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const FAULTS = ['reset_after_bytes', 'truncate_body', 'status', 'stall_ms', 'trickle', 'corrupt_body', 'drop_after_request', 'set_headers'];

function checkLoopback(url) {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`target must be http:// (got ${url})`);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error(`target must be on loopback (got ${u.hostname})`);
  return u;
}

function normalizeRule(r, id) {
  if (!r || typeof r !== 'object') throw new Error('a rule must be an object');
  const faults = FAULTS.filter((f) => r[f] !== undefined && r[f] !== false && r[f] !== null);
  if (faults.length !== 1) throw new Error(`a rule needs exactly one fault of ${FAULTS.join(', ')}`);
  const fault = faults[0];
  const v = r[fault];
  if (['reset_after_bytes', 'truncate_body', 'stall_ms', 'trickle'].includes(fault) && !(Number.isInteger(v) && v >= 0)) throw new Error(`${fault} wants a non-negative integer`);
  if (fault === 'trickle' && v < 1) throw new Error('trickle wants bytes_per_sec >= 1');
  if (fault === 'status' && !(Number.isInteger(v) && v >= 100 && v <= 599)) throw new Error('status wants an HTTP status code');
  if (fault === 'set_headers' && !(v && typeof v === 'object' && !Array.isArray(v) &&
      Object.values(v).every((x) => x === null || typeof x === 'string'))) throw new Error('set_headers wants an object of header values');
  const re = (x, name) => {
    if (x === undefined || x === null || x === '') return null;
    try { return new RegExp(x, name === 'method' ? 'i' : ''); } catch (e) { throw new Error(`bad ${name} regex: ${e.message}`); }
  };
  return {
    id,
    method: r.method || null,
    path: r.path || null,
    methodRe: re(r.method, 'method'),
    pathRe: re(r.path, 'path'),
    times: r.times === undefined ? 1 : Number(r.times),
    after: Number(r.after || 0),
    fault,
    value: v,
    retry_after: r.retry_after,
    body: r.body,
    seen: 0,
    applied: 0,
  };
}

function publicRule(r) {
  return {
    id: r.id, method: r.method, path: r.path, fault: r.fault, [r.fault]: r.value, times: r.times, after: r.after,
    seen: r.seen, applied: r.applied, remaining: r.times < 0 ? 'always' : Math.max(0, r.times - r.applied),
    ...(r.retry_after !== undefined ? { retry_after: r.retry_after } : {}),
  };
}

async function startProxy({ target, port = 0, controlPort, faultsFile, name = 'proxy', log = svc.logger(name) } = {}) {
  const t = checkLoopback(target);
  let rules = [];
  let nextId = 1;
  let entries = [];
  let seq = 0;
  let fileMtime = 0;
  let fileRules = [];

  const addFault = (r) => {
    const list = Array.isArray(r) ? r : r && Array.isArray(r.rules) ? r.rules : [r];
    const norm = list.map((x) => normalizeRule(x, nextId++));
    rules.push(...norm);
    return norm.map((x) => x.id);
  };
  const reloadFile = () => {
    if (!faultsFile) return;
    let st;
    try { st = fs.statSync(faultsFile); } catch (e) { fileRules = []; fileMtime = 0; return; }
    if (st.mtimeMs === fileMtime) return;
    fileMtime = st.mtimeMs;
    try {
      const parsed = JSON.parse(fs.readFileSync(faultsFile, 'utf8'));
      fileRules = (Array.isArray(parsed) ? parsed : parsed.rules || []).map((x) => normalizeRule(x, `file-${nextId++}`));
    } catch (e) {
      log.error(`bad faults file ${faultsFile}: ${e.message}`);
      fileRules = [];
    }
  };

  // First rule that matches and still has a count left; counts `seen`/`applied`.
  const pick = (method, url) => {
    reloadFile();
    for (const r of [...rules, ...fileRules]) {
      if (r.methodRe && !r.methodRe.test(method)) continue;
      if (r.pathRe && !r.pathRe.test(url)) continue;
      if (r.times >= 0 && r.applied >= r.times) continue;
      r.seen += 1;
      if (r.seen <= r.after) continue;
      r.applied += 1;
      return r;
    }
    return null;
  };

  const handle = (req, res) => {
    const rule = pick(req.method, req.url);
    const entry = {
      seq: ++seq, time: new Date().toISOString(), method: req.method, url: req.url,
      rule: rule ? rule.id : null, fault: rule ? rule.fault : null, reached_target: false, status: null, bytes_sent: 0,
    };
    entries.push(entry);
    if (entries.length > MAX_LOG) entries = entries.slice(-MAX_LOG);
    const sock = req.socket;
    const reset = () => { if (sock.resetAndDestroy) sock.resetAndDestroy(); else sock.destroy(); };

    if (rule && rule.fault === 'status') {
      req.resume();
      const headers = { 'Content-Type': 'application/json' };
      if (rule.retry_after !== undefined) headers['Retry-After'] = String(rule.retry_after);
      const body = Buffer.from(JSON.stringify(rule.body !== undefined ? rule.body : { msg: `injected ${rule.value}`, status_code: rule.value }));
      headers['Content-Length'] = body.length;
      entry.status = rule.value;
      entry.bytes_sent = body.length;
      res.writeHead(rule.value, headers);
      res.end(body);
      return;
    }

    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
    if (req.headers['transfer-encoding']) headers['transfer-encoding'] = req.headers['transfer-encoding'];
    const up = http.request({
      host: t.hostname === 'localhost' ? '127.0.0.1' : t.hostname.replace(/^\[|\]$/g, ''),
      port: t.port || 80,
      method: req.method,
      path: req.url,
      headers,
      agent: false,
    });
    let clientGone = false;
    res.on('close', () => { if (!res.writableFinished) { clientGone = true; up.destroy(); } });
    up.on('error', (e) => {
      if (clientGone) return;
      log.warn(`upstream ${req.method} ${svc.redactUrl(req.url)}: ${e.message}`);
      if (!res.headersSent) svc.sendJson(res, 502, { msg: `proxy: upstream error: ${e.message}`, status_code: 502 });
      else reset();
    });
    req.pipe(up);

    up.on('response', (ures) => {
      entry.status = ures.statusCode;
      const outHeaders = {};
      for (const [k, v] of Object.entries(ures.headers)) if (!HOP.has(k)) outHeaders[k] = v;
      const f = rule ? rule.fault : null;
      if (f === 'set_headers') {
        for (const [k, v] of Object.entries(rule.value)) {
          if (v === null) delete outHeaders[k.toLowerCase()];
          else outHeaders[k.toLowerCase()] = v;
        }
      }

      if (f === 'drop_after_request') {
        ures.resume();
        ures.on('end', () => { entry.reached_target = true; reset(); });
        ures.on('error', () => reset());
        return;
      }
      if (f === 'truncate_body' || f === 'corrupt_body') {
        // buffer the body (bounded) so the full length is known
        const chunks = [];
        let size = 0;
        ures.on('data', (c) => {
          size += c.length;
          if (size > MAX_BUFFER) { ures.destroy(); reset(); return; }
          chunks.push(c);
        });
        ures.on('end', () => {
          entry.reached_target = true;
          const body = Buffer.concat(chunks);
          outHeaders['content-length'] = body.length;
          if (f === 'corrupt_body') {
            if (body.length) {
              const off = rule.value === true ? Math.floor(body.length / 2) : Math.min(Number(rule.value), body.length - 1);
              body[off] ^= 0xff;
            }
            res.writeHead(ures.statusCode, outHeaders);
            entry.bytes_sent = body.length;
            res.end(body);
          } else {
            const n = Math.min(rule.value, body.length);
            res.writeHead(ures.statusCode, outHeaders);
            entry.bytes_sent = n;
            res.write(body.subarray(0, n), () => sock.end()); // FIN after the N bytes are flushed
            setTimeout(() => sock.destroy(), 2000).unref();
          }
        });
        return;
      }

      const relay = () => {
        if (clientGone) { ures.destroy(); return; }
        res.writeHead(ures.statusCode, outHeaders);
        if (f === 'reset_after_bytes') {
          let left = rule.value;
          if (left === 0) { res.flushHeaders(); setImmediate(reset); ures.destroy(); return; }
          ures.on('data', (c) => {
            if (left <= 0) return;
            const part = c.length > left ? c.subarray(0, left) : c;
            left -= part.length;
            entry.bytes_sent += part.length;
            if (left <= 0) {
              ures.destroy();
              res.write(part, () => setImmediate(reset));
            } else {
              res.write(part);
            }
          });
          ures.on('end', () => { entry.reached_target = true; if (left > 0) res.end(); });
          return;
        }
        if (f === 'trickle') {
          const started = Date.now();
          const perTick = Math.max(1, Math.floor(rule.value / 10));
          let pending = Buffer.alloc(0);
          let ended = false;
          ures.on('data', (c) => { pending = Buffer.concat([pending, c]); if (pending.length > 4 * perTick) ures.pause(); });
          ures.on('end', () => { ended = true; entry.reached_target = true; });
          const timer = setInterval(() => {
            if (clientGone) { clearInterval(timer); ures.destroy(); return; }
            if (Date.now() - started > MAX_TRICKLE_MS) { clearInterval(timer); ures.destroy(); reset(); return; }
            if (pending.length) {
              const part = pending.subarray(0, perTick);
              pending = pending.subarray(part.length);
              entry.bytes_sent += part.length;
              res.write(part);
              if (pending.length <= 4 * perTick) ures.resume();
            } else if (ended) {
              clearInterval(timer);
              res.end();
            }
          }, 100);
          return;
        }
        ures.on('data', (c) => { entry.bytes_sent += c.length; });
        ures.on('end', () => { entry.reached_target = true; });
        ures.pipe(res);
      };

      if (f === 'stall_ms') {
        ures.pause();
        const timer = setTimeout(relay, Math.min(rule.value, MAX_STALL_MS));
        res.on('close', () => clearTimeout(timer));
      } else {
        relay();
      }
    });
  };

  const control = (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const p = url.pathname;
    (async () => {
      if (p === '/__fault' && req.method === 'POST') {
        const body = await svc.readJson(req);
        let ids;
        try { ids = addFault(body); } catch (e) { return svc.sendError(res, 400, e.message); }
        log.info(`fault rules added: ${JSON.stringify(body)}`);
        return svc.sendJson(res, 200, { ids });
      }
      if (p === '/__fault' && req.method === 'GET') { reloadFile(); return svc.sendJson(res, 200, [...rules, ...fileRules].map(publicRule)); }
      if (p === '/__fault' && req.method === 'DELETE') { rules = []; return svc.sendJson(res, 200, { ok: true }); }
      if (p === '/__log' && req.method === 'GET') return svc.sendJson(res, 200, entries);
      if (p === '/__log' && req.method === 'DELETE') { entries = []; return svc.sendJson(res, 200, { ok: true }); }
      if (p === '/__reset' && req.method === 'POST') { rules = []; entries = []; return svc.sendJson(res, 200, { ok: true }); }
      if (p === '/service-info' && req.method === 'GET') {
        return svc.sendJson(res, 200, svc.serviceInfo({ id: `org.impact.federation.${name}`, name: `fault proxy for ${target}`, type: { group: 'org.impact', artifact: 'fault-proxy', version: '1.0.0' } }));
      }
      return svc.sendError(res, 404, `no such control endpoint: ${req.method} ${p}`);
    })().catch((e) => svc.sendError(res, e.status || 500, e.message));
  };

  const useControlPort = controlPort !== undefined && controlPort !== null;
  const server = http.createServer((req, res) => {
    if (!useControlPort && req.url.startsWith('/__')) { control(req, res); return; }
    handle(req, res);
  });
  server.on('clientError', (e, socket) => socket.destroy());
  const bound = await svc.listen(server, port);
  let ctlServer = null;
  let ctlBound = bound;
  if (useControlPort) {
    ctlServer = http.createServer(control);
    ctlBound = await svc.listen(ctlServer, controlPort);
  }
  log.info(`proxy 127.0.0.1:${bound} -> ${target}; control on 127.0.0.1:${ctlBound}`);

  const closeServer = (s) => new Promise((resolve) => {
    if (!s) { resolve(); return; }
    if (s.closeAllConnections) s.closeAllConnections();
    s.close(() => resolve());
  });
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    controlPort: ctlBound,
    controlUrl: `http://127.0.0.1:${ctlBound}`,
    addFault,
    clearFaults: () => { rules = []; },
    rules: () => [...rules, ...fileRules].map(publicRule),
    requests: () => entries.slice(),
    clearLog: () => { entries = []; },
    close: () => Promise.all([closeServer(server), closeServer(ctlServer)]),
    server,
  };
}

if (require.main === module) {
  const args = svc.parseArgs();
  if (!args.target || args.port === undefined) {
    process.stderr.write('usage: node proxy/server.js --port P --target http://127.0.0.1:Q [--control-port C] [--faults FILE] [--name NAME]\n');
    process.exit(2);
  }
  const name = typeof args.name === 'string' ? args.name : `proxy-${args.port}`;
  startProxy({ target: args.target, port: args.port, controlPort: args.controlPort, faultsFile: args.faults, name, log: svc.logger(name) })
    .then((p) => {
      process.stdout.write(`READY ${JSON.stringify({ url: p.url, control: p.controlUrl })}\n`);
      const stop = () => { p.close().then(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    })
    .catch((e) => { process.stderr.write(`proxy: ${e.message}\n`); process.exit(1); });
}

module.exports = { startProxy, normalizeRule, FAULTS };
