#!/usr/bin/env bash
# Runs every benchmark in tests/bench side by side with the peers, in one run against one federation, and
# writes a markdown report of medians and ratios (default tests/bench/REPORT.md).
#
#   tests/federation/up --base-port 19500 --state /tmp/fed                       # or a running federation
#   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target impact
#   tests/bench/report.sh --state /tmp/fed [--runs 5] [--impact build-rel/cli/impact] [--out FILE.md]
#
# Benchmarks: token.js (impact token, cached token, vs aws-cli's credential command), beacon-search.js (16
# beacons in parallel vs 1), drs-download.js (200 objects vs a sequential curl loop), wes-run.test.js
# (run list over 10,000 runs; run wait on 200 runs), run.sh (S3 results download vs curl, rclone, aws-cli).
# Everything stays on 127.0.0.1. The load average is recorded around each benchmark: on a shared machine,
# read the ratios (measured interleaved, under the same load) rather than the absolute times.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${FED_STATE:-}"
RUNS=5
IMPACT="$ROOT/build-rel/cli/impact"
OUT="$HERE/REPORT.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --state) STATE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --impact) IMPACT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: report.sh --state FED_STATE [--runs N] [--impact PATH] [--out FILE.md]" >&2; exit 2 ;;
  esac
done
[ -f "$STATE/federation.env" ] || { echo "no running federation at '$STATE' (give --state or FED_STATE)" >&2; exit 2; }
[ -x "$IMPACT" ] || { echo "no impact binary at $IMPACT (build Release into build-rel, or pass --impact)" >&2; exit 2; }
IMPACT="$(cd "$(dirname "$IMPACT")" && pwd)/$(basename "$IMPACT")"
set -a; source "$STATE/federation.env"; set +a
export FED_STATE="$STATE" IMPACT_BIN="$IMPACT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/impact-report-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# step NAME COMMAND...: runs one benchmark, its stdout to $WORK/NAME.out, the load average around it to
# $WORK/NAME.load; a failing benchmark (over its own limit) is reported, not fatal.
step() {
  local name="$1"; shift
  echo "== $name" >&2
  local before; before="$(cut -d' ' -f1-3 /proc/loadavg)"
  local t0; t0=$(date +%s)
  if "$@" > "$WORK/$name.out"; then echo 0 > "$WORK/$name.rc"; else echo $? > "$WORK/$name.rc"; fi
  echo "$before|$(cut -d' ' -f1-3 /proc/loadavg)|$(( $(date +%s) - t0 ))" > "$WORK/$name.load"
}
step token node "$HERE/token.js" --runs 50 --bin "$IMPACT"
step beacon node "$HERE/beacon-search.js" --runs 7 --bin "$IMPACT"
step drs node "$HERE/drs-download.js" --runs 3
step wes node --test --test-reporter=tap "$HERE/wes-run.test.js"
step s3 "$HERE/run.sh" --runs "$RUNS" --impact "$IMPACT" --out "$WORK/s3.md"

node - "$WORK" "$IMPACT" "$OUT" "$ROOT" <<'EOF'
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

const tok = json('token');
if (tok) row('`impact token`, cached valid token (one process per call, median of 50)', `${tok.impact_token_ms} ms`, tok.peer ? `\`${tok.peer}\`` : 'none installed',
  tok.peer_ms ? `${tok.peer_ms} ms` : '', ratio(tok.impact_token_ms, tok.peer_ms), `limit < 10 ms: ${tok.ok ? 'met' : 'NOT met'}`);
const b = json('beacon');
if (b) row(`\`impact search\` over ${b.beacons} beacons answering in ${b.delay_ms} ms (median of ${b.runs})`, `${b.all_beacons_ms} ms`,
  'the same search against 1 beacon (the floor for a parallel search; a sequential client needs ~N x)', `${b.one_beacon_ms} ms`, b.ratio.toFixed(2),
  `limit 1.3: ${b.ok ? 'met' : 'NOT met'}; sequential would be ~${b.beacons * b.one_beacon_ms} ms`);
const d = json('drs');
if (d) row(`\`impact drs download\` of ${d.objects} x ${d.bytes_each >> 10} KiB, --parallel ${d.parallel} (median of ${d.runs}; resolve + access URLs + verify)`,
  `${d.impact_median_s} s`, 'sequential `curl` loop over the presigned URLs (transfers only)', `${d.curl_median_s} s`, ratio(d.impact_median_s, d.curl_median_s), `${d.speedup}x faster`);
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
  const m = /^\| ([^|]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \|$/.exec(line);
  if (!m) continue;
  if (m[1].startsWith('impact')) { mine = m; continue; }
  if (mine) row(`\`impact results download\`, ${section.toLowerCase()}`, `${mine[2]} s, ${mine[3]} MiB`, m[1], `${m[2]} s, ${m[3]} MiB`, m[4]);
}

const loads = ['token', 'beacon', 'drs', 'wes', 's3'].map((n) => {
  const [before, after, secs] = read(`${n}.load`).trim().split('|');
  const rc = read(`${n}.rc`).trim();
  return `| ${n} | ${before} | ${after} | ${secs} | ${rc === '0' ? 'ok' : `exit ${rc} (over its limit, or failed)`} |`;
});
const cpus = require('node:os').cpus().length;
const text = `# impact benchmark report

Made by \`tests/bench/report.sh\` on ${new Date().toISOString().slice(0, 16)}Z: impact ${version.version || ''} (${version.build_type || ''} build${commit ? `, commit ${commit}` : ''}),
${cpus} CPUs, every server on 127.0.0.1 (the local federation: Ceph RGW, reference DRS/WES/Beacon servers).
Times are medians; **impact / peer** is impact's median divided by the peer's (below 1: impact is faster).

The machine is a shared VM: other jobs were running during this report (load averages below, on ${cpus} CPUs),
so absolute times are inflated and noisy; the runs of impact and its peers are interleaved, so the ratios
are the figures to read. Rerun on a quiet machine with the commands at the end.

| benchmark | impact | peer | peer | impact / peer | note |
|---|---|---|---|---:|---|
${rows.join('\n')}

## Machine load during each benchmark

| benchmark | load average before (1, 5, 15 min) | after | seconds | result |
|---|---|---|---:|---|
${loads.join('\n')}

## S3 results download, in full (tests/bench/run.sh)

${s3.trim()}

## Reproduce

\`\`\`sh
tests/federation/up --base-port 19500 --state /tmp/fed
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMPACT_WERROR=OFF && cmake --build build-rel --target impact
tests/bench/report.sh --state /tmp/fed --impact build-rel/cli/impact      # writes tests/bench/REPORT.md
tests/federation/down --state /tmp/fed
\`\`\`
`;
fs.writeFileSync(out, text);
process.stdout.write(text);
EOF
