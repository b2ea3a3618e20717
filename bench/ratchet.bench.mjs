#!/usr/bin/env node
// Throughput of the built @parley/protocol (PQXDH with X25519 + ML-KEM-1024,
// and the Double Ratchet) against Signal's @signalapp/libsignal-client, side
// by side in the same process.
//
//   node bench/ratchet.bench.mjs [--quick] [--write] [--only <row>] [--backend node|noble]
//                                [--profile] [--label <word>] [--note <text>] [--no-pin] [--install]
//
// libsignal (AGPL-3.0, ~150 MB) is a benchmark-only install in bench/libsignal,
// never a dependency of the workspace:
//
//   npm install --prefix bench/libsignal        (or pass --install)
//
// Without it the script prints that command and exits with status 2. Our side
// is packages/protocol/dist (build it with `npx tsc -b packages/themis
// packages/protocol` or `npm run build`).
//
// Rows (ids for --only):
//   msg-alternating  ratchet encrypt+decrypt of 1 KiB, direction alternating
//                    A→B, B→A, …: every message carries a new ratchet key, so
//                    every decrypt does a DH ratchet step and every encrypt
//                    after a turn starts a new sending chain
//   msg-one-way      the same, A→B only: symmetric-key chain steps only
//   setup            one session setup: the initiator takes a prebuilt bundle
//                    (signed prekey, a fresh one-time prekey, the PQ/Kyber
//                    prekey), starts the session, encrypts a first 1 KiB
//                    message; the responder decrypts it, creating its session
//   setup-first-contact  the same between two devices that have never met:
//                    fresh identities and prekeys on both sides for every
//                    setup, so nothing one setup computed helps the next
// One message = one encrypt + one decrypt. Prekey generation is never timed:
// both sides draw from a pre-generated pool, topped up between trials.
//
// The parent runs itself as a child per backend: default resolution (our
// node:crypto backend) and --conditions=parley-pure (our pure-JS @noble
// backend, what browsers get); libsignal is the same native code in both.
// In each child every row warms both libraries up, then runs 5 rounds of 1 s
// per library, alternating which goes first, with a forced GC before each
// trial. Reported: median ops/s per library, the median over rounds of the
// paired ratio ours ÷ libsignal, and each library's spread over the rounds.
// Both libraries are called the way an application calls them: ours
// synchronously on Session objects held in memory, libsignal through its
// async API over in-memory stores (bench/_libsignal-stores.mjs).
//
// --profile adds a CPU profile (node:inspector) of each row and library,
// taken after the measurements, summarised by where the self time goes.
//
// Environment: BENCH_SECONDS (1), BENCH_TRIALS (5), BENCH_WARMUP (0.5),
// BENCH_PROFILE_SECONDS (2), BENCH_CPU (1, the CPU children are pinned to),
// BENCH_QUICK=1 (same as --quick). Output: a markdown table on stdout,
// progress on stderr; --write adds or replaces this run's section in
// bench/RESULTS.md (keyed "ratchet <date>[ <label>]"; other sections untouched).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { clockTicks, cpuTimes, foreignLoad, fmtRate, fmtTime, loadavg, median, pinning, replaceSection } from './_measure.mjs';
import { loadLines as sharedLoadLines, quietness } from './_report.mjs';
import { makeStores } from './_libsignal-stores.mjs';

const SELF = fileURLToPath(import.meta.url);
const BENCH = dirname(SELF);
const ROOT = dirname(BENCH);
const LIBSIGNAL_DIR = join(BENCH, 'libsignal');
const LIBSIGNAL_PKG = join(LIBSIGNAL_DIR, 'node_modules', '@signalapp', 'libsignal-client');
const OURS_ENTRY = join(ROOT, 'packages', 'protocol', 'dist', 'src', 'index.js');
const RESULTS = join(BENCH, 'RESULTS.md');
const INSTALL_COMMAND = 'npm install --prefix bench/libsignal';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const MESSAGE_BYTES = 1024;
/** Foreign CPU (machine-wide, vCPUs) above which a run is not "quiet" (performance-anchors §2.1). */

const ROWS = [
  {
    id: 'msg-alternating',
    op: 'Ratchet encrypt+decrypt, 1 KiB, alternating A→B, B→A (DH ratchet step every message)',
    unit: 'messages',
    target: 1.0,
  },
  {
    id: 'msg-one-way',
    op: 'Ratchet encrypt+decrypt, 1 KiB, one direction A→B (symmetric chain only)',
    unit: 'messages',
    target: 1.0,
  },
  {
    id: 'setup',
    op: 'Session setup: prebuilt bundle (one-time + PQ prekey) → initiate → encrypt 1 KiB → responder decrypts',
    unit: 'setups',
    target: 0.5,
  },
  {
    id: 'setup-first-contact',
    op: 'Session setup between devices new to each other: as above, but fresh identities and prekeys on both sides every time (nothing cached)',
    unit: 'setups',
    target: null,
  },
];

function settings(quick) {
  const num = (name, fallback) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!(n > 0)) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
    return n;
  };
  return quick
    ? { warmup: num('BENCH_WARMUP', 0.1), seconds: num('BENCH_SECONDS', 0.2), trials: num('BENCH_TRIALS', 2), profileSeconds: num('BENCH_PROFILE_SECONDS', 0.5) }
    : { warmup: num('BENCH_WARMUP', 0.5), seconds: num('BENCH_SECONDS', 1), trials: num('BENCH_TRIALS', 5), profileSeconds: num('BENCH_PROFILE_SECONDS', 2) };
}

function readVersion(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** Version of a package as installed for `fromDir` (walks up node_modules; works when package.json is not exported). */
function installedVersion(fromDir, name) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const file = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(file)) return readVersion(file);
    if (dirname(dir) === dir) return 'unknown';
  }
}

// ---------------------------------------------------------------- checks ----

function same(a, b, what) {
  if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) !== 0) {
    throw new Error(`check failed: ${what}`);
  }
}
function expectLength(out, n) {
  if (out.length !== n) throw new Error(`wrong plaintext length ${out.length}, expected ${n}`);
}
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** Our envelope's sender ratchet key (README "Wire format": DH at h, h = 2 or 1,647 in a prekey message). */
function oursRatchetKey(envelope) {
  const h = envelope[1] === 0x02 ? 1647 : 2;
  return hex(envelope.subarray(h, h + 32));
}

/**
 * libsignal SignalMessage wire form: version byte, protobuf, 8-byte MAC. The
 * protobuf starts with field 1 (ratchetKey, 33 bytes: type byte + X25519).
 */
function libsignalRatchetKey(serialized) {
  check(serialized[1] === 0x0a && serialized[2] === 0x21, 'libsignal SignalMessage starts with its ratchet key (protobuf field 1, 33 bytes)');
  return hex(serialized.subarray(3, 36));
}

// ----------------------------------------------------------- our library ----

/** Our two parties: identities, Bob's prekeys, trust stores, and a pool of prebuilt bundles. */
function oursKit(P) {
  const aliceIdentity = P.IdentityKeyPair.generate();
  const bobIdentity = P.IdentityKeyPair.generate();
  const signedPrekey = P.SignedPrekey.generate(bobIdentity, 1);
  const pqPrekey = P.PqPrekey.generate(bobIdentity, 1);
  const prekeys = new P.InMemoryPrekeyStore();
  prekeys.addSignedPrekey(signedPrekey);
  prekeys.addPqPrekey(pqPrekey);
  const A = { userId: 'alice', deviceId: '1' };
  const B = { userId: 'bob', deviceId: '1' };
  const aliceTrust = new P.InMemoryIdentityStore(aliceIdentity);
  const bobTrust = new P.InMemoryIdentityStore(bobIdentity);
  let bundles = [];
  let used = 0;
  let nextKeyId = 1;

  /** Outside the clock: at least `n` unused bundles, each with its own one-time prekey in Bob's store. */
  function prepare(n) {
    bundles = bundles.slice(used);
    used = 0;
    while (bundles.length < n) {
      const count = Math.min(1000, n - bundles.length);
      const otks = P.OneTimePrekey.generate(nextKeyId, count);
      nextKeyId += count;
      prekeys.addOneTimePrekeys(otks);
      for (const otk of otks) bundles.push(P.makePrekeyBundle(bobIdentity, signedPrekey, otk, pqPrekey));
    }
    return bundles.length;
  }

  /** The initiator's half: a session from a bundle, identity checked and saved as an application does. */
  function initiate(bundle) {
    const a = P.Session.initiate(aliceIdentity, bundle, A, B);
    const bobKey = a.remoteIdentityKey;
    if (!aliceTrust.isTrustedIdentity(B, bobKey)) throw new Error('untrusted identity');
    aliceTrust.saveIdentity(B, bobKey);
    return a;
  }
  /** The responder's half: a new session accepting the first message. */
  function accept(envelope) {
    const b = P.Session.create(B, A);
    const plaintext = b.decrypt(envelope, {
      identity: bobIdentity,
      prekeys,
      isTrustedIdentity: (key) => bobTrust.isTrustedIdentity(A, key),
    });
    bobTrust.saveIdentity(A, b.remoteIdentityKey);
    return { b, plaintext };
  }

  const setupOp = (msg) => () => {
    if (used >= bundles.length) throw new Error('bundle pool exhausted');
    const bundle = bundles[used++];
    const a = initiate(bundle);
    const { plaintext } = accept(a.encrypt(msg));
    expectLength(plaintext, msg.length);
  };

  /** An established pair: first message and a reply, so both sides are in the ratchet. */
  function establishedPair(msg) {
    prepare(1);
    const a = initiate(bundles[used++]);
    const { b, plaintext } = accept(a.encrypt(msg));
    same(plaintext, msg, 'ours: first message');
    same(a.decrypt(b.encrypt(msg)), msg, 'ours: reply');
    check(!a.awaitingReply, 'ours: initiator saw the reply');
    return { a, b };
  }

  return {
    prepare,
    setupOp,
    establishedPair,
    remaining: () => bundles.length - used,
    oneTimeCount: () => prekeys.oneTimePrekeyCount,
    isPrekeyMessage: P.isPrekeyMessage,
    initiate,
    accept,
    nextBundle: () => bundles[used++],
  };
}

/**
 * First contacts: every pool entry is a pair of devices that have never met —
 * fresh identities, Bob's own signed, one-time and PQ prekeys, empty trust
 * stores — so no per-key work done for an earlier setup (identity-key
 * conversion, OpenSSL key objects, the prepared ML-KEM key) carries over.
 * Key generation happens off the clock, when the pool is topped up.
 */
/** Prebuilt items, made off the clock: `prepare(n)` keeps at least `n` unused (returns how many), `next()` takes one. */
function makePool(build) {
  let items = [];
  let used = 0;
  return {
    prepare(n) {
      items = items.slice(used);
      used = 0;
      while (items.length < n) items.push(build());
      return items.length;
    },
    next() {
      if (used >= items.length) throw new Error('pool exhausted');
      return items[used++];
    },
  };
}

function oursFirstContactKit(P) {
  const A = { userId: 'alice', deviceId: '1' };
  const B = { userId: 'bob', deviceId: '1' };
  const { prepare, next } = makePool(() => {
    const aliceIdentity = P.IdentityKeyPair.generate();
    const bobIdentity = P.IdentityKeyPair.generate();
    const signedPrekey = P.SignedPrekey.generate(bobIdentity, 1);
    const pqPrekey = P.PqPrekey.generate(bobIdentity, 1);
    const [otk] = P.OneTimePrekey.generate(1, 1);
    const prekeys = new P.InMemoryPrekeyStore();
    prekeys.addSignedPrekey(signedPrekey);
    prekeys.addPqPrekey(pqPrekey);
    prekeys.addOneTimePrekeys([otk]);
    return {
      aliceIdentity,
      bobIdentity,
      prekeys,
      aliceTrust: new P.InMemoryIdentityStore(aliceIdentity),
      bobTrust: new P.InMemoryIdentityStore(bobIdentity),
      bundle: P.makePrekeyBundle(bobIdentity, signedPrekey, otk, pqPrekey),
    };
  });
  function setupOnce(e, msg) {
    const a = P.Session.initiate(e.aliceIdentity, e.bundle, A, B);
    if (!e.aliceTrust.isTrustedIdentity(B, a.remoteIdentityKey)) throw new Error('untrusted identity');
    e.aliceTrust.saveIdentity(B, a.remoteIdentityKey);
    const envelope = a.encrypt(msg);
    const b = P.Session.create(B, A);
    const plaintext = b.decrypt(envelope, { identity: e.bobIdentity, prekeys: e.prekeys, isTrustedIdentity: (key) => e.bobTrust.isTrustedIdentity(A, key) });
    e.bobTrust.saveIdentity(A, b.remoteIdentityKey);
    return { envelope, plaintext, remaining: e.prekeys.oneTimePrekeyCount };
  }
  return {
    prepare,
    setupOnce,
    next,
    setupOp: (msg) => () => expectLength(setupOnce(next(), msg).plaintext, msg.length),
  };
}

// ------------------------------------------------------------- libsignal ----

function loadLibsignal() {
  const require = createRequire(join(LIBSIGNAL_DIR, 'package.json'));
  return require('@signalapp/libsignal-client');
}

/**
 * Bob's side in libsignal: an identity, and stores holding his signed prekey
 * and last-resort Kyber (ML-KEM-1024) prekey (id 1), both signed by it.
 */
function libsignalBob(S, St) {
  const bobIdentity = S.IdentityKeyPair.generate();
  const preKeys = new St.MemoryPreKeyStore();
  const signedPreKeys = new St.MemorySignedPreKeyStore();
  const kyberPreKeys = new St.MemoryKyberPreKeyStore();
  const spkPrivate = S.PrivateKey.generate();
  const spkPublic = spkPrivate.getPublicKey();
  const spkSignature = bobIdentity.privateKey.sign(spkPublic.serialize());
  const kyberPair = S.KEMKeyPair.generate();
  const kyberPublic = kyberPair.getPublicKey();
  const kyberSignature = bobIdentity.privateKey.sign(kyberPublic.serialize());
  // Synchronous set-up of the stores (their async save methods only set a Map entry).
  void signedPreKeys.saveSignedPreKey(1, S.SignedPreKeyRecord.new(1, Date.now(), spkPublic, spkPrivate, spkSignature));
  void kyberPreKeys.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, Date.now(), kyberPair, kyberSignature));
  return { bobIdentity, preKeys, signedPreKeys, kyberPreKeys, spkPublic, spkSignature, kyberPublic, kyberSignature };
}

function libsignalKit(S) {
  const St = makeStores(S);
  const aliceIdentity = S.IdentityKeyPair.generate();
  const { bobIdentity, preKeys, signedPreKeys, kyberPreKeys, spkPublic, spkSignature, kyberPublic, kyberSignature } = libsignalBob(S, St);
  const A = S.ProtocolAddress.new('alice', 1);
  const B = S.ProtocolAddress.new('bob', 1);
  const aliceIds = new St.MemoryIdentityStore(aliceIdentity, 1111);
  const bobIds = new St.MemoryIdentityStore(bobIdentity, 2222);

  let bundles = [];
  let used = 0;
  let nextKeyId = 1;
  function prepare(n) {
    bundles = bundles.slice(used);
    used = 0;
    while (bundles.length < n) {
      const id = nextKeyId++;
      const otkPrivate = S.PrivateKey.generate();
      const otkPublic = otkPrivate.getPublicKey();
      preKeys.add(S.PreKeyRecord.new(id, otkPublic, otkPrivate));
      bundles.push(S.PreKeyBundle.new(2222, 1, id, otkPublic, 1, spkPublic, spkSignature, bobIdentity.publicKey, 1, kyberPublic, kyberSignature));
    }
    return bundles.length;
  }

  /** New session stores per setup (a first contact); identity stores persist, as in an application. */
  async function setupOnce(bundle, msg) {
    const aliceSessions = new St.MemorySessionStore();
    const bobSessions = new St.MemorySessionStore();
    await S.processPreKeyBundle(bundle, B, A, aliceSessions, aliceIds);
    const ciphertext = await S.signalEncrypt(msg, B, A, aliceSessions, aliceIds);
    const wire = ciphertext.serialize();
    const plaintext = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(wire), A, B, bobSessions, bobIds, preKeys, signedPreKeys, kyberPreKeys);
    return { aliceSessions, bobSessions, ciphertext, wire, plaintext };
  }

  const setupOp = (msg) => async () => {
    if (used >= bundles.length) throw new Error('bundle pool exhausted');
    const { plaintext } = await setupOnce(bundles[used++], msg);
    expectLength(plaintext, msg.length);
  };

  const alice = { address: A, ids: aliceIds };
  const bob = { address: B, ids: bobIds };
  /** One message: encrypt, serialize (the wire), deserialize, decrypt; returns the wire bytes and the plaintext. */
  async function send(from, to, msg) {
    const ciphertext = await S.signalEncrypt(msg, to.address, from.address, from.sessions, from.ids);
    const wire = ciphertext.serialize();
    const plaintext = await S.signalDecrypt(S.SignalMessage.deserialize(wire), from.address, to.address, to.sessions, to.ids);
    return { ciphertext, wire, plaintext };
  }

  async function establishedPair(msg) {
    prepare(1);
    const first = await setupOnce(bundles[used++], msg);
    same(first.plaintext, msg, 'libsignal: first message');
    const a = { ...alice, sessions: first.aliceSessions };
    const b = { ...bob, sessions: first.bobSessions };
    same((await send(b, a, msg)).plaintext, msg, 'libsignal: reply');
    return { a, b };
  }

  return {
    S,
    prepare,
    setupOp,
    setupOnce,
    establishedPair,
    send,
    remaining: () => bundles.length - used,
    oneTimeCount: () => preKeys.size,
    kyberUses: () => kyberPreKeys.used,
    nextBundle: () => bundles[used++],
  };
}

/** libsignal's first contacts: as oursFirstContactKit, every pool entry two devices new to each other. */
function libsignalFirstContactKit(S) {
  const St = makeStores(S);
  const A = S.ProtocolAddress.new('alice', 1);
  const B = S.ProtocolAddress.new('bob', 1);
  const { prepare, next } = makePool(() => {
    const aliceIdentity = S.IdentityKeyPair.generate();
    const { bobIdentity, preKeys, signedPreKeys, kyberPreKeys, spkPublic, spkSignature, kyberPublic, kyberSignature } = libsignalBob(S, St);
    const otkPrivate = S.PrivateKey.generate();
    const otkPublic = otkPrivate.getPublicKey();
    preKeys.add(S.PreKeyRecord.new(1, otkPublic, otkPrivate));
    return {
      aliceIds: new St.MemoryIdentityStore(aliceIdentity, 1111),
      bobIds: new St.MemoryIdentityStore(bobIdentity, 2222),
      preKeys,
      signedPreKeys,
      kyberPreKeys,
      bundle: S.PreKeyBundle.new(2222, 1, 1, otkPublic, 1, spkPublic, spkSignature, bobIdentity.publicKey, 1, kyberPublic, kyberSignature),
    };
  });
  async function setupOnce(e, msg) {
    const aliceSessions = new St.MemorySessionStore();
    const bobSessions = new St.MemorySessionStore();
    await S.processPreKeyBundle(e.bundle, B, A, aliceSessions, e.aliceIds);
    const ciphertext = await S.signalEncrypt(msg, B, A, aliceSessions, e.aliceIds);
    const wire = ciphertext.serialize();
    const plaintext = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(wire), A, B, bobSessions, e.bobIds, e.preKeys, e.signedPreKeys, e.kyberPreKeys);
    return { ciphertext, wire, plaintext, remaining: e.preKeys.size };
  }
  return {
    prepare,
    setupOnce,
    next,
    setupOp: (msg) => async () => expectLength((await setupOnce(next(), msg)).plaintext, msg.length),
  };
}

// ------------------------------------------------------------------ rows ----

/**
 * Each row: `sides.ours` / `sides.libsignal` = { op, async, prepare? }.
 * `check` runs before timing and proves both libraries do the same job;
 * it returns facts (wire sizes) for the report.
 */
function buildRows(P, S) {
  // A copy with its own ArrayBuffer (randomBytes may return a view into Buffer's shared pool).
  const msg = new Uint8Array(randomBytes(MESSAGE_BYTES));
  const o = oursKit(P);
  const l = libsignalKit(S);
  const rows = [];

  // --- messages ------------------------------------------------------------
  for (const mode of ['alternating', 'one-way']) {
    const alternating = mode === 'alternating';
    let oPair;
    let lPair;
    let oToB = true;
    let lToB = true;
    rows.push({
      ...ROWS.find((r) => r.id === `msg-${mode}`),
      async check() {
        oPair = o.establishedPair(msg);
        lPair = await l.establishedPair(msg);
        // Six messages each: plaintext delivered; ratchet key changes with every message from the
        // same sender when alternating, never in a one-way stream.
        const oKeys = [];
        const lKeys = [];
        const lPq = [];
        let oBytes = 0;
        let lBytes = 0;
        for (let i = 0; i < 6; i++) {
          const toB = alternating ? i % 2 === 0 : true;
          const [of, ot] = toB ? [oPair.a, oPair.b] : [oPair.b, oPair.a];
          const env = of.encrypt(msg);
          same(ot.decrypt(env), msg, `ours ${mode} message ${i}`);
          oBytes = env.length;
          const [lf, lt] = toB ? [lPair.a, lPair.b] : [lPair.b, lPair.a];
          const sent = await l.send(lf, lt, msg);
          same(sent.plaintext, msg, `libsignal ${mode} message ${i}`);
          lBytes = sent.wire.length;
          lPq.push(S.SignalMessage.deserialize(sent.wire).pqRatchet().length);
          if (toB) {
            oKeys.push(oursRatchetKey(env));
            lKeys.push(libsignalRatchetKey(sent.wire));
          }
        }
        const distinct = (keys) => new Set(keys).size;
        if (alternating) {
          check(distinct(oKeys) === oKeys.length, 'ours: a new ratchet key in every A→B message when alternating');
          check(distinct(lKeys) === lKeys.length, 'libsignal: a new ratchet key in every A→B message when alternating');
        } else {
          check(distinct(oKeys) === 1, 'ours: one ratchet key throughout a one-way stream');
          check(distinct(lKeys) === 1, 'libsignal: one ratchet key throughout a one-way stream');
        }
        // The timed closures continue where the check left off, in the same direction pattern.
        oToB = true;
        lToB = true;
        return { oursWireBytes: oBytes, libsignalWireBytes: lBytes, libsignalPqRatchetBytes: [Math.min(...lPq), Math.max(...lPq)] };
      },
      sides: {
        ours: {
          async: false,
          op: () => {
            const toB = oToB;
            if (alternating) oToB = !oToB;
            const [from, to] = toB ? [oPair.a, oPair.b] : [oPair.b, oPair.a];
            expectLength(to.decrypt(from.encrypt(msg)), MESSAGE_BYTES);
          },
        },
        libsignal: {
          async: true,
          op: async () => {
            const toB = lToB;
            if (alternating) lToB = !lToB;
            const [from, to] = toB ? [lPair.a, lPair.b] : [lPair.b, lPair.a];
            expectLength((await l.send(from, to, msg)).plaintext, MESSAGE_BYTES);
          },
        },
      },
    });
  }

  // --- session setup -------------------------------------------------------
  rows.push({
    ...ROWS.find((r) => r.id === 'setup'),
    async check() {
      o.prepare(2);
      l.prepare(2);
      const oOtk = o.oneTimeCount();
      const lOtk = l.oneTimeCount();
      const lKyber = l.kyberUses();
      // Ours: the bundle carries a one-time and a PQ prekey; the first message is a prekey message
      // carrying the ML-KEM ciphertext; the responder consumes exactly that one-time prekey.
      const bundle = o.nextBundle();
      check(bundle.oneTimePrekey !== null && bundle.pqPrekey.publicKey.length === 1568, 'ours: bundle has a one-time prekey and an ML-KEM-1024 prekey');
      const a = o.initiate(bundle);
      const env = a.encrypt(msg);
      check(o.isPrekeyMessage(env) && env[70] === 0x01, 'ours: first message is a prekey message using the one-time prekey');
      same(o.accept(env).plaintext, msg, 'ours: responder decrypts the first message');
      check(o.oneTimeCount() === oOtk - 1, 'ours: one one-time prekey consumed');
      // libsignal: the same, with its PreKeySignalMessage; Kyber prekey used once.
      const first = await l.setupOnce(l.nextBundle(), msg);
      check(first.ciphertext.type() === S.CiphertextMessageType.PreKey, 'libsignal: first message is a PreKeySignalMessage');
      check(S.PreKeySignalMessage.deserialize(first.wire).preKeyId() !== null, 'libsignal: first message uses the one-time prekey');
      same(first.plaintext, msg, 'libsignal: responder decrypts the first message');
      check(l.oneTimeCount() === lOtk - 1, 'libsignal: one one-time prekey consumed');
      check(l.kyberUses() === lKyber + 1, 'libsignal: Kyber prekey used');
      return { oursWireBytes: env.length, libsignalWireBytes: first.wire.length };
    },
    sides: {
      ours: { async: false, op: o.setupOp(msg), prepare: o.prepare },
      libsignal: { async: true, op: l.setupOp(msg), prepare: l.prepare },
    },
  });

  // --- first contacts ------------------------------------------------------
  const of = oursFirstContactKit(P);
  const lf = libsignalFirstContactKit(S);
  rows.push({
    ...ROWS.find((r) => r.id === 'setup-first-contact'),
    async check() {
      of.prepare(2);
      lf.prepare(2);
      const ours = of.setupOnce(of.next(), msg);
      check(ours.envelope[70] === 0x01, 'ours: first contact uses the one-time prekey');
      same(ours.plaintext, msg, 'ours: responder decrypts the first message of a first contact');
      check(ours.remaining === 0, 'ours: the one-time prekey consumed');
      const theirs = await lf.setupOnce(lf.next(), msg);
      check(S.PreKeySignalMessage.deserialize(theirs.wire).preKeyId() !== null, 'libsignal: first contact uses the one-time prekey');
      same(theirs.plaintext, msg, 'libsignal: responder decrypts the first message of a first contact');
      check(theirs.remaining === 0, 'libsignal: the one-time prekey consumed');
      return { oursWireBytes: ours.envelope.length, libsignalWireBytes: theirs.wire.length };
    },
    sides: {
      ours: { async: false, op: of.setupOp(msg), prepare: of.prepare },
      libsignal: { async: true, op: lf.setupOp(msg), prepare: lf.prepare },
    },
  });
  return rows;
}

// ---------------------------------------------------------- measurement ----

/** Runs `side.op` in batches until `seconds` pass or `maxOps` would be exceeded; ops/s. */
async function runFor(side, seconds, batch, maxOps = Infinity) {
  const budget = seconds * 1000;
  const { op } = side;
  let ops = 0;
  let elapsed;
  const t0 = performance.now();
  if (side.async) {
    do {
      for (let i = 0; i < batch; i++) await op();
      ops += batch;
      elapsed = performance.now() - t0;
    } while (elapsed < budget && ops + batch <= maxOps);
  } else {
    do {
      for (let i = 0; i < batch; i++) op();
      ops += batch;
      elapsed = performance.now() - t0;
    } while (elapsed < budget && ops + batch <= maxOps);
  }
  return { rate: (ops * 1000) / elapsed, ops, seconds: elapsed / 1000 };
}

const batchFor = (opsPerSecond, targetMs = 1) => Math.max(1, Math.floor((opsPerSecond * targetMs) / 1000));

/**
 * Warm each side up, then `trials` rounds; each round runs every side once,
 * the order alternating between rounds, with a forced GC before each trial.
 * Sides with a pool (`prepare`) are topped up before every trial, off the clock.
 */
async function measureRow(sides, { warmup, seconds, trials }) {
  const names = Object.keys(sides);
  const warmRate = {};
  const batch = {};
  const ensure = (name, s) => {
    const side = sides[name];
    if (!side.prepare) return Infinity;
    return side.prepare(Math.ceil((warmRate[name] ?? 50) * s * 1.6) + 2 * (batch[name] ?? 1) + 16);
  };
  for (const name of names) {
    // A short first pass sizes the pool for the real warm-up.
    ensure(name, warmup);
    warmRate[name] = (await runFor(sides[name], Math.min(0.1, warmup), 1, ensure(name, warmup))).rate;
    warmRate[name] = (await runFor(sides[name], warmup, 1, ensure(name, warmup))).rate;
    batch[name] = batchFor(warmRate[name]);
  }
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const cut = [];
  for (let t = 0; t < trials; t++) {
    const order = t % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const available = ensure(name, seconds);
      globalThis.gc?.();
      const r = await runFor(sides[name], seconds, batch[name], available);
      if (r.seconds < seconds * 0.9) cut.push(`${name} trial ${t + 1}: ${r.seconds.toFixed(2)} s (pool)`);
      samples[name].push(r.rate);
      warmRate[name] = Math.max(warmRate[name], r.rate);
    }
  }
  return {
    results: Object.fromEntries(names.map((n) => [n, { median: median(samples[n]), trials: samples[n] }])),
    short: cut,
  };
}

// -------------------------------------------------------------- profile ----

const CATEGORIES = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['native code with no JS frame on the stack (libsignal\'s Rust runs here)', (f) => f.functionName === '(program)'],
  ['libsignal native code (Rust) under a JS frame', (f) => !f.url && f.functionName.includes('::')],
  ['idle / waiting', (f) => f.functionName === '(idle)'],
  ['ML-KEM-1024 (@noble/post-quantum, pure JS, incl. SHA-3 and NTT)', (f) => /@noble\/post-quantum|\/sha3\.js|\/fft\.js/.test(f.url)],
  ['KeyObject creation/export (createPrivateKey, createPublicKey, export)', (f) => /crypto\/keys/.test(f.url)],
  ['X25519 diffieHellman (OpenSSL)', (f) => /crypto\/diffiehellman/.test(f.url)],
  ['Ed25519 sign/verify (OpenSSL)', (f) => /crypto\/sig/.test(f.url)],
  ['HKDF (OpenSSL)', (f) => /crypto\/hkdf/.test(f.url)],
  ['HMAC/SHA-256 (OpenSSL)', (f) => /crypto\/(hash|mac)|createHmac|createHash/.test(`${f.url} ${f.functionName}`)],
  ['AES-256-CBC (OpenSSL)', (f) => /crypto\/cipher/.test(f.url)],
  ['randomness', (f) => /crypto\/random/.test(f.url)],
  ['X25519/Ed25519 (@noble/curves, pure JS)', (f) => /@noble\/curves/.test(f.url)],
  ['SHA-256/SHA-512/HMAC/HKDF (@noble/hashes, pure JS)', (f) => /@noble\/hashes/.test(f.url)],
  ['AES-256-CBC (@noble/ciphers, pure JS)', (f) => /@noble\/ciphers/.test(f.url)],
  ['@parley/protocol JS (state copies, framing, checks)', (f) => /packages\/protocol\//.test(f.url)],
  ['@parley/themis backend glue', (f) => /packages\/themis\//.test(f.url)],
  ['libsignal JS wrapper and store bridge', (f) => /libsignal-client|_libsignal-stores/.test(f.url)],
  ['other JS (benchmark loop, promises, Node internals)', () => true],
];

const SPECIAL = new Set(['(root)', '(program)', '(garbage collector)', '(idle)']);
const shortUrl = (url) => url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/packages\//, '').split('/').slice(-3).join('/');

/**
 * Self time by category and the top functions, from a V8 CPU profile. A
 * sample in a Node C++ binding (no URL: `init` under createPrivateKey,
 * `statelessDH` under diffieHellman, …) is charged to its nearest JS caller,
 * so OpenSSL time lands on the node:crypto call that asked for it. Frames
 * with Rust paths in their (approximate) symbol are libsignal's native code.
 */
function summariseProfile(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const byCategory = new Map();
  const byFunction = new Map();
  for (const [id, t] of self) {
    const leaf = nodes.get(id).callFrame;
    let frame = leaf;
    let name;
    if (SPECIAL.has(leaf.functionName)) name = leaf.functionName;
    else if (!leaf.url && leaf.functionName.includes('::')) name = 'libsignal native code';
    else {
      if (!leaf.url) {
        let p = parent.get(id);
        while (p !== undefined && !nodes.get(p).callFrame.url && !SPECIAL.has(nodes.get(p).callFrame.functionName)) p = parent.get(p);
        if (p !== undefined && nodes.get(p).callFrame.url) frame = nodes.get(p).callFrame;
      }
      const where = frame.url ? ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
      name = `${frame.functionName || '(anonymous)'}${frame !== leaf ? ` → native ${leaf.functionName || '?'}` : ''}${where}`;
    }
    const cat = CATEGORIES.find(([, test]) => test(frame))[0];
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + t);
    byFunction.set(name, (byFunction.get(name) ?? 0) + t);
  }
  const sorted = (m, n) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, t]) => ({ name, share: t / total }));
  return { categories: sorted(byCategory, 8).filter((c) => c.share >= 0.01), functions: sorted(byFunction, 6) };
}

async function profileSide(side, seconds) {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    const available = side.prepare ? side.prepare(Math.ceil(side.rate * seconds * 1.6) + 32) : Infinity;
    globalThis.gc?.();
    await session.post('Profiler.start');
    const r = await runFor(side, seconds, 1, available);
    const { profile } = await session.post('Profiler.stop');
    return { rate: r.rate, ...summariseProfile(profile) };
  } finally {
    session.disconnect();
  }
}

// ---------------------------------------------------------------- child ----

/** Never let a native error print whole. */
function short(err) {
  return String(err?.stack ?? err).slice(0, 600);
}

async function child() {
  const expect = option('--expect');
  const cfg = JSON.parse(process.env.BENCH_CONFIG);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { backend } = await import('@parley/themis/hazmat');
  if (backend.name !== expect) throw new Error(`asked for backend ${expect}, @parley/themis reports ${backend.name}`);
  const P = await import(pathToFileURL(OURS_ENTRY).href);
  const S = loadLibsignal();
  const rows = buildRows(P, S).filter((r) => !cfg.only || r.id.includes(cfg.only));
  const out = [];
  for (const row of rows) {
    const facts = await row.check();
    const { results, short: shortTrials } = await measureRow(row.sides, cfg);
    const entry = { id: row.id, op: row.op, unit: row.unit, target: row.target, facts, results, shortTrials };
    if (cfg.profile) {
      entry.profile = {};
      for (const name of ['ours', 'libsignal']) {
        entry.profile[name] = await profileSide({ ...row.sides[name], rate: results[name].median }, cfg.profileSeconds);
      }
    }
    out.push(entry);
    process.stderr.write(
      `  [${expect}] ${row.id}: ours ${fmtRate(results.ours.median)}/s, libsignal ${fmtRate(results.libsignal.median)}/s` +
        (shortTrials.length ? ` (short trials: ${shortTrials.join('; ')})` : '') +
        '\n',
    );
  }
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    JSON.stringify({
      backend: backend.name,
      gcExposed: typeof globalThis.gc === 'function',
      rows: out,
      wallSeconds: (performance.now() - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    }) + '\n',
  );
}

// --------------------------------------------------------------- parent ----

function ensureLibsignal() {
  if (existsSync(join(LIBSIGNAL_PKG, 'package.json'))) return;
  if (flag('--install')) {
    process.stderr.write(`installing libsignal: ${INSTALL_COMMAND}\n`);
    const r = spawnSync('npm', ['install', '--prefix', LIBSIGNAL_DIR], { cwd: ROOT, stdio: 'inherit' });
    if (r.status === 0 && existsSync(join(LIBSIGNAL_PKG, 'package.json'))) return;
    process.stderr.write(`npm install failed (exit ${r.status})\n`);
    process.exit(2);
  }
  process.stderr.write(
    `@signalapp/libsignal-client is not installed (benchmark-only, AGPL, ~150 MB; not part of the root npm ci).\n` +
      `Install it with (from ${ROOT}):\n\n    ${INSTALL_COMMAND}\n\nor re-run this script with --install.\n`,
  );
  process.exit(2);
}

function ensureOurs() {
  if (existsSync(OURS_ENTRY)) return;
  process.stderr.write(
    `${relative(ROOT, OURS_ENTRY)} is missing. Build it first (from ${ROOT}):\n\n    npx tsc -b packages/themis packages/protocol\n\n(or npm run build)\n`,
  );
  process.exit(2);
}

function runChild(backend, cfg, pin, hz) {
  const nodeArgs = ['--expose-gc', ...(backend === 'noble' ? ['--conditions=parley-pure'] : []), SELF, '--child', '--expect', backend];
  const [cmd, ...cmdArgs] = pin.cmd.length ? [...pin.cmd, process.execPath, ...nodeArgs] : [process.execPath, ...nodeArgs];
  process.stderr.write(`child: ${backend} backend (${pin.note})${backend === 'noble' ? ' --conditions=parley-pure' : ''}\n`);
  const before = cpuTimes();
  const t0 = performance.now();
  const r = spawnSync(cmd, cmdArgs, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, BENCH_CONFIG: JSON.stringify(cfg) },
  });
  const wall = (performance.now() - t0) / 1000;
  const after = cpuTimes();
  if (r.status !== 0) throw new Error(`${backend} child failed (exit ${r.status}): ${String(r.stdout).slice(-300)}`);
  const data = JSON.parse(r.stdout.trim().split('\n').pop());
  data.foreign = foreignLoad(before, after, wall, data.cpuSeconds, pin.cpu, hz);
  return data;
}

function environment(pin, cfg, quick) {
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
    platform: `${process.platform}-${process.arch}`,
    ours: readVersion(join(ROOT, 'packages', 'protocol', 'package.json')),
    noblePq: installedVersion(join(ROOT, 'packages', 'protocol'), '@noble/post-quantum'),
    libsignal: readVersion(join(LIBSIGNAL_PKG, 'package.json')),
    cpuModel,
    pin: pin.note,
    settings: cfg,
    quick,
  };
}

// ---------------------------------------------------------------- report ----

const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const cell = (r) => (r ? `${fmtRate(r.median)} (${fmtTime(r.median)})` : '–');
const pct = (x) => `${Math.round(x * 100)} %`;

/** Median over rounds of ours ÷ libsignal in the same round (adjacent seconds, same process). */
function ratio(row) {
  const o = row.results.ours.trials;
  const l = row.results.libsignal.trials;
  return median(o.map((x, i) => x / l[i]));
}
/** (max − min) / median over the trials of one side. */
function spreadOf(r) {
  return (Math.max(...r.trials) - Math.min(...r.trials)) / r.median;
}

function rowEntries(report) {
  const out = [];
  for (const def of ROWS) {
    for (const run of report.runs) {
      const row = run.rows.find((r) => r.id === def.id);
      if (row) out.push({ run, row });
    }
  }
  return out;
}

function verdict(run, row) {
  if (row.target === null) return 'no target (reported for what first contacts cost)';
  const x = ratio(row);
  const met = x >= row.target;
  if (run.backend === 'node') return met ? 'yes' : '**no**';
  return `n/a: pure JS, no target (${met ? 'would meet' : 'would miss'})`;
}

function table(report) {
  const lines = [
    '| Operation | Our backend | ours ops/s (time/op) | libsignal ops/s (time/op) | ours ÷ libsignal | spread ours / libsignal | target | met? |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { run, row } of rowEntries(report)) {
    const r = row.results;
    lines.push(
      `| ${row.op} | ${run.backend === 'node' ? 'node (node:crypto)' : 'noble (pure JS)'} | ${cell(r.ours)} | ${cell(r.libsignal)} | **${fmtRatio(ratio(row))}** | ` +
        `${pct(spreadOf(r.ours))} / ${pct(spreadOf(r.libsignal))} | ${row.target === null ? '—' : `≥ ${row.target.toFixed(1)}×`} | ${verdict(run, row)} |`,
    );
  }
  return lines.join('\n');
}

function verdictLines(report) {
  const node = report.runs.find((r) => r.backend === 'node');
  if (!node) return ['Targets (judged on the node backend): not measured in this run.'];
  const lines = ['Targets from the issue (judged on the node backend):', ''];
  const get = (id) => node.rows.find((r) => r.id === id);
  const msgs = ['msg-alternating', 'msg-one-way'].map(get).filter(Boolean);
  if (msgs.length) {
    const all = msgs.every((r) => ratio(r) >= 1);
    lines.push(`- Messages at least as fast as libsignal (≥ 1.0×): ${msgs.map((r) => `${r.id} ${fmtRatio(ratio(r))}`).join(', ')} → **${all ? 'met' : 'not met'}**.`);
  }
  const setup = get('setup');
  if (setup) lines.push(`- Session setups ≥ 0.5× libsignal: ${fmtRatio(ratio(setup))} → **${ratio(setup) >= 0.5 ? 'met' : 'not met'}**.`);
  const first = get('setup-first-contact');
  if (first) {
    lines.push(
      `- First contacts (no target of their own; both sides new, nothing cached): ${fmtRatio(ratio(first))}. ` +
        "The gap to the setup row is mostly the subgroup check when an Ed25519 identity key is first turned into its X25519 form (a pure-JS scalar multiplication, once per peer device and process; packages/protocol README).",
    );
  }
  return lines;
}

function factLines(report) {
  const run = report.runs.find((r) => r.backend === 'node') ?? report.runs[0];
  const get = (id) => run?.rows.find((r) => r.id === id)?.facts;
  const lines = [];
  const alt = get('msg-alternating') ?? get('msg-one-way');
  if (alt) {
    const [lo, hi] = alt.libsignalPqRatchetBytes;
    lines.push(
      `- Wire size of a 1 KiB message: ours ${alt.oursWireBytes} B, libsignal ${alt.libsignalWireBytes} B. ` +
        `libsignal ${report.env.libsignal} also runs SPQR (the post-quantum "triple ratchet"): every message carried a \`pqRatchet\` field of ${lo === hi ? lo : `${lo}–${hi}`} B in the check, ` +
        'and its sessions do ML-KEM work in the background of the conversation; ours has a classical X25519 Double Ratchet after the PQXDH start (packages/protocol README, "What it does not guarantee"). ' +
        'The message rows therefore compare the two libraries as shipped, not equal work.',
    );
  }
  const setup = get('setup');
  if (setup) lines.push(`- Wire size of the first (prekey) message with 1 KiB: ours ${setup.oursWireBytes} B, libsignal ${setup.libsignalWireBytes} B.`);
  return lines;
}

/** The shared load lines, plus trials the prekey pool cut short. */
function loadLines(report) {
  const lines = sharedLoadLines(report);
  for (const run of report.runs) {
    for (const row of run.rows) if (row.shortTrials?.length) lines.push(`- ${run.backend} ${row.id}: trials cut short by the prekey pool: ${row.shortTrials.join('; ')}.`);
  }
  return lines;
}

function profileTable(report) {
  const lines = [
    '| Row | Our backend | Library | rate while profiled | where the self time goes (share of samples) | top functions (self) |',
    '|---|---|---|---|---|---|',
  ];
  let any = false;
  for (const { run, row } of rowEntries(report)) {
    if (!row.profile) continue;
    any = true;
    for (const name of ['ours', 'libsignal']) {
      const p = row.profile[name];
      const cats = p.categories.map((c) => `${c.name} ${pct(c.share)}`).join('; ');
      const fns = p.functions
        .slice(0, 4)
        .map((f) => `\`${f.name}\` ${pct(f.share)}`)
        .join('; ');
      lines.push(`| ${row.id} | ${run.backend} | ${name} | ${fmtRate(p.rate)}/s | ${cats} | ${fns} |`);
    }
  }
  return any ? lines.join('\n') : null;
}

function method(report) {
  const s = report.env.settings;
  return (
    `- Method: one child process per backend of ours (default resolution → \`node\`, i.e. node:crypto; \`--conditions=parley-pure\` → \`noble\`, the pure-JS backend browsers get), ` +
    `${report.env.pin}, run one after the other; libsignal is the same native code in both children. In each child every row first checks that both libraries do the same job ` +
    '(plaintext delivered; a new ratchet key in every message when alternating and none in a one-way stream; the first message is a prekey message that consumes exactly one one-time prekey and uses the PQ/Kyber prekey), ' +
    `then warms each library up for ${s.warmup} s and runs ${s.trials} rounds of ${s.seconds} s per library, alternating which goes first, with a forced GC before each trial. ` +
    'The table gives the median ops/s; the ratio is the median over rounds of ours ÷ libsignal in the same round; spread is (max − min) / median over the rounds. Above 1× means ours is faster.'
  );
}

const CALLING = [
  '- How each library is called (as an application calls it): **ours** synchronously on `Session` objects held in memory (`encrypt`, `decrypt`; ' +
    'setups: `Session.initiate(identity, bundle, …)` — which verifies both bundle signatures — then the trust-on-first-use check and save in an `InMemoryIdentityStore`, `encrypt`; ' +
    '`Session.create` + `decrypt(envelope, { identity, prekeys, isTrustedIdentity })` with an `InMemoryPrekeyStore`). **libsignal** through its async API: ' +
    '`processPreKeyBundle`, `signalEncrypt` → `serialize()` → `SignalMessage`/`PreKeySignalMessage.deserialize` → `signalDecrypt`/`signalDecryptPreKey`, over in-memory stores that keep its record objects in Maps ' +
    '(bench/_libsignal-stores.mjs; no serialization in either library\'s store). One message = one encrypt + one decrypt.',
  '- Session setup: every setup uses a bundle built before timing with a fresh one-time prekey (a pool, topped up between trials off the clock), the signed prekey and the PQ prekey ' +
    '(ML-KEM-1024 in both: our last-resort PQ prekey, libsignal\'s last-resort Kyber prekey, reused by every setup). libsignal gets new, empty session stores per setup (a first contact); ' +
    'identity stores persist. Prekey generation is never timed.',
];

function sectionKey(report) {
  return `ratchet ${report.env.date.slice(0, 10)}${report.label ? ` ${report.label}` : ''}`;
}

function renderSection(report) {
  const e = report.env;
  const q = quietness(report);
  const key = sectionKey(report);
  const status = q.quiet
    ? `Quiet run (${q.why}).`
    : `**Preliminary — numbers are noisy.** ${q.why[0].toUpperCase()}${q.why.slice(1)}. Compare ratios, not absolute ops/s, and re-run on a quiet machine before quoting.`;
  const prof = profileTable(report);
  return [
    `<!-- bench:begin ${key} -->`,
    `## Ratchet: @parley/protocol vs libsignal — ${key.replace(/^ratchet /, '')}`,
    '',
    'Written by `node bench/ratchet.bench.mjs --write` (method in the header of that script). Ratchet messages and session setups of `@parley/protocol` ' +
      '(PQXDH with X25519 + ML-KEM-1024, Double Ratchet) against Signal\'s `@signalapp/libsignal-client`, measured in the same process.',
    '',
    status,
    ...(report.note ? ['', `Note: ${report.note}`] : []),
    '',
    `- Started ${e.date}; Node ${e.node} (OpenSSL ${e.openssl}); ${e.platform}; CPU: ${e.cpuModel}; @parley/protocol ${e.ours} (built \`dist/\`, ML-KEM from @noble/post-quantum ${e.noblePq}), ` +
      `@signalapp/libsignal-client ${e.libsignal} (prebuilt native binary; benchmark-only install in bench/libsignal).`,
    method(report),
    ...CALLING,
    ...factLines(report),
    ...loadLines(report),
    '',
    table(report),
    '',
    ...verdictLines(report),
    ...(prof ? ['', 'CPU profile of each side (node:inspector, 100 µs sampling, after the timed trials; self time; for libsignal most time is native and shows as "native code"):', '', prof] : []),
    '',
    `<!-- bench:end ${key} -->`,
  ].join('\n');
}

/** Replaces this run's section (same key) or appends it; nothing else in the file changes. */
function writeResults(section, report) {
  return replaceSection(RESULTS, sectionKey(report), section);
}

function printReport(report) {
  const e = report.env;
  const q = quietness(report);
  const s = e.settings;
  console.log(`# @parley/protocol ${e.ours} vs @signalapp/libsignal-client ${e.libsignal} — Node ${e.node} (OpenSSL ${e.openssl}), ${e.cpuModel}`);
  console.log(`# ${e.pin}; warm-up ${s.warmup} s, ${s.trials} × ${s.seconds} s rounds per library, median${e.quick ? '; QUICK MODE' : ''}`);
  console.log(`# machine: ${q.quiet ? 'quiet' : 'NOT QUIET'} — ${q.why}`);
  for (const l of loadLines(report)) console.log(`#${l.slice(1)}`);
  for (const l of factLines(report)) console.log(`#${l.slice(1)}`);
  console.log('');
  console.log(table(report));
  console.log('');
  for (const l of verdictLines(report)) console.log(l);
  const prof = profileTable(report);
  if (prof) {
    console.log('');
    console.log(prof);
  }
}

async function parent() {
  ensureLibsignal();
  ensureOurs();
  const quick = flag('--quick') || process.env.BENCH_QUICK === '1';
  const only = option('--only') ?? null;
  if (only && !ROWS.some((r) => r.id.includes(only))) throw new Error(`--only ${only} matches no row (rows: ${ROWS.map((r) => r.id).join(', ')})`);
  const cfg = { ...settings(quick), only, profile: flag('--profile') };
  // Started with --conditions=parley-pure (and no --backend): only the pure-JS child.
  const { backend } = await import('@parley/themis/hazmat');
  const backends = option('--backend') ? [option('--backend')] : backend.name === 'noble' ? ['noble'] : ['node', 'noble'];
  for (const b of backends) if (b !== 'node' && b !== 'noble') throw new Error(`--backend must be node or noble, got ${b}`);
  const pin = pinning(Number(process.env.BENCH_CPU ?? 1), { disabled: flag('--no-pin') });
  const hz = clockTicks();
  const loadStart = loadavg();
  const env = environment(pin, cfg, quick);
  const runs = backends.map((b) => runChild(b, cfg, pin, hz));
  const loadEnd = loadavg();
  const report = { env: { ...env, loadStart, loadEnd }, runs, label: option('--label') ?? null, note: option('--note') ?? null };
  printReport(report);
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
