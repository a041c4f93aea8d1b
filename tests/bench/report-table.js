#!/usr/bin/env node
'use strict';
// Part of tests/bench/report.sh: turns the benchmarks' outputs in WORK (NAME.out, NAME.load, NAME.rc, s3.md)
// into the markdown report OUT.   node report-table.js WORK IMPACT_BIN OUT REPO_ROOT
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const [work, bin, out, root] = process.argv.slice(2);
const read = (n) => (fs.existsSync(`${work}/${n}`) ? fs.readFileSync(`${work}/${n}`, 'utf8') : '');
const json = (n) => { try { return JSON.parse(read(`${n}.out`).trim().split('\n').pop()); } catch { return null; } };
const version = JSON.parse(execFileSync(bin, ['--json', 'version'], { encoding: 'utf8' }));
let commit = '';
try { commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : 'n/a');
const rows = [];
const row = (bench, mine, peer, theirs, r, note = '') => rows.push(`| ${bench} | ${mine} | ${peer} | ${theirs} | ${r} | ${note} |`);

// startup.sh: | impact CMD | median ms | x /bin/true | CPU ms |, after the /bin/true row
const startup = read('startup.out');
const trueMs = (/^\| \/bin\/true \| ([\d.]+) \|/m.exec(startup) || [])[1];
const startRuns = (/median of (\d+) runs/.exec(startup) || [])[1];
for (const m of startup.matchAll(/^\| (impact [^|]+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \|$/gm))
  row(`\`${m[1].trim()}\`, start-up (hyperfine, median of ${startRuns}; no network)`, `${m[2]} ms`, '`/bin/true`', `${trueMs} ms`, m[3],
    `limit 2.00: ${Number(m[3]) <= 2 ? 'met' : 'NOT met'}`);
const tok = json('token');
if (tok) row(`\`impact token\`, cached valid token (one process per call, median of ${tok.runs})`, `${tok.impact_token_ms} ms`, tok.peer ? `\`${tok.peer}\`` : 'none installed',
  tok.peer_ms ? `${tok.peer_ms} ms` : '', ratio(tok.impact_token_ms, tok.peer_ms), `limit < 10 ms: ${tok.ok ? 'met' : 'NOT met'}; starting any process (/bin/true) took ${tok.process_start_ms} ms here`);
const b = json('beacon');
if (b) row(`\`impact search\` over ${b.beacons} beacons answering in ${b.delay_ms} ms (median of ${b.runs})`, `${b.all_beacons_ms} ms`,
  'the same search against 1 beacon (the floor for a parallel search; a sequential client needs ~N x)', `${b.one_beacon_ms} ms`, b.ratio.toFixed(2),
  `limit 1.3: ${b.ok ? 'met' : 'NOT met'}; sequential would be ~${b.beacons * b.one_beacon_ms} ms`);
const d = json('drs');
if (d) row(`\`impact drs download\` of ${d.objects} x ${d.bytes_each >> 10} KiB, --parallel ${d.parallel} (median of ${d.runs}; resolve + access URLs + verify)`,
  `${d.impact_median_s} s`, 'sequential `curl` loop over the presigned URLs (transfers only)', `${d.curl_median_s} s`, ratio(d.impact_median_s, d.curl_median_s), `${d.speedup}x faster`);
const ds = json('drs_s3');
if (ds) for (const [k, v] of Object.entries(ds.cases)) {
  const [c, who] = k.split('_');
  row(`\`impact drs download\`${who === 'baseline' ? ' (baseline build)' : ''}, ${c === 'many' ? 'many objects of 1 MiB' : 'one large object'} (median of ${ds.runs})`,
    `${v.drs_s.toFixed(2)} s, ${v.drs_rss_mib} MiB`, '`impact results download` of the same bytes from the same storage', `${v.results_s.toFixed(2)} s, ${v.results_rss_mib} MiB`,
    (v.drs_s / v.results_s).toFixed(2), who === 'impact' ? `target <= 1.00: ${v.drs_s <= v.results_s ? 'met' : 'NOT met'}` : '');
}
const tap = read('wes.out');
const list = /run list over 10,000 runs: ([\d.]+) s, peak RSS ([\d.]+) MiB/.exec(tap);
if (list) row('`impact run list` over 10,000 runs', `${list[1]} s, ${list[2]} MiB`, 'no peer (limit < 1 s, < 64 MiB)', '', 'n/a');
const wait = /wait on 200 runs: (\d+) requests in ([\d.]+) s \(([\d.]+)\/s\); returned (-?\d+) ms after/.exec(tap);
if (wait) row('`impact run wait` on 200 runs', `${wait[3]} requests/s; done ${wait[4]} ms after the last run ended`, 'no peer (limits <= 2 requests/s, < 2.5 s)', '', 'n/a');
const s3 = read('s3.md');
let section = '';
let mine = null;
for (const line of s3.split('\n')) {
  if (line.startsWith('### ')) { section = line.slice(4); mine = null; continue; }
  const m = /^\| ([^|]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|$/.exec(line);
  if (!m) continue;
  if (m[1].startsWith('impact')) { mine = m; continue; }
  if (mine) row(`\`impact results download\`, ${section.replace(/^One/, 'one')}`, `${mine[2]} s, ${mine[3]} MiB, ${mine[4]} s CPU`, m[1], `${m[2]} s, ${m[3]} MiB, ${m[4]} s CPU`, m[5]);
}

// many.sh: | tool | first byte (s) | total (s) | peak RSS (MiB) | files | runs |
const many = read('many.md');
const manyTitle = (/^### (.*)$/m.exec(many) || [])[1] || '';
const manyRows = {};
for (const m of many.matchAll(/^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| \d+ \| \d+ \|$/gm)) manyRows[m[1]] = m;
if (manyRows.impact) {
  const me = manyRows.impact;
  for (const [tool, m] of Object.entries(manyRows)) {
    if (tool === 'impact') continue;
    row(`\`impact results download\`, ${manyTitle.replace(/ \(load.*$/, '')}: first byte on disk / total`,
        `${me[2]} s / ${me[3]} s, ${me[4]} MiB`, tool, `${m[2]} s / ${m[3]} s, ${m[4]} MiB`,
        `${(me[2] / m[2]).toFixed(2)} / ${(me[3] / m[3]).toFixed(2)}`, 'impact RSS limit 64 MiB');
  }
}

const loads = ['startup', 'token', 'beacon', 'drs', 'wes', 'drs_s3', 's3', 'many'].map((n) => {
  const [before, after, secs] = read(`${n}.load`).trim().split('|');
  const rc = read(`${n}.rc`).trim();
  return `| ${n} | ${before} | ${after} | ${secs} | ${rc === '0' ? 'ok' : `exit ${rc} (over its limit, or failed)`} |`;
});
const cpus = require('node:os').cpus().length;
const text = `# impact benchmark report

Made by \`tests/bench/report.sh\` on ${new Date().toISOString().slice(0, 16)}Z: impact ${version.version || ''} (${version.build_type || ''} build${commit ? `, commit ${commit}` : ''}),
${cpus} CPUs, every server on 127.0.0.1 (the local federation: Ceph RGW, reference DRS/WES/Beacon servers).
Times are medians; **impact / peer** is impact's median divided by the peer's (below 1: impact is faster).

The machine is a VM of ${cpus} CPUs that the clients share with the servers they talk to (Ceph RGW and OSD, the
reference servers): the load averages below are mostly theirs. Nothing else should run during a report; the
runs of impact and its peers are interleaved, so the ratios are the figures to read.

| benchmark | impact | peer | peer | impact / peer | note |
|---|---|---|---|---:|---|
${rows.join('\n')}

## Machine load during each benchmark

| benchmark | load average before (1, 5, 15 min) | after | seconds | result |
|---|---|---|---:|---|
${loads.join('\n')}

## Start-up, in full (tests/bench/startup.sh)

${startup.trim() || '(not run)'}

## S3 results download, in full (tests/bench/run.sh)

${s3.trim()}

## Many small objects, in full (tests/bench/many.sh)

${many.trim() || '(not run)'}

## Reproduce

\`\`\`sh
tests/federation/up --base-port 19500 --state /tmp/fed
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMPACT_WERROR=ON && cmake --build build-rel --target impact
tests/bench/report.sh --state /tmp/fed --impact build-rel/cli/impact      # writes tests/bench/REPORT.md
tests/federation/down --state /tmp/fed
\`\`\`
`;
fs.writeFileSync(out, text);
process.stdout.write(text);
