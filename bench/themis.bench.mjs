#!/usr/bin/env node
// Throughput of the built @parley/themis against the real wasm-themis 0.15.0
// (and, for Secure Cell Seal, against raw node:crypto AES-256-GCM), measured
// side by side in the same process. See bench/README.md for the method and
// what each row means.
//
//   node bench/themis.bench.mjs [--quick] [--write] [--only <substring>]
//                               [--backend node|noble] [--label <word>] [--note <text>] [--no-pin]
//
// The parent generates the keys, then runs itself as a child twice: once with
// default module resolution (node:crypto backend) and once with
// `--conditions=parley-pure` (pure-JS @noble backend). Each child measures
// ours vs wasm-themis (vs raw AES-GCM) interleaved and prints JSON; the parent
// prints one markdown table with ratios taken within each child.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Buffer } from 'node:buffer';
import { randomBytes, createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuTimes, foreignLoad, loadavg, measureRow } from './_measure.mjs';
import { printTable, renderSection, targetVerdicts, writeResults } from './_report.mjs';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Size of the Secure Message plaintext in every Secure Message row. */
const SM_BYTES = 1024;
/** Context for Context Imprint (mandatory there); Seal and Token Protect run without one. */
const CI_CONTEXT = Buffer.from('bench-context-16');
const PASSPHRASE = 'correct horse battery staple';

function settings(quick) {
  const num = (name, fallback) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!(n > 0)) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
    return n;
  };
  return quick
    ? { warmup: num('BENCH_WARMUP', 0.05), seconds: num('BENCH_SECONDS', 0.1), trials: num('BENCH_TRIALS', 2), passphraseTrials: num('BENCH_PASSPHRASE_TRIALS', 1) }
    : { warmup: num('BENCH_WARMUP', 0.3), seconds: num('BENCH_SECONDS', 1), trials: num('BENCH_TRIALS', 5), passphraseTrials: num('BENCH_PASSPHRASE_TRIALS', 3) };
}

// ---------------------------------------------------------------- child ----

/** wasm-themis, loaded with global fetch hidden (cossacklabs/themis#1062). */
async function loadPeer() {
  const saved = globalThis.fetch;
  globalThis.fetch = undefined;
  try {
    const peer = require('wasm-themis');
    await peer.initialized;
    return peer;
  } finally {
    globalThis.fetch = saved;
  }
}

function same(a, b, what) {
  if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) !== 0) {
    throw new Error(`cross-check failed: ${what}`);
  }
}

function expectLength(out, n) {
  if (out.length !== n) throw new Error(`wrong output length ${out.length}, expected ${n}`);
}

/** Raw AES-256-GCM encrypt+decrypt: fresh random 12-byte IV and fresh cipher objects per op. */
function rawGcm(key, msg) {
  return () => {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([c.update(msg), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    expectLength(Buffer.concat([d.update(ct), d.final()]), msg.length);
  };
}

/**
 * Every row: `sides` are one-operation closures, `check` proves before timing
 * that both libraries do the same job (each decrypts/verifies what the other
 * produced), so neither side can be measured doing less work.
 */
function buildRows(ours, peer, keys) {
  const bytes = (b64) => Buffer.from(b64, 'base64');
  const symKey = randomBytes(32);
  const rows = [];

  // Secure Cell, symmetric key. One cell object per side, reused (the normal use).
  const oSeal = ours.SecureCellSeal.withKey(new ours.SymmetricKey(symKey));
  const pSeal = peer.SecureCellSeal.withKey(new peer.SymmetricKey(symKey));
  for (const [size, name] of [[100, '100 B'], [1024, '1 KiB'], [65536, '64 KiB']]) {
    const msg = randomBytes(size);
    rows.push({
      id: `seal-key-${size}`,
      op: `Secure Cell Seal (key) encrypt+decrypt, ${name}`,
      object: 'cell reused',
      check() {
        same(pSeal.decrypt(oSeal.encrypt(msg)), msg, 'peer decrypts our Seal');
        same(oSeal.decrypt(pSeal.encrypt(msg)), msg, 'we decrypt peer Seal');
        expectLength(oSeal.encrypt(msg), pSeal.encrypt(msg).length);
      },
      sides: {
        ours: () => expectLength(oSeal.decrypt(oSeal.encrypt(msg)), size),
        peer: () => expectLength(pSeal.decrypt(pSeal.encrypt(msg)), size),
        raw: rawGcm(symKey, msg),
      },
    });
  }

  const msg1k = randomBytes(1024);
  const oTp = ours.SecureCellTokenProtect.withKey(new ours.SymmetricKey(symKey));
  const pTp = peer.SecureCellTokenProtect.withKey(new peer.SymmetricKey(symKey));
  rows.push({
    id: 'token-protect-1024',
    op: 'Secure Cell Token Protect encrypt+decrypt, 1 KiB',
    object: 'cell reused',
    check() {
      const o = oTp.encrypt(msg1k);
      same(pTp.decrypt(o.data, o.token), msg1k, 'peer decrypts our Token Protect');
      const p = pTp.encrypt(msg1k);
      same(oTp.decrypt(p.data, p.token), msg1k, 'we decrypt peer Token Protect');
    },
    sides: {
      ours: () => {
        const { data, token } = oTp.encrypt(msg1k);
        expectLength(oTp.decrypt(data, token), 1024);
      },
      // Context passed only when there is one: wasm-themis throws on `undefined`.
      peer: () => {
        const { data, token } = pTp.encrypt(msg1k);
        expectLength(pTp.decrypt(data, token), 1024);
      },
    },
  });

  const oCi = ours.SecureCellContextImprint.withKey(new ours.SymmetricKey(symKey));
  const pCi = peer.SecureCellContextImprint.withKey(new peer.SymmetricKey(symKey));
  rows.push({
    id: 'context-imprint-1024',
    op: 'Secure Cell Context Imprint encrypt+decrypt, 1 KiB, 16 B context',
    object: 'cell reused',
    check() {
      // Deterministic mode: both must produce the identical bytes.
      same(oCi.encrypt(msg1k, CI_CONTEXT), pCi.encrypt(msg1k, CI_CONTEXT), 'Context Imprint output identical');
    },
    sides: {
      ours: () => expectLength(oCi.decrypt(oCi.encrypt(msg1k, CI_CONTEXT), CI_CONTEXT), 1024),
      peer: () => expectLength(pCi.decrypt(pCi.encrypt(msg1k, CI_CONTEXT), CI_CONTEXT), 1024),
    },
  });

  const oPass = ours.SecureCellSeal.withPassphrase(PASSPHRASE);
  const pPass = peer.SecureCellSeal.withPassphrase(PASSPHRASE);
  rows.push({
    id: 'seal-passphrase-1024',
    op: 'Secure Cell Seal (passphrase) encrypt+decrypt, 1 KiB (2 × PBKDF2-SHA256, 314,110 iterations)',
    object: 'cell reused',
    slow: true,
    check() {
      const o = oPass.encrypt(msg1k);
      const p = pPass.encrypt(msg1k);
      // Same header layout (and so the same iteration count field position and size).
      expectLength(o, p.length);
      same(pPass.decrypt(o), msg1k, 'peer decrypts our passphrase Seal');
      same(oPass.decrypt(p), msg1k, 'we decrypt peer passphrase Seal');
    },
    sides: {
      ours: () => expectLength(oPass.decrypt(oPass.encrypt(msg1k)), 1024),
      peer: () => expectLength(pPass.decrypt(pPass.encrypt(msg1k)), 1024),
    },
  });

  // Secure Message. A is the sender, B the recipient; same key bytes on both sides.
  const smMsg = randomBytes(SM_BYTES);
  for (const fam of ['ec', 'rsa']) {
    const FAM = fam.toUpperCase() + (fam === 'rsa' ? '-2048' : ' P-256');
    const a = keys[fam].a;
    const b = keys[fam].b;
    const oPair = (priv, pub) => new ours.KeyPair(new ours.PrivateKey(bytes(priv)), new ours.PublicKey(bytes(pub)));
    const pPair = (priv, pub) => new peer.KeyPair(new peer.PrivateKey(bytes(priv)), new peer.PublicKey(bytes(pub)));
    const oSendPair = oPair(a.priv, b.pub);
    const pSendPair = pPair(a.priv, b.pub);
    const oRecvPair = oPair(b.priv, a.pub);
    const pRecvPair = pPair(b.priv, a.pub);
    const oSend = new ours.SecureMessage(oSendPair);
    const pSend = new peer.SecureMessage(pSendPair);
    const oRecv = new ours.SecureMessage(oRecvPair);
    const pRecv = new peer.SecureMessage(pRecvPair);
    const oSign = new ours.SecureMessageSign(new ours.PrivateKey(bytes(a.priv)));
    const pSign = new peer.SecureMessageSign(new peer.PrivateKey(bytes(a.priv)));
    const oVerify = new ours.SecureMessageVerify(new ours.PublicKey(bytes(a.pub)));
    const pVerify = new peer.SecureMessageVerify(new peer.PublicKey(bytes(a.pub)));
    const oPrivA = new ours.PrivateKey(bytes(a.priv));
    const pPrivA = new peer.PrivateKey(bytes(a.priv));
    const oPubA = new ours.PublicKey(bytes(a.pub));
    const pPubA = new peer.PublicKey(bytes(a.pub));
    // Decrypt and verify rows: both sides process the identical bytes, made by wasm-themis.
    const sealed = pSend.encrypt(smMsg);
    const signed = pSign.sign(smMsg);
    const checkEncrypt = () => {
      same(pRecv.decrypt(oSend.encrypt(smMsg)), smMsg, `peer decrypts our ${FAM} Secure Message`);
      same(oRecv.decrypt(sealed), smMsg, `we decrypt peer ${FAM} Secure Message`);
    };
    const checkSign = () => {
      same(pVerify.verify(oSign.sign(smMsg)), smMsg, `peer verifies our ${FAM} signature`);
      same(oVerify.verify(signed), smMsg, `we verify peer ${FAM} signature`);
    };
    const n = SM_BYTES;
    rows.push({
      id: `sm-${fam}-encrypt`,
      op: `Secure Message ${FAM} encrypt, 1 KiB`,
      object: 'reused',
      check: checkEncrypt,
      sides: { ours: () => oSend.encrypt(smMsg), peer: () => pSend.encrypt(smMsg) },
    });
    if (fam === 'ec') {
      rows.push({
        id: 'sm-ec-encrypt-new',
        op: `Secure Message ${FAM} encrypt, 1 KiB`,
        object: 'new per op',
        check: checkEncrypt,
        sides: {
          ours: () => new ours.SecureMessage(oSendPair).encrypt(smMsg),
          peer: () => new peer.SecureMessage(pSendPair).encrypt(smMsg),
        },
      });
    }
    rows.push({
      id: `sm-${fam}-decrypt`,
      op: `Secure Message ${FAM} decrypt, 1 KiB`,
      object: 'reused',
      check: checkEncrypt,
      sides: { ours: () => expectLength(oRecv.decrypt(sealed), n), peer: () => expectLength(pRecv.decrypt(sealed), n) },
    });
    if (fam === 'ec') {
      rows.push({
        id: 'sm-ec-decrypt-new',
        op: `Secure Message ${FAM} decrypt, 1 KiB`,
        object: 'new per op',
        check: checkEncrypt,
        sides: {
          ours: () => expectLength(new ours.SecureMessage(oRecvPair).decrypt(sealed), n),
          peer: () => expectLength(new peer.SecureMessage(pRecvPair).decrypt(sealed), n),
        },
      });
    }
    rows.push({
      id: `sm-${fam}-sign`,
      op: `Secure Message ${FAM} sign, 1 KiB`,
      object: 'reused',
      check: checkSign,
      sides: { ours: () => oSign.sign(smMsg), peer: () => pSign.sign(smMsg) },
    });
    if (fam === 'ec') {
      rows.push({
        id: 'sm-ec-sign-new',
        op: `Secure Message ${FAM} sign, 1 KiB`,
        object: 'new per op',
        check: checkSign,
        sides: { ours: () => new ours.SecureMessageSign(oPrivA).sign(smMsg), peer: () => new peer.SecureMessageSign(pPrivA).sign(smMsg) },
      });
    }
    rows.push({
      id: `sm-${fam}-verify`,
      op: `Secure Message ${FAM} verify, 1 KiB`,
      object: 'reused',
      check: checkSign,
      sides: { ours: () => expectLength(oVerify.verify(signed), n), peer: () => expectLength(pVerify.verify(signed), n) },
    });
    if (fam === 'ec') {
      rows.push({
        id: 'sm-ec-verify-new',
        op: `Secure Message ${FAM} verify, 1 KiB`,
        object: 'new per op',
        check: checkSign,
        sides: {
          ours: () => expectLength(new ours.SecureMessageVerify(oPubA).verify(signed), n),
          peer: () => expectLength(new peer.SecureMessageVerify(pPubA).verify(signed), n),
        },
      });
    }
  }
  return rows;
}

/** Never let a wasm-themis error print whole: it can carry the Emscripten module source. */
function short(err) {
  return String(err?.stack ?? err).slice(0, 300);
}

async function child() {
  const expect = option('--expect');
  const cfg = JSON.parse(process.env.BENCH_CONFIG);
  const keys = JSON.parse(process.env.BENCH_KEYS);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const ours = await import('@parley/themis');
  if (ours.backendName !== expect) throw new Error(`asked for backend ${expect}, @parley/themis reports ${ours.backendName}`);
  const peer = await loadPeer();
  const rows = buildRows(ours, peer, keys).filter((r) => !cfg.only || r.id.includes(cfg.only));
  const out = [];
  for (const row of rows) {
    row.check();
    const trials = row.slow ? Math.min(cfg.trials, cfg.passphraseTrials) : cfg.trials;
    const results = measureRow(row.sides, { warmup: cfg.warmup, seconds: cfg.seconds, trials });
    out.push({ id: row.id, op: row.op, object: row.object, trials, results });
    const r = results;
    process.stderr.write(
      `  [${expect}] ${row.id} ${row.object}: ours ${r.ours.median.toPrecision(4)}/s, wasm-themis ${r.peer.median.toPrecision(4)}/s` +
        (r.raw ? `, raw GCM ${r.raw.median.toPrecision(4)}/s` : '') +
        '\n',
    );
  }
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    JSON.stringify({
      backend: ours.backendName,
      gcExposed: typeof globalThis.gc === 'function',
      rows: out,
      wallSeconds: (performance.now() - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    }) + '\n',
  );
}

// --------------------------------------------------------------- parent ----

async function makeKeys() {
  const { KeyPair, backendName } = await import('@parley/themis');
  const b64 = (k) => Buffer.from(k).toString('base64');
  const enc = (p) => ({ priv: b64(p.privateKey), pub: b64(p.publicKey) });
  process.stderr.write(`generating keys (EC P-256 x2, RSA-2048 x2) with @parley/themis on ${backendName}\n`);
  return {
    ec: { a: enc(new KeyPair()), b: enc(new KeyPair()) },
    rsa: { a: enc(KeyPair.generateRSA(2048)), b: enc(KeyPair.generateRSA(2048)) },
  };
}

function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
}

function pinning(cpu) {
  if (flag('--no-pin')) return { cmd: [], cpu: null, note: 'not pinned (--no-pin)' };
  const r = spawnSync('taskset', ['-c', String(cpu), 'true']);
  if (r.status === 0) return { cmd: ['taskset', '-c', String(cpu)], cpu, note: `pinned to CPU ${cpu} with taskset` };
  return { cmd: [], cpu: null, note: 'not pinned (taskset unavailable)' };
}

function runChild(backend, cfg, keys, pin, hz) {
  const nodeArgs = ['--expose-gc', ...(backend === 'noble' ? ['--conditions=parley-pure'] : []), SELF, '--child', '--expect', backend];
  const [cmd, ...cmdArgs] = pin.cmd.length ? [...pin.cmd, process.execPath, ...nodeArgs] : [process.execPath, ...nodeArgs];
  process.stderr.write(`child: ${backend} backend (${pin.note})${backend === 'noble' ? ' --conditions=parley-pure' : ''}\n`);
  const before = cpuTimes();
  const t0 = performance.now();
  const r = spawnSync(cmd, cmdArgs, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, BENCH_CONFIG: JSON.stringify(cfg), BENCH_KEYS: JSON.stringify(keys) },
  });
  const wall = (performance.now() - t0) / 1000;
  const after = cpuTimes();
  if (r.status !== 0) throw new Error(`${backend} child failed (exit ${r.status}): ${String(r.stdout).slice(-300)}`);
  const data = JSON.parse(r.stdout.trim().split('\n').pop());
  data.foreign = foreignLoad(before, after, wall, data.cpuSeconds, pin.cpu, hz);
  return data;
}

function environment(pin, cfg, quick) {
  const pkg = (p) => JSON.parse(readFileSync(require.resolve(p), 'utf8')).version;
  let cpuModel = 'unknown';
  try {
    cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    openssl: process.versions.openssl,
    ours: pkg('@parley/themis/package.json'),
    peer: pkg('wasm-themis/package.json'),
    cpuModel,
    pin: pin.note,
    settings: cfg,
    quick,
  };
}

async function parent() {
  const quick = flag('--quick') || process.env.BENCH_QUICK === '1';
  const cfg = { ...settings(quick), only: option('--only') ?? null };
  const backends = option('--backend') ? [option('--backend')] : ['node', 'noble'];
  for (const b of backends) if (b !== 'node' && b !== 'noble') throw new Error(`--backend must be node or noble, got ${b}`);
  const pin = pinning(Number(process.env.BENCH_CPU ?? 1));
  const hz = clockTicks();
  const loadStart = loadavg();
  const env = environment(pin, cfg, quick);
  const keys = await makeKeys();
  const runs = backends.map((b) => runChild(b, cfg, keys, pin, hz));
  const loadEnd = loadavg();
  const report = { env: { ...env, loadStart, loadEnd }, runs, label: option('--label') ?? null, note: option('--note') ?? null };
  report.verdicts = targetVerdicts(runs);
  printTable(report);
  if (flag('--write')) {
    const file = writeResults(renderSection(report), report);
    process.stderr.write(`wrote ${file}\n`);
  }
}

try {
  if (flag('--child')) await child();
  else await parent();
} catch (err) {
  process.stderr.write(`bench failed: ${short(err)}\n`);
  process.exit(1);
}
