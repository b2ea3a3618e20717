// Turns the server benchmark's run records into markdown tables, target
// verdicts and the dated section of bench/SERVER-RESULTS.md; also
// summarises a V8 .cpuprofile of the server (--profile).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmtRate, median } from './_measure.mjs';

const RESULTS = fileURLToPath(new URL('./SERVER-RESULTS.md', import.meta.url));

/** Foreign CPU (vCPUs, machine-wide) above which a run is not "quiet" (performance-anchors §2.1). */
export const QUIET_FOREIGN_VCPU = 0.15;

const ms = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '–');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
/** Verdict rows: three decimals, so 0.697× is not shown as a failing "0.70×". */
const ratio3 = (x) => (Number.isFinite(x) ? `${x.toFixed(3)}×` : '–');
const kb = (x) => (Number.isFinite(x) ? `${(x / 1024).toFixed(1)} KB` : '–');
const mb = (x) => (Number.isFinite(x) ? `${(x / 1e6).toFixed(0)} MB` : '–');
const vcpu = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

const runsOf = (report, part, server, C, payload) =>
  report.runs.filter((r) => r.part === part && r.server === server && (C === undefined || r.C === C) && (payload === undefined || r.payload === payload) && r.result);

/** Median of per-repetition ratios parley ÷ bare (pairs by `rep`), else ratio of medians. */
function pairedRatio(bare, parley, f) {
  const rs = [];
  for (const p of parley) {
    const b = bare.find((x) => x.rep === p.rep);
    if (b) rs.push(f(p) / f(b));
  }
  return rs.length ? median(rs) : NaN;
}

const med = (runs, f) => (runs.length ? median(runs.map(f)) : NaN);
const usPerDelivery = (r) => (r.result.load.ours.server / r.result.deliveriesPerSec) * 1e6;

/** Problems that make a run's number mean something else than intended. */
function flags(r) {
  const x = r.result;
  const out = [];
  if (x.lost > 0) out.push(`${x.lost} lost`);
  if (x.errors > 0) out.push(`${x.errors} error frames (${x.firstError})`);
  if (x.publisherStarvedFraction > 0.02) out.push(`publishers paced ${(x.publisherStarvedFraction * 100).toFixed(0)} % of the time`);
  const l = x.load?.ours;
  if (r.part !== 'lat' && l && l.load > 0.9 && l.server < 0.85) out.push(`load generator saturated (${vcpu(l.load)} vCPU) with the server at ${vcpu(l.server)}`);
  if (x.recvFrames !== undefined && x.recvFrames !== x.expectedFrames) out.push(`frames received ${x.recvFrames} ≠ expected ${x.expectedFrames}`);
  return out;
}

export function tables(report) {
  const out = [];
  const rooms = report.env.settings.rooms;
  const flagged = [];
  const note = (r) => {
    const f = flags(r);
    if (f.length) flagged.push(`${r.part} ${r.server} C=${r.C} ${r.payload ?? ''} B: ${f.join('; ')}`);
  };
  report.runs.filter((r) => r.result && r.part !== 'idle').forEach(note);

  if (report.runs.some((r) => r.part === 'sat')) {
    out.push(
      '**Fan-out at saturation** (one room, closed loop, 16 messages in flight; a message is done when all C − 1 other members have it; deliveries/s = messages/s × (C − 1))',
      '',
      '| C | Payload | bare ws deliveries/s (msg/s) | Parley deliveries/s (msg/s) | **Parley ÷ bare** | server CPU µs/delivery bare / Parley | deliveries per server CPU-second, Parley ÷ bare | server vCPU bare / Parley | full fan-out p50 / p99 at saturation, bare / Parley (ms) | load-gen vCPU bare / Parley |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const [C, payload] of rooms) {
      const b = runsOf(report, 'sat', 'bare', C, payload), p = runsOf(report, 'sat', 'parley', C, payload);
      if (!b.length && !p.length) continue;
      const cell = (rs) => `${fmtRate(med(rs, (r) => r.result.deliveriesPerSec))} (${fmtRate(med(rs, (r) => r.result.msgsPerSec))})`;
      const lat = (rs) => `${ms(med(rs, (r) => r.result.latencyMs.p50))} / ${ms(med(rs, (r) => r.result.latencyMs.p99))}`;
      out.push(
        `| ${C} | ${payload} B | ${cell(b)} | ${cell(p)} | **${ratio(pairedRatio(b, p, (r) => r.result.deliveriesPerSec))}** | ${ms(med(b, usPerDelivery))} / ${ms(med(p, usPerDelivery))} | ${ratio(med(b, usPerDelivery) / med(p, usPerDelivery))} | ${vcpu(med(b, (r) => r.result.load.ours.server))} / ${vcpu(med(p, (r) => r.result.load.ours.server))} | ${lat(b)} / ${lat(p)} | ${vcpu(med(b, (r) => r.result.load.ours.load))} / ${vcpu(med(p, (r) => r.result.load.ours.load))} |`,
      );
    }
    out.push('');
  }
  if (report.runs.some((r) => r.part === 'lat')) {
    out.push(
      '**Publish-to-delivery latency at a fixed rate** (25 % of the lower of the two saturation rates above, same rate for both servers; time from the publish frame leaving the load generator until the last of the C − 1 members had it)',
      '',
      '| C | Payload | Rate msg/s (deliveries/s) | bare full fan-out p50 / p99 (ms) | Parley full fan-out p50 / p99 (ms) | **p99 Parley ÷ bare** | first member p50 / p99, bare / Parley (ms) | samples | server vCPU bare / Parley |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const [C, payload] of rooms) {
      const b = runsOf(report, 'lat', 'bare', C, payload)[0], p = runsOf(report, 'lat', 'parley', C, payload)[0];
      if (!b || !p) continue;
      const L = (r) => `${ms(r.result.latencyMs.p50)} / ${ms(r.result.latencyMs.p99)}`;
      const F = (r) => `${ms(r.result.firstMemberMs.p50)} / ${ms(r.result.firstMemberMs.p99)}`;
      out.push(
        `| ${C} | ${payload} B | ${p.rate} (${fmtRate(p.rate * (C - 1))}) | ${L(b)} | ${L(p)} | **${ratio(p.result.latencyMs.p99 / b.result.latencyMs.p99)}** | ${F(b)} / ${F(p)} | ${b.result.latencyMs.samples} / ${p.result.latencyMs.samples} | ${vcpu(b.result.load.ours.server)} / ${vcpu(p.result.load.ours.server)} |`,
      );
    }
    out.push('');
  }
  const pb = runsOf(report, 'pairs', 'bare'), pp = runsOf(report, 'pairs', 'parley');
  if (pb.length || pp.length) {
    const s = report.env.settings;
    out.push(
      `**2-member rooms** (${s.pairs} rooms, both members publishing, ${s.pairInFlight} message in flight per member, ${s.pairPayload} B; a message is done when the other member has it (and, for Parley, the sender its ack))`,
      '',
      '| bare ws msg/s | Parley msg/s | **Parley ÷ bare** | server CPU µs/message bare / Parley | messages per server CPU-second, Parley ÷ bare | server vCPU bare / Parley | load-gen vCPU bare / Parley |',
      '|---|---|---|---|---|---|---|',
      `| ${fmtRate(med(pb, (r) => r.result.msgsPerSec))} | ${fmtRate(med(pp, (r) => r.result.msgsPerSec))} | **${ratio(pairedRatio(pb, pp, (r) => r.result.msgsPerSec))}** | ${ms(med(pb, usPerDelivery))} / ${ms(med(pp, usPerDelivery))} | ${ratio(med(pb, usPerDelivery) / med(pp, usPerDelivery))} | ${vcpu(med(pb, (r) => r.result.load.ours.server))} / ${vcpu(med(pp, (r) => r.result.load.ours.server))} | ${vcpu(med(pb, (r) => r.result.load.ours.load))} / ${vcpu(med(pp, (r) => r.result.load.ours.load))} |`,
      '',
    );
  }
  const ib = runsOf(report, 'idle', 'bare')[0], ip = runsOf(report, 'idle', 'parley')[0];
  if (ib || ip) {
    out.push(
      '**Idle connections** (server RSS from /proc and JS heap from `process.memoryUsage()`, both right after a forced full GC in the server; *marginal* = growth from the first non-zero sample to this one ÷ connections added, the per-connection cost without one-time warm-up; *from 0* = growth from the fresh process ÷ connections)',
      '',
      '| Server | Connections | RSS | JS heap used | RSS per connection: marginal / from 0 | heap per connection: marginal / from 0 | connects/s (cumulative) | /metrics RSS / heap (Parley) |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const r of [ib, ip].filter(Boolean)) {
      const s = r.result.samples;
      const z = s[0], f = s[1];
      for (const x of s) {
        const from0 = (k) => (x.connections > 0 ? (x[k] - z[k]) / x.connections : NaN);
        const marg = (k) => (x.connections > f.connections ? (x[k] - f[k]) / (x.connections - f.connections) : NaN);
        out.push(
          `| ${r.server} | ${x.connections} | ${mb(x.rss)} | ${mb(x.heapUsed)} | ${kb(marg('rss'))} / ${kb(from0('rss'))} | ${kb(marg('heapUsed'))} / ${kb(from0('heapUsed'))} | ${x.connectRate ? fmtRate(x.connectRate) : ''} | ${r.server === 'parley' ? `${mb(x.metricsRss)} / ${mb(x.metricsHeapUsed)}` : '–'} |`,
        );
      }
    }
    out.push('');
  }
  if (flagged.length) out.push('Run problems:', '', ...flagged.map((f) => `- ${f}`), '');
  return out.join('\n');
}

/** The issue's targets, each with the measured value. */
export function verdicts(report) {
  const v = [];
  for (const [C, payload] of report.env.settings.rooms) {
    const b = runsOf(report, 'sat', 'bare', C, payload), p = runsOf(report, 'sat', 'parley', C, payload);
    if (b.length && p.length) v.push({ text: `deliveries/s ≥ 0.7× bare ws, C = ${C}, ${payload} B`, value: pairedRatio(b, p, (r) => r.result.deliveriesPerSec), min: 0.7 });
  }
  const pb = runsOf(report, 'pairs', 'bare'), pp = runsOf(report, 'pairs', 'parley');
  if (pb.length && pp.length) v.push({ text: 'messages/s in 2-member rooms ≥ 0.5× bare ws', value: pairedRatio(pb, pp, (r) => r.result.msgsPerSec), min: 0.5 });
  for (const [C, payload] of report.env.settings.rooms) {
    const b = runsOf(report, 'lat', 'bare', C, payload)[0], p = runsOf(report, 'lat', 'parley', C, payload)[0];
    if (b && p) v.push({ text: `full fan-out p99 ≤ 2× bare ws at ${p.rate} msg/s, C = ${C}, ${payload} B`, value: p.result.latencyMs.p99 / b.result.latencyMs.p99, max: 2 });
  }
  const ib = runsOf(report, 'idle', 'bare')[0], ip = runsOf(report, 'idle', 'parley')[0];
  if (ib && ip) {
    // Marginal cost between the first non-zero sample and the last (one-time warm-up excluded); from 0 shown too.
    const marg = (r, k) => {
      const s = r.result.samples;
      return (s.at(-1)[k] - s[1][k]) / (s.at(-1).connections - s[1].connections);
    };
    const from0 = (r, k) => {
      const s = r.result.samples;
      return (s.at(-1)[k] - s[0][k]) / s.at(-1).connections;
    };
    const s = ip.result.samples;
    const range = `${s[1].connections}→${s.at(-1).connections} connections`;
    v.push({
      text: `RSS per idle authenticated connection ≤ 2× bare ws (marginal, ${range})`,
      // Too few connections between the samples can make RSS growth ≤ 0 (page granularity): not measurable then.
      value: marg(ip, 'rss') > 0 && marg(ib, 'rss') > 0 ? marg(ip, 'rss') / marg(ib, 'rss') : NaN,
      max: 2,
      detail: `${kb(marg(ip, 'rss'))} vs ${kb(marg(ib, 'rss'))}; from 0: ${kb(from0(ip, 'rss'))} vs ${kb(from0(ib, 'rss'))} = ${ratio(from0(ip, 'rss') / from0(ib, 'rss'))}`,
    });
    v.push({
      text: `JS heap per idle connection vs bare ws (marginal, ${range}; no separate target)`,
      value: marg(ip, 'heapUsed') / marg(ib, 'heapUsed'),
      detail: `${kb(marg(ip, 'heapUsed'))} vs ${kb(marg(ib, 'heapUsed'))}`,
    });
  }
  for (const x of v) x.met = !Number.isFinite(x.value) ? null : x.min !== undefined ? x.value >= x.min : x.max !== undefined ? x.value <= x.max : null;
  return v;
}

/**
 * Noise-robust cross-check: server CPU per delivery, Parley ÷ bare (a
 * foreign process that steals the server's CPU lowers deliveries/s but not
 * CPU per delivery). performance-anchors §3.1 sets ≤ 1.4×; not in the issue.
 */
export function cpuChecks(report) {
  const v = [];
  for (const [C, payload] of report.env.settings.rooms) {
    const b = runsOf(report, 'sat', 'bare', C, payload), p = runsOf(report, 'sat', 'parley', C, payload);
    if (b.length && p.length) v.push({ text: `server CPU per delivery ≤ 1.4× bare ws, C = ${C}, ${payload} B`, value: med(p, usPerDelivery) / med(b, usPerDelivery), max: 1.4, detail: `${ms(med(p, usPerDelivery))} vs ${ms(med(b, usPerDelivery))} µs` });
  }
  const pb = runsOf(report, 'pairs', 'bare'), pp = runsOf(report, 'pairs', 'parley');
  if (pb.length && pp.length) v.push({ text: 'server CPU per message, 2-member rooms (≤ 2× would match the 0.5× target)', value: med(pp, usPerDelivery) / med(pb, usPerDelivery), max: 2, detail: `${ms(med(pp, usPerDelivery))} vs ${ms(med(pb, usPerDelivery))} µs` });
  for (const x of v) x.met = Number.isFinite(x.value) ? x.value <= x.max : null;
  return v;
}

function checkTable(report) {
  const lines = ['| Cross-check (server CPU time, Parley ÷ bare) | Measured | Within? |', '|---|---|---|'];
  for (const v of cpuChecks(report)) lines.push(`| ${v.text} | ${ratio3(v.value)} (${v.detail}) | ${v.met === null ? '–' : v.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

function verdictTable(report) {
  const lines = ['| Target | Measured | Met? |', '|---|---|---|'];
  for (const v of verdicts(report)) lines.push(`| ${v.text} | ${ratio3(v.value)}${v.detail ? ` (${v.detail})` : ''} | ${v.met === null ? (v.min === undefined && v.max === undefined ? 'no target' : 'not measured') : v.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

export function quietness(report) {
  const measured = report.runs.filter((r) => r.result?.load && r.part !== 'idle');
  const worst = Math.max(...measured.map((r) => r.result.load.foreign ?? Infinity));
  if (report.env.quick) return { quiet: false, worst, why: 'quick (smoke) mode: windows too short for reporting' };
  if (worst <= QUIET_FOREIGN_VCPU) return { quiet: true, worst, why: `foreign load ≤ ${QUIET_FOREIGN_VCPU} vCPU in every timed window (worst ${worst.toFixed(2)})` };
  return { quiet: false, worst, why: `foreign load up to ${Number.isFinite(worst) ? worst.toFixed(2) : 'unknown'} vCPU in the timed windows (quiet gate: ≤ ${QUIET_FOREIGN_VCPU})` };
}

function loadLines(report) {
  const e = report.env;
  const lines = [`- /proc/loadavg (1/5/15 min): start ${e.loadStart ?? 'n/a'}, end ${e.loadEnd ?? 'n/a'}.`];
  const rows = report.runs.filter((r) => r.result?.load);
  if (rows.length) {
    lines.push(
      '- Foreign CPU per timed window (machine task time from /proc/stat minus server, load generator and parent), in vCPUs — ' +
        rows.map((r) => `${r.part} ${r.server} C=${r.C}${r.payload ? `/${r.payload}` : ''}: ${vcpu(r.result.load.foreign)}`).join('; ') +
        '.',
    );
    const irq = rows.map((r) => r.result.load.irq).filter(Number.isFinite);
    const steal = rows.map((r) => r.result.load.steal).filter(Number.isFinite);
    if (irq.length) lines.push(`- irq+softirq (mostly our own loopback TCP) ${vcpu(Math.min(...irq))}–${vcpu(Math.max(...irq))} vCPU; steal ${vcpu(Math.min(...steal))}–${vcpu(Math.max(...steal))} vCPU.`);
  }
  return lines;
}

function methodLines(report) {
  const s = report.env.settings;
  return [
    `- Started ${report.env.date}; Node ${report.env.node}; ws ${report.env.wsVersion}; CPU: ${report.env.cpuModel} × ${report.env.cpus}; ${report.env.pin}. Parley: \`apps/cli/dist/src/main.js serve\` (built tree${report.env.git ? `, ${report.env.git}` : ''}), SQLite in a fresh data directory (WAL, synchronous = FULL, group commit${report.env.sqliteWriter ? `; PARLEY_SQLITE_WRITER ${report.env.sqliteWriter}` : ''}), log level info. Setup (registration of ${s.users} users, rooms) took ${Math.round(report.env.setupSeconds ?? NaN)} s, before any timed window.`,
    `- Every run starts a fresh server process (\`node --expose-gc --import bench/_server-gc-hook.mjs\`, both servers). Warm-up ${s.warmup} s, then a ${s.seconds} s window (latency: longer, see the table); one run per configuration${s.runs > 1 ? ` × ${s.runs}` : ''}, bare and Parley back to back in alternating order. Method: top of this file.`,
    `- Load generator: one process, raw-TCP WebSocket clients (handshake, masked frames written by hand, frames parsed just far enough to identify the message). Parley clients are authenticated v1 members (hello + auth with an access token minted under \`PARLEY_TRUSTED_TOKEN_SECRET\`; users registered with Ed25519 challenges during setup). Every member counts what it receives; a message is complete when all C − 1 other members have it (Parley: and its ack arrived).`,
    `- Publishers: the server allows 50 messages/s per connection, so ${s.publishers} members publish round-robin, each paced at ≤ 45/s client-side; the bare server gets the identical load shape.`,
  ];
}

export function printReport(report) {
  const q = quietness(report);
  console.log(`# Parley server vs bare ws — Node ${report.env.node}, ${report.env.cpuModel}${report.env.quick ? ' — QUICK MODE' : ''}`);
  console.log(`# machine: ${q.quiet ? 'quiet' : 'NOT QUIET'} — ${q.why}`);
  for (const l of loadLines(report)) console.log(`#${l.slice(1)}`);
  console.log('');
  console.log(tables(report));
  console.log(verdictTable(report));
  console.log('');
  console.log(checkTable(report));
}

export function sectionKey(report) {
  return `${report.env.date.slice(0, 10)}${report.label ? ` ${report.label}` : ''}`;
}

export function renderSection(report) {
  const q = quietness(report);
  const key = sectionKey(report);
  const status = q.quiet
    ? `Quiet run (${q.why}).`
    : `**Preliminary — not a quiet machine.** ${q.why[0].toUpperCase()}${q.why.slice(1)}. Ratios within this sitting are still indicative; re-run quietly before quoting.`;
  return [
    `<!-- bench:begin ${key} -->`,
    `## ${key}`,
    '',
    status,
    ...(report.note ? ['', `Note: ${report.note}`] : []),
    '',
    ...methodLines(report),
    ...loadLines(report),
    '',
    tables(report),
    'Targets from the issue:',
    '',
    verdictTable(report),
    '',
    'Cross-check, less sensitive to foreign load than rates are (server CPU time per delivery; performance-anchors §3.1 asks ≤ 1.4× for fan-out):',
    '',
    checkTable(report),
    '',
    `<!-- bench:end ${key} -->`,
  ].join('\n');
}

const HEADER = `# Server benchmark results: Parley vs a bare \`ws\` broadcast server

Written by \`npm run bench:server -- --write\` (\`bench/server.bench.mjs\`).
One section per date (and optional \`--label\`); writing again with the same
key replaces that section. Absolute rates on this shared 2-vCPU VM drift by
±20–50 % between sittings; the ratios, taken against a bare \`ws\` server run
by the same harness minutes apart, are what to compare.

## Running

\`\`\`sh
npm run bench:server                       # build, then the full run (about 20–25 min)
npm run bench:server -- --quick            # smoke run (about 3–4 min; never "quiet")
npm run bench:server -- --write            # also write a dated section here
npm run bench:server -- --only sat,lat     # parts: sat, lat, pairs, idle
npm run bench:server -- --runs 2           # repeat saturation and pair runs (median)
npm run bench:server -- --profile --only sat,pairs   # CPU profiles of both servers, timed window only
\`\`\`

Environment: \`BENCH_SERVER_SECONDS\` (window, 15), \`BENCH_SERVER_WARMUP\` (3),
\`BENCH_SERVER_PAIRS\` (1500), \`BENCH_SERVER_IDLE\` (10000),
\`BENCH_SERVER_SETTLE\` (seconds to wait for a quiet second before each run, 10),
\`BENCH_PARLEY_MAIN\` (another build's \`main.js\`, for A/B of a server change),
\`BENCH_SERVER_TMP\` (where the sitting and data directories go; default the OS temp dir).

## Method

Based on docs/performance-anchors.md §2.1 and §3.3.

* **Servers.** Parley is the real \`parley serve\` (\`apps/cli/dist/src/main.js serve
  --port 0 --host 127.0.0.1 --data <dir>\`), SQLite persistence on (WAL,
  \`synchronous = FULL\`), default log level, with \`PARLEY_TRUSTED_TOKEN_SECRET\`
  set so the harness can mint access tokens. The baseline is
  \`_server-bare-ws.mjs\`: a 28-line \`ws\` server (\`perMessageDeflate\` off,
  \`clientTracking\` off) where the URL path names a room and every message is
  sent with \`ws.send\` to every other connection of the room — the anchors'
  "naive" mode. Both run as \`node --expose-gc --import _server-gc-hook.mjs\`
  (the hook answers SIGUSR2 with two \`gc()\` calls and a \`process.memoryUsage()\`
  sample; nothing else), pinned with \`taskset\` to CPU 0. Every run starts a
  fresh server process.
* **Setup** (before any timed window, through the protocol): users
  \`u00000…\` registered with Ed25519 challenge signatures; a 100-member and a
  1000-member group room (\`u00000…\`); 2-member \`direct\` rooms between
  \`u01000+2k\` and \`u01001+2k\`. One fresh data directory per sitting, reused
  by every Parley run of the sitting.
* **Load generator** (\`_server-load.mjs\`), one process pinned to CPU 1.
  Every client is a raw-TCP WebSocket (\`_server-wire.mjs\`: handshake, masked
  frames written by hand, frames parsed only as far as needed). For Parley
  each client is an authenticated v1 member: \`hello\` + \`auth\` with an HS256
  access token minted for its user; it reads every frame, recognises
  \`{"t":"msg"…\` by its first bytes and reads the \`seq\` at a fixed offset,
  and parses \`{"t":"ack"…\` as JSON. For the bare server the message number
  is in the first 4 bytes of the binary payload. Payloads are random bytes
  (Parley: base64 in \`body\`, so a 100 B / 1 KiB payload is a ~330 B / ~1.6 KB
  text frame on the wire; bare: a 100 B / 1 KiB binary frame).
* **Publishers.** Parley allows 50 messages/s per connection
  (\`MESSAGES_PER_SECOND\`), so one publisher cannot saturate a room: 96
  members publish round-robin, each paced client-side at ≤ 45/s (burst 5).
  The bare server gets the identical load shape. A run where the pacing,
  not the server, limited the rate is flagged ("publishers paced").
* **Fan-out at saturation:** one room of C members, closed loop with 16
  messages in flight. A message is done when all C − 1 other members have it
  (every member counts, so fan-out order does not matter) and, for Parley,
  its \`ack\` arrived. Deliveries/s = messages done per second × (C − 1).
  3 s warm-up, 15 s window; every delivery is checked after a drain.
* **Latency:** the same rooms at a fixed publish rate of 25 % of the lower
  of the two servers' saturation rates (same rate for both), for 15–60 s
  (about 1000 samples). Full fan-out latency = time from writing the
  publish frame until the last of the C − 1 members had the message; first
  member = until the first had it. One clock (the load generator's).
* **2-member rooms:** N direct rooms, both members publishing, one message
  in flight per member (closed loop), 1 KiB; messages/s at the receivers.
  The bare server relays the same pairs (a room per pair).
* **Idle memory:** open connections in batches of 250 (Parley: TCP +
  WebSocket + \`hello\` + \`auth\`, so each is an authenticated session; bare:
  TCP + WebSocket), wait until no frame arrived for 0.5 s, then SIGUSR2 →
  GC → sample RSS (\`/proc/<pid>/status\`) and JS heap. Parley's
  \`/metrics\` (\`parley_process_resident_memory_bytes\`,
  \`parley_nodejs_heap_size_used_bytes\`) is recorded as a cross-check.
  The target is judged on the marginal RSS per connection between the first
  non-zero sample (1000) and 10,000 connections, which leaves out one-time
  warm-up (JIT code, SQLite page cache); growth from the fresh process is
  shown too. Kernel socket buffers are not in RSS.
* **Noise.** Before each run the harness waits (up to 10 s) for a second
  with < 0.15 vCPU of foreign load. During every timed window it reads
  \`/proc/stat\` and subtracts the CPU time of the server, the load generator
  and the parent: the rest is foreign load. A sitting is "quiet" only if
  every window stayed ≤ 0.15 vCPU; otherwise the section is marked
  preliminary. irq/softirq (where loopback TCP receive work is often
  accounted) and steal are shown separately and not counted as foreign.
* **Server CPU per delivery** = server process CPU time (utime + stime from
  \`/proc/<pid>/stat\`) in the window ÷ deliveries. On loopback the receiver's
  TCP work runs on the sender's CPU, so this is an upper bound.
`;

export function writeServerResults(section, report) {
  const key = sectionKey(report);
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : HEADER;
  const begin = `<!-- bench:begin ${key} -->`;
  const end = `<!-- bench:end ${key} -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + section + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(RESULTS, text);
  return RESULTS;
}

// ------------------------------------------------------------------ profiles

/** Where a frame's code lives, for the per-area totals. */
function area(cf) {
  const u = cf.url || '';
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : '(native / builtin)';
  if (u.includes('/node_modules/ws/')) return 'ws';
  if (u.includes('better-sqlite3')) return 'better-sqlite3 (JS side)';
  if (u.includes('/node_modules/zod/')) return 'zod';
  if (u.includes('/node_modules/jose/')) return 'jose';
  if (u.includes('/node_modules/pino') || u.includes('/node_modules/prom-client')) return 'pino / prom-client';
  if (u.includes('/packages/server/')) return 'parley server';
  if (u.startsWith('node:')) return 'node core (JS)';
  return 'other JS';
}

/** Self time by function and by area, and inclusive time of the heaviest functions, as markdown. */
export function summarizeProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const key = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/(node_modules|packages|apps)\//, '$1/')}:${cf.lineNumber + 1}` : ''}`.trim();
  const fnSelf = new Map(), areaSelf = new Map(), incl = new Map();
  for (const [id, t] of self) {
    const cf = byId.get(id).callFrame;
    fnSelf.set(key(cf), (fnSelf.get(key(cf)) ?? 0) + t);
    areaSelf.set(area(cf), (areaSelf.get(area(cf)) ?? 0) + t);
  }
  // Inclusive: subtree time, counted once per function per stack.
  const sub = new Map();
  const subtree = (n) => {
    let t = self.get(n.id) ?? 0;
    for (const c of n.children ?? []) t += subtree(byId.get(c));
    sub.set(n.id, t);
    return t;
  };
  const root = profile.nodes[0];
  subtree(root);
  const walk = (n, active) => {
    const k = key(n.callFrame);
    const first = !active.has(k);
    if (first) {
      incl.set(k, (incl.get(k) ?? 0) + sub.get(n.id));
      active.add(k);
    }
    for (const c of n.children ?? []) walk(byId.get(c), active);
    if (first) active.delete(k);
  };
  walk(root, new Set());
  const pct = (t) => `${((t / total) * 100).toFixed(1)} %`;
  const lines = ['| Area | self time |', '|---|---|'];
  for (const [a, t] of [...areaSelf].sort((x, y) => y[1] - x[1])) lines.push(`| ${a} | ${pct(t)} |`);
  lines.push('', '| Function (self time, top 30) | self |', '|---|---|');
  for (const [f, t] of [...fnSelf].sort((x, y) => y[1] - x[1]).slice(0, 30)) lines.push(`| \`${f}\` | ${pct(t)} |`);
  lines.push('', '| Function (inclusive time, top 30, excluding roots) | inclusive |', '|---|---|');
  for (const [f, t] of [...incl].filter(([f]) => !f.startsWith('(root)')).sort((x, y) => y[1] - x[1]).slice(0, 30)) lines.push(`| \`${f}\` | ${pct(t)} |`);
  return lines.join('\n');
}
