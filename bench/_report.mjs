// Turns the children's JSON into the markdown table, the target verdicts and
// the dated section of bench/RESULTS.md.
import { fileURLToPath } from 'node:url';
import { fmtRate, fmtTime, median, replaceSection } from './_measure.mjs';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

/** Foreign CPU (machine-wide, vCPUs) above which a run is not "quiet" (performance-anchors §2.1). */
const QUIET_FOREIGN_VCPU = 0.15;

const TARGETS = [
  { row: 'seal-key-1024', vs: 'peer', min: 4, text: 'Seal 1 KiB encrypt+decrypt ≥ 4× wasm-themis' },
  { row: 'seal-key-1024', vs: 'raw', min: 0.5, text: 'Seal 1 KiB encrypt+decrypt ≥ 0.5× raw AES-256-GCM' },
  { row: 'sm-ec-encrypt', vs: 'peer', min: 8, text: 'Secure Message EC encrypt ≥ 8× wasm-themis (object reused)' },
  { row: 'sm-ec-encrypt-new', vs: 'peer', min: 8, text: 'Secure Message EC encrypt ≥ 8× wasm-themis (new object per op)' },
  { row: 'session-wrap-1024', vs: 'peer', min: 4, text: 'Secure Session wrap+unwrap 1 KiB ≥ 4× wasm-themis' },
  { row: 'session-handshake', vs: 'peer', min: 3, text: 'Secure Session handshakes/s ≥ 3× wasm-themis' },
  // No target in the issue: listed so the ratio sits next to the others.
  { row: 'comparator-32', vs: 'peer', min: null, text: 'Secure Comparator full run vs wasm-themis (no target)' },
];

/**
 * ours ÷ other for one row: the median over rounds of the ratio of the two
 * trials run in the same round (adjacent in time), so a load burst that hits
 * one round moves one ratio, not both medians independently.
 */
function ratio(row, vs) {
  const other = row.results[vs];
  if (!other) return NaN;
  const ours = row.results.ours.trials;
  return median(ours.map((x, i) => x / other.trials[i]));
}
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const cell = (r) => (r ? `${fmtRate(r.median)} (${fmtTime(r.median)})` : '–');

/** Largest (max − min) / median over the trials of any side of a row, in %. */
function spread(row) {
  let worst = 0;
  for (const r of Object.values(row.results)) worst = Math.max(worst, (Math.max(...r.trials) - Math.min(...r.trials)) / r.median);
  return `${Math.round(worst * 100)} %`;
}

/** Targets from the issue, judged on the node:crypto backend run. */
export function targetVerdicts(runs) {
  const node = runs.find((r) => r.backend === 'node');
  return TARGETS.map((t) => {
    const row = node?.rows.find((r) => r.id === t.row);
    const x = row ? ratio(row, t.vs) : NaN;
    return { ...t, value: x, met: Number.isFinite(x) && t.min !== null ? x >= t.min : null };
  });
}

export function table(report) {
  const lines = [
    '| Operation | Object | Backend | ours ops/s (time/op) | wasm-themis ops/s (time/op) | ours ÷ wasm-themis | raw AES-256-GCM ops/s | ours ÷ raw | trial spread |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const ids = [];
  for (const run of report.runs) for (const row of run.rows) if (!ids.some((i) => i.id === row.id)) ids.push(row);
  for (const { id } of ids) {
    for (const run of report.runs) {
      const row = run.rows.find((r) => r.id === id);
      if (!row) continue;
      const r = row.results;
      lines.push(
        `| ${row.op} | ${row.object} | ${run.backend} | ${cell(r.ours)} | ${cell(r.peer)} | **${fmtRatio(ratio(row, 'peer'))}** | ${cell(r.raw)} | ${r.raw ? `**${fmtRatio(ratio(row, 'raw'))}**` : '–'} | ${spread(row)} |`,
      );
    }
  }
  return lines.join('\n');
}

function verdictTable(report) {
  const lines = ['| Target (node:crypto backend) | Measured | Met? |', '|---|---|---|'];
  const met = (v) => (!Number.isFinite(v.value) ? 'not measured' : v.min === null ? 'no target' : v.met ? 'yes' : '**no**');
  for (const v of report.verdicts) lines.push(`| ${v.text} | ${fmtRatio(v.value)} | ${met(v)} |`);
  return lines.join('\n');
}

/** The load lines of a report: loadavg and each child's foreign CPU. */
export function loadLines(report) {
  const e = report.env;
  const lines = [`- /proc/loadavg (1/5/15 min): start ${e.loadStart ?? 'n/a'}, end ${e.loadEnd ?? 'n/a'}.`];
  for (const run of report.runs) {
    const f = run.foreign;
    const pinned = f?.pinnedCpu === undefined ? '' : `, on the pinned CPU ${f.pinnedCpu.toFixed(2)} vCPU`;
    lines.push(
      `- Foreign CPU during the ${run.backend} child (machine busy time from /proc/stat minus the child's own CPU time): ` +
        (f ? `machine ${f.machine.toFixed(2)} vCPU${pinned}` : 'n/a') +
        `; child ran ${run.wallSeconds.toFixed(0)} s.`,
    );
  }
  return lines;
}

/** "quiet" only if every child saw at most 0.15 vCPU of foreign load and it was not a quick run. */
export function quietness(report) {
  if (report.env.quick) return { quiet: false, why: 'quick (smoke) mode: durations too short for reporting' };
  const worst = Math.max(...report.runs.map((r) => r.foreign?.machine ?? Infinity));
  if (worst <= QUIET_FOREIGN_VCPU) return { quiet: true, why: `foreign load ≤ ${QUIET_FOREIGN_VCPU} vCPU throughout` };
  return { quiet: false, why: `foreign load up to ${Number.isFinite(worst) ? worst.toFixed(2) : 'unknown'} vCPU (quiet gate: ≤ ${QUIET_FOREIGN_VCPU})` };
}

export function printTable(report) {
  const e = report.env;
  const q = quietness(report);
  console.log(`# @parley/themis ${e.ours} vs wasm-themis ${e.peer} — Node ${e.node} (OpenSSL ${e.openssl}), ${e.cpuModel}`);
  console.log(`# ${e.pin}; warm-up ${e.settings.warmup} s, ${e.settings.trials} × ${e.settings.seconds} s trials (passphrase: ${e.settings.passphraseTrials}), median${e.quick ? '; QUICK MODE' : ''}`);
  console.log(`# machine: ${q.quiet ? 'quiet' : 'NOT QUIET'} — ${q.why}`);
  for (const l of loadLines(report)) console.log(`#${l.slice(1)}`);
  console.log('');
  console.log(table(report));
  console.log('');
  console.log(verdictTable(report));
}

export function sectionKey(report) {
  return `${report.env.date.slice(0, 10)}${report.label ? ` ${report.label}` : ''}`;
}

export function renderSection(report) {
  const e = report.env;
  const q = quietness(report);
  const key = sectionKey(report);
  const status = q.quiet
    ? `Quiet run (${q.why}).`
    : `**Preliminary — numbers are noisy.** ${q.why[0].toUpperCase()}${q.why.slice(1)}. Compare ratios, not absolute ops/s, and re-run on a quiet machine before quoting.`;
  return [
    `<!-- bench:begin ${key} -->`,
    `## ${key}`,
    '',
    status,
    ...(report.note ? ['', `Note: ${report.note}`] : []),
    '',
    `- Started ${e.date}; Node ${e.node} (OpenSSL ${e.openssl}); CPU: ${e.cpuModel}; @parley/themis ${e.ours} (built \`dist/\`), wasm-themis ${e.peer}.`,
    `- Method: one child process per backend (default resolution → \`node\`; \`--conditions=parley-pure\` → \`noble\`), ${e.pin}, run one after the other. ` +
      `In each child every row warms each side up for ${e.settings.warmup} s, then runs ${e.settings.trials} interleaved trials of ${e.settings.seconds} s per side ` +
      `(passphrase row: ${Math.min(e.settings.trials, e.settings.passphraseTrials)} trial(s), at least one operation each), alternating which side goes first, with a forced GC before each trial; the table gives the median. ` +
      'Ratios are the median over rounds of ours ÷ other in the same round (same process, adjacent seconds). Method details: bench/README.md.',
    ...loadLines(report),
    '',
    table(report),
    '',
    'Targets from the issue:',
    '',
    verdictTable(report),
    '',
    `<!-- bench:end ${key} -->`,
  ].join('\n');
}

const HEADER = `# Benchmark results: @parley/themis vs wasm-themis

Written by \`npm run bench -- --write\` (see [README.md](README.md) for the
method and what each row means). One section per date (and optional
\`--label\`); re-running on the same date with the same label replaces that
section. Absolute ops/s on this shared 2-vCPU VM drift by ±20–50 % between
sittings; the ratios, measured in the same process, are what to compare.
`;

/** Replaces the section with the same key, or appends it. Returns the path. */
export function writeResults(section, report) {
  return replaceSection(RESULTS, sectionKey(report), section, HEADER);
}
