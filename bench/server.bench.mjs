#!/usr/bin/env node
// Server benchmark: the real `parley serve` (SQLite persistence on) against
// a bare `ws` broadcast server (_server-bare-ws.mjs), driven by the same load
// generator (_server-load.mjs) in the same sitting, so that ratios hold even
// when the machine's absolute speed drifts. Method: the top of
// bench/SERVER-RESULTS.md, and docs/performance-anchors.md §2.1, §3.3.
//
//   node bench/server.bench.mjs                full run (about 20–25 min)
//   node bench/server.bench.mjs --quick        smoke run (about 3–4 min)
//   node bench/server.bench.mjs --write        also write bench/SERVER-RESULTS.md
//   node bench/server.bench.mjs --only sat,pairs   parts: sat, lat, pairs, idle
//   node bench/server.bench.mjs --profile      CPU profiles of both servers at saturation (no results)
//   node bench/server.bench.mjs --render <report.json> [--write]   re-print (and write) a saved sitting
import { clearTimeout } from 'node:timers';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg } from './_measure.mjs';
import { cpuStat, procCpuSeconds } from './_server-proc.mjs';
import { printReport, renderSection, writeServerResults, summarizeProfile } from './_server-report.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('..');
// BENCH_PARLEY_MAIN: another build's CLI entry point (A/B of a server change against the same baseline).
const PARLEY_MAIN = process.env.BENCH_PARLEY_MAIN || join(ROOT, 'apps/cli/dist/src/main.js');
// BENCH_NODE_FLAGS: extra node flags for both servers, space-separated (e.g. --max-semi-space-size=64).
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : [];
const BARE = here('./_server-bare-ws.mjs');
const LOAD = here('./_server-load.mjs');
const GC_HOOK = pathToFileURL(here('./_server-gc-hook.mjs')).href;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    write: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    label: { type: 'string' },
    note: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    render: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
  },
});

if (args.render) {
  // Re-render a saved sitting (report.json from its sitting directory) with the current report code.
  const saved = JSON.parse(readFileSync(args.render, 'utf8'));
  if (args.note) saved.note = args.note;
  if (args.label) saved.label = args.label;
  printReport(saved);
  if (args.write) process.stderr.write(`wrote ${writeServerResults(renderSection(saved), saved)}\n`);
  process.exit(0);
}

const quick = args.quick;
const num = (name, full, q) => (process.env[name] ? Number(process.env[name]) : quick ? q : full);
const S = {
  warmup: num('BENCH_SERVER_WARMUP', 3, 0.5),
  seconds: num('BENCH_SERVER_SECONDS', 15, 2),
  runs: args.runs ? Number(args.runs) : 1,
  rooms: [
    [100, 100],
    [100, 1024],
    [1000, 100],
    [1000, 1024],
  ],
  publishers: 96,
  inFlight: 16,
  latencyLoad: 0.25,
  pairs: num('BENCH_SERVER_PAIRS', 1500, 300),
  pairBase: 1000,
  pairPayload: 1024,
  pairInFlight: 1,
  idle: num('BENCH_SERVER_IDLE', 10_000, 1000),
  idleBatch: 250,
  settleSeconds: num('BENCH_SERVER_SETTLE', 10, 0),
};
S.idleCheckpoints = quick ? [250, S.idle] : [1000, 5000, S.idle];
S.users = Math.max(1000, S.pairBase + 2 * S.pairs, S.idle);
const parts = new Set((args.only ?? 'sat,lat,pairs,idle').split(','));
const pin = !args['no-pin'] && cpus().length >= 2 && existsSync('/usr/bin/taskset');
const SERVER_CPU = 0;
const LOAD_CPU = 1;

const log = (s) => process.stderr.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!existsSync(PARLEY_MAIN)) {
  log(`missing ${PARLEY_MAIN}: run \`npm run build\` first (npm run bench:server does)`);
  process.exit(2);
}

// BENCH_SERVER_TMP: where the sitting directory (and Parley's data directory) lives, e.g. /dev/shm to take fsync out.
const sitting = mkdtempSync(join(process.env.BENCH_SERVER_TMP || tmpdir(), 'parley-server-bench-'));
const dataDir = join(sitting, 'data');
const secret = randomBytes(32);
const secretB64 = secret.toString('base64');
const gcFile = join(sitting, 'gc.json');
let serverLogN = 0;

// ------------------------------------------------------------------ processes

const pinned = (cpu, argv) => (pin ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0], argv.slice(1)]);

/** Starts one server pinned to SERVER_CPU; resolves to { proc, pid, port }. */
function startServer(kind, { inspect = false } = {}) {
  const nodeFlags = ['--expose-gc', '--import', GC_HOOK, ...NODE_FLAGS, ...(inspect ? ['--inspect=127.0.0.1:0'] : [])];
  const script = kind === 'parley' ? [PARLEY_MAIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dataDir] : [BARE];
  const [cmd, argv] = pinned(SERVER_CPU, [process.execPath, ...nodeFlags, ...script]);
  const logPath = join(sitting, `server-${++serverLogN}-${kind}.log`);
  const out = createWriteStream(logPath);
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_GC_FILE: gcFile, PARLEY_TRUSTED_TOKEN_SECRET: secretB64 },
  });
  proc.stdout.pipe(out);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start: ${err}`)), 60_000);
    proc.stderr.on('data', (d) => {
      out.write(d);
      err += d;
      const m = /\bport (\d+)/.exec(err);
      const insp = /(ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(err);
      if (m && (!inspect || insp) && timer) {
        clearTimeout(timer);
        resolve({ kind, proc, pid: proc.pid, port: Number(m[1]), logPath, inspectorUrl: insp?.[1] });
        err = '';
      }
    });
    proc.on('exit', (code) => reject(new Error(`${kind} server exited (${code}) before listening: ${err}`)));
  });
}

async function stopServer(s) {
  if (s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  const t = setTimeout(() => s.proc.exitCode === null && process.kill(s.pid, 'SIGKILL'), 20_000);
  await exited;
  clearTimeout(t);
}

/** Runs one load-generator job pinned to LOAD_CPU; resolves to its result. */
function runLoad(job, timeoutMs = 15 * 60_000, onEvent = () => {}) {
  const [cmd, argv] = pinned(LOAD_CPU, [process.execPath, LOAD, JSON.stringify(job)]);
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    let result = null;
    const timer = setTimeout(() => {
      process.kill(proc.pid, 'SIGKILL');
      reject(new Error(`load generator timed out (${job.mode})`));
    }, timeoutMs);
    proc.on('message', (m) => (m && m.event ? onEvent(m.event) : (result = m)));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (result !== null) resolve(result);
      else reject(new Error(`load generator (${job.mode}) exited with ${code} and no result`));
    });
  });
}

/** Foreign CPU over one second (everything but this process), in vCPUs. */
async function foreignNow() {
  const a = cpuStat(), ca = procCpuSeconds(process.pid), t = performance.now();
  await sleep(1000);
  const b = cpuStat(), cb = procCpuSeconds(process.pid);
  const wall = (performance.now() - t) / 1000;
  return Math.max(0, (b.cpu.task - a.cpu.task) / 100 / wall - (cb - ca) / wall);
}

/** Waits (up to settleSeconds) for a quiet second before a run; returns the last reading. */
async function waitQuiet() {
  const deadline = performance.now() + S.settleSeconds * 1000;
  let f = await foreignNow();
  while (f > 0.15 && performance.now() < deadline) f = await foreignNow();
  return f;
}

/** One measured run: fresh server, wait for quiet, load job, stop. */
async function measured(kind, job, meta) {
  const preForeign = await waitQuiet();
  const s = await startServer(kind);
  try {
    await sleep(300);
    const started = new Date().toISOString();
    const r = await runLoad({ ...job, server: kind, port: s.port, serverPid: s.pid, secret: secretB64, gcFile });
    const rec = { ...meta, server: kind, started, preForeign, result: r };
    log(`  ${describe(rec)}`);
    return rec;
  } catch (err) {
    log(`  ${kind}: FAILED: ${err.message} (server log: ${s.logPath})`);
    return { ...meta, server: kind, error: err.message };
  } finally {
    await stopServer(s);
  }
}

function describe(rec) {
  const r = rec.result;
  if (rec.part === 'idle') return `${rec.server}: ${r.samples.at(-1).connections} idle connections`;
  const l = r.load;
  return (
    `${rec.server}: ${Math.round(r.msgsPerSec)} msg/s, ${Math.round(r.deliveriesPerSec)} deliveries/s, ` +
    `full fan-out p50 ${r.latencyMs?.p50?.toFixed(2) ?? '–'} / p99 ${r.latencyMs?.p99?.toFixed(2) ?? '–'} ms, lost ${r.lost}, errors ${r.errors}, ` +
    `server ${l.ours.server?.toFixed(2)} / load ${l.ours.load?.toFixed(2)} vCPU, foreign ${l.foreign?.toFixed(2)}`
  );
}

/** Minimal Chrome DevTools Protocol client for the Profiler domain. */
async function inspectorProfiler(url) {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(url);
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  let id = 0;
  const waiting = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d);
    if (m.id !== undefined && waiting.has(m.id)) {
      waiting.get(m.id)(m.result);
      waiting.delete(m.id);
    }
  });
  const call = (method, params = {}) =>
    new Promise((r) => {
      waiting.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  return { start: () => call('Profiler.start'), stop: async () => (await call('Profiler.stop')).profile, close: () => ws.close() };
}

// ------------------------------------------------------------------ sitting

/** Commit and whether the tree had local changes (read-only git). */
function gitDescribe() {
  const git = (a) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'packages', 'apps']) !== '';
    return `commit ${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ' + uncommitted changes in packages/ or apps/' : ''}`;
  } catch {
    return null;
  }
}

const report = {
  env: {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    pin: pin ? `server pinned to CPU ${SERVER_CPU}, load generator to CPU ${LOAD_CPU} (taskset)` : 'not pinned',
    wsVersion: JSON.parse(readFileSync(join(ROOT, 'node_modules/ws/package.json'), 'utf8')).version,
    // PARLEY_SQLITE_WRITER as the server gets it (auto: a writer thread with ≥ 2 CPUs, the event loop on one).
    sqliteWriter: process.env.PARLEY_SQLITE_WRITER || `auto (${pin ? 'inline: pinned to one CPU' : cpus().length >= 2 ? 'thread' : 'inline'})`,
    quick,
    settings: S,
    loadStart: loadavg(),
    git: gitDescribe(),
  },
  label: args.label ?? (quick ? 'quick' : undefined),
  note: args.note,
  runs: [],
};

async function setup() {
  log(`setup: ${S.users} users, rooms of 100 and 1000, ${S.pairs} direct rooms (data: ${dataDir})`);
  const s = await startServer('parley');
  try {
    const t0 = performance.now();
    const manifest = await runLoad({ mode: 'setup', port: s.port, serverPid: s.pid, secret: secretB64, users: S.users, roomSizes: [100, 1000], pairs: S.pairs, pairBase: S.pairBase }, 60 * 60_000);
    writeFileSync(join(sitting, 'manifest.json'), JSON.stringify(manifest));
    report.env.setupSeconds = (performance.now() - t0) / 1000;
    log(`setup done in ${report.env.setupSeconds.toFixed(0)} s`);
    return manifest;
  } finally {
    await stopServer(s);
  }
}

const roomJob = (manifest, C, payload, rate) => ({
  mode: 'room',
  roomSize: C,
  roomId: manifest.rooms[C],
  payload,
  publishers: Math.min(S.publishers, C - 1),
  inFlight: S.inFlight,
  rate,
  warmup: S.warmup,
  seconds: S.seconds,
});

const pairsJob = (manifest) => ({ mode: 'pairs', pairs: S.pairs, pairList: manifest.pairs, payload: S.pairPayload, inFlight: S.pairInFlight, warmup: S.warmup, seconds: S.seconds });

async function main() {
  log(`server benchmark${quick ? ' (QUICK)' : ''}: sitting directory ${sitting}`);
  const manifest = await setup();

  if (args.profile) {
    // CPU profile of each server over the timed window only (inspector
    // Profiler domain, 200 µs sampling), then a summary by area and function.
    const jobs = [];
    if (parts.has('sat')) for (const [C, payload] of S.rooms) jobs.push({ name: `c${C}-p${payload}`, title: `C = ${C}, ${payload} B`, job: roomJob(manifest, C, payload, 0) });
    if (parts.has('pairs')) jobs.push({ name: 'pairs', title: `${S.pairs} 2-member rooms, ${S.pairPayload} B`, job: pairsJob(manifest) });
    for (const { name: base, title: t0, job: j } of jobs) for (const kind of ['parley', 'bare']) {
      const name = `${kind}-${base}`, title = `${kind === 'parley' ? 'Parley' : 'bare ws'}, ${t0}`;
      const s = await startServer(kind, { inspect: true });
      let file;
      try {
        const prof = await inspectorProfiler(s.inspectorUrl);
        const job = { ...j, server: kind, port: s.port, serverPid: s.pid, secret: secretB64, gcFile };
        let stopped = null;
        const r = await runLoad(job, undefined, (ev) => {
          if (ev === 'window-start') prof.start();
          if (ev === 'window-end') stopped = prof.stop();
        });
        const profile = await stopped;
        prof.close();
        file = join(sitting, `${name}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        console.log(`\n## CPU profile: ${title}, timed window only (${Math.round(r.deliveriesPerSec)} deliveries/s, server ${r.load.ours.server.toFixed(2)} vCPU while profiled)\n`);
        console.log(summarizeProfile(profile));
        console.log(`\n(profile: ${file})`);
      } finally {
        await stopServer(s);
      }
    }
    return;
  }

  const order = (i) => (i % 2 === 0 ? ['bare', 'parley'] : ['parley', 'bare']);
  let n = 0;
  if (parts.has('sat') || parts.has('lat')) {
    for (const [C, payload] of S.rooms) {
      for (let rep = 0; rep < S.runs; rep++) {
        log(`saturation: C = ${C}, ${payload} B, closed loop ${S.inFlight} in flight${S.runs > 1 ? `, run ${rep + 1}/${S.runs}` : ''}`);
        for (const kind of order(n++)) report.runs.push(await measured(kind, roomJob(manifest, C, payload, 0), { part: 'sat', C, payload, rep }));
      }
    }
  }
  if (parts.has('lat')) {
    for (const [C, payload] of S.rooms) {
      const sat = (kind) => {
        const xs = report.runs.filter((r) => r.part === 'sat' && r.C === C && r.payload === payload && r.server === kind).map((r) => r.result.msgsPerSec);
        return xs.length ? Math.max(...xs) : NaN;
      };
      const base = Math.min(sat('bare'), sat('parley'));
      const rate = Math.max(1, Math.round(S.latencyLoad * (Number.isFinite(base) ? base : C >= 1000 ? 160 : 1600)));
      // Long enough for about 1000 samples (p99 = the 10th worst), within 15–60 s.
      const seconds = quick ? S.seconds : Math.min(60, Math.max(S.seconds, Math.ceil(1000 / rate)));
      log(`latency: C = ${C}, ${payload} B, fixed ${rate} msg/s (${S.latencyLoad * 100} % of the lower saturation, ${Math.round(base)} msg/s), ${seconds} s`);
      for (const kind of order(n++)) report.runs.push(await measured(kind, { ...roomJob(manifest, C, payload, rate), seconds }, { part: 'lat', C, payload, rate, seconds }));
    }
  }
  if (parts.has('pairs')) {
    for (let rep = 0; rep < S.runs; rep++) {
      log(`2-member rooms: ${S.pairs} pairs, both members publishing, ${S.pairInFlight} in flight per member, ${S.pairPayload} B`);
      for (const kind of order(n++)) report.runs.push(await measured(kind, pairsJob(manifest), { part: 'pairs', C: 2, payload: S.pairPayload, rep }));
    }
  }
  if (parts.has('idle')) {
    log(`idle memory: ${S.idle} connections in batches of ${S.idleBatch}`);
    const job = { mode: 'idle', count: S.idle, checkpoints: S.idleCheckpoints, batch: S.idleBatch };
    for (const kind of order(n++)) report.runs.push(await measured(kind, job, { part: 'idle' }));
  }

  report.env.loadEnd = loadavg();
  report.env.finished = new Date().toISOString();
  writeFileSync(join(sitting, 'report.json'), JSON.stringify(report, null, 1));
  printReport(report);
  log(`\nraw results: ${join(sitting, 'report.json')}`);
  if (args.write) log(`wrote ${writeServerResults(renderSection(report), report)}`);
}

try {
  await main();
} finally {
  if (!args['keep-data']) rmSync(dataDir, { recursive: true, force: true });
}
