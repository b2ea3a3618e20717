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
import { clockTicks, cpuTimes, foreignLoad, loadavg, measureRow, pinning } from './_measure.mjs';
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
  rows.push(...sessionRows(ours, peer, keys), comparatorRow(ours, peer));
  return rows;
}

// Secure Session. Static EC key pair A is the client's, B the server's; on
// each side the PrivateKey/PublicKey objects are built once and handed to
// every session (as a server holding its key and its clients' keys does).
const CLIENT_ID = new TextEncoder().encode('bench client');
const SERVER_ID = new TextEncoder().encode('bench server');
const sameId = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;

/** Session factories for one library; its key callback returns that library's PublicKey object. */
function sessionKit(lib, keys) {
  const bytes = (b64) => Buffer.from(b64, 'base64');
  const clientPriv = new lib.PrivateKey(bytes(keys.ec.a.priv));
  const serverPriv = new lib.PrivateKey(bytes(keys.ec.b.priv));
  const clientPub = new lib.PublicKey(bytes(keys.ec.a.pub));
  const serverPub = new lib.PublicKey(bytes(keys.ec.b.pub));
  const lookup = (id) => (sameId(id, CLIENT_ID) ? clientPub : sameId(id, SERVER_ID) ? serverPub : null);
  return {
    client: () => new lib.SecureSession(CLIENT_ID, clientPriv, lookup),
    server: () => new lib.SecureSession(SERVER_ID, serverPriv, lookup),
  };
}

/** The full 4-message handshake; both ends must report established. */
function handshake(client, server) {
  const m1 = client.connectionRequest();
  const m2 = server.negotiateReply(m1);
  const m3 = client.negotiateReply(m2);
  const m4 = server.negotiateReply(m3);
  const rest = client.negotiateReply(m4);
  if (rest.length !== 0 || !client.established() || !server.established()) throw new Error('Secure Session handshake did not complete');
}

/** One handshake between new sessions, destroyed afterwards (wasm-themis frees its C state only in destroy()). */
function handshakeOnce(kit) {
  const client = kit.client();
  const server = kit.server();
  try {
    handshake(client, server);
  } finally {
    client.destroy();
    server.destroy();
  }
}

/** A wrap/unwrap closure over one established pair, alternating direction: client→server, then server→client. */
function wrapUnwrap(client, server, msg) {
  let toServer = true;
  return () => {
    const [from, to] = toServer ? [client, server] : [server, client];
    toServer = !toServer;
    expectLength(to.unwrap(from.wrap(msg)), msg.length);
  };
}

function sessionRows(ours, peer, keys) {
  const o = sessionKit(ours, keys);
  const p = sessionKit(peer, keys);
  const msg = randomBytes(1024);
  // Sessions for the wrap/unwrap row: established once, reused by every op.
  const oClient = o.client();
  const oServer = o.server();
  handshake(oClient, oServer);
  const pClient = p.client();
  const pServer = p.server();
  handshake(pClient, pServer);
  const checkInterop = () => {
    // Mixed pairs, both roles: each handshake completes and each direction delivers the plaintext.
    for (const [what, client, server] of [
      ['our client with a wasm-themis server', o.client(), p.server()],
      ['a wasm-themis client with our server', p.client(), o.server()],
    ]) {
      try {
        handshake(client, server);
        same(server.unwrap(client.wrap(msg)), msg, `Secure Session ${what}: client to server`);
        same(client.unwrap(server.wrap(msg)), msg, `Secure Session ${what}: server to client`);
      } finally {
        client.destroy();
        server.destroy();
      }
    }
  };
  return [
    {
      id: 'session-handshake',
      op: 'Secure Session handshake (4 messages, EC P-256), client + server',
      object: 'new sessions per op, static keys reused',
      check() {
        checkInterop();
        handshakeOnce(o);
        handshakeOnce(p);
      },
      sides: { ours: () => handshakeOnce(o), peer: () => handshakeOnce(p) },
    },
    {
      id: 'session-wrap-1024',
      op: 'Secure Session wrap+unwrap, 1 KiB (alternating client→server, server→client)',
      object: 'established pair reused',
      check() {
        checkInterop();
        // Sessions are pairwise: ours↔ours and wasm-themis↔wasm-themis must deliver the same plaintext.
        same(oServer.unwrap(oClient.wrap(msg)), pServer.unwrap(pClient.wrap(msg)), 'ours and wasm-themis deliver the same plaintext (client to server)');
        same(oClient.unwrap(oServer.wrap(msg)), pClient.unwrap(pServer.wrap(msg)), 'ours and wasm-themis deliver the same plaintext (server to client)');
        same(oServer.unwrap(oClient.wrap(msg)), msg, 'our session delivers the plaintext');
        expectLength(oClient.wrap(msg), pClient.wrap(msg).length);
      },
      sides: { ours: wrapUnwrap(oClient, oServer, msg), peer: wrapUnwrap(pClient, pServer, msg) },
    },
  ];
}

// Secure Comparator: Alice and Bob, equal 32-byte secrets, new objects per run.
/** Alice begins; Bob, Alice, Bob, Alice proceed. Returns [alice.compareEqual(), bob.compareEqual()]; destroys both. */
function compareRun(makeAlice, makeBob, aliceSecret, bobSecret) {
  const alice = makeAlice();
  const bob = makeBob();
  try {
    alice.append(aliceSecret);
    bob.append(bobSecret);
    const m2 = bob.proceed(alice.begin());
    const m4 = bob.proceed(alice.proceed(m2));
    const rest = alice.proceed(m4);
    if (rest.length !== 0 || !alice.complete() || !bob.complete()) throw new Error('Secure Comparator run did not complete');
    return [alice.compareEqual(), bob.compareEqual()];
  } finally {
    alice.destroy();
    bob.destroy();
  }
}

function comparatorRow(ours, peer) {
  const secret = randomBytes(32);
  const other = randomBytes(32);
  const o = () => new ours.SecureComparator();
  const p = () => new peer.SecureComparator();
  const equalOnBoth = (a, b, what) => {
    const r = compareRun(a, b, secret, Uint8Array.from(secret));
    if (!r[0] || !r[1]) throw new Error(`cross-check failed: ${what}: equal secrets not found equal (${r})`);
  };
  return {
    id: 'comparator-32',
    op: 'Secure Comparator full run (begin + 4 proceed), equal 32-byte secrets, Alice + Bob',
    object: 'new comparators per op',
    check() {
      equalOnBoth(o, p, 'our Alice with wasm-themis Bob');
      equalOnBoth(p, o, 'wasm-themis Alice with our Bob');
      equalOnBoth(o, o, 'ours with ours');
      equalOnBoth(p, p, 'wasm-themis with wasm-themis');
      for (const [a, b, what] of [[o, p, 'our Alice with wasm-themis Bob'], [p, o, 'wasm-themis Alice with our Bob']]) {
        const r = compareRun(a, b, secret, other);
        if (r[0] || r[1]) throw new Error(`cross-check failed: ${what}: different secrets found equal (${r})`);
      }
    },
    sides: {
      ours: () => equalOnBoth(o, o, 'ours'),
      peer: () => equalOnBoth(p, p, 'wasm-themis'),
    },
  };
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
  const pin = pinning(Number(process.env.BENCH_CPU ?? 1), { disabled: flag('--no-pin') });
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
