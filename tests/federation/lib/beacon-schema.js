'use strict';
// Beacon v2.1.1 response / record / request validation, offline, against the JSON Schemas in
// specs/beacon-v2.1.1 (draft 2020-12) and specs/vrs-1.3.0/schema/vrs.json.
//
//   const beacon = require('../lib/beacon-schema');
//   beacon.checkResponse('count', body)                          // -> [] or ['...']
//   beacon.checkResponse('resultSet', body, { entryType: 'individual' })  // also checks each record
//   beacon.checkRecord('individual', record)                     // -> [] or ['...']
//   beacon.checkRequest(body)                                    // POST body (beaconRequestBody)
//
// Response kinds: info, service-info, map, configuration, entryTypes, filteringTerms, boolean, count,
// resultSet (alias resultSets), collections, error.
// Record types: individual, biosample, genomicVariation, dataset, cohort, run, analysis (plurals accepted).
//
// How the schemas are loaded (see specs/SOURCES.md):
//   - every schema file gets `$id` = its https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/...
//     URL, so both the relative refs and the absolute raw URLs resolve to the local copies; nothing is fetched.
//   - vrs.json (draft-07, no $id) gets $id https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json (the URL the
//     genomicVariations schema refs) and its `$schema` is dropped so the 2020-12 validator accepts it.
//   - defect: models' `../common/info.json` does not exist upstream; framework/json/common/info.json is
//     registered under that URL too.
//   - defect: refs to `#/definitions/X` where the target schema keeps X under `$defs` are rewritten.
//   - the endpoints.json files (OpenAPI documents, not schemas) and examples are not loaded.

const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const ROOT = path.join(__dirname, '..', 'specs', 'beacon-v2.1.1');
const RAW = 'https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/';
const VRS_ID = 'https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json';
const VRS_FILE = path.join(__dirname, '..', 'specs', 'vrs-1.3.0', 'schema', 'vrs.json');
const MODEL = 'models/json/beacon-v2-default-model/';

const RESPONSES = {
  info: 'framework/json/responses/beaconInfoResponse.json',
  map: 'framework/json/responses/beaconMapResponse.json',
  configuration: 'framework/json/responses/beaconConfigurationResponse.json',
  entryTypes: 'framework/json/responses/beaconEntryTypesResponse.json',
  filteringTerms: 'framework/json/responses/beaconFilteringTermsResponse.json',
  boolean: 'framework/json/responses/beaconBooleanResponse.json',
  count: 'framework/json/responses/beaconCountResponse.json',
  resultSet: 'framework/json/responses/beaconResultsetsResponse.json',
  resultSets: 'framework/json/responses/beaconResultsetsResponse.json',
  collections: 'framework/json/responses/beaconCollectionsResponse.json',
  error: 'framework/json/responses/beaconErrorResponse.json',
};
const RECORDS = {
  individual: 'individuals', biosample: 'biosamples', genomicVariation: 'genomicVariations',
  genomicVariant: 'genomicVariations', dataset: 'datasets', cohort: 'cohorts', run: 'runs', analysis: 'analyses',
};
for (const dir of new Set(Object.values(RECORDS))) RECORDS[dir] = dir;
const REQUEST = 'framework/json/requests/beaconRequestBody.json';

function walkFiles(dir, rel = '') {
  const out = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) {
      if (!/^examples/.test(ent.name) && ent.name !== 'src') out.push(...walkFiles(dir, r));
    } else if (ent.name.endsWith('.json') && ent.name !== 'endpoints.json') {
      out.push(r);
    }
  }
  return out;
}

function mapRefs(node, fn) {
  if (Array.isArray(node)) return node.forEach((x) => mapRefs(x, fn));
  if (!node || typeof node !== 'object') return undefined;
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') node[k] = fn(v);
    else mapRefs(v, fn);
  }
  return undefined;
}

function dropNonBooleanDeprecated(node, parentKey) {
  if (Array.isArray(node)) { node.forEach((x) => dropNonBooleanDeprecated(x)); return; }
  if (!node || typeof node !== 'object') return;
  if (parentKey !== 'properties' && 'deprecated' in node && typeof node.deprecated !== 'boolean') delete node.deprecated;
  for (const [k, v] of Object.entries(node)) dropNonBooleanDeprecated(v, k);
}

let state = null;

function init() {
  if (state) return state;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'datetime']) ajv.addFormat(f, true);

  const schemas = new Map(); // $id -> schema
  for (const rel of [...walkFiles(ROOT, 'framework/json'), ...walkFiles(ROOT, 'models/json')]) {
    const doc = JSON.parse(fs.readFileSync(path.join(ROOT, rel), 'utf8'));
    if (doc.$schema !== 'https://json-schema.org/draft/2020-12/schema') continue; // instances, not schemas
    doc.$id = RAW + rel;
    schemas.set(doc.$id, doc);
  }
  // defect: ../common/info.json from the models folder
  const info = schemas.get(`${RAW}framework/json/common/info.json`);
  const missingInfo = `${RAW}${MODEL}common/info.json`;
  if (info && !schemas.has(missingInfo)) schemas.set(missingInfo, { ...JSON.parse(JSON.stringify(info)), $id: missingInfo });
  // VRS (draft-07, no $id)
  const vrs = JSON.parse(fs.readFileSync(VRS_FILE, 'utf8'));
  delete vrs.$schema;
  vrs.$id = VRS_ID;
  dropNonBooleanDeprecated(vrs); // draft-07 had no `deprecated`; vrs uses it as a note, 2020-12 wants a boolean
  schemas.set(VRS_ID, vrs);

  // defect: '#/definitions/X' where the target keeps X under '$defs'
  for (const [id, doc] of schemas) {
    mapRefs(doc, (ref) => {
      const m = /^(.*?)#\/definitions\/(.+)$/.exec(ref);
      if (!m) return ref;
      const targetId = m[1] ? new URL(m[1], id).href : id;
      const target = schemas.get(targetId);
      if (target && !target.definitions && target.$defs) return `${m[1]}#/$defs/${m[2]}`;
      return ref;
    });
  }
  for (const doc of schemas.values()) ajv.addSchema(doc);
  state = { ajv, compiled: new Map(), schemas };
  return state;
}

function validator(id) {
  const st = init();
  if (!st.compiled.has(id)) {
    const fn = st.ajv.getSchema(id);
    if (!fn) throw new Error(`beacon schema not loaded: ${id}`);
    st.compiled.set(id, fn);
  }
  return st.compiled.get(id);
}

function formatErrors(where, errors, max = 20) {
  const out = (errors || []).slice(0, max).map((e) => {
    let msg = e.message;
    if (e.keyword === 'additionalProperties' && e.params) msg += ` '${e.params.additionalProperty}'`;
    if (e.keyword === 'enum' && e.params) msg += ` ${JSON.stringify(e.params.allowedValues)}`;
    return `${where}${e.instancePath || ''} ${msg}`;
  });
  if (errors && errors.length > max) out.push(`${where}: ... ${errors.length - max} more`);
  return out;
}

function run(id, value, where) {
  const fn = validator(id);
  return fn(value) ? [] : formatErrors(where, fn.errors);
}

// Check one record (an entry of a result set) against its default-model schema.
function checkRecord(entryType, record) {
  const dir = RECORDS[entryType];
  if (!dir) throw new Error(`unknown beacon entry type '${entryType}' (known: ${Object.keys(RECORDS).join(', ')})`);
  return run(`${RAW}${MODEL}${dir}/defaultSchema.json`, record, entryType);
}

// Check a whole response document. opts.entryType: also check each record of a resultSet response.
function checkResponse(kind, body, opts = {}) {
  if (kind === 'service-info') {
    return require('./openapi').load('service-info').validate('Service', body, 'service-info');
  }
  const rel = RESPONSES[kind];
  if (!rel) throw new Error(`unknown beacon response kind '${kind}' (known: service-info, ${Object.keys(RESPONSES).join(', ')})`);
  const errors = run(RAW + rel, body, kind);
  if (opts.entryType && (kind === 'resultSet' || kind === 'resultSets') && body && body.response && Array.isArray(body.response.resultSets)) {
    body.response.resultSets.forEach((rs, i) => {
      (Array.isArray(rs.results) ? rs.results : []).forEach((rec, j) => {
        for (const e of checkRecord(opts.entryType, rec)) errors.push(`resultSets[${i}].results[${j}]: ${e}`);
      });
    });
  }
  return errors;
}

// Check a POST request body (beaconRequestBody).
function checkRequest(body) {
  return run(RAW + REQUEST, body, 'request');
}

// The raw URL ($id) of a file in specs/beacon-v2.1.1, e.g. for `$schema` fields in responses.
function schemaUrl(rel) {
  return RAW + rel.replace(/^\/+/, '');
}

module.exports = { checkResponse, checkRecord, checkRequest, schemaUrl, RAW, RESPONSES, RECORDS, init };
