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
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { clearTimeout } from 'node:timers';
import { Buffer } from 'node:buffer';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = join(ROOT, 'packages', 'themis');
const PAGE = join(ROOT, 'scripts', 'browser-test-page.js');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const DEADLINE_MS = 120_000;

const results = []; // { section, name, ok, detail }
function record(section, name, ok, detail = '') {
  results.push({ section, name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [${section}] ${name}${detail ? ` — ${detail}` : ''}`);
}
/** Runs `fn`; a throw becomes a failed check with a short message (never a wasm-themis dump). */
async function step(section, name, fn) {
  try {
    const detail = await fn();
    record(section, name, true, typeof detail === 'string' ? detail : '');
    return true;
  } catch (e) {
    record(section, name, false, short(e));
    return false;
  }
}
function short(e) {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return s.replace(/\s+/g, ' ').slice(0, 300);
}
function assert(cond, what) {
  if (!cond) throw new Error(what);
}
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
function assertBytes(actual, expected, what) {
  assert(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert(hex(actual) === hex(expected), `${what}: got ${hex(actual).slice(0, 48)}…, expected ${hex(expected).slice(0, 48)}…`);
}

const started = Date.now();
const watchdog = setTimeout(() => {
  console.error(`browser-test: gave up after ${DEADLINE_MS / 1000} s`);
  process.exit(1);
}, DEADLINE_MS);
const cleanups = [];

try {
  await main();
} catch (e) {
  record('harness', 'unexpected error', false, short(e));
} finally {
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch {
      // best effort
    }
  }
  clearTimeout(watchdog);
}

const failed = results.filter((r) => !r.ok);
console.log(`\n# browser-test: ${results.length - failed.length}/${results.length} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (failed.length > 0) {
  console.log('# FAILED:');
  for (const r of failed) console.log(`#   [${r.section}] ${r.name}${r.detail ? ` — ${r.detail}` : ''}`);
}
process.exit(failed.length > 0 ? 1 : 0);

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

  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') {
      record('browser', `${CHROMIUM} exists`, false, 'Chromium is missing under CI=true (.ci/run installs the Debian package `chromium`)');
    } else {
      console.warn(`WARNING: ${CHROMIUM} not found: skipping the in-browser run (install Debian's \`chromium\`; no browser is ever downloaded)`);
    }
    return;
  }
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
  const { build } = await import('vite');
  const VIRTUAL = 'virtual:themis-fixtures';
  let output;
  let graphIds = []; // every module Rollup saw, including stubs and externals
  const warnings = [];
  const ok = await step('bundle', 'vite build of scripts/browser-test-page.js', async () => {
    const t0 = Date.now();
    const res = await build({
      configFile: false,
      envDir: false,
      root: join(ROOT, 'scripts'),
      cacheDir: join(tmp, 'vite-cache'),
      publicDir: false,
      logLevel: 'warn',
      mode: 'production',
      plugins: [
        {
          name: 'themis-fixtures',
          resolveId: (id) => (id === VIRTUAL ? `\0${VIRTUAL}` : null),
          load: (id) => (id === `\0${VIRTUAL}` ? `export default ${JSON.stringify(fixtures)};` : null),
          buildEnd() {
            graphIds = [...this.getModuleIds()];
          },
        },
      ],
      build: {
        outDir,
        emptyOutDir: true,
        write: true,
        reportCompressedSize: false,
        rollupOptions: {
          input: PAGE,
          onwarn: (w, warn) => {
            warnings.push(w.message);
            warn(w);
          },
          output: { entryFileNames: 'page.js', chunkFileNames: '[name]-[hash].js' },
        },
      },
    });
    output = (Array.isArray(res) ? res : [res]).flatMap((r) => r.output);
    return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });
  if (!ok) return false;

  const chunks = output.filter((o) => o.type === 'chunk');
  const moduleIds = chunks.flatMap((c) => Object.keys(c.modules));
  const graph = [...new Set([...graphIds, ...moduleIds])];
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

async function serve(dir) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };
  const html = '<!doctype html><meta charset="utf-8"><title>@parley/themis browser test</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': types['.html'] }).end(html);
      return;
    }
    const file = resolve(dir, `.${path}`);
    if (!file.startsWith(dir + sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  cleanups.push(() => new Promise((ok) => server.close(ok)));
  return `http://127.0.0.1:${server.address().port}/`;
}

async function runInChromium(outDir, tmp) {
  const { chromium } = await import('playwright-core');
  const url = await serve(outDir);
  const userDataDir = mkdtempSync(join(tmp, 'chromium-profile-'));
  let result;
  const pageErrors = [];
  await step('browser', `Chromium (${CHROMIUM}) runs the bundle`, async () => {
    const t0 = Date.now();
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
    cleanups.push(() => context.close());
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
    assertBytes(new t.SecureMessageVerify(unhex(o.signerPub)).verify(unhex(o.signed)), plaintext, 'verify');
    record('node', 'node:crypto backend decrypts/verifies the browser-made Seal and signed message', true);
  } catch (e) {
    record('node', 'node:crypto backend decrypts/verifies the browser-made Seal and signed message', false, short(e));
  }
}
