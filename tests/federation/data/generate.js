'use strict';
// Deterministic synthetic cohort for the local federation. No real patient data: every value
// below comes from a seeded PRNG; reference bases are synthetic too (not the real GRCh38 sequence),
// only gene coordinates are GRCh38-like so that region queries look familiar.
//
//   node data/generate.js --out DIR [--large DIR]
//
// --out   small, commit-friendly output (default: data/out next to this file)
// --large where the large blobs go (default: $FED_STATE/data/large when FED_STATE is set, else none)
//
// Also a module: require('./generate').ensureLarge(dir) writes the large blobs if they are missing.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const SEED = 20241122;
const N_INDIVIDUALS = 60;
const N_VARIANTS = 300;
const STAMP = '2024-01-15T10:00:00Z';
const STAMP2 = '2024-06-01T12:00:00Z';

// ------------------------------------------------------------------ PRNG (mulberry32)

function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
  };
}

// ------------------------------------------------------------------ ontology (small HPO excerpt)

// term -> parent (one parent each is enough here), and labels. HP:0000118 is the root we use.
const HPO = {
  'HP:0000118': [null, 'Phenotypic abnormality'],
  'HP:0000707': ['HP:0000118', 'Abnormality of the nervous system'],
  'HP:0012638': ['HP:0000707', 'Abnormal nervous system physiology'],
  'HP:0001250': ['HP:0012638', 'Seizure'],
  'HP:0002197': ['HP:0001250', 'Generalized-onset seizure'],
  'HP:0002069': ['HP:0002197', 'Bilateral tonic-clonic seizure'],
  'HP:0012759': ['HP:0000707', 'Neurodevelopmental abnormality'],
  'HP:0012758': ['HP:0012759', 'Neurodevelopmental delay'],
  'HP:0001263': ['HP:0012758', 'Global developmental delay'],
  'HP:0001249': ['HP:0012759', 'Intellectual disability'],
  'HP:0001626': ['HP:0000118', 'Abnormality of the cardiovascular system'],
  'HP:0001627': ['HP:0001626', 'Abnormal heart morphology'],
  'HP:0002664': ['HP:0000118', 'Neoplasm'],
  'HP:0100013': ['HP:0002664', 'Neoplasm of the breast'],
  'HP:0003002': ['HP:0100013', 'Breast carcinoma'],
  'HP:0000598': ['HP:0000118', 'Abnormality of the ear'],
  'HP:0000365': ['HP:0000598', 'Hearing impairment'],
};
// phenotypes assigned to individuals (weights): never HP:0000707 itself, so that only
// includeDescendantTerms finds anything for it.
const PHENOTYPES = [
  ['HP:0001250', 5], ['HP:0002069', 3], ['HP:0001263', 5], ['HP:0001249', 3],
  ['HP:0001627', 2], ['HP:0003002', 2], ['HP:0000365', 2],
];
const DISEASES = {
  'HP:0001250': ['MONDO:0005027', 'epilepsy'],
  'HP:0002069': ['MONDO:0005027', 'epilepsy'],
  'HP:0003002': ['MONDO:0007254', 'breast cancer'],
};
const SEX = { female: { id: 'NCIT:C16576', label: 'female' }, male: { id: 'NCIT:C20197', label: 'male' } };
const OTHER_TERMS = {
  'NCIT:C16576': 'female', 'NCIT:C20197': 'male',
  'MONDO:0005027': 'epilepsy', 'MONDO:0007254': 'breast cancer',
  'UBERON:0000178': 'blood', 'UBERON:0001836': 'saliva',
  'EFO:0009654': 'reference sample', 'EFO:0009655': 'abnormal sample',
  'GENO:0000458': 'simple heterozygous', 'GENO:0000136': 'homozygous',
};

// ------------------------------------------------------------------ datasets and genes

const DATASETS = [
  { id: 'DS-PUBLIC-1', instance: 'public', security: 'PUBLIC', name: 'Synthetic public cohort 1',
    duo: { id: 'DUO:0000004', label: 'no restriction' } },
  { id: 'DS-REGISTERED-1', instance: 'registered', security: 'REGISTERED', name: 'Synthetic registered-access cohort 1',
    duo: { id: 'DUO:0000042', label: 'general research use' } },
  { id: 'EGAD-CONTROLLED-1', instance: 'controlled', security: 'CONTROLLED', name: 'Synthetic controlled-access cohort 1',
    duo: { id: 'DUO:0000007', label: 'disease specific research' } },
];

// GRCh38 gene spans (1-based, inclusive) used for variant placement and geneId queries.
const GENES = [
  { id: 'MTHFR', chrom: '1', start: 11785725, end: 11806455 },
  { id: 'SCN1A', chrom: '2', start: 165984641, end: 166149161 },
  { id: 'TP53', chrom: '17', start: 7661779, end: 7687538 },
  { id: 'BRCA1', chrom: '17', start: 43044295, end: 43125483 },
];
const REFSEQ = { 1: 'NC_000001.11', 2: 'NC_000002.12', 17: 'NC_000017.11' };
const CHROMS = [['1', 248956422], ['2', 242193529], ['17', 83257441]];

// Fixed variants, documented in data/README.md (positions 1-based as in VCF):
// every dataset has carriers of ANCHOR_ALL; only EGAD-CONTROLLED-1 has carriers of ANCHOR_CONTROLLED.
const ANCHORS = [
  { chrom: '17', pos: 43045712, ref: 'A', alt: 'G', gene: 'BRCA1', id: 'fedv_anchor_all', carriers: 'all' },
  { chrom: '17', pos: 43057063, ref: 'G', alt: 'T', gene: 'BRCA1', id: 'fedv_anchor_controlled', carriers: 'EGAD-CONTROLLED-1' },
  { chrom: '2', pos: 166036278, ref: 'C', alt: 'CTT', gene: 'SCN1A', id: 'fedv_anchor_ins', carriers: 'all' },
];

const pad = (n, w = 3) => String(n).padStart(w, '0');

// ------------------------------------------------------------------ cohort

function makeCohort() {
  const r = prng(SEED);
  const individuals = [];
  const biosamples = [];
  const runs = [];
  const analyses = [];
  const weightSum = PHENOTYPES.reduce((s, [, w]) => s + w, 0);
  const pickPheno = () => {
    let x = r.next() * weightSum;
    for (const [t, w] of PHENOTYPES) { x -= w; if (x < 0) return t; }
    return PHENOTYPES[0][0];
  };
  const perDs = N_INDIVIDUALS / DATASETS.length;
  for (let i = 1; i <= N_INDIVIDUALS; i++) {
    const ds = DATASETS[Math.floor((i - 1) / perDs)];
    const sex = r.chance(0.5) ? 'female' : 'male';
    const ageY = r.int(1, 85);
    const ageM = r.int(0, 11);
    const age = ageM ? `P${ageY}Y${ageM}M` : `P${ageY}Y`;
    const nPheno = r.int(0, 3);
    const terms = [];
    for (let k = 0; k < nPheno; k++) { const t = pickPheno(); if (!terms.includes(t)) terms.push(t); }
    const indId = `IND-${pad(i)}`;
    const bsId = `BS-${pad(i)}`;
    const ind = {
      id: indId,
      sex: SEX[sex],
      karyotypicSex: sex === 'female' ? 'XX' : 'XY',
      phenotypicFeatures: terms.map((t) => ({
        featureType: { id: t, label: HPO[t][1] },
        onset: { iso8601duration: `P${r.int(0, Math.max(0, ageY - 1))}Y` },
      })),
      diseases: [...new Set(terms.filter((t) => DISEASES[t]).map((t) => DISEASES[t][0]))]
        .map((d) => ({ diseaseCode: { id: d, label: OTHER_TERMS[d] } })),
      _datasetId: ds.id,
      _age: age,
    };
    individuals.push(ind);
    const origin = r.chance(0.7) ? 'UBERON:0000178' : 'UBERON:0001836';
    const status = terms.length ? 'EFO:0009655' : 'EFO:0009654';
    const collectionDate = `20${pad(r.int(18, 23), 2)}-${pad(r.int(1, 12), 2)}-${pad(r.int(1, 28), 2)}`;
    biosamples.push({
      id: bsId,
      individualId: indId,
      biosampleStatus: { id: status, label: OTHER_TERMS[status] },
      sampleOriginType: { id: origin, label: OTHER_TERMS[origin] },
      collectionDate,
      collectionMoment: age,
      _datasetId: ds.id,
    });
    const strategy = r.chance(0.6) ? 'WGS' : 'WES';
    runs.push({
      id: `RUN-${pad(i)}`,
      biosampleId: bsId,
      individualId: indId,
      runDate: collectionDate,
      libraryStrategy: strategy,
      librarySource: { id: 'GENEPIO:0001966', label: 'genomic source' },
      librarySelection: strategy === 'WGS' ? 'RANDOM' : 'Exome capture',
      libraryLayout: 'PAIRED',
      platform: 'Illumina',
      platformModel: { id: 'OBI:0002630', label: 'Illumina NovaSeq 6000' },
      _datasetId: ds.id,
    });
    analyses.push({
      id: `AN-${pad(i)}`,
      runId: `RUN-${pad(i)}`,
      biosampleId: bsId,
      individualId: indId,
      analysisDate: collectionDate,
      pipelineName: 'fed-synthetic-calling',
      pipelineRef: 'https://example.org/pipelines/fed-synthetic-calling',
      aligner: 'bwa-0.7.17',
      variantCaller: 'GATK4.4',
      _datasetId: ds.id,
    });
  }
  return { r, individuals, biosamples, runs, analyses };
}

// ------------------------------------------------------------------ variants and genotypes

function makeVariants(r, individuals) {
  const bases = 'ACGT';
  const seen = new Set();
  const variants = [];
  const add = (v) => { const k = `${v.chrom}:${v.pos}:${v.ref}:${v.alt}`; if (!seen.has(k)) { seen.add(k); variants.push(v); } };
  for (const a of ANCHORS) add({ ...a });
  let n = 0;
  while (variants.length < N_VARIANTS) {
    n++;
    let chrom;
    let pos;
    let gene = null;
    if (r.chance(0.6)) { // inside a gene, BRCA1 twice as likely
      const g = r.pick([GENES[0], GENES[1], GENES[2], GENES[3], GENES[3]]);
      chrom = g.chrom; pos = r.int(g.start, g.end); gene = g.id;
    } else {
      const [c, len] = r.pick(CHROMS);
      chrom = c; pos = r.int(1000000, len - 1000000);
      const g = GENES.find((x) => x.chrom === chrom && pos >= x.start && pos <= x.end);
      if (g) gene = g.id;
    }
    const ref1 = bases[r.int(0, 3)];
    let ref = ref1;
    let alt;
    const kind = r.next();
    if (kind < 0.8) { alt = bases[(bases.indexOf(ref1) + r.int(1, 3)) % 4]; } else if (kind < 0.9) {
      const k = r.int(1, 8); alt = ref1; for (let j = 0; j < k; j++) alt += bases[r.int(0, 3)];
    } else {
      const k = r.int(1, 8); for (let j = 0; j < k; j++) ref += bases[r.int(0, 3)]; alt = ref1;
    }
    add({ chrom, pos, ref, alt, gene, id: `fedv_${pad(n, 4)}` });
  }
  const order = { 1: 0, 2: 1, 17: 2 };
  variants.sort((a, b) => order[a.chrom] - order[b.chrom] || a.pos - b.pos || (a.alt < b.alt ? -1 : 1));
  // genotypes: gt[variantIndex][individualIndex] in {0,1,2}
  for (const v of variants) {
    const af = v.id.startsWith('fedv_anchor') ? 0.25 : Math.min(0.5, 0.01 + r.next() * r.next() * 0.6);
    v.gt = individuals.map((ind) => {
      if (v.carriers && v.carriers !== 'all' && v.carriers !== ind._datasetId) return 0;
      return (r.chance(af) ? 1 : 0) + (r.chance(af) ? 1 : 0);
    });
    if (v.carriers) { // make sure every intended dataset has at least one carrier
      for (const ds of DATASETS) {
        if (v.carriers !== 'all' && v.carriers !== ds.id) continue;
        const idx = individuals.findIndex((ind) => ind._datasetId === ds.id);
        if (!individuals.some((ind, k) => ind._datasetId === ds.id && v.gt[k] > 0)) v.gt[idx] = 1;
      }
    }
    v.variantType = v.ref.length === v.alt.length ? 'SNP' : v.ref.length > v.alt.length ? 'DEL' : 'INS';
  }
  return variants;
}

function vcfText(variants, individuals, dsId) {
  const cols = individuals.map((ind, k) => [ind, k]).filter(([ind]) => ind._datasetId === dsId);
  const lines = [
    '##fileformat=VCFv4.3',
    '##fileDate=20240115',
    '##source=impact-federation-synthetic (seeded PRNG; not real data; reference bases are synthetic)',
    '##reference=GRCh38',
    ...CHROMS.map(([c, len]) => `##contig=<ID=chr${c},length=${len},assembly=GRCh38>`),
    '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene symbol (GRCh38 span)">',
    '##INFO=<ID=VT,Number=1,Type=String,Description="Variant type: SNP, INS or DEL">',
    '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes">',
    '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    `#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t${cols.map(([ind]) => `BS-${ind.id.slice(4)}`).join('\t')}`,
  ];
  const GT = ['0/0', '0/1', '1/1'];
  for (const v of variants) {
    const gts = cols.map(([, k]) => v.gt[k]);
    const ac = gts.reduce((s, g) => s + g, 0);
    if (ac === 0) continue; // only sites seen in this dataset
    const info = [v.gene ? `GENE=${v.gene}` : null, `VT=${v.variantType}`, `AC=${ac}`, `AN=${2 * cols.length}`].filter(Boolean).join(';');
    lines.push([`chr${v.chrom}`, v.pos, v.id, v.ref, v.alt, 50, 'PASS', info, 'GT', ...gts.map((g) => GT[g])].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}

function tsvText(individuals, biosamples, dsId) {
  const rows = [['individual_id', 'biosample_id', 'sex', 'age_at_collection', 'sample_origin', 'phenotypes'].join('\t')];
  individuals.forEach((ind, k) => {
    if (ind._datasetId !== dsId) return;
    const bs = biosamples[k];
    rows.push([ind.id, bs.id, ind.sex.label, ind._age, bs.sampleOriginType.label,
      ind.phenotypicFeatures.map((p) => p.featureType.id).join(',') || '-'].join('\t'));
  });
  return `${rows.join('\n')}\n`;
}

// ------------------------------------------------------------------ blobs

// Deterministic bytes: a SHA-256 counter stream keyed by name (fast enough for 8 MiB).
function blobBytes(name, size) {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const h = crypto.createHash('sha256').update(`${name}:${i}`).digest();
    off += h.copy(out, off, 0, Math.min(h.length, size - off));
  }
  return out;
}
const LARGE = [{ name: 'blob-8m.bin', size: 8 * 1024 * 1024 }];

function ensureLarge(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const out = [];
  for (const b of LARGE) {
    const p = path.join(dir, b.name);
    let ok = false;
    try { ok = fs.statSync(p).size === b.size; } catch (e) { ok = false; }
    if (!ok) {
      const tmp = `${p}.tmp${process.pid}`;
      fs.writeFileSync(tmp, blobBytes(b.name, b.size));
      fs.renameSync(tmp, p);
    }
    out.push(p);
  }
  return out;
}

// ------------------------------------------------------------------ DRS manifest

// Files are relative to the --out dir, or `large:NAME` for blobs generated into the large dir.
function drsManifest() {
  const objs = [];
  for (const ds of DATASETS) {
    const access = ds.security.toLowerCase();
    const slug = ds.id.toLowerCase();
    objs.push({ id: `${slug}.vcf`, name: `${ds.id}.vcf`, file: `vcf/${ds.id}.vcf`, mime_type: 'text/x-vcf', access, dataset: ds.id,
      aliases: [`${ds.id}/vcf`], description: `genotypes of ${ds.id} (GRCh38, synthetic)` });
    objs.push({ id: `${slug}.tsv`, name: `${ds.id}.tsv`, file: `tsv/${ds.id}.tsv`, mime_type: 'text/tab-separated-values', access,
      dataset: ds.id, aliases: [`${ds.id}/phenotypes`], description: `individuals and phenotypes of ${ds.id}` });
  }
  objs.find((o) => o.id === 'egad-controlled-1.vcf').aliases.push('EGAF-CONTROLLED-1-VCF');
  objs.find((o) => o.id === 'egad-controlled-1.tsv').aliases.push('EGAF-CONTROLLED-1-TSV');
  objs.push({ id: 'blob-empty', name: 'empty.bin', file: 'blobs/empty.bin', mime_type: 'application/octet-stream', access: 'public', aliases: [] });
  objs.push({ id: 'blob-1k', name: 'blob-1k.txt', file: 'blobs/blob-1k.txt', mime_type: 'text/plain', access: 'public', aliases: [], inline: true });
  objs.push({ id: 'blob-64k', name: 'blob-64k.bin', file: 'blobs/blob-64k.bin', mime_type: 'application/octet-stream', access: 'public', aliases: [] });
  objs.push({ id: 'blob-8m', name: 'blob-8m.bin', file: 'large:blob-8m.bin', mime_type: 'application/octet-stream', access: 'public', aliases: ['large-blob'] });
  objs.push({ id: 'blob-slow', name: 'blob-slow.txt', file: 'blobs/blob-slow.txt', mime_type: 'text/plain', access: 'public', aliases: [],
    slow: true, description: 'access endpoint answers 202 (Retry-After: 1) first, then 200' });
  objs.push({ id: 'blob odd/id#1+ä', name: 'odd id.txt', file: 'blobs/odd-id.txt', mime_type: 'text/plain', access: 'public', aliases: ['blob-odd-id'],
    description: 'an id that must be percent-encoded in URLs' });
  objs.push({ id: 'blob-registered', name: 'registered-notes.txt', file: 'blobs/registered-notes.txt', mime_type: 'text/plain', access: 'registered', aliases: [] });
  // bundles: a nested one to make `expand` matter
  objs.push({ id: 'bundle-blobs', name: 'blobs', bundle: true, access: 'public', contents: ['blob-1k', 'blob-64k'], aliases: [] });
  objs.push({ id: 'bundle-public-1', name: 'DS-PUBLIC-1', bundle: true, access: 'public', dataset: 'DS-PUBLIC-1',
    contents: ['ds-public-1.vcf', 'ds-public-1.tsv', 'bundle-blobs'], aliases: ['DS-PUBLIC-1/all'] });
  for (const o of objs) { o.created_time = STAMP; o.updated_time = o.bundle ? STAMP2 : STAMP; }
  return objs;
}

// ------------------------------------------------------------------ main

function generate(outDir, largeDir) {
  const { r, individuals, biosamples, runs, analyses } = makeCohort();
  const variants = makeVariants(r, individuals);
  const write = (rel, data) => {
    const p = path.join(outDir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
  };
  const json = (rel, obj) => write(rel, `${JSON.stringify(obj, null, 1)}\n`);
  const byDs = (list, ds) => list.filter((x) => x._datasetId === ds);
  const datasets = DATASETS.map((ds) => ({
    id: ds.id,
    name: ds.name,
    description: `${ds.name}: ${N_INDIVIDUALS / DATASETS.length} synthetic individuals (seeded PRNG, not real data); security level ${ds.security}.`,
    createDateTime: STAMP,
    updateDateTime: STAMP2,
    version: '1.0',
    externalUrl: ds.id.startsWith('EGAD') ? `https://ega-archive.org/datasets/${ds.id}` : `https://example.org/datasets/${ds.id}`,
    dataUseConditions: { duoDataUse: [{ id: ds.duo.id, label: ds.duo.label, version: '17-07-2016' }] },
    _instance: ds.instance,
    _security: ds.security,
  }));
  const cohorts = DATASETS.map((ds) => {
    const members = byDs(individuals, ds.id);
    return {
      id: `COHORT-${ds.id}`,
      name: `Cohort of ${ds.id}`,
      cohortType: 'study-defined',
      cohortSize: members.length,
      cohortDataTypes: [{ id: 'OGMS:0000015', label: 'phenotypic findings' }, { id: 'OBI:0002117', label: 'whole genome sequencing assay' }],
      inclusionCriteria: { ageRange: { start: { iso8601duration: 'P0Y' }, end: { iso8601duration: 'P99Y' } } },
      _datasetId: ds.id,
    };
  });
  json('individuals.json', individuals);
  json('biosamples.json', biosamples);
  json('runs.json', runs);
  json('analyses.json', analyses);
  json('datasets.json', datasets);
  json('cohorts.json', cohorts);
  const labels = { ...OTHER_TERMS };
  const parents = {};
  for (const [t, [p, l]] of Object.entries(HPO)) { labels[t] = l; if (p) parents[t] = p; }
  json('ontology.json', { parents, labels });
  json('genes.json', GENES);
  for (const ds of DATASETS) {
    write(`vcf/${ds.id}.vcf`, vcfText(variants, individuals, ds.id));
    write(`tsv/${ds.id}.tsv`, tsvText(individuals, biosamples, ds.id));
  }
  write('blobs/empty.bin', Buffer.alloc(0));
  const text = [];
  for (let i = 0; text.join('').length < 1024; i++) text.push(`line ${pad(i)} of a small synthetic text blob\n`);
  write('blobs/blob-1k.txt', text.join('').slice(0, 1024));
  write('blobs/blob-64k.bin', blobBytes('blob-64k.bin', 64 * 1024));
  write('blobs/blob-slow.txt', 'this object is ready only after a Retry-After pause\n');
  write('blobs/odd-id.txt', 'an object whose id needs percent-encoding: "blob odd/id#1+ä"\n');
  write('blobs/registered-notes.txt', 'notes only registered (logged-in) users may read\n');
  json('drs-objects.json', drsManifest());
  json('manifest.json', {
    generator: 'data/generate.js',
    seed: SEED,
    assembly: 'GRCh38',
    individuals: individuals.length,
    variants: variants.length,
    datasets: DATASETS.map((d) => ({ id: d.id, instance: d.instance, security: d.security, individuals: byDs(individuals, d.id).length })),
    anchors: ANCHORS.map(({ chrom, pos, ref, alt, gene, id, carriers }) => ({ chrom, pos, ref, alt, gene, id, carriers })),
    large: LARGE,
  });
  if (largeDir) ensureLarge(largeDir);
  return { individuals: individuals.length, variants: variants.length };
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  const outDir = path.resolve(opt('--out') || path.join(__dirname, 'out'));
  const largeDir = opt('--large') || (process.env.FED_STATE ? path.join(process.env.FED_STATE, 'data', 'large') : null);
  const res = generate(outDir, largeDir && path.resolve(largeDir));
  process.stdout.write(`generated ${res.individuals} individuals, ${res.variants} variants into ${outDir}${largeDir ? ` (large blobs in ${largeDir})` : ''}\n`);
}

module.exports = { generate, ensureLarge, blobBytes, LARGE, DATASETS, GENES, REFSEQ };
