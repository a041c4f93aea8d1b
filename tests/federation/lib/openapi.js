'use strict';
// Request / response validation against the bundled GA4GH OpenAPI 3.0 documents in specs/.
//
//   const openapi = require('../lib/openapi');
//   const api = openapi.load('drs');               // 'wes' | 'wes-strict' | 'drs' | 'service-info' | 'tes' | 'trs' | 'htsget'
//   api.checkRequest({ method: 'GET', path: '/ga4gh/drs/v1/objects/x', query: {expand: 'true'} })  // -> [] or ['...']
//   api.checkResponse({ method: 'GET', path: '/ga4gh/drs/v1/objects/x', status: 200, body })     // -> [] or ['...']
//   api.validate('DrsObject', obj)                 // -> errors against one component schema
//
//   // in a service, around a route handler: validates the request (400 + violation when it does not
//   // conform) and records a violation when the JSON response it sends does not conform.
//   r.post('/ga4gh/wes/v1/runs', openapi.validated(api, async (req, res, ctx) => { ctx.body ... }, { service: 'wes' }));
//
// OpenAPI 3.0 schemas are converted to JSON Schema draft-07 for ajv: `nullable` -> type [..,'null'],
// `example`/`x-*`/`discriminator`/`xml`/`externalDocs` dropped, siblings of `$ref` dropped (as OAS 3.0
// says), internal refs made absolute so inline schemas compile against the added document.
// Upstream defects (specs/SOURCES.md) handled here:
//   - WES 1.1.0: the multipart POST /runs body has no `required` list and is optional. Both 'wes' and
//     'wes-strict' check requests with the strict form (workflow_type, workflow_type_version, workflow_url
//     required; workflow_attachment one file or many), and the JSON-encoded multipart fields
//     (workflow_params, tags, workflow_engine_parameters) are checked against RunRequest.
//   - DRS 1.5.0: wrong `example`s (AccessURL.headers, ContentsObject.drs_uri) are ignored: examples are dropped.

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const SPECS = path.join(__dirname, '..', 'specs');
const FILES = {
  wes: 'wes-1.1.0/openapi.json',
  'wes-strict': 'wes-1.1.0/openapi.strict.yaml',
  drs: 'drs-1.5.0/openapi.json',
  'service-info': 'service-info-1.0.0/service-info.yaml',
  trs: 'trs-2.1.0/openapi.bundled.json',
  tes: 'tes-1.1.0/openapi.json',
  htsget: 'htsget-1.3.0/openapi.bundled.yaml',
};
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function readDoc(file) {
  const text = fs.readFileSync(path.join(SPECS, file), 'utf8');
  return file.endsWith('.json') ? JSON.parse(text) : yaml.load(text, { schema: yaml.CORE_SCHEMA });
}

function newAjv() {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  // 'boolean': TES 1.1 writes `format: boolean` on its boolean resources (no such OAS format; ignored)
  for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'boolean']) ajv.addFormat(f, true);
  return ajv;
}

// ---------------------------------------------------------------- OAS 3.0 schema -> JSON Schema

const SCHEMA_MAPS = ['properties', 'patternProperties', 'definitions'];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf'];
const SCHEMA_ONE = ['items', 'not', 'additionalProperties', 'additionalItems'];
const DROP = new Set(['example', 'examples', 'discriminator', 'xml', 'externalDocs', 'deprecated', 'nullable']);

function convertSchema(s, docId) {
  if (!s || typeof s !== 'object' || Array.isArray(s)) return s;
  if (typeof s.$ref === 'string') {
    const ref = s.$ref.startsWith('#') ? `${docId}${s.$ref}` : s.$ref;
    return s.nullable ? { anyOf: [{ $ref: ref }, { type: 'null' }] } : { $ref: ref };
  }
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (DROP.has(k) || k.startsWith('x-')) continue;
    if (SCHEMA_MAPS.includes(k) && v && typeof v === 'object') {
      out[k] = {};
      for (const [pk, pv] of Object.entries(v)) out[k][pk] = convertSchema(pv, docId);
    } else if (SCHEMA_LISTS.includes(k) && Array.isArray(v)) {
      out[k] = v.map((x) => convertSchema(x, docId));
    } else if (SCHEMA_ONE.includes(k) && v && typeof v === 'object') {
      out[k] = Array.isArray(v) ? v.map((x) => convertSchema(x, docId)) : convertSchema(v, docId);
    } else {
      out[k] = v;
    }
  }
  if (s.nullable === true) {
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else {
      return { anyOf: [out, { type: 'null' }] };
    }
  }
  return out;
}

// ---------------------------------------------------------------- the API object

function basePathOf(doc) {
  const server = doc.servers && doc.servers[0];
  if (!server || !server.url) return '';
  let url = server.url;
  for (const [k, v] of Object.entries(server.variables || {})) url = url.split(`{${k}}`).join(v.default);
  let p;
  try { p = new URL(url, 'http://localhost').pathname; } catch (e) { p = ''; }
  return p.replace(/\/+$/, '');
}

function templateRegex(tpl) {
  const names = [];
  const re = tpl.split(/(\{[^}]+\})/).map((part) => {
    const m = /^\{([^}]+)\}$/.exec(part);
    if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    names.push(m[1]);
    return '([^/]+)';
  }).join('');
  return { re: new RegExp(`^${re}/?$`), names };
}

function mediaBase(ct) {
  return String(ct || '').split(';')[0].trim().toLowerCase();
}

function pickContent(content, ct) {
  if (!content) return null;
  const base = mediaBase(ct);
  if (content[base]) return { type: base, media: content[base] };
  for (const [k, v] of Object.entries(content)) {
    if (k === '*/*' || (k.endsWith('/*') && base.startsWith(k.slice(0, -1)))) return { type: k, media: v };
    if (base.endsWith('+json') && k === 'application/json') return { type: k, media: v };
  }
  return null;
}

function formatErrors(where, errors) {
  return (errors || []).map((e) => {
    let msg = e.message;
    if (e.keyword === 'additionalProperties' && e.params) msg += ` '${e.params.additionalProperty}'`;
    if (e.keyword === 'enum' && e.params) msg += ` ${JSON.stringify(e.params.allowedValues)}`;
    return `${where}${e.instancePath || ''} ${msg}`;
  });
}

// Query / path / header values are strings; coerce them as the parameter schema says.
function coerceParam(value, schema) {
  if (!schema) return value;
  if (Array.isArray(value)) {
    if (schema.type === 'array') return value.map((v) => coerceParam(v, schema.items));
    return value; // repeated scalar: leave as array so the type check fails
  }
  if (schema.type === 'array') return String(value).split(',').map((v) => coerceParam(v, schema.items));
  if (typeof value !== 'string') return value;
  if (schema.type === 'integer' && /^-?\d+$/.test(value)) return Number(value);
  if (schema.type === 'number' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  if (schema.type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

class Api {
  constructor(name, doc, { basePath } = {}) {
    this.name = name;
    this.doc = doc;
    this.docId = `urn:impact-federation:openapi:${name}`;
    this.basePath = basePath !== undefined ? basePath : basePathOf(doc);
    this.ajv = newAjv();
    // Only the components (converted) go into ajv; path-level schemas are compiled on demand.
    const comps = {};
    for (const [k, v] of Object.entries((doc.components && doc.components.schemas) || {})) comps[k] = convertSchema(v, this.docId);
    this.ajv.addSchema({ $id: this.docId, components: { schemas: comps } });
    this.cache = new Map();
    this.paths = Object.keys(doc.paths || {})
      .map((tpl) => ({ tpl, item: doc.paths[tpl], ...templateRegex(tpl) }))
      // literal paths before templated ones (/objects/access before /objects/{object_id})
      .sort((a, b) => a.names.length - b.names.length);
    this.fixes = [];
    if (name === 'wes' || name === 'wes-strict') this.fixWes();
  }

  // Follow a local `#/components/...` reference to a parameter / requestBody / response object.
  deref(obj, depth = 0) {
    if (!obj || typeof obj.$ref !== 'string' || depth > 10) return obj;
    const ptr = obj.$ref.replace(/^#\//, '').split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let cur = this.doc;
    for (const p of ptr) cur = cur && cur[p];
    return this.deref(cur, depth + 1);
  }

  compile(key, schema) {
    if (!this.cache.has(key)) this.cache.set(key, this.ajv.compile(convertSchema(schema, this.docId)));
    return this.cache.get(key);
  }

  // Validate `value` against one named component schema -> errors.
  validate(schemaName, value, where = schemaName) {
    const fn = this.compile(`#schema:${schemaName}`, { $ref: `#/components/schemas/${schemaName}` });
    return fn(value) ? [] : formatErrors(where, fn.errors);
  }

  // SOURCES.md: WES 1.1.0's multipart POST /runs body has no `required` and is optional; use the strict form.
  fixWes() {
    const post = this.doc.paths['/runs'] && this.doc.paths['/runs'].post;
    if (!post || !post.requestBody) return;
    const rb = this.deref(post.requestBody);
    const mp = rb.content && rb.content['multipart/form-data'];
    if (!mp || !mp.schema) return;
    rb.required = true;
    const s = mp.schema;
    s.required = ['workflow_type', 'workflow_type_version', 'workflow_url'];
    if (s.properties && s.properties.workflow_attachment) {
      s.properties.workflow_attachment = {
        oneOf: [{ type: 'string', format: 'binary' }, { type: 'array', items: { type: 'string', format: 'binary' } }],
      };
    }
    this.fixes.push('wes-runrequest');
  }

  // Which operation does a concrete request path hit? -> {tpl, op, params} | {tpl, methodNotAllowed} | null
  match(method, reqPath) {
    let p = String(reqPath || '').split('?')[0];
    if (this.basePath && (p === this.basePath || p.startsWith(`${this.basePath}/`))) p = p.slice(this.basePath.length) || '/';
    let other = null;
    for (const entry of this.paths) {
      const m = entry.re.exec(p);
      if (!m) continue;
      const op = entry.item[String(method).toLowerCase()];
      if (!op) { other = other || { tpl: entry.tpl, methodNotAllowed: true }; continue; }
      const params = {};
      let ok = true;
      entry.names.forEach((n, i) => {
        try { params[n] = decodeURIComponent(m[i + 1]); } catch (e) { ok = false; }
      });
      if (!ok) continue;
      return { tpl: entry.tpl, op, params, item: entry.item };
    }
    return other;
  }

  parametersOf(item, op) {
    const byKey = new Map();
    for (const p of [...(item.parameters || []), ...(op.parameters || [])]) {
      const d = this.deref(p);
      if (d && d.name) byKey.set(`${d.in}:${d.name}`, d);
    }
    return [...byKey.values()];
  }

  // -> array of error strings ([] = conforms)
  checkRequest({ method, path: reqPath, query = {}, headers = {}, body, contentType }) {
    const found = this.match(method, reqPath);
    if (!found) return [`${method} ${reqPath}: no such path in ${this.name}`];
    if (found.methodNotAllowed) return [`${method} ${reqPath}: method not allowed on ${found.tpl}`];
    const { op, params, item, tpl } = found;
    const key = `${method.toLowerCase()} ${tpl}`;
    const errors = [];
    const lowerHeaders = {};
    for (const [k, v] of Object.entries(headers || {})) lowerHeaders[k.toLowerCase()] = v;
    const ct = contentType || lowerHeaders['content-type'];

    for (const p of this.parametersOf(item, op)) {
      const source = p.in === 'path' ? params : p.in === 'query' ? query : p.in === 'header' ? lowerHeaders : null;
      if (!source) continue;
      const name = p.in === 'header' ? p.name.toLowerCase() : p.name;
      const present = source[name] !== undefined;
      if (!present) {
        if (p.required || p.in === 'path') errors.push(`${p.in} parameter '${p.name}' is required`);
        continue;
      }
      if (!p.schema) continue;
      const fn = this.compile(`${key} param ${p.in}:${p.name}`, p.schema);
      const value = coerceParam(source[name], p.schema);
      if (!fn(value)) errors.push(...formatErrors(`${p.in} parameter '${p.name}'`, fn.errors));
    }

    const rb = this.deref(op.requestBody);
    const hasBody = body !== undefined && body !== null && !(Buffer.isBuffer(body) && body.length === 0);
    if (!rb) return errors;
    if (!hasBody) {
      if (rb.required) errors.push('request body is required');
      return errors;
    }
    const picked = pickContent(rb.content, ct);
    if (!picked) {
      errors.push(`request content type '${mediaBase(ct) || '(none)'}' is not one of ${Object.keys(rb.content || {}).join(', ')}`);
      return errors;
    }
    if (!picked.media.schema) return errors;
    let value = body;
    if (picked.type === 'multipart/form-data' || picked.type === 'application/x-www-form-urlencoded') {
      value = this.formValue(body, picked.media.schema);
    } else if (Buffer.isBuffer(value) || typeof value === 'string') {
      try { value = JSON.parse(String(value)); } catch (e) { errors.push(`request body is not valid JSON: ${e.message}`); return errors; }
    }
    const fn = this.compile(`${key} body ${picked.type}`, picked.media.schema);
    if (!fn(value)) errors.push(...formatErrors('body', fn.errors));
    if (this.fixes.includes('wes-runrequest') && tpl === '/runs' && picked.type === 'multipart/form-data') {
      errors.push(...this.checkWesJsonFields(body));
    }
    return errors;
  }

  // Multipart / form field map -> the instance the schema describes: file descriptors become strings
  // (format binary), a single part of an array-typed property becomes a one-element array.
  formValue(fields, schema) {
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) return fields;
    const s = schema && schema.$ref ? this.deref(schema) : schema;
    const props = (s && s.properties) || {};
    const toStr = (v) => (v && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? String(v.filename || 'file') : Buffer.isBuffer(v) ? v.toString('utf8') : v);
    const out = {};
    for (const [k, v] of Object.entries(fields)) {
      let x = Array.isArray(v) ? v.map(toStr) : toStr(v);
      const ps = props[k] && props[k].$ref ? this.deref(props[k]) : props[k];
      if (ps && ps.type === 'array' && !Array.isArray(x)) x = [x];
      out[k] = x;
    }
    return out;
  }

  // WES RunRequest: workflow_params, tags, workflow_engine_parameters travel as JSON-encoded strings.
  checkWesJsonFields(fields) {
    const errors = [];
    const rr = this.doc.components && this.doc.components.schemas && this.doc.components.schemas.RunRequest;
    if (!rr || !fields) return errors;
    for (const [k, ps] of Object.entries(rr.properties || {})) {
      if (ps.type !== 'object' || fields[k] === undefined) continue;
      if (typeof fields[k] !== 'string') continue; // the type error is already reported
      let parsed;
      try { parsed = JSON.parse(fields[k]); } catch (e) {
        errors.push(`body/${k} must be a JSON-encoded object (RunRequest.${k}): ${e.message}`);
        continue;
      }
      const fn = this.compile(`RunRequest.${k}`, ps);
      if (!fn(parsed)) errors.push(...formatErrors(`body/${k} (JSON, RunRequest.${k})`, fn.errors));
    }
    return errors;
  }

  // -> array of error strings ([] = conforms)
  checkResponse({ method, path: reqPath, status, body, contentType = 'application/json' }) {
    const found = this.match(method, reqPath);
    if (!found) return [`${method} ${reqPath}: no such path in ${this.name}`];
    if (found.methodNotAllowed) return [`${method} ${reqPath}: method not allowed on ${found.tpl}`];
    const { op, tpl } = found;
    const responses = op.responses || {};
    const code = String(status);
    const rkey = responses[code] ? code : responses[`${code[0]}XX`] ? `${code[0]}XX` : responses.default ? 'default' : null;
    if (!rkey) return [`${method} ${tpl}: status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`];
    const resp = this.deref(responses[rkey]);
    if (!resp || !resp.content) return [];
    const picked = pickContent(resp.content, contentType);
    if (!picked) return [`${method} ${tpl} ${status}: content type '${mediaBase(contentType)}' is not one of ${Object.keys(resp.content).join(', ')}`];
    if (!picked.media.schema || body === undefined) return [];
    let value = body;
    if (Buffer.isBuffer(value) || typeof value === 'string') {
      if (!/json/.test(picked.type)) return [];
      try { value = JSON.parse(String(value)); } catch (e) { return [`${method} ${tpl} ${status}: response body is not valid JSON`]; }
    }
    const fn = this.compile(`${method.toLowerCase()} ${tpl} response ${rkey} ${picked.type}`, picked.media.schema);
    return fn(value) ? [] : formatErrors('response', fn.errors);
  }
}

const loaded = new Map();

// load('wes' | 'wes-strict' | 'drs' | 'service-info', {basePath}) -> Api (cached per name)
function load(name, opts = {}) {
  const file = FILES[name];
  if (!file) throw new Error(`unknown API '${name}' (known: ${Object.keys(FILES).join(', ')})`);
  const key = `${name}\0${opts.basePath === undefined ? '' : opts.basePath}`;
  if (!loaded.has(key)) loaded.set(key, new Api(name, readDoc(file), opts));
  return loaded.get(key);
}

// ---------------------------------------------------------------- service middleware

// Record a violation when the JSON response a handler sends does not conform. Does not alter it.
// Captures bodies up to `limit` bytes of JSON responses; other bodies are not checked.
function watchResponse(api, req, res, { service, limit = 4 << 20 } = {}) {
  const svc = require('./service');
  const chunks = [];
  let size = 0;
  let capture = true;
  const origWrite = res.write;
  const origEnd = res.end;
  const origWriteHead = res.writeHead;
  let headContentType = null;
  const isJson = () => /json/i.test(String(headContentType || res.getHeader('content-type') || ''));
  const keep = (chunk, enc) => {
    if (!capture || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    if (!isJson()) { capture = false; chunks.length = 0; return; } // only JSON bodies are checked
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof enc === 'string' ? enc : 'utf8');
    size += b.length;
    if (size > limit) { capture = false; chunks.length = 0; return; }
    chunks.push(b);
  };
  const reqPath = (req.url || '').split('?')[0];
  // Checked synchronously before the last bytes go out, so the violation is on disk before the client
  // has the full response.
  const check = () => {
    const ct = String(headContentType || res.getHeader('content-type') || '');
    if (req.method === 'HEAD') return;
    let body;
    let errors;
    if (/json/i.test(ct) && capture) {
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { errors = ['response body is not valid JSON']; }
    }
    if (!errors) {
      try {
        errors = api.checkResponse({ method: req.method, path: reqPath, status: res.statusCode, body, contentType: ct || 'application/json' });
        // a JSON body too large to keep was not checked (only its status)
      } catch (e) {
        errors = [`validator failed: ${e.message}`];
      }
    }
    if (errors.length) svc.recordViolation({ service: service || api.name, kind: 'response', method: req.method, path: reqPath, status: res.statusCode, errors });
  };
  res.writeHead = function writeHead(status, ...rest) {
    const h = rest.find((x) => x && typeof x === 'object');
    if (h) for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === 'content-type') headContentType = v;
    return origWriteHead.call(this, status, ...rest);
  };
  res.write = function write(chunk, enc, cb) { keep(chunk, enc); return origWrite.call(this, chunk, enc, cb); };
  res.end = function end(chunk, enc, cb) {
    keep(chunk, enc);
    try { check(); } catch (e) { /* never break the reply */ }
    return origEnd.call(this, chunk, enc, cb);
  };
}

// Wrap a route handler (req, res, ctx): read the body (JSON, or multipart via service.readMultipart),
// check the request against `api`; on violation record it and answer 400 {msg, status_code}.
// Otherwise call handler with ctx.body (parsed JSON or field map) and ctx.multipart ({fields, files},
// files with their data Buffers). Responses are watched (violations recorded, never altered).
// opts: {service, jsonLimit, multipart: {maxFileBytes, ...}, checkResponses: true}
function validated(api, handler, opts = {}) {
  const svc = require('./service');
  return async (req, res, ctx = {}) => {
    const service = opts.service || api.name;
    if (opts.checkResponses !== false) watchResponse(api, req, res, { service });
    const reqPath = (req.url || '').split('?')[0];
    const query = ctx.query || Object.fromEntries(new URL(req.url, 'http://127.0.0.1').searchParams);
    const ct = req.headers['content-type'];
    let body;
    let errors = [];
    try {
      if (mediaBase(ct) === 'multipart/form-data') {
        ctx.multipart = await svc.readMultipart(req, opts.multipart);
        body = svc.fieldMap(ctx.multipart);
      } else if (!['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(req.method) || Number(req.headers['content-length']) > 0) {
        const buf = await svc.readBody(req, opts.jsonLimit || 1 << 20);
        if (buf.length) {
          if (/json/i.test(mediaBase(ct)) || !ct) {
            try { body = JSON.parse(buf.toString('utf8')); } catch (e) { errors.push(`request body is not valid JSON: ${e.message}`); }
          } else {
            body = buf;
          }
        }
      }
    } catch (e) {
      errors.push(e.message);
      if (e.status === 413) {
        svc.recordViolation({ service, kind: 'request', method: req.method, path: reqPath, errors });
        svc.sendError(res, 413, e.message);
        return undefined;
      }
    }
    if (!errors.length) {
      errors = api.checkRequest({ method: req.method, path: reqPath, query, headers: req.headers, body, contentType: ct });
    }
    if (errors.length) {
      svc.recordViolation({ service, kind: 'request', method: req.method, path: reqPath, errors });
      svc.sendError(res, 400, `request does not conform to ${api.name}: ${errors.join('; ')}`);
      return undefined;
    }
    ctx.body = body;
    return handler(req, res, ctx);
  };
}

module.exports = { load, convertSchema, validated, watchResponse, FILES, SPECS };
