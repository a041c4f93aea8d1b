#!/usr/bin/env node
'use strict';
// Benchmark: `impact token` with a cached, valid token (scripts call it in tight loops), against the usual
// credential helper of the peers: `aws configure export-credentials` (aws-cli v2), else `aws configure get
// aws_access_key_id` (aws-cli v1 has no export-credentials); both only read local files.
//
//   FED_STATE=DIR node tests/bench/token.js [--runs 50] [--bin build-rel/cli/impact]
//
// Logs alice in once (device flow with the federation's scripted approval), then times R runs of each
// command (one process each, interleaved; and /bin/true, the cost of starting any process) and prints the
// medians as JSON. Exit 1 when impact's median is
// 10 ms or more.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg('runs', 50));
process.env.IMPACT_BIN = path.resolve(arg('bin', process.env.IMPACT_BIN || path.join(__dirname, '../../build/cli/impact')));
const { BIN, federation, impact, login, approve } = require('../cli/helpers');

function timeOne(cmd, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 30000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return ms;
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-bench-token-'));
  try {
    const fed = federation();
    const p = impact(dir, ['profile', 'add', 'local', '--registry', fed.registry]);
    if (p.code !== 0) throw new Error(p.stderr);
    const li = await login(dir, ['--no-qr'], (code) => approve(code, 'alice'));
    if (li.code !== 0) throw new Error(`login: ${li.stderr}`);
    const env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache') };
    fs.mkdirSync(path.join(dir, '.aws'));
    fs.writeFileSync(path.join(dir, '.aws', 'credentials'), '[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secretexample\n', { mode: 0o600 });
    const v2 = spawnSync('aws', ['configure', 'export-credentials', '--help'], { env, encoding: 'utf8' }).status === 0;
    const peer = v2 ? ['configure', 'export-credentials'] : ['configure', 'get', 'aws_access_key_id'];
    const haveAws = spawnSync('aws', ['--version'], { env }).status === 0;
    timeOne(BIN, ['token'], env);   // warm the page cache
    const mine = [];
    const theirs = [];
    const spawnOnly = [];   // the cost of starting any process from here: /bin/true
    for (let i = 0; i < RUNS; i++) {
      mine.push(timeOne(BIN, ['token'], env));
      if (haveAws) theirs.push(timeOne('aws', peer, env));
      spawnOnly.push(timeOne('/bin/true', [], env));
    }
    const m = median(mine);
    console.log(JSON.stringify({ runs: RUNS, impact_token_ms: +m.toFixed(2), impact_min_ms: +Math.min(...mine).toFixed(2),
      process_start_ms: +median(spawnOnly).toFixed(2),
      peer: haveAws ? `aws ${peer.join(' ')}` : null, peer_ms: haveAws ? +median(theirs).toFixed(2) : null, limit_ms: 10, ok: m < 10 }));
    process.exitCode = m < 10 ? 0 : 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exitCode = 2; });
