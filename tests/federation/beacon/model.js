'use strict';
// Beacon data model for one instance: loads data/out (generate.js output), builds records for the
// seven entry types, and answers queries (filters, variant request parameters).
//
// Linking: every record is linked to a set of individuals (a variant -> its carriers, a dataset or
// cohort -> its members, biosample/run/analysis -> its individual). Filters about individuals
// (phenotypes, sex, age, ...) therefore apply to every entry type, and /{entry}/{id}/{other}
// returns the `other` records that share individuals with the entry.

const fs = require('fs');
const path = require('path');
const { REFSEQ } = require('../data/generate');

const ENTRY_TYPES = {
  individuals: { id: 'individual', name: 'Individual', schema: 'individuals', ontology: 'NCIT:C25190', label: 'Person' },
  biosamples: { id: 'biosample', name: 'Biosample', schema: 'biosamples', ontology: 'NCIT:C70699', label: 'Biospecimen' },
  g_variants: { id: 'genomicVariant', name: 'Genomic Variants', schema: 'genomicVariations', ontology: 'ENSGLOSSARY:0000092', label: 'Variant' },
  runs: { id: 'run', name: 'Sequencing run', schema: 'runs', ontology: 'NCIT:C148088', label: 'Sequencing run' },
  analyses: { id: 'analysis', name: 'Bioinformatics analysis', schema: 'analyses', ontology: 'edam:operation_2945', label: 'Analysis' },
  datasets: { id: 'dataset', name: 'Dataset', schema: 'datasets', ontology: 'NCIT:C47824', label: 'Data set', collection: true },
  cohorts: { id: 'cohort', name: 'Cohort', schema: 'cohorts', ontology: 'NCIT:C61512', label: 'Cohort', collection: true },
};

const ZYG = { 1: { id: 'GENO:0000458', label: 'simple heterozygous' }, 2: { id: 'GENO:0000136', label: 'homozygous' } };
const CURIE = /^[A-Za-z][A-Za-z0-9_.]*:[^\s]+$/;

const strip = (o) => (Array.isArray(o) ? o.map(strip) : o && typeof o === 'object'
  ? Object.fromEntries(Object.entries(o).filter(([k]) => !k.startsWith('_')).map(([k, v]) => [k, strip(v)])) : o);

// ISO 8601 duration (P1Y2M3DT...) -> days (approximate, good for ordering)
function durationDays(s) {
  const m = /^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T.*)?$/.exec(String(s || '').trim());
  if (!m || s === 'P') return null;
  const [y, mo, w, d] = m.slice(1).map((x) => Number(x || 0));
  return y * 365.25 + mo * 30.4375 + w * 7 + d;
}

function collectTerms(o, out = new Set()) {
  if (Array.isArray(o)) o.forEach((x) => collectTerms(x, out));
  else if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      if (k === 'id' && typeof v === 'string' && CURIE.test(v)) out.add(v);
      else if (typeof v === 'object') collectTerms(v, out);
    }
  }
  return out;
}

function readVcf(file) {
  const variants = [];
  let samples = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('##')) continue;
    const f = line.split('\t');
    if (line.startsWith('#')) { samples = f.slice(9); continue; }
    const info = Object.fromEntries(f[7].split(';').map((kv) => kv.split('=')));
    const gts = f.slice(9).map((g) => (g.match(/1/g) || []).length);
    variants.push({ chrom: f[0].replace(/^chr/, ''), pos: Number(f[1]), id: f[2], ref: f[3], alt: f[4], gene: info.GENE || null, vt: info.VT,
      carriers: samples.map((s, i) => [s, gts[i]]).filter(([, g]) => g > 0) });
  }
  return variants;
}

function hgvs(v) {
  const acc = REFSEQ[v.chrom];
  if (v.ref.length === 1 && v.alt.length === 1) return `${acc}:g.${v.pos}${v.ref}>${v.alt}`;
  if (v.alt.length === 1 && v.ref.length > 1) {
    return v.ref.length === 2 ? `${acc}:g.${v.pos + 1}del` : `${acc}:g.${v.pos + 1}_${v.pos + v.ref.length - 1}del`;
  }
  if (v.ref.length === 1 && v.alt.length > 1) return `${acc}:g.${v.pos}_${v.pos + 1}ins${v.alt.slice(1)}`;
  return `${acc}:g.${v.pos}_${v.pos + v.ref.length - 1}delins${v.alt}`;
}

class Model {
  constructor(dataDir, datasetId) {
    const load = (f) => JSON.parse(fs.readFileSync(path.join(dataDir, f), 'utf8'));
    this.datasetId = datasetId;
    const ont = load('ontology.json');
    this.parents = ont.parents;
    this.labels = ont.labels;
    this.genes = load('genes.json');
    const mine = (list) => list.filter((x) => x._datasetId === datasetId);
    const inds = mine(load('individuals.json'));
    const bss = mine(load('biosamples.json'));
    const runs = mine(load('runs.json'));
    const ans = mine(load('analyses.json'));
    const dss = load('datasets.json').filter((d) => d.id === datasetId);
    const cohorts = mine(load('cohorts.json'));
    if (!dss.length) throw new Error(`dataset ${datasetId} not found in ${dataDir}`);
    const bsOf = new Map(bss.map((b) => [b.individualId, b]));
    const indIds = inds.map((i) => i.id);
    const entry = (rec, individuals, extra = {}) => ({ rec: strip(rec), raw: rec, individuals: new Set(individuals), ...extra });
    this.entries = {
      individuals: inds.map((i) => entry(i, [i.id], { age: i._age })),
      biosamples: bss.map((b) => entry(b, [b.individualId], { age: b.collectionMoment })),
      runs: runs.map((r) => entry(r, [r.individualId])),
      analyses: ans.map((a) => entry(a, [a.individualId])),
      datasets: dss.map((d) => entry(d, indIds)),
      cohorts: cohorts.map((c) => entry(c, indIds)),
      g_variants: [],
    };
    const indOfBs = new Map(bss.map((b) => [b.id, b.individualId]));
    for (const v of readVcf(path.join(dataDir, 'vcf', `${datasetId}.vcf`))) {
      const start = v.pos - 1;
      const end = start + v.ref.length;
      const rec = {
        variantInternalId: v.id,
        variation: {
          variantType: v.vt === 'SNP' ? 'SNP' : v.vt,
          referenceBases: v.ref,
          alternateBases: v.alt,
          location: { type: 'SequenceLocation', sequence_id: `refseq:${REFSEQ[v.chrom]}`,
            interval: { type: 'SequenceInterval', start: { type: 'Number', value: start }, end: { type: 'Number', value: end } } },
        },
        identifiers: { genomicHGVSId: hgvs(v) },
        molecularAttributes: v.gene ? { geneIds: [v.gene] } : undefined,
        caseLevelData: v.carriers.map(([bs, g]) => ({ biosampleId: bs, individualId: indOfBs.get(bs), zygosity: ZYG[g] })),
      };
      if (!rec.molecularAttributes) delete rec.molecularAttributes;
      this.entries.g_variants.push(entry(rec, v.carriers.map(([bs]) => indOfBs.get(bs)), {
        v: { chrom: v.chrom, start, end, ref: v.ref, alt: v.alt, gene: v.gene, type: rec.variation.variantType, id: v.id },
      }));
    }
    // per-individual context for filters: terms, custom terms, ages and flat fields of linked records
    this.ctx = new Map();
    for (const e of this.entries.individuals) {
      const id = e.raw.id;
      const b = bsOf.get(id);
      const r = runs.find((x) => x.individualId === id);
      const a = ans.find((x) => x.individualId === id);
      const linked = [e.raw, b, r, a].filter(Boolean);
      const terms = collectTerms(linked.map(strip));
      const custom = new Set([`sampleOrigin:${b.sampleOriginType.label}`, `libraryStrategy:${r.libraryStrategy}`, `karyotypicSex:${e.raw.karyotypicSex}`]);
      this.ctx.set(id, { terms, custom, age: e.raw._age, records: linked.map(strip) });
    }
    for (const list of Object.values(this.entries)) for (const e of list) e.id = e.rec.id || e.rec.variantInternalId;
  }

  descendants(term) {
    const out = new Set([term]);
    let grew = true;
    for (let i = 0; grew && i < 50; i++) {
      grew = false;
      for (const [child, parent] of Object.entries(this.parents)) {
        if (out.has(parent) && !out.has(child)) { out.add(child); grew = true; }
      }
    }
    return out;
  }

  // all ontology terms present in the data (with ancestors) plus custom terms
  filteringTerms() {
    const present = new Set();
    for (const c of this.ctx.values()) for (const t of c.terms) present.add(t);
    for (const t of [...present]) { let p = this.parents[t]; for (let i = 0; p && i < 50; i++) { present.add(p); p = this.parents[p]; } }
    const terms = [...present].sort().map((id) => ({ type: 'ontologyTerm', id, label: this.labels[id] || id,
      scopes: ['individuals', 'biosamples', 'g_variants', 'runs', 'analyses'] }));
    const custom = new Set();
    for (const c of this.ctx.values()) for (const t of c.custom) custom.add(t);
    for (const id of [...custom].sort()) terms.push({ type: 'custom', id, scopes: ['individuals', 'biosamples', 'g_variants', 'runs', 'analyses'] });
    terms.push({ type: 'alphanumeric', id: 'age', label: 'age at sample collection (ISO 8601 duration)', scopes: ['individuals', 'biosamples'] });
    return terms;
  }

  // Normalise filters -> {predicates: [fn(individualId) -> bool], unknown: [ids], used: [ids]}
  compileFilters(filters) {
    const known = new Set(this.filteringTerms().map((t) => t.id));
    const customKnown = new Set(this.filteringTerms().filter((t) => t.type === 'custom').map((t) => t.id));
    const predicates = [];
    const unknown = [];
    const used = [];
    for (const f0 of filters || []) {
      const f = typeof f0 === 'string' ? { id: f0 } : f0;
      if (!f || typeof f.id !== 'string') { unknown.push(String(f0 && f0.id)); continue; }
      if (f.operator !== undefined || f.value !== undefined) {
        const pred = this.alphanumeric(f);
        if (!pred) { unknown.push(f.id); continue; }
        predicates.push(pred);
      } else if (customKnown.has(f.id)) {
        predicates.push((ind) => this.ctx.get(ind).custom.has(f.id));
      } else if (known.has(f.id) || this.labels[f.id]) {
        const set = f.includeDescendantTerms === false ? new Set([f.id]) : this.descendants(f.id);
        predicates.push((ind) => { for (const t of this.ctx.get(ind).terms) if (set.has(t)) return true; return false; });
      } else {
        unknown.push(f.id);
        continue;
      }
      used.push(f.id);
    }
    return { predicates, unknown, used };
  }

  alphanumeric(f) {
    const op = f.operator || '=';
    const value = String(f.value === undefined ? '' : f.value);
    const cmp = (a, b) => {
      if (a === null || a === undefined) return false;
      if (op === '=' || op === '!') {
        let eq;
        if (typeof a === 'number' && typeof b === 'number') eq = a === b;
        else {
          const re = new RegExp(`^${String(b).split('%').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
          eq = re.test(String(a));
        }
        return op === '=' ? eq : !eq;
      }
      if (typeof a !== 'number' || typeof b !== 'number') return false;
      return { '<': a < b, '>': a > b, '<=': a <= b, '>=': a >= b }[op];
    };
    if (!['=', '<', '>', '!', '>=', '<='].includes(op)) return null;
    if (f.id === 'age' || f.id === 'ageAtCollection' || f.id === 'collectionMoment') {
      const target = durationDays(value);
      if (target === null) return null;
      return (ind) => cmp(durationDays(this.ctx.get(ind).age), target);
    }
    // a (dotted) field of the individual or a linked biosample/run/analysis, e.g. karyotypicSex, libraryStrategy
    const get = (o, p) => p.split('.').reduce((x, k) => (x && typeof x === 'object' ? x[k] : undefined), o);
    const anyHas = [...this.ctx.values()].some((c) => c.records.some((r) => get(r, f.id) !== undefined));
    if (!anyHas) return null;
    const num = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    return (ind) => this.ctx.get(ind).records.some((r) => {
      const x = get(r, f.id);
      if (x === undefined || typeof x === 'object') return false;
      return cmp(typeof num === 'number' && /^-?\d+(\.\d+)?$/.test(String(x)) ? Number(x) : x, num);
    });
  }

  // Variant request parameters -> predicate on entry.v, or throws {status: 400, message}
  variantPredicate(p) {
    const bad = (m) => { const e = new Error(m); e.status = 400; throw e; };
    const keys = Object.keys(p).filter((k) => p[k] !== undefined && p[k] !== '');
    if (!keys.length) return null;
    const list = (x) => (x === undefined ? undefined : (Array.isArray(x) ? x : String(x).split(',')).map((n) => {
      const v = Number(n);
      if (!Number.isInteger(v) || v < 0) bad(`start/end must be non-negative integers, got ${JSON.stringify(n)}`);
      return v;
    }));
    const start = list(p.start);
    const end = list(p.end);
    let chrom;
    if (p.referenceName !== undefined) {
      const rn = String(p.referenceName);
      chrom = rn.replace(/^chr/i, '');
      const byAcc = Object.entries(REFSEQ).find(([, acc]) => acc === rn || `refseq:${acc}` === rn);
      if (byAcc) chrom = byAcc[0];
    }
    if ((start || end) && !chrom) bad('referenceName is required with start/end');
    if (start && start.length > 2) bad('start takes one or two values');
    if (end && end.length > 2) bad('end takes one or two values');
    if (end && !start) bad('end needs start');
    if ((p.referenceBases || p.alternateBases) && !start && !p.geneId) bad('referenceBases/alternateBases need referenceName and start');
    for (const k of ['referenceBases', 'alternateBases']) {
      if (p[k] !== undefined && !/^[ACGTUNRYSWKMBDHV\-.]*$/.test(String(p[k]))) bad(`${k} must match ^([ACGTUNRYSWKMBDHV\\-\\.]*)$`);
    }
    const minLen = p.variantMinLength !== undefined ? Number(p.variantMinLength) : undefined;
    const maxLen = p.variantMaxLength !== undefined ? Number(p.variantMaxLength) : undefined;
    if ([minLen, maxLen].some((x) => x !== undefined && (!Number.isInteger(x) || x < 0))) bad('variantMinLength/variantMaxLength must be non-negative integers');
    const assemblyOk = p.assemblyId === undefined || /^(GRCh38|hg38)(\.p\d+)?$/i.test(String(p.assemblyId));
    let gene = null;
    if (p.geneId !== undefined) gene = String(p.geneId);
    const basesMatch = (want, have) => {
      if (want === undefined || want === '' || want === 'N' && have.length === 1) return true;
      if (want.length !== have.length) return false;
      for (let i = 0; i < want.length; i++) if (want[i] !== 'N' && want[i] !== have[i]) return false;
      return true;
    };
    return (v) => {
      if (!assemblyOk) return false;
      if (chrom && v.chrom !== chrom) return false;
      if (gene && v.gene !== gene) return false;
      if (start && start.length === 1 && !end) {
        if (v.start !== start[0]) return false; // sequence query
      } else if (start && start.length === 1 && end && end.length === 1) {
        if (!(v.start < end[0] && v.end > start[0])) return false; // range query: overlap
      } else if (start && end) {
        const [s1, s2 = s1] = start; const [e1, e2 = e1] = end; // bracket query
        if (v.start < s1 || v.start > s2 || v.end < e1 || v.end > e2) return false;
      } else if (start && start.length === 2) {
        if (v.start < start[0] || v.start > start[1]) return false;
      }
      if (!basesMatch(p.referenceBases, v.ref)) return false;
      if (!basesMatch(p.alternateBases, v.alt)) return false;
      if (p.variantType && String(p.variantType).toUpperCase() !== v.type && !(String(p.variantType).toUpperCase() === 'SNV' && v.type === 'SNP')) return false;
      const len = Math.max(v.ref.length, v.alt.length);
      if (minLen !== undefined && len < minLen) return false;
      if (maxLen !== undefined && len > maxLen) return false;
      return true;
    };
  }

  // -> {matches: [entry], warnings: {...}}
  query(entryType, { filters, requestParameters = {}, id, via } = {}) {
    let list = this.entries[entryType];
    if (!list) { const e = new Error(`unknown entry type ${entryType}`); e.status = 404; throw e; }
    const warnings = {};
    if (via) { // /{via.entryType}/{via.id}/{entryType}
      const src = (this.entries[via.entryType] || []).find((e) => e.id === via.id);
      if (!src) return { matches: [], warnings, notFound: true };
      list = list.filter((e) => [...e.individuals].some((i) => src.individuals.has(i)));
    }
    if (id !== undefined) list = list.filter((e) => e.id === id);
    const { predicates, unknown } = this.compileFilters(filters);
    if (unknown.length) warnings.unsupportedFilters = unknown;
    const params = { ...requestParameters };
    delete params.$schema;
    const varKeys = ['referenceName', 'start', 'end', 'referenceBases', 'alternateBases', 'assemblyId', 'variantType',
      'variantMinLength', 'variantMaxLength', 'geneId', 'mateName', 'aminoacidChange', 'genomicAlleleShortForm'];
    const unsupportedParams = Object.keys(params).filter((k) => !varKeys.includes(k) || (entryType !== 'g_variants' && !via));
    if (['mateName', 'aminoacidChange', 'genomicAlleleShortForm'].some((k) => k in params)) {
      warnings.unsupportedParameters = Object.keys(params).filter((k) => ['mateName', 'aminoacidChange', 'genomicAlleleShortForm'].includes(k));
    }
    let vpred = null;
    if (entryType === 'g_variants') {
      const vp = Object.fromEntries(Object.entries(params).filter(([k]) => varKeys.includes(k)));
      vpred = this.variantPredicate(vp);
      if (vp.assemblyId && !/^(GRCh38|hg38)/i.test(String(vp.assemblyId))) warnings.assembly = `only GRCh38 is served, not ${vp.assemblyId}`;
    } else if (unsupportedParams.length) {
      warnings.unsupportedParameters = unsupportedParams;
    }
    const matches = list.filter((e) => {
      if (vpred && !vpred(e.v)) return false;
      if (!predicates.length) return true;
      const inds = [...e.individuals];
      // entry-level AND: some linked individual satisfies every filter
      return inds.some((i) => predicates.every((p) => p(i)));
    });
    return { matches, warnings };
  }
}

module.exports = { Model, ENTRY_TYPES, durationDays };
