'use strict';
// What the Node benchmarks share: command-line options, the running federation's environment, medians and
// one timed impact process (wall seconds and peak RSS from GNU time).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

// The value after --NAME on the command line, or `dflt`.
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

// FED_* from FED_STATE's federation.env into process.env (what is set already wins); exits 2 without a
// federation, or when its S3 store is not on loopback.
function federationEnv() {
  const state = process.env.FED_STATE;
  if (!state) { console.error('set FED_STATE to the state folder of a running federation'); process.exit(2); }
  for (const line of fs.readFileSync(path.join(state, 'federation.env'), 'utf8').split('\n')) {
    const m = /^(?:export )?(FED_[A-Z0-9_]+)=['"]?(.*?)['"]?$/.exec(line.trim());
    if (m && !process.env[m[1]]) process.env[m[1]] = m[2];
  }
  if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):/.test(process.env.FED_S3_URL || '')) {
    console.error('FED_S3_URL must be a loopback URL'); process.exit(2);
  }
  return state;
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };

// Wall seconds and peak RSS (KiB) of one process. Asynchronous: a server living in the calling process keeps
// running. Rejects on a non-zero exit.
function timed(bin, args, env, timeoutMs = 600000) {
  return new Promise((resolve, reject) => {
    const stats = path.join(env.XDG_CACHE_HOME, `time-${process.hrtime.bigint()}`);
    const child = spawn('/usr/bin/time', ['-f', '%e %M', '-o', stats, bin, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { if (err.length < 4000) err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${path.basename(bin)} ${args.slice(0, 2).join(' ')}: exit ${code} ${signal || ''} ${err}`));
      const [secs, rss] = fs.readFileSync(stats, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      resolve({ secs, rss });
    });
  });
}

module.exports = { opt, federationEnv, median, timed };
