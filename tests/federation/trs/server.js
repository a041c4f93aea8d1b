'use strict';
// GA4GH TRS 2.1 for the local federation: a tool registry serving the federation's example workflows, in the
// dialect of a real registry (docs/servers.md, ../../research notes in the repository's docs):
//
//   node trs/server.js --port P [--dialect workflowhub|dockstore]
//
// workflowhub (default; WorkflowHub / seek4science SEEK): API under /ga4gh/trs/v2; numeric tool ids (1, 2 ...),
//   versions 1, 2 ...; one descriptor type per version (another type: 404 `Type: X not available`); `offset`
//   is an index, `limit` defaults to 1000; paging headers next_page (only when more), last_page,
//   current_offset, current_limit, self_link; toolClass only `Workflow`; /files lists {path, file_type}
//   without checksums; file wrappers carry no checksum.
// dockstore (Dockstore): API under /api/ga4gh/trs/v2; ids `#workflow/github.com/impact-fed/<name>` (percent-
//   encoded in paths), versions are git references (`main`, `v1.0`); `limit` capped at 100 and `offset` is a
//   PAGE NUMBER; the same headers; file wrappers and /files carry `sha-256` checksums. Two unlisted entries
//   (fetchable by id, absent from /tools) misbehave on purpose for tests: `.../checksum-mismatch` (its
//   descriptor's checksum is wrong) and `.../unsafe-path` (its /files lists `../escape.cwl`).
//
// Responses are checked against specs/trs-2.1.0 (violations go to $FED_STATE/violations.log).
// Also a module: start({port, dialect}) -> {server, port, url, apiUrl, close()}.

const fs = require('fs');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const svc = require('../lib/service');
const openapi = require('../lib/openapi');

const WES_WF = path.join(__dirname, '..', 'wes', 'workflows');
const OWN_WF = path.join(__dirname, 'workflows');

// The catalogue: one entry per workflow; `files` as [relative path, file on disk, file_type].
const CATALOGUE = [
  {
    key: 'count-variants', name: 'count-variants', type: 'CWL', typeVersion: 'v1.2',
    description: 'Counts the variant records of a VCF per chromosome (one CWL file, steps inline)',
    authors: ['Ada Lovelace'],
    files: [
      ['count-variants.cwl', path.join(WES_WF, 'count-variants.cwl'), 'PRIMARY_DESCRIPTOR'],
      ['count-variants.params.json', path.join(WES_WF, 'count-variants.params.json'), 'TEST_FILE'],
      ['example.vcf', path.join(WES_WF, 'example.vcf'), 'OTHER'],
    ],
  },
  {
    key: 'count-variants-multi', name: 'count-variants-multi', type: 'CWL', typeVersion: 'v1.2',
    description: 'Counts the variant records of a VCF per chromosome (multi-file CWL: steps in tools/)',
    authors: ['Ada Lovelace', 'Rosalind Franklin'],
    files: [
      ['main.cwl', path.join(OWN_WF, 'count-variants-multi', 'main.cwl'), 'PRIMARY_DESCRIPTOR'],
      ['tools/tally.cwl', path.join(OWN_WF, 'count-variants-multi', 'tools', 'tally.cwl'), 'SECONDARY_DESCRIPTOR'],
      ['tools/sum.cwl', path.join(OWN_WF, 'count-variants-multi', 'tools', 'sum.cwl'), 'SECONDARY_DESCRIPTOR'],
      ['params.json', path.join(OWN_WF, 'count-variants-multi', 'params.json'), 'TEST_FILE'],
      ['example.vcf', path.join(WES_WF, 'example.vcf'), 'OTHER'],
    ],
  },
  {
    key: 'count-variants-smk', name: 'count-variants-smk', type: 'SMK', typeVersion: '7',
    description: 'Counts the variant records of a VCF per chromosome (Snakemake)',
    authors: ['Barbara McClintock'],
    files: [
      ['Snakefile', path.join(WES_WF, 'snakemake', 'count-variants', 'Snakefile'), 'PRIMARY_DESCRIPTOR'],
      ['count-variants.params.json', path.join(WES_WF, 'snakemake', 'count-variants', 'count-variants.params.json'), 'TEST_FILE'],
    ],
  },
  {
    key: 'fails', name: 'fails', type: 'CWL', typeVersion: 'v1.2',
    description: 'A tool that always fails (exit status 3)',
    authors: ['Ada Lovelace'],
    files: [['fails.cwl', path.join(WES_WF, 'fails.cwl'), 'PRIMARY_DESCRIPTOR']],
  },
];
// Unlisted entries that misbehave on purpose (dockstore dialect only).
const FAULTS = [
  {
    key: 'checksum-mismatch', name: 'checksum-mismatch', type: 'CWL', typeVersion: 'v1.2', unlisted: true,
    description: 'TEST: its descriptor checksum is wrong', authors: ['Test'], badChecksum: true,
    files: [['fails.cwl', path.join(WES_WF, 'fails.cwl'), 'PRIMARY_DESCRIPTOR']],
  },
  {
    key: 'unsafe-path', name: 'unsafe-path', type: 'CWL', typeVersion: 'v1.2', unlisted: true,
    description: 'TEST: lists a file outside its folder', authors: ['Test'],
    files: [
      ['fails.cwl', path.join(WES_WF, 'fails.cwl'), 'PRIMARY_DESCRIPTOR'],
      ['../escape.cwl', path.join(WES_WF, 'fails.cwl'), 'SECONDARY_DESCRIPTOR'],
    ],
  },
];

const DIALECTS = {
  workflowhub: { base: '/ga4gh/trs/v2', defaultLimit: 1000, maxLimit: Infinity, offsetIsPage: false, checksums: false },
  dockstore: { base: '/api/ga4gh/trs/v2', defaultLimit: 100, maxLimit: 100, offsetIsPage: true, checksums: true },
};

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

async function start(opts = {}) {
  const dialectName = opts.dialect || process.env.FED_TRS_DIALECT || 'workflowhub';
  const d = DIALECTS[dialectName];
  if (!d) throw new Error(`--dialect: unknown '${dialectName}' (workflowhub, dockstore)`);
  const name = opts.name || `trs-${dialectName}`;
  const log = opts.log || svc.logger(name);
  const api = openapi.load('trs', { basePath: d.base });
  let origin = null;

  // Tools with their ids and versions, in the dialect's forms. Version 2 (`main`) is the current one;
  // version 1 (`v1.0`) is the same content, as registries keep old versions.
  const entries = CATALOGUE.concat(dialectName === 'dockstore' ? FAULTS : []);
  const tools = entries.map((e, i) => {
    const id = dialectName === 'dockstore' ? `#workflow/github.com/impact-fed/${e.key}` : String(i + 1);
    const versions = dialectName === 'dockstore' ? ['v1.0', 'main'] : ['1', '2'];
    const files = e.files.map(([rel, file, fileType]) => ({ path: rel, file, fileType, data: fs.readFileSync(file) }));
    return { entry: e, id, versions, files };
  });

  const toolUrl = (t) => `${origin}${d.base}/tools/${encodeURIComponent(t.id)}`;
  const versionDoc = (t, v) => ({
    id: dialectName === 'dockstore' ? `${t.id}:${v}` : v,
    name: v,
    url: `${toolUrl(t)}/versions/${encodeURIComponent(v)}`,
    author: t.entry.authors,
    descriptor_type: [t.entry.type],
    descriptor_type_version: { [t.entry.type]: [t.entry.typeVersion] },
    is_production: v !== 'main',
    verified: false,
    containerfile: false,
    signed: false,
    images: [],
  });
  const toolDoc = (t) => ({
    id: t.id,
    url: toolUrl(t),
    name: t.entry.name,
    description: t.entry.description,
    organization: dialectName === 'dockstore' ? 'impact-fed' : 'IMPaCT federation project',
    toolclass: { id: '1', name: 'Workflow', description: 'A computational workflow' },
    aliases: [],
    has_checker: false,
    versions: t.versions.map((v) => versionDoc(t, v)),
  });

  const notFound = (res, message = 'Not found') => svc.sendJson(res, 404, { code: 404, message });
  const findTool = (id) => tools.find((t) => t.id === id);
  const findVersion = (t, v) => (dialectName === 'dockstore' ? t.versions.find((x) => x.toLowerCase() === String(v).toLowerCase()) : t.versions.find((x) => x === v));

  let info = null;  // made once: its createdAt/updatedAt stay put
  function serviceInfo() {
    if (info) return info;
    info = svc.serviceInfo({
      id: `org.impact.federation.trs.${dialectName}`,
      name: `TRS as ${dialectName === 'dockstore' ? 'Dockstore' : 'WorkflowHub'} speaks it (impact local federation)`,
      type: { group: 'org.ga4gh', artifact: 'trs', version: '2.1.0' },
      description: `Tool Registry Service in the ${dialectName} dialect, serving the federation's example workflows`,
      version: '2.1.0',
      url: `${origin}${d.base}`,
    });
    return info;
  }

  function listTools(req, res, ctx) {
    const q = ctx.query;
    let list = tools.filter((t) => !t.entry.unlisted);
    if (q.id) list = list.filter((t) => t.id === q.id);
    if (q.name) list = list.filter((t) => t.entry.name.toLowerCase().includes(String(q.name).toLowerCase()));
    if (q.description) list = list.filter((t) => t.entry.description.toLowerCase().includes(String(q.description).toLowerCase()));
    if (q.toolClass && q.toolClass !== 'Workflow') list = [];
    if (q.descriptorType) list = list.filter((t) => t.entry.type === String(q.descriptorType).toUpperCase());
    if (q.author) list = list.filter((t) => t.entry.authors.includes(q.author));
    if (q.checker && q.checker !== 'false') list = [];
    const limit = Math.min(q.limit && /^\d+$/.test(q.limit) && Number(q.limit) > 0 ? Number(q.limit) : d.defaultLimit, d.maxLimit);
    const offset = q.offset && /^\d+$/.test(q.offset) ? Number(q.offset) : 0;
    const start = d.offsetIsPage ? offset * limit : offset;
    const page = list.slice(start, start + limit);
    const link = (off) => {
      const u = new URL(`${origin}${ctx.path}`);
      for (const [k, v] of Object.entries(q)) if (k !== 'offset') u.searchParams.set(k, v);
      u.searchParams.set('limit', String(limit));
      u.searchParams.set('offset', String(off));
      return u.toString();
    };
    const headers = { current_limit: String(limit), self_link: `${origin}${req.url}` };
    if (q.offset !== undefined) headers.current_offset = String(q.offset);
    if (start + limit < list.length) headers.next_page = link(d.offsetIsPage ? offset + 1 : start + limit);
    headers.last_page = link(d.offsetIsPage ? Math.max(0, Math.ceil(list.length / limit) - 1) : Math.max(0, list.length - limit));
    svc.sendJson(res, 200, page.map(toolDoc), headers);
  }

  function getTool(req, res, ctx) {
    const t = findTool(ctx.params.id);
    if (!t) return notFound(res);
    return svc.sendJson(res, 200, toolDoc(t));
  }
  function getVersions(req, res, ctx) {
    const t = findTool(ctx.params.id);
    if (!t) return notFound(res);
    return svc.sendJson(res, 200, t.versions.map((v) => versionDoc(t, v)));
  }
  function getVersion(req, res, ctx) {
    const t = findTool(ctx.params.id);
    const v = t && findVersion(t, ctx.params.version_id);
    if (!v) return notFound(res);
    return svc.sendJson(res, 200, versionDoc(t, v));
  }

  // The tool, its version and the (plain?) type, or an answer sent.
  function resolve(res, ctx) {
    const t = findTool(ctx.params.id);
    const v = t && findVersion(t, ctx.params.version_id);
    if (!v) { notFound(res); return null; }
    const raw = String(ctx.params.type);
    const plain = /^plain_/i.test(raw);
    const type = raw.replace(/^plain_/i, '').toUpperCase();
    if (type !== t.entry.type) {
      svc.sendJson(res, 404, { code: 404, message: dialectName === 'dockstore' ? 'version found, but file not found (bad filename, invalid file, etc.)' : `Type: ${type} not available` });
      return null;
    }
    return { t, v, plain };
  }

  function checksumOf(t, f) {
    const sum = sha256(f.data);
    if (t.entry.badChecksum && f.fileType === 'PRIMARY_DESCRIPTOR') return `${'0'.repeat(63)}1`;
    return sum;
  }

  function sendFile(res, t, f, plain) {
    if (plain) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': f.data.length });
      return res.end(f.data);
    }
    const body = { content: f.data.toString('utf8'), url: `https://github.com/impact-fed/${t.entry.key}/raw/main/${f.path}`, image_type: t.entry.type };
    if (d.checksums) body.checksum = [{ checksum: checksumOf(t, f), type: 'sha-256' }];
    return svc.sendJson(res, 200, body);
  }

  function getDescriptor(req, res, ctx) {
    const r = resolve(res, ctx);
    if (!r) return undefined;
    const f = r.t.files.find((x) => x.fileType === 'PRIMARY_DESCRIPTOR');
    return sendFile(res, r.t, f, r.plain);
  }
  function getRelative(req, res, ctx) {
    const r = resolve(res, ctx);
    if (!r) return undefined;
    const rel = String(ctx.params.relative_path).replace(/^\.\//, '');
    const f = r.t.files.find((x) => x.path === rel);
    if (!f) return notFound(res, 'version found, but file not found (bad filename, invalid file, etc.)');
    return sendFile(res, r.t, f, r.plain);
  }
  function getFiles(req, res, ctx) {
    const r = resolve(res, ctx);
    if (!r) return undefined;
    if (ctx.query.format === 'zip') return svc.sendJson(res, 404, { code: 404, message: 'zip is not offered by this registry' });
    return svc.sendJson(res, 200, r.t.files.map((f) => {
      const o = { path: f.path, file_type: f.fileType };
      if (d.checksums) o.checksum = { checksum: checksumOf(r.t, f), type: 'sha-256' };
      return o;
    }));
  }
  function getTests(req, res, ctx) {
    const r = resolve(res, ctx);
    if (!r) return undefined;
    return svc.sendJson(res, 200, r.t.files.filter((f) => f.fileType === 'TEST_FILE').map((f) => ({ content: f.data.toString('utf8') })));
  }

  const r = svc.router({ log });
  const v = (h) => openapi.validated(api, h, { service: name });
  const B = d.base;
  r.get('/service-info', (req, res) => svc.sendJson(res, 200, serviceInfo()));
  r.get(`${B}/service-info`, v((req, res) => svc.sendJson(res, 200, serviceInfo())));
  r.get(`${B}/toolClasses`, v((req, res) => svc.sendJson(res, 200, [{ id: '1', name: 'Workflow', description: 'A computational workflow' }])));
  r.get(`${B}/tools`, v(listTools));
  r.get(`${B}/tools/:id`, v(getTool));
  r.get(`${B}/tools/:id/versions`, v(getVersions));
  r.get(`${B}/tools/:id/versions/:version_id`, v(getVersion));
  r.get(`${B}/tools/:id/versions/:version_id/:type/descriptor`, v(getDescriptor));
  r.get(`${B}/tools/:id/versions/:version_id/:type/descriptor/:relative_path*`, v(getRelative));
  r.get(`${B}/tools/:id/versions/:version_id/:type/files`, v(getFiles));
  r.get(`${B}/tools/:id/versions/:version_id/:type/tests`, v(getTests));
  const server = http.createServer(r.handler({ notFound: (req, res) => notFound(res, `no such endpoint: ${req.method} ${req.pathname}`) }));
  const port = await svc.listen(server, opts.port || 0);
  origin = `http://127.0.0.1:${port}`;
  log.info(`${name} listening on ${origin}${B}; ${tools.length} tools (dialect ${dialectName})`);
  return {
    server, port, url: origin, apiUrl: `${origin}${B}`, tools: tools.map((t) => ({ id: t.id, key: t.entry.key, versions: t.versions })),
    close: () => new Promise((ok) => { if (server.closeAllConnections) server.closeAllConnections(); server.close(() => ok()); }),
  };
}

if (require.main === module) {
  const args = svc.parseArgs();
  start({ port: args.port, dialect: args.dialect })
    .then(({ server }) => svc.onShutdown(server, null))
    .catch((e) => { process.stderr.write(`trs: ${e.stack || e}\n`); process.exit(1); });
}

module.exports = { start, DIALECTS };
