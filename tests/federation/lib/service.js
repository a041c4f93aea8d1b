'use strict';
// Tiny helpers shared by the federation's Node services (plain `http`, no framework).
//
//   const svc = require('../lib/service');
//   const args = svc.parseArgs();                      // --port 18013 --instance public -> {port: 18013, instance: 'public'}
//   const log = svc.logger('drs');                     // $FED_STATE/logs/drs.log
//   const r = svc.router({ log });
//   r.get('/service-info', (req, res) => svc.sendJson(res, 200, svc.serviceInfo({...})));
//   r.get('/ga4gh/drs/v1/objects/:object_id', async (req, res, ctx) => { ctx.params.object_id ... });
//   const server = http.createServer(r.handler());
//   svc.listen(server, args.port).then((port) => log.info(`listening on ${port}`));
//   svc.onShutdown(server, log);

const fs = require('fs');
const path = require('path');

// ---------------------------------------------------------------- command line

// `--port 18013 --flag value --bool --key=value` -> {port: 18013, flag: 'value', bool: true, key: 'value'}.
// Numeric-looking values of --port / --*-port become numbers; a repeated flag becomes an array.
function parseArgs(argv = process.argv.slice(2)) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { out._.push(a); continue; }
    let key = a.slice(2);
    let val;
    const eq = key.indexOf('=');
    if (eq >= 0) { val = key.slice(eq + 1); key = key.slice(0, eq); } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      val = argv[++i];
    } else {
      val = true;
    }
    const name = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase()); // --control-port -> controlPort
    if (/port$/i.test(name) && typeof val === 'string' && /^\d+$/.test(val)) val = Number(val);
    if (name in out) out[name] = [].concat(out[name], val); else out[name] = val;
  }
  return out;
}

// ---------------------------------------------------------------- state dir, logging, violations

function stateDir() {
  return process.env.FED_STATE || null;
}

const SECRET_KEY = /authori[sz]ation|token|secret|password|passport|cookie|signature|credential|assertion|visa|^code$|device_code|x-amz-security/i;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;

// Deep copy with secret-looking keys and JWT-looking strings replaced.
function redact(value, depth = 0) {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return value.replace(JWT_LIKE, '[jwt]');
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
    const o = {};
    for (const [k, v] of Object.entries(value)) o[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
    return o;
  }
  return value;
}

// A path with its query string, secret-looking query parameters redacted.
function redactUrl(url) {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  const parts = [];
  for (const [k, v] of params) parts.push(`${k}=${SECRET_KEY.test(k) ? '[redacted]' : redact(v)}`);
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

// logger('drs') writes lines to $FED_STATE/logs/drs.log (stderr when FED_STATE is unset).
// Never pass headers or tokens; the arguments are redacted anyway.
function logger(name) {
  let stream = null;
  const dir = stateDir();
  if (dir) {
    try {
      fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
      stream = fs.createWriteStream(path.join(dir, 'logs', `${name}.log`), { flags: 'a' });
    } catch (e) {
      stream = null;
    }
  }
  const write = (level, args) => {
    const text = args.map((a) => {
      if (a instanceof Error) return a.stack || String(a);
      const r = redact(a);
      return typeof r === 'string' ? r : JSON.stringify(r);
    }).join(' ');
    const line = `${new Date().toISOString()} ${name} ${level} ${text}\n`;
    if (stream) stream.write(line); else process.stderr.write(line);
  };
  return {
    info: (...a) => write('info', a),
    warn: (...a) => write('warn', a),
    error: (...a) => write('error', a),
    debug: (...a) => { if (process.env.FED_DEBUG) write('debug', a); },
    // one line per finished request: method, path (secrets redacted), status, duration
    request(req, res, started) {
      write('http', [`${req.method} ${redactUrl(req.url)} ${res.statusCode} ${Date.now() - started}ms`]);
    },
    close: () => new Promise((resolve) => (stream ? stream.end(resolve) : resolve())),
  };
}

// Append one JSON line to $FED_STATE/violations.log (stderr when FED_STATE is unset).
// obj: {service, kind: 'request'|'response', method, path, status?, errors: [...]}
function recordViolation(obj) {
  const line = `${JSON.stringify(redact({ time: new Date().toISOString(), ...obj }))}\n`;
  const dir = stateDir();
  if (!dir) { process.stderr.write(`VIOLATION ${line}`); return; }
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.appendFileSync(path.join(dir, 'violations.log'), line);
  } catch (e) {
    process.stderr.write(`VIOLATION (could not write log: ${e.message}) ${line}`);
  }
}

// ---------------------------------------------------------------- replies and bodies

function sendJson(res, status, obj, headers = {}) {
  if (res.headersSent || res.writableEnded) return;
  const body = Buffer.from(`${JSON.stringify(obj)}\n`);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...headers });
  res.end(body);
}

// GA4GH DRS / WES error shape: {msg, status_code}
function sendError(res, status, msg, headers = {}) {
  sendJson(res, status, { msg, status_code: status }, headers);
}

function httpError(status, msg) {
  const e = new Error(msg);
  e.status = status;
  return e;
}

// Read the whole body into a Buffer, at most `limit` bytes (413 error beyond that).
function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let done = false;
    req.on('data', (c) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        req.resume(); // drain the rest, do not buffer it
        reject(httpError(413, `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!done) { done = true; resolve(Buffer.concat(chunks)); } });
    req.on('error', (e) => { if (!done) { done = true; reject(e); } });
  });
}

// Read and parse a JSON body; undefined when the body is empty. 400 on bad JSON, 413 when too large.
async function readJson(req, limit = 1 << 20) {
  const buf = await readBody(req, limit);
  if (buf.length === 0) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw httpError(400, `request body is not valid JSON: ${e.message}`);
  }
}

// Parse multipart/form-data with busboy, in memory (test sizes only).
// -> {fields: {name: string | string[]}, files: {name: [{filename, mimeType, size, data: Buffer}]}}
// fieldMap(result) merges both into the map openapi.checkRequest expects.
function readMultipart(req, { maxFileBytes = 16 << 20, maxFiles = 64, maxFields = 256, maxFieldBytes = 1 << 20 } = {}) {
  const busboy = require('busboy');
  return new Promise((resolve, reject) => {
    let bb;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: maxFileBytes, files: maxFiles, fields: maxFields, fieldSize: maxFieldBytes } });
    } catch (e) {
      reject(httpError(400, `bad multipart request: ${e.message}`));
      return;
    }
    const fields = {};
    const files = {};
    let failed = null;
    const add = (map, k, v) => { if (k in map) map[k] = [].concat(map[k], [v]); else map[k] = v; };
    bb.on('field', (name, value, info) => {
      if (info && info.valueTruncated) failed = failed || httpError(413, `multipart field ${name} too large`);
      add(fields, name, value);
    });
    bb.on('file', (name, stream, info) => {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('limit', () => { failed = failed || httpError(413, `multipart file ${info.filename} larger than ${maxFileBytes} bytes`); });
      stream.on('close', () => {
        const data = Buffer.concat(chunks);
        (files[name] = files[name] || []).push({ filename: info.filename, mimeType: info.mimeType, size: data.length, data });
      });
    });
    bb.on('filesLimit', () => { failed = failed || httpError(413, 'too many files'); });
    bb.on('fieldsLimit', () => { failed = failed || httpError(413, 'too many fields'); });
    bb.on('error', (e) => reject(httpError(400, `bad multipart request: ${e.message}`)));
    bb.on('close', () => (failed ? reject(failed) : resolve({ fields, files })));
    req.pipe(bb);
  });
}

// {fields, files} -> {name: string | string[] | {filename, size, mimeType} | [...]}
function fieldMap({ fields, files }) {
  const out = { ...fields };
  for (const [k, list] of Object.entries(files)) {
    const descs = list.map((f) => ({ filename: f.filename, size: f.size, mimeType: f.mimeType }));
    const prev = k in out ? [].concat(out[k]) : [];
    const all = prev.concat(descs);
    out[k] = all.length === 1 ? all[0] : all;
  }
  return out;
}

// ---------------------------------------------------------------- router

// Patterns: '/objects/:object_id' (one segment, decoded), '/files/:rest*' (the rest, may hold '/').
function compilePattern(pattern) {
  const names = [];
  const re = pattern.split('/').map((seg) => {
    const m = /^:([A-Za-z_][A-Za-z0-9_]*)(\*?)$/.exec(seg);
    if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    names.push(m[1]);
    return m[2] ? '(.+)' : '([^/]+)';
  }).join('/');
  return { re: new RegExp(`^${re}/?$`), names };
}

function router({ log } = {}) {
  const routes = [];
  const r = {
    add(method, pattern, handler) {
      routes.push({ method: method.toUpperCase(), pattern, handler, ...compilePattern(pattern) });
      return r;
    },
    // -> {handler, params} | {methodNotAllowed: true, allow: [...]} | null
    match(method, pathname) {
      const allow = [];
      for (const rt of routes) {
        const m = rt.re.exec(pathname);
        if (!m) continue;
        if (rt.method !== method && !(rt.method === 'GET' && method === 'HEAD') && rt.method !== '*') { allow.push(rt.method); continue; }
        const params = {};
        let bad = false;
        rt.names.forEach((n, i) => {
          try { params[n] = decodeURIComponent(m[i + 1]); } catch (e) { bad = true; }
        });
        if (bad) continue;
        return { handler: rt.handler, params, pattern: rt.pattern };
      }
      return allow.length ? { methodNotAllowed: true, allow } : null;
    },
    // An http 'request' listener: routes, logs each request, answers 404/405 and 500 (JSON {msg, status_code}).
    handler({ notFound } = {}) {
      return async (req, res) => {
        const started = Date.now();
        if (log) res.on('finish', () => log.request(req, res, started));
        let url;
        try {
          url = new URL(req.url, 'http://127.0.0.1');
        } catch (e) {
          sendError(res, 400, 'bad request target');
          return;
        }
        const query = {};
        for (const [k, v] of url.searchParams) if (k in query) query[k] = [].concat(query[k], v); else query[k] = v;
        const found = r.match(req.method, url.pathname);
        const ctx = { params: found && found.params ? found.params : {}, query, url, path: url.pathname };
        req.params = ctx.params;
        req.query = query;
        req.pathname = url.pathname;
        try {
          if (!found) {
            if (notFound) await notFound(req, res, ctx); else sendError(res, 404, `no such endpoint: ${req.method} ${url.pathname}`);
          } else if (found.methodNotAllowed) {
            sendError(res, 405, `method ${req.method} not allowed on ${url.pathname}`, { Allow: [...new Set(found.allow)].join(', ') });
          } else {
            await found.handler(req, res, ctx);
          }
        } catch (e) {
          const status = e && Number.isInteger(e.status) ? e.status : 500;
          if (log && status >= 500) log.error(`${req.method} ${url.pathname}:`, e);
          if (!res.headersSent) sendError(res, status, status >= 500 ? `internal error: ${e.message}` : e.message);
          else res.destroy();
        }
      };
    },
  };
  for (const m of ['get', 'post', 'put', 'delete', 'patch', 'options', 'head']) r[m] = (p, h) => r.add(m, p, h);
  r.all = (p, h) => r.add('*', p, h);
  return r;
}

// ---------------------------------------------------------------- service-info

const ORGANIZATION = { name: 'impact local federation (test)', url: 'https://github.com/impact-cli/impact' };

// GA4GH service-info 1.0.0 object. Extra keys (e.g. WES's workflow_type_versions) are passed through.
function serviceInfo({ id, name, type, description, version = '1.0.0', organization = ORGANIZATION, ...extra }) {
  if (!id || !name || !type || !type.group || !type.artifact || !type.version) {
    throw new Error('serviceInfo needs id, name and type {group, artifact, version}');
  }
  const stamp = process.env.FED_STARTED_AT || new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
  return {
    id,
    name,
    type: { group: type.group, artifact: type.artifact, version: type.version },
    description: description || `${name} (local test federation; synthetic data only)`,
    organization,
    contactUrl: 'mailto:federation@example.org',
    documentationUrl: 'https://github.com/impact-cli/impact/blob/main/tests/federation/README.md',
    createdAt: stamp,
    updatedAt: stamp,
    environment: 'test',
    version,
    ...extra,
  };
}

// ---------------------------------------------------------------- listening and shutdown

// Bind 127.0.0.1 only. Resolves to the bound port (pass 0 for a free one). Clear error when in use.
function listen(server, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const onError = (e) => {
      server.removeListener('listening', onListening);
      if (e.code === 'EADDRINUSE') reject(new Error(`port ${host}:${port} is already in use (another federation running? try ./down or --base-port)`));
      else reject(e);
    };
    const onListening = () => {
      server.removeListener('error', onError);
      resolve(server.address().port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

// Close the server on SIGTERM/SIGINT (bounded), run cleanup, exit 0.
function onShutdown(server, log, cleanup) {
  let stopping = false;
  const stop = async (sig) => {
    if (stopping) return;
    stopping = true;
    if (log) log.info(`${sig}: shutting down`);
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    try { if (cleanup) await cleanup(); } catch (e) { if (log) log.error('cleanup failed:', e); }
    if (server) {
      if (server.closeAllConnections) server.closeAllConnections();
      server.close(() => process.exit(0));
    } else {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

module.exports = {
  parseArgs,
  stateDir,
  redact,
  redactUrl,
  logger,
  recordViolation,
  sendJson,
  sendError,
  httpError,
  readBody,
  readJson,
  readMultipart,
  fieldMap,
  router,
  compilePattern,
  serviceInfo,
  ORGANIZATION,
  listen,
  onShutdown,
};
