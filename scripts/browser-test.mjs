#!/usr/bin/env node
// Proves that the built `@parley/themis` works as shipped:
//  1. in plain Node (no loader, no flags): `import * as themis from '@parley/themis'`
//     and `@parley/themis/hazmat`, from the repository root and from a directory
//     outside the workspace; the `#backend` import must pick node:crypto;
//  2. in a browser bundle: Vite (programmatic `build()`) bundles
//     scripts/browser-test-page.js; the bundle must take the pure-JS @noble
//     backend (the `default` condition of `#backend`) and contain no Node
//     built-in; Debian's Chromium, driven by playwright-core, runs the page,
//     which checks round trips, decrypts data made in Node by our node:crypto
//     backend and by the real wasm-themis peer, and produces data that this
//     script then decrypts and verifies with the peer.
//
// Needs `npm run build` first. Never downloads a browser: without
// /usr/bin/chromium the browser run fails under CI=true, else it is skipped
// with a warning (the plain-Node checks and the bundle checks still run).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Buffer } from 'node:buffer';
import { assert, checks, CHROMIUM, chromiumPresent, launchChromium, serveBundle, short, viteBundle } from './_browser-harness.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = join(ROOT, 'packages', 'themis');
const PAGE = join(ROOT, 'scripts', 'browser-test-page.js');

const { results, record, step: check, cleanups, run } = checks('browser-test', { deadlineMs: 120_000 });
/** Runs `fn` as one check; true when it passed. */
const step = async (section, name, fn) => (await check(section, name, fn)) !== undefined;
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
function assertBytes(actual, expected, what) {
  assert(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert(hex(actual) === hex(expected), `${what}: got ${hex(actual).slice(0, 48)}…, expected ${hex(expected).slice(0, 48)}…`);
}

await run(main);

async function main() {
  if (!existsSync(join(PKG, 'dist', 'src', 'index.js')) || !existsSync(join(PKG, 'dist', 'src', 'backend', 'noble.js'))) {
    record('setup', 'packages/themis/dist is built', false, 'run `npm run build` first');
    return;
  }
  plainNodeChecks();

  const peer = await loadPeer();
  const themis = await import('@parley/themis');
  await step('node', 'this script imports @parley/themis with the node:crypto backend', () => {
    assert(themis.backendName === 'node', `backendName = ${themis.backendName}`);
  });
  const { fixtures, toPeerSecrets } = makeFixtures(themis, peer);

  const tmp = mkdtempSync(join(tmpdir(), 'parley-browser-test-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const outDir = join(tmp, 'dist');
  const built = await bundle(fixtures, outDir, tmp);
  if (!built) return;

  if (!chromiumPresent(record)) return;
  const pageResult = await runInChromium(outDir, tmp);
  if (!pageResult) return;
  checkPageResult(pageResult, themis, peer, fixtures, toPeerSecrets);
}

// ---------------------------------------------------------------------------
// 1. plain Node, no loader, no flags

function plainNodeChecks() {
  const code = `
    import * as t from '@parley/themis';
    const h = await import('@parley/themis/hazmat');
    const enc = new TextEncoder();
    const msg = enc.encode('plain node');
    const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
    const key = new t.SymmetricKey();
    const cell = t.SecureCellSeal.withKey(key);
    const sealOk = eq(cell.decrypt(cell.encrypt(msg, enc.encode('c')), enc.encode('c')), msg);
    const a = new t.KeyPair(), b = new t.KeyPair();
    const smOk = eq(new t.SecureMessage(b.privateKey, a.publicKey).decrypt(new t.SecureMessage(a.privateKey, b.publicKey).encrypt(msg)), msg);
    const sigOk = eq(new t.SecureMessageVerify(a.publicKey).verify(new t.SecureMessageSign(a.privateKey).sign(msg)), msg);
    console.log(JSON.stringify({ backendName: t.backendName, hazmatBackend: h.backend.name, crc: h.crc32c(new Uint8Array(32)), sealOk, smOk, sigOk, defaultExport: typeof t.default.SecureCellSeal }));
  `;
  // From outside the workspace: a project whose node_modules links the package
  // (what `npm install file:…/packages/themis` creates).
  const outside = mkdtempSync(join(tmpdir(), 'parley-consumer-'));
  cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
  mkdirSync(join(outside, 'node_modules', '@parley'), { recursive: true });
  symlinkSync(PKG, join(outside, 'node_modules', '@parley', 'themis'), 'dir');

  const runs = [
    { name: 'repository root', cwd: ROOT, flags: [], backend: 'node' },
    { name: 'project outside the workspace (symlinked dependency)', cwd: outside, flags: [], backend: 'node' },
    { name: 'repository root with --conditions=parley-pure', cwd: ROOT, flags: ['--conditions=parley-pure'], backend: 'noble' },
  ];
  for (const r of runs) {
    const p = spawnSync(process.execPath, [...r.flags, '--input-type=module', '-e', code], { cwd: r.cwd, encoding: 'utf8', timeout: 30_000 });
    let out;
    try {
      out = JSON.parse(p.stdout.trim().split('\n').pop());
    } catch {
      record('plain node', r.name, false, `exit ${p.status}: ${(p.stderr || p.stdout).replace(/\s+/g, ' ').slice(0, 300)}`);
      continue;
    }
    // RFC 3720 B.4: CRC32C of 32 zero bytes is 0x8A9136AA.
    const ok = p.status === 0 && out.backendName === r.backend && out.hazmatBackend === r.backend && out.crc === 0x8a9136aa && out.sealOk && out.smOk && out.sigOk && out.defaultExport === 'function';
    record('plain node', `import '@parley/themis' + '@parley/themis/hazmat' from ${r.name}`, ok, JSON.stringify(out));
  }
}

// ---------------------------------------------------------------------------
// data made in Node (our node:crypto backend and the wasm-themis peer)

async function loadPeer() {
  // As packages/themis/test/_peer.ts: wasm-themis 0.15 needs global fetch
  // hidden while it initialises (cossacklabs/themis#1062).
  const require = createRequire(import.meta.url);
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

function makeFixtures(t, peer) {
  const enc = new TextEncoder();
  const fixtures = {};

  // Our node:crypto backend.
  {
    const key = new t.SymmetricKey();
    const context = enc.encode('made in node by node:crypto');
    const plaintext = enc.encode('Secure Cell and Message from @parley/themis on node:crypto');
    const alice = new t.KeyPair();
    const bob = new t.KeyPair();
    const tp = t.SecureCellTokenProtect.withKey(key).encrypt(plaintext, context);
    fixtures.node = {
      key: hex(key),
      context: hex(context),
      plaintext: hex(plaintext),
      seal: hex(t.SecureCellSeal.withKey(key).encrypt(plaintext, context)),
      tp: { data: hex(tp.data), token: hex(tp.token) },
      ci: hex(t.SecureCellContextImprint.withKey(key).encrypt(plaintext, context)),
      sm: { recipientPriv: hex(bob.privateKey), senderPub: hex(alice.publicKey), encrypted: hex(new t.SecureMessage(alice.privateKey, bob.publicKey).encrypt(plaintext)) },
      signed: { pub: hex(alice.publicKey), msg: hex(new t.SecureMessageSign(alice.privateKey).sign(plaintext)) },
    };
  }

  // The real peer, wasm-themis 0.15 (Themis Core + BoringSSL).
  {
    const key = new peer.SymmetricKey();
    const context = enc.encode('made in node by wasm-themis');
    const plaintext = enc.encode('Secure Cell and Message from wasm-themis 0.15');
    const passphrase = 'correct horse battery staple';
    const alice = new peer.KeyPair();
    const bob = new peer.KeyPair();
    const tp = peer.SecureCellTokenProtect.withKey(key).encrypt(plaintext, context);
    // wasm-themis cannot generate RSA keys: ours (node:crypto) wrapped in the peer's classes.
    const rsaSender = t.KeyPair.generateRSA(2048);
    const rsaRecipient = t.KeyPair.generateRSA(2048);
    const peerRsaSm = new peer.SecureMessage(new peer.KeyPair(new peer.PrivateKey(rsaSender.privateKey), new peer.PublicKey(rsaRecipient.publicKey)));
    fixtures.peer = {
      key: hex(key),
      context: hex(context),
      plaintext: hex(plaintext),
      seal: hex(peer.SecureCellSeal.withKey(key).encrypt(plaintext, context)),
      tp: { data: hex(tp.data), token: hex(tp.token) },
      ci: hex(peer.SecureCellContextImprint.withKey(key).encrypt(plaintext, context)),
      passphrase,
      passSeal: hex(peer.SecureCellSeal.withPassphrase(passphrase).encrypt(plaintext, context)),
      sm: {
        recipientPriv: hex(bob.privateKey),
        senderPub: hex(alice.publicKey),
        encrypted: hex(new peer.SecureMessage(new peer.KeyPair(alice.privateKey, bob.publicKey)).encrypt(plaintext)),
      },
      signed: { pub: hex(alice.publicKey), msg: hex(new peer.SecureMessageSign(alice.privateKey).sign(plaintext)) },
      rsa: {
        recipientPriv: hex(rsaRecipient.privateKey),
        senderPub: hex(rsaSender.publicKey),
        encrypted: hex(peerRsaSm.encrypt(plaintext)),
        signerPub: hex(rsaSender.publicKey),
        signed: hex(new peer.SecureMessageSign(new peer.PrivateKey(rsaSender.privateKey)).sign(plaintext)),
      },
    };
  }

  // Inputs for what the page produces; the recipient's private key stays here.
  const carol = new peer.KeyPair();
  const toPeerKey = new peer.SymmetricKey();
  fixtures.toPeer = {
    key: hex(toPeerKey),
    context: hex(enc.encode('made in the browser')),
    plaintext: hex(enc.encode('Secure Cell and Message from @parley/themis in Chromium')),
    recipientPub: hex(carol.publicKey),
  };
  return { fixtures, toPeerSecrets: { carolPriv: hex(carol.privateKey) } };
}

// ---------------------------------------------------------------------------
// 2. the browser bundle

async function bundle(fixtures, outDir, tmp) {
  const VIRTUAL = 'virtual:themis-fixtures';
  let chunks = [];
  let graph = []; // every module Rollup saw, including stubs and externals
  let warnings = [];
  const ok = await step('bundle', 'vite build of scripts/browser-test-page.js', async () => {
    const t0 = Date.now();
    const fixturesPlugin = {
      name: 'themis-fixtures',
      resolveId: (id) => (id === VIRTUAL ? `\0${VIRTUAL}` : null),
      load: (id) => (id === `\0${VIRTUAL}` ? `export default ${JSON.stringify(fixtures)};` : null),
    };
    ({ chunks, graph, warnings } = await viteBundle({ root: join(ROOT, 'scripts'), page: PAGE, outDir, tmp, plugins: [fixturesPlugin] }));
    return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });
  if (!ok) return false;


  const moduleIds = chunks.flatMap((c) => Object.keys(c.modules));
  const rel = (id) => id.replace(/^\0/, '').split(sep).join('/').replace(`${ROOT.split(sep).join('/')}/`, '');
  const fixturesCode = `export default ${JSON.stringify(fixtures)};`;

  await step('bundle', "`#backend` resolved to the pure-JS backend (dist/src/backend/noble.js, the `default` condition)", () => {
    const backends = graph.filter((id) => /backend[\\/](node|noble)\.js$/.test(id)).map(rel);
    assert(backends.length === 1 && backends[0].endsWith('backend/noble.js'), `backend modules in the bundle: ${JSON.stringify(backends)}`);
  });
  await step('bundle', 'no Node built-in in the bundle (no node:* import, no Vite browser-external shim)', () => {
    const externals = [...new Set(chunks.flatMap((c) => [...c.imports, ...c.dynamicImports]))].filter((i) => !chunks.some((c) => c.fileName === i));
    assert(externals.length === 0, `external imports: ${JSON.stringify(externals)}`);
    const shims = graph.filter((id) => id.includes('__vite-browser-external') || /(^|\0)node:/.test(id)).map(rel);
    assert(shims.length === 0, `Node built-ins stubbed for the browser: ${JSON.stringify(shims)}`);
    const stubWarnings = warnings.filter((w) => /__vite-browser-external|externalized for browser|node:/.test(w));
    assert(stubWarnings.length === 0, `build warnings: ${JSON.stringify(stubWarnings.slice(0, 3))}`);
    for (const c of chunks) {
      const hits = c.code.match(/node:[a-z_/]+/g);
      assert(!hits, `${c.fileName} mentions ${JSON.stringify([...new Set(hits)])}`);
      assert(!c.code.includes('node:crypto'), `${c.fileName} contains "node:crypto"`);
    }
  });
  await step('bundle', 'size', () => {
    const total = chunks.reduce((n, c) => n + Buffer.byteLength(c.code), 0);
    const gz = chunks.reduce((n, c) => n + gzipSync(c.code).length, 0);
    // The page embeds the fixtures (hex JSON); report the library's share too.
    const fx = Buffer.byteLength(fixturesCode);
    const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
    const libs = [...new Set(moduleIds.map(rel).map((id) => (id.match(/node_modules\/((@[^/]+\/)?[^/]+)/) || [])[1] || (id.startsWith('packages/') ? '@parley/themis' : id)))];
    return `${chunks.length} chunk(s), ${kb(total)} minified (${kb(gz)} gzip), of which ~${kb(fx)} is fixture JSON; modules from ${libs.join(', ')}`;
  });
  return results.filter((r) => r.section === 'bundle').every((r) => r.ok);
}

async function runInChromium(outDir, tmp) {
  const url = await serveBundle(outDir, '@parley/themis browser test', cleanups);
  const userDataDir = mkdtempSync(join(tmp, 'chromium-profile-'));
  let result;
  const pageErrors = [];
  await step('browser', `Chromium (${CHROMIUM}) runs the bundle`, async () => {
    const t0 = Date.now();
    const context = await launchChromium(userDataDir, cleanups);
    const version = context.browser()?.version() ?? 'unknown version';
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(short(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text().slice(0, 300));
    });
    await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
    try {
      await page.waitForFunction(() => globalThis.__themisResult !== undefined, null, { timeout: 45_000 });
    } catch (e) {
      throw new Error(`page never reported a result (${short(e)}); page errors: ${JSON.stringify(pageErrors)}`);
    }
    result = await page.evaluate(() => globalThis.__themisResult);
    return `Chromium ${version}, ${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });
  if (!result) return undefined;
  if (pageErrors.length > 0) record('browser', 'no page errors', false, JSON.stringify(pageErrors));
  return result;
}

function checkPageResult(r, t, peer, fixtures, secrets) {
  record('browser', 'page reports backendName === "noble"', r.backendName === 'noble', `backendName = ${r.backendName}`);
  if (r.fatal) record('browser', 'page ran to completion', false, r.fatal);
  for (const c of r.checks) record('browser', c.name, c.ok, c.ok ? '' : c.error);

  const o = r.outputs;
  const tp = fixtures.toPeer;
  const key = unhex(tp.key);
  const context = unhex(tp.context);
  const plaintext = unhex(tp.plaintext);
  if (!o || !o.seal || !o.signed || !o.encrypted) {
    record('peer', 'page produced data for the peer', false, 'outputs missing');
    return;
  }
  const cases = [
    ['SecureCellSeal made in the browser', () => peer.SecureCellSeal.withKey(key).decrypt(unhex(o.seal), context)],
    ['SecureCellTokenProtect made in the browser', () => peer.SecureCellTokenProtect.withKey(key).decrypt(unhex(o.tp.data), unhex(o.tp.token), context)],
    ['SecureCellContextImprint made in the browser', () => peer.SecureCellContextImprint.withKey(key).decrypt(unhex(o.ci), context)],
    ['SecureMessageSign (EC) made in the browser', () => new peer.SecureMessageVerify(new peer.PublicKey(unhex(o.signerPub))).verify(unhex(o.signed))],
    [
      'SecureMessage (EC) encrypted in the browser',
      () => new peer.SecureMessage(new peer.KeyPair(new peer.PrivateKey(unhex(secrets.carolPriv)), new peer.PublicKey(unhex(o.senderPub)))).decrypt(unhex(o.encrypted)),
    ],
  ];
  for (const [name, fn] of cases) {
    let out;
    try {
      out = fn();
    } catch (e) {
      record('peer', `wasm-themis decrypts/verifies ${name}`, false, short(e));
      continue;
    }
    try {
      assertBytes(out, plaintext, name);
      record('peer', `wasm-themis decrypts/verifies ${name}`, true);
    } catch (e) {
      record('peer', `wasm-themis decrypts/verifies ${name}`, false, short(e));
    }
  }
  // Our node:crypto backend too (the browser made it with @noble).
  try {
    assertBytes(t.SecureCellSeal.withKey(key).decrypt(unhex(o.seal), context), plaintext, 'seal');
    assertBytes(new t.SecureMessageVerify(new t.PublicKey(unhex(o.signerPub))).verify(unhex(o.signed)), plaintext, 'verify');
    record('node', 'node:crypto backend decrypts/verifies the browser-made Seal and signed message', true);
  } catch (e) {
    record('node', 'node:crypto backend decrypts/verifies the browser-made Seal and signed message', false, short(e));
  }
}
