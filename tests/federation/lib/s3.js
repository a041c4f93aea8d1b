'use strict';
// Minimal S3 client for the local federation: our own AWS Signature V4
// (header-signed requests and presigned GET URLs; presigned GETs also with Signature V2), path-style addressing
// (http://127.0.0.1:P/bucket/key), Node builtins only.
//
//   const { createClient } = require('./lib/s3');
//   const s3 = createClient();            // from FED_S3_URL, FED_S3_ACCESS_KEY, FED_S3_SECRET_KEY, FED_S3_REGION
//   const s3 = createClient({ url, accessKey, secretKey, region, sessionToken });
//   await s3.createBucket('results');
//   await s3.putObject('results', 'a/b.txt', 'hello', { contentType: 'text/plain' });
//   const { body, headers } = await s3.getObject('results', 'a/b.txt', { range: 'bytes=-2' });
//   const url = s3.presignGet('results', 'a/b.txt', 300);          // Signature V4
//   const url = s3.presignGetV2('results', 'a/b.txt', 300);        // Signature V2 (HMAC-SHA1)
//   const url = s3.presignGetAuto('results', 'a/b.txt', 300);      // V2 for us-east-1, else V4 (boto3)
//
// Errors from the server are thrown as S3Error { status, code, message, body }.

const http = require('http');
const https = require('https');
const crypto = require('crypto');

const UNSIGNED = 'UNSIGNED-PAYLOAD';
const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');

class S3Error extends Error {
  constructor(status, code, message, body) {
    super(`${code || 'HTTP' + status}: ${message || ''}`.trim());
    this.name = 'S3Error';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~
function uriEncode(str, keepSlash) {
  let out = encodeURIComponent(str).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  if (keepSlash) out = out.replace(/%2F/g, '/');
  return out;
}

function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''); // 20240101T000000Z
}

function canonicalQuery(query) {
  return Object.keys(query)
    .map((k) => [uriEncode(k), uriEncode(String(query[k] === undefined || query[k] === null ? '' : query[k]))])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function signingKey(secret, date8, region, service) {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date8), region), service), 'aws4_request');
}

// Computes the SigV4 signature pieces. headers: lower-case names -> values (must include host).
function sign({ method, path, query, headers, payloadHash, accessKey, secretKey, region, service, date }) {
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = {};
  for (const k of Object.keys(headers)) lower[k.toLowerCase()] = String(headers[k]).trim().replace(/\s+/g, ' ');
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [method, path, canonicalQuery(query || {}), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const date8 = date.slice(0, 8);
  const scope = `${date8}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256hex(canonicalRequest)].join('\n');
  const signature = crypto.createHmac('sha256', signingKey(secretKey, date8, region, service)).update(stringToSign).digest('hex');
  return { signature, signedHeaders, scope, credential: `${accessKey}/${scope}`, canonicalRequest, stringToSign };
}

function xmlUnescape(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&');
}

// First <tag>...</tag> in xml (unescaped), or undefined.
function xmlTag(xml, tag) {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? xmlUnescape(m[1]) : undefined;
}

function xmlAll(xml, tag) {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  const out = [];
  let m;
  while ((m = re.exec(xml))) out.push(m[1]);
  return out;
}

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

class S3Client {
  constructor(opts = {}) {
    const env = process.env;
    this.url = (opts.url || env.FED_S3_URL || '').replace(/\/+$/, '');
    this.accessKey = opts.accessKey || env.FED_S3_ACCESS_KEY;
    this.secretKey = opts.secretKey || env.FED_S3_SECRET_KEY;
    this.region = opts.region || env.FED_S3_REGION || 'us-east-1';
    this.sessionToken = opts.sessionToken || undefined;
    this.service = opts.service || 's3';
    this.signPayload = !!opts.signPayload; // sha256 of buffered bodies instead of UNSIGNED-PAYLOAD
    this.timeoutMs = opts.timeoutMs || 30000;
    if (!this.url) throw new Error('s3: no endpoint (FED_S3_URL or opts.url)');
    if (!this.accessKey || !this.secretKey) throw new Error('s3: no credentials (FED_S3_ACCESS_KEY/FED_S3_SECRET_KEY or opts)');
    const u = new URL(this.url);
    this.protocol = u.protocol;
    this.host = u.host; // hostname[:port] as sent in the Host header
    this.basePath = u.pathname.replace(/\/+$/, '');
  }

  _path(bucket, key) {
    let p = this.basePath + '/';
    if (bucket) p += uriEncode(bucket);
    if (key !== undefined && key !== null) p += '/' + uriEncode(key, true);
    return p;
  }

  // Low-level signed request. Returns { status, headers, body: Buffer } or, with opts.stream,
  // { status, headers, stream }. Throws S3Error for status >= 300 unless opts.allowStatus includes it.
  request(method, bucket, key, opts = {}) {
    const query = opts.query || {};
    const path = opts.rawPath || this._path(bucket, key);
    let body = opts.body;
    let stream = null;
    if (body !== undefined && body !== null && typeof body.pipe === 'function') stream = body;
    else if (typeof body === 'string') body = Buffer.from(body);
    else if (body instanceof Uint8Array && !Buffer.isBuffer(body)) body = Buffer.from(body);

    const date = amzDate(opts.date || new Date());
    let payloadHash;
    if (stream) payloadHash = UNSIGNED;
    else if (opts.payloadHash) payloadHash = opts.payloadHash;
    else if (this.signPayload || opts.signPayload || this.service !== 's3') payloadHash = body ? sha256hex(body) : EMPTY_SHA256;
    else payloadHash = UNSIGNED;

    const headers = { host: this.host, 'x-amz-date': date, 'x-amz-content-sha256': payloadHash };
    if (this.sessionToken) headers['x-amz-security-token'] = this.sessionToken;
    for (const [k, v] of Object.entries(opts.headers || {})) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    if (stream) {
      if (opts.contentLength === undefined) throw new Error('s3: streaming body needs contentLength');
      headers['content-length'] = String(opts.contentLength);
    } else if (body) headers['content-length'] = String(body.length);
    else if (method === 'PUT' || method === 'POST') headers['content-length'] = '0';

    const sig = sign({ method, path, query, headers, payloadHash, accessKey: this.accessKey, secretKey: this.secretKey,
      region: this.region, service: this.service, date });
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${sig.credential}, SignedHeaders=${sig.signedHeaders}, Signature=${sig.signature}`;

    const qs = canonicalQuery(query);
    const u = new URL(this.url);
    const lib = this.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request({
        method, hostname: u.hostname, port: u.port || undefined, path: path + (qs ? '?' + qs : ''), headers,
        timeout: this.timeoutMs,
      }, (res) => {
        const ok = res.statusCode < 300 || (opts.allowStatus || []).includes(res.statusCode);
        if (opts.stream && ok) return resolve({ status: res.statusCode, headers: res.headers, stream: res });
        readAll(res).then((buf) => {
          if (!ok) {
            const text = buf.toString('utf8');
            return reject(new S3Error(res.statusCode, xmlTag(text, 'Code') || (res.statusCode === 404 ? 'NotFound' : undefined),
              xmlTag(text, 'Message') || text.slice(0, 200), text));
          }
          resolve({ status: res.statusCode, headers: res.headers, body: buf });
        }, reject);
      });
      req.on('timeout', () => req.destroy(new Error(`s3: ${method} ${path} timed out`)));
      req.on('error', reject);
      if (stream) { stream.on('error', (e) => req.destroy(e)); stream.pipe(req); } else req.end(body || undefined);
    });
  }

  async createBucket(bucket) {
    try {
      await this.request('PUT', bucket, null);
    } catch (e) {
      if (e.code === 'BucketAlreadyOwnedByYou') return; // idempotent
      throw e;
    }
  }

  async deleteBucket(bucket) { await this.request('DELETE', bucket, null); }

  // body: string | Buffer | Uint8Array | Readable stream (stream needs opts.contentLength, or is buffered)
  async putObject(bucket, key, body, opts = {}) {
    let contentLength = opts.contentLength;
    if (body && typeof body.pipe === 'function' && contentLength === undefined) body = await readAll(body);
    const headers = { 'content-type': opts.contentType || 'application/octet-stream' };
    for (const [k, v] of Object.entries(opts.metadata || {})) headers['x-amz-meta-' + k.toLowerCase()] = v;
    const r = await this.request('PUT', bucket, key, { body: body === undefined || body === null ? Buffer.alloc(0) : body, contentLength, headers });
    return { etag: r.headers.etag, status: r.status };
  }

  // opts.range: 'bytes=0-99' | 'bytes=-100' ...; opts.stream: return the response stream instead of a Buffer.
  async getObject(bucket, key, opts = {}) {
    const headers = {};
    if (opts.range) headers.range = opts.range;
    const r = await this.request('GET', bucket, key, { headers, stream: opts.stream });
    return { status: r.status, headers: r.headers, body: r.body, stream: r.stream,
      contentType: r.headers['content-type'], contentLength: Number(r.headers['content-length']), etag: r.headers.etag };
  }

  // Resolves to metadata, or null when the object does not exist.
  async headObject(bucket, key) {
    const r = await this.request('HEAD', bucket, key, { allowStatus: [404] });
    if (r.status === 404) return null;
    const metadata = {};
    for (const [k, v] of Object.entries(r.headers)) if (k.startsWith('x-amz-meta-')) metadata[k.slice(11)] = v;
    return { status: r.status, headers: r.headers, contentLength: Number(r.headers['content-length']),
      contentType: r.headers['content-type'], etag: r.headers.etag, lastModified: r.headers['last-modified'], metadata };
  }

  async deleteObject(bucket, key) { await this.request('DELETE', bucket, key); }

  // One page. Returns { contents: [{key, size, etag, lastModified}], commonPrefixes, isTruncated, nextContinuationToken, keyCount }
  async listObjectsV2(bucket, prefix, continuationToken, opts = {}) {
    const query = { 'list-type': '2' };
    if (prefix) query.prefix = prefix;
    if (continuationToken) query['continuation-token'] = continuationToken;
    if (opts.maxKeys) query['max-keys'] = String(opts.maxKeys);
    if (opts.delimiter) query.delimiter = opts.delimiter;
    if (opts.startAfter) query['start-after'] = opts.startAfter;
    const r = await this.request('GET', bucket, null, { query });
    const xml = r.body.toString('utf8');
    const contents = xmlAll(xml, 'Contents').map((c) => ({
      key: xmlTag(c, 'Key'), size: Number(xmlTag(c, 'Size')), etag: xmlTag(c, 'ETag'), lastModified: xmlTag(c, 'LastModified'),
    }));
    const commonPrefixes = xmlAll(xml, 'CommonPrefixes').map((c) => xmlTag(c, 'Prefix'));
    return { contents, commonPrefixes, isTruncated: xmlTag(xml, 'IsTruncated') === 'true',
      nextContinuationToken: xmlTag(xml, 'NextContinuationToken'), keyCount: Number(xmlTag(xml, 'KeyCount') || contents.length) };
  }

  // All objects under prefix (follows continuation tokens; bounded by opts.maxPages, default 10000).
  async listAll(bucket, prefix, opts = {}) {
    const out = [];
    let token;
    for (let page = 0; page < (opts.maxPages || 10000); page++) {
      const r = await this.listObjectsV2(bucket, prefix, token, opts);
      out.push(...r.contents);
      if (!r.isTruncated || !r.nextContinuationToken) return out;
      token = r.nextContinuationToken;
    }
    throw new Error('s3: listAll exceeded maxPages');
  }

  // Presigned GET URL (query-string SigV4, UNSIGNED-PAYLOAD, only `host` signed).
  presignGet(bucket, key, expiresSeconds = 900, opts = {}) {
    return this.presign('GET', bucket, key, expiresSeconds, opts);
  }

  presign(method, bucket, key, expiresSeconds = 900, opts = {}) {
    const date = amzDate(opts.date || new Date());
    const path = this._path(bucket, key);
    const scope = `${date.slice(0, 8)}/${this.region}/${this.service}/aws4_request`;
    const query = Object.assign({}, opts.query || {}, {
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `${this.accessKey}/${scope}`,
      'X-Amz-Date': date,
      'X-Amz-Expires': String(Math.max(1, Math.min(604800, Math.floor(expiresSeconds)))),
      'X-Amz-SignedHeaders': 'host',
    });
    if (this.sessionToken) query['X-Amz-Security-Token'] = this.sessionToken;
    const sig = sign({ method, path, query, headers: { host: this.host }, payloadHash: UNSIGNED, accessKey: this.accessKey,
      secretKey: this.secretKey, region: this.region, service: this.service, date });
    return `${this.protocol}//${this.host}${path}?${canonicalQuery(query)}&X-Amz-Signature=${sig.signature}`;
  }
}

// Presigned GET with AWS Signature Version 2 (query-string authentication: AWSAccessKeyId, Expires,
// Signature = base64(HMAC-SHA1(secret, "GET\n\n\n<Expires>\n/<bucket>/<key>"))). boto3 still makes
// these for region us-east-1 (WESkit's presigned outputs); RGW accepts them.
S3Client.prototype.presignGetV2 = function presignGetV2(bucket, key, expiresSeconds = 900, opts = {}) {
  const now = Math.floor((opts.date || new Date()).getTime() / 1000);
  const expires = now + Math.max(1, Math.floor(expiresSeconds));
  const path = this._path(bucket, key);
  const resource = path.slice(this.basePath.length); // the canonical resource: /bucket/key as sent
  const stringToSign = `GET\n\n\n${expires}\n${resource}`;
  const signature = crypto.createHmac('sha1', this.secretKey).update(stringToSign, 'utf8').digest('base64');
  const q = `AWSAccessKeyId=${uriEncode(this.accessKey)}&Signature=${uriEncode(signature)}&Expires=${expires}`;
  return `${this.protocol}//${this.host}${path}?${q}`;
};

// What boto3 does for generate_presigned_url('get_object'): Signature V2 when the region is
// us-east-1 (and no signature version is configured), V4 otherwise; opts.version forces one.
S3Client.prototype.presignGetAuto = function presignGetAuto(bucket, key, expiresSeconds = 900, opts = {}) {
  const v = opts.version || (this.region === 'us-east-1' ? 'v2' : 'v4');
  return v === 'v2' ? this.presignGetV2(bucket, key, expiresSeconds, opts) : this.presignGet(bucket, key, expiresSeconds, opts);
};

function createClient(opts) { return new S3Client(opts); }

// POST an STS AssumeRoleWithWebIdentity (unsigned, as AWS/MinIO/RGW accept it) and parse the XML.
// Resolves to { accessKeyId, secretAccessKey, sessionToken, expiration, xml }; throws S3Error on an ErrorResponse.
function assumeRoleWithWebIdentity(stsUrl, { token, roleArn = 'arn:aws:iam:::role/impact', sessionName = 'impact', durationSeconds = 3600 }) {
  const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', WebIdentityToken: token,
    RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: String(durationSeconds) }).toString();
  const u = new URL(stsUrl);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request({ method: 'POST', hostname: u.hostname, port: u.port || undefined, path: u.pathname + u.search,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) }, timeout: 30000 }, (res) => {
      readAll(res).then((buf) => {
        const xml = buf.toString('utf8');
        if (res.statusCode >= 300) return reject(new S3Error(res.statusCode, xmlTag(xml, 'Code'), xmlTag(xml, 'Message'), xml));
        resolve({ accessKeyId: xmlTag(xml, 'AccessKeyId'), secretAccessKey: xmlTag(xml, 'SecretAccessKey'),
          sessionToken: xmlTag(xml, 'SessionToken'), expiration: xmlTag(xml, 'Expiration'), xml });
      }, reject);
    });
    req.on('timeout', () => req.destroy(new Error('sts: request timed out')));
    req.on('error', reject);
    req.end(form);
  });
}

module.exports = { S3Client, S3Error, createClient, assumeRoleWithWebIdentity, sign, uriEncode, canonicalQuery, amzDate,
  xmlTag, xmlAll, xmlUnescape, UNSIGNED };
