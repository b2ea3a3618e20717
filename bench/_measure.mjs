// Timing, statistics and machine-noise helpers for the benchmarks in this
// folder. No crypto here; see themis.bench.mjs for what is measured.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Calls `fn` in batches of `batch` until `seconds` have passed (at least one
 * batch), and returns ops/s. Batching keeps the clock reads out of the
 * measurement for microsecond-scale operations.
 */
export function runFor(fn, seconds, batch = 1) {
  const budget = seconds * 1000;
  let ops = 0;
  const t0 = performance.now();
  let elapsed;
  do {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    elapsed = performance.now() - t0;
  } while (elapsed < budget);
  return (ops * 1000) / elapsed;
}

/** Batch size that makes one batch last about `targetMs` at the warm-up rate. */
export function batchFor(opsPerSecond, targetMs = 1) {
  return Math.max(1, Math.floor((opsPerSecond * targetMs) / 1000));
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Measures every side of one row, interleaved: warm up each side, then run
 * `trials` rounds; each round runs every side once, alternating the order
 * between rounds so neither side always runs first (or right after the
 * other's garbage). A forced GC (when exposed) precedes every timed trial.
 *
 * `sides` maps a name to a zero-argument function doing one operation.
 * Returns { name: { median, trials: [ops/s…] } }.
 */
export function measureRow(sides, { warmup, seconds, trials }) {
  const names = Object.keys(sides);
  const batch = {};
  for (const name of names) {
    const warm = runFor(sides[name], warmup);
    batch[name] = batchFor(warm);
  }
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let t = 0; t < trials; t++) {
    const order = t % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      globalThis.gc?.();
      samples[name].push(runFor(sides[name], seconds, batch[name]));
    }
  }
  return Object.fromEntries(names.map((n) => [n, { median: median(samples[n]), trials: samples[n] }]));
}

/** `/proc/loadavg` as "1-min 5-min 15-min", or null off Linux. */
export function loadavg() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return null;
  }
}

/**
 * Busy and total jiffies for the whole machine and per CPU from /proc/stat
 * (busy = everything but idle and iowait). Null off Linux.
 */
export function cpuTimes() {
  try {
    const out = {};
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^(cpu\d*)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal (guest fields are already in user)
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[m[1]] = { busy: total - v[3] - v[4], total };
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * CPU used by everything other than our child during a child run, in vCPUs:
 * machine-wide, and on the CPU the child was pinned to (if any).
 * `childCpuSeconds` is the child's own user+system time.
 */
export function foreignLoad(before, after, wallSeconds, childCpuSeconds, pinnedCpu, hz = 100) {
  if (!before || !after || wallSeconds <= 0) return null;
  const busy = (k) => (after[k].busy - before[k].busy) / hz;
  const res = { machine: Math.max(0, (busy('cpu') - childCpuSeconds) / wallSeconds) };
  const k = pinnedCpu === null ? null : `cpu${pinnedCpu}`;
  if (k && before[k] && after[k]) res.pinnedCpu = Math.max(0, (busy(k) - childCpuSeconds) / wallSeconds);
  return res;
}

/** 3 significant digits with k/M suffix: 59100 → "59.1k", 2.345 → "2.35". */
export function fmtRate(x) {
  if (!Number.isFinite(x)) return '–';
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
}

/** Time per operation for a rate: "16.9 µs", "1.02 ms", "0.31 s". */
export function fmtTime(opsPerSecond) {
  const s = 1 / opsPerSecond;
  if (s >= 1) return `${s.toPrecision(3)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toPrecision(3)} ms`;
  return `${(s * 1e6).toPrecision(3)} µs`;
}

/** Kernel clock ticks per second (for /proc/stat CPU times). */
export function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
}

/** How to pin a child process to `cpu` (taskset), or why it is not pinned. */
export function pinning(cpu, { disabled = false } = {}) {
  if (disabled) return { cmd: [], cpu: null, note: 'not pinned (--no-pin)' };
  const r = spawnSync('taskset', ['-c', String(cpu), 'true']);
  if (r.status === 0) return { cmd: ['taskset', '-c', String(cpu)], cpu, note: `pinned to CPU ${cpu} with taskset` };
  return { cmd: [], cpu: null, note: 'not pinned (taskset unavailable)' };
}

/** Replace the `<!-- bench:begin key -->…<!-- bench:end key -->` section of `file` (or append it). */
export function replaceSection(file, key, section, initial = '') {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = initial;
  }
  const begin = `<!-- bench:begin ${key} -->`;
  const end = `<!-- bench:end ${key} -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + section + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
  return file;
}
