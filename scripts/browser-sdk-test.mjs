#!/usr/bin/env node
// Proves that `@parley/sdk` works in a browser as shipped: Vite bundles
// scripts/browser-sdk-page.js (the `#default-transport` import must resolve
// to the browser's WebSocket, themis to its pure-JS backend, and nothing of
// `ws`, better-sqlite3 or Node may be in the bundle); Debian's Chromium,
// driven by playwright-core, runs it against a real `parley serve` process,
// with a Node SDK client on the other side:
//
//  - the browser registers on an IndexedDbClientStore and chats with Node
//    both ways (PQXDH + Double Ratchet on @noble in the page, node:crypto in
//    Node), and verifies the Node user with Secure Comparator;
//  - the page is reloaded: a wrong passphrase opens nothing, the right one
//    restores the device from IndexedDB, which logs in and receives what was
//    sent while it was away; history and the verified state survived;
//  - a verification request left unanswered survives a reload of the tab;
//  - a second open of the same store is refused (Web Lock);
//  - IndexedDB holds none of the plaintexts, user ids or room id.
//
// Needs `npm run build` first. Never downloads a browser: without
// /usr/bin/chromium the browser part fails under CI=true, else it is skipped.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { setTimeout } from 'node:timers';
import { assert, checks, chromiumPresent, launchChromium, serveBundle, short, viteBundle } from './_browser-harness.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PAGE = join(ROOT, 'scripts', 'browser-sdk-page.js');

const suite = checks('browser-sdk-test', { deadlineMs: 180_000, stopAfterFailure: true });
const { record, step, cleanups, run } = suite;
await run(main);

async function main() {
  for (const f of ['packages/sdk/dist/src/index.js', 'packages/server/dist/test/_server-process.js']) {
    if (!existsSync(join(ROOT, f))) {
      record('setup', `${f} is built`, false, 'run `npm run build` first');
      return;
    }
  }
  const tmp = mkdtempSync(join(tmpdir(), 'parley-browser-sdk-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const outDir = join(tmp, 'dist');
  if (!(await bundle(outDir, tmp))) return;
  if (!chromiumPresent(record)) return;
  await conversation(outDir, tmp);
}

async function bundle(outDir, tmp) {
  let graph = [];
  let warnings = [];
  let chunks = [];
  const ok = await step('bundle', 'vite build of scripts/browser-sdk-page.js', async () => {
    const t0 = Date.now();
    ({ graph, warnings, chunks } = await viteBundle({ root: join(ROOT, 'scripts'), page: PAGE, outDir, tmp }));
    return `${((Date.now() - t0) / 1000).toFixed(1)} s, ${(chunks.reduce((n, c) => n + c.code.length, 0) / 1024).toFixed(0)} KiB`;
  });
  if (!ok) return false;
  const rel = (id) => id.replace(/^\0/, '').split(sep).join('/').replace(`${ROOT.split(sep).join('/')}/`, '');
  await step('bundle', '`#default-transport` resolved to the browser WebSocket transport; `ws` and better-sqlite3 absent', () => {
    const transports = graph.filter((id) => /transport-(ws|browser)\.js$/.test(id)).map(rel);
    assert(transports.length === 1 && transports[0].endsWith('transport-browser.js'), `transport modules: ${JSON.stringify(transports)}`);
    const banned = graph.filter((id) => /node_modules[\\/](ws|better-sqlite3)[\\/]/.test(id) || /sqlite-store\.js$/.test(id)).map(rel);
    assert(banned.length === 0, `in the bundle: ${JSON.stringify(banned)}`);
  });
  await step('bundle', 'themis on its pure-JS backend; no Node built-in (no node:* import, no browser-external shim)', () => {
    const backends = graph.filter((id) => /backend[\\/](node|noble)\.js$/.test(id)).map(rel);
    assert(backends.length === 1 && backends[0].endsWith('backend/noble.js'), `backend modules: ${JSON.stringify(backends)}`);
    const shims = graph.filter((id) => id.includes('__vite-browser-external') || /(^|\0)node:/.test(id)).map(rel);
    assert(shims.length === 0, `Node built-ins stubbed: ${JSON.stringify(shims)}`);
    assert(!warnings.some((w) => /externalized for browser|node:/.test(w)), `build warnings: ${JSON.stringify(warnings.slice(0, 3))}`);
    for (const c of chunks) assert(!/\bnode:[a-z_]+/.test(c.code), `${c.fileName} mentions a node: module`);
  });
  return !suite.broken;
}

async function until(condition, what, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function conversation(outDir, tmp) {
  const { startServerProcess } = await import(pathToFileURL(join(ROOT, 'packages/server/dist/test/_server-process.js')).href);
  const { ParleyClient } = await import(pathToFileURL(join(ROOT, 'packages/sdk/dist/src/index.js')).href);

  const server = await startServerProcess([], { env: { PARLEY_LOG_LEVEL: 'info' } });
  cleanups.push(() => server.stop().then(() => server.cleanup()));
  const wsUrl = `ws://127.0.0.1:${server.port}/v1`;
  const tag = randomBytes(6).toString('hex');
  const marks = { first: `from the browser ${tag}-1`, reply: `from node ${tag}-2`, away: `while the tab was closed ${tag}-3`, held: `after the commit ${tag}-4`, restored: `to the restored tab ${tag}-5` };
  const names = { alice: `alice-${tag}`, bob: `bob-${tag}` };
  const PASS = `browser passphrase ${tag}`;

  const url = await serveBundle(outDir, '@parley/sdk browser test', cleanups);
  const context = await launchChromium(mkdtempSync(join(tmp, 'chromium-profile-')), cleanups);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(short(e)));
  const load = async () => {
    await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
    await page.waitForFunction(() => globalThis.__sdkReady === true, null, { timeout: 20_000 });
  };

  const bobEvents = { messages: [], requests: [] };
  let bob;
  let room;

  await step('browser', `Chromium ${context.browser()?.version() ?? ''} loads the bundle`, load);
  await step('browser', 'registers a device on an IndexedDbClientStore (browser WebSocket, @noble crypto)', () =>
    page.evaluate(
      async ({ wsUrl, user, pass }) => {
        const { sdk } = globalThis.parleyTest;
        const store = await sdk.IndexedDbClientStore.open(user, pass);
        globalThis.store = store;
        globalThis.client = await sdk.ParleyClient.register(wsUrl, user, 'browser', { store, on: globalThis.parleyTest.on() });
        return String(store);
      },
      { wsUrl, user: names.alice, pass: PASS },
    ),
  );
  await step('node', 'a Node client registers', async () => {
    bob = await ParleyClient.register(wsUrl, names.bob, 'node', {
      on: { message: (m) => bobEvents.messages.push(m), verificationRequest: (r) => bobEvents.requests.push(r) },
    });
    cleanups.push(() => bob.close());
  });
  await step('browser', 'starts a direct conversation and sends; Node reads it', async () => {
    room = await page.evaluate(
      async ({ bob, text }) => {
        const roomId = await globalThis.client.startDirect(bob);
        await globalThis.client.send(roomId, text);
        return roomId;
      },
      { bob: names.bob, text: marks.first },
    );
    await until(() => bobEvents.messages.some((m) => m.text === marks.first), 'Node to read the browser message');
  });
  await step('browser', 'Node answers; the browser reads it', async () => {
    await bob.send(room, marks.reply);
    await page.waitForFunction((text) => globalThis.parleyTest.events.message.some((m) => m.text === text), marks.reply, { timeout: 20_000 });
  });
  await step('browser', 'verifies the Node user with a shared secret (Secure Comparator in the conversation): verified on both sides', async () => {
    await page.evaluate((bob) => {
      globalThis.verifying = globalThis.client.verify(bob, 'the cat sat on the mat');
    }, names.bob);
    await until(() => bobEvents.requests.length === 1, 'the request in Node');
    const answered = await bob.acceptVerification(names.alice, 'the cat sat on the mat');
    const result = await page.evaluate(() => globalThis.verifying.then((o) => o.state));
    assert(answered.state === 'verified' && result === 'verified', `node: ${answered.state}, browser: ${result}`);
  });
  await step('browser', 'closes the client and the store (flushed to IndexedDB)', () =>
    page.evaluate(async () => {
      await globalThis.client.close();
      await globalThis.store.close();
      return String(globalThis.store);
    }),
  );
  await step('node', 'sends while the browser is away', () => bob.send(room, marks.away).then(() => undefined));
  await step('browser', 'mustExist on a store that does not exist is STORE, and leaves no empty database behind', async () => {
    const r = await page.evaluate(async () => {
      const code = await globalThis.parleyTest.sdk.IndexedDbClientStore.open('never-made', 'x', { mustExist: true }).then(
        () => 'opened',
        (e) => e.code,
      );
      const names = (await globalThis.indexedDB.databases()).map((d) => d.name);
      return { code, names };
    });
    assert(r.code === 'STORE', `got ${r.code}`);
    assert(!r.names.some((n) => n.endsWith('never-made')), `databases: ${JSON.stringify(r.names)}`);
  });
  await step('browser', 'after a reload, a wrong passphrase opens nothing (BAD_PASSPHRASE)', async () => {
    await load();
    const code = await page.evaluate(
      ({ user }) =>
        globalThis.parleyTest.sdk.IndexedDbClientStore.open(user, 'not the passphrase', { mustExist: true }).then(
          () => 'opened',
          (e) => e.code,
        ),
      { user: names.alice },
    );
    assert(code === 'BAD_PASSPHRASE', `got ${code}`);
  });
  await step('browser', 'the right passphrase restores the device: it logs in and receives what it missed, once', async () => {
    const texts = await page.evaluate(
      async ({ wsUrl, user, pass }) => {
        const { sdk, on, events } = globalThis.parleyTest;
        const store = await sdk.IndexedDbClientStore.open(user, pass, { mustExist: true });
        globalThis.store = store;
        globalThis.client = await sdk.ParleyClient.login(wsUrl, user, 'browser', { store, on: on() });
        await globalThis.client.synced();
        await new Promise((r) => setTimeout(r, 200));
        return events.message.map((m) => m.text);
      },
      { wsUrl, user: names.alice, pass: PASS },
    );
    assert(JSON.stringify(texts) === JSON.stringify([marks.away]), `messages after the reload: ${JSON.stringify(texts)}`);
  });
  await step('browser', 'history (own message from the kept copy) and the verified state survived the reload', async () => {
    const r = await page.evaluate(
      async ({ room, bob }) => {
        const page = await globalThis.client.history(room, { limit: 50 });
        return { texts: page.filter((e) => e.type === 'message').map((e) => e.text), verified: globalThis.client.verificationStatus(bob).verified };
      },
      { room, bob: names.bob },
    );
    assert(JSON.stringify(r.texts) === JSON.stringify([marks.first, marks.reply, marks.away]), `history: ${JSON.stringify(r.texts)}`);
    assert(r.verified === true, 'not verified after the reload');
  });
  await step('browser', 'a verification request left unanswered survives a reload of the tab: offered again, then answered, verified on both sides', async () => {
    const started = bob.verify(names.alice, 'two words');
    await page.waitForFunction((bob) => globalThis.parleyTest.events.verificationRequest.some((r) => r.userId === bob), names.bob, { timeout: 20_000 });
    // The tab goes away with the request unanswered: no close, only what the store has written by then.
    await page.evaluate(() => globalThis.store.flush());
    await load();
    const after = await page.evaluate(
      async ({ wsUrl, user, pass, bob }) => {
        const { sdk, on, events } = globalThis.parleyTest;
        const store = await sdk.IndexedDbClientStore.open(user, pass, { mustExist: true });
        globalThis.store = store;
        globalThis.client = await sdk.ParleyClient.login(wsUrl, user, 'browser', { store, on: on() });
        const listed = globalThis.client.verificationRequests().map((r) => r.userId);
        await globalThis.client.synced();
        await new Promise((r) => setTimeout(r, 200));
        const reported = events.verificationRequest.map((r) => r.userId);
        const outcome = await globalThis.client.acceptVerification(bob, 'two words');
        return { listed, reported, state: outcome.state };
      },
      { wsUrl, user: names.alice, pass: PASS, bob: names.bob },
    );
    assert(JSON.stringify(after.listed) === JSON.stringify([names.bob]), `requests after the reload: ${JSON.stringify(after.listed)}`);
    assert(JSON.stringify(after.reported) === JSON.stringify([names.bob]), `verificationRequest events after the reload: ${JSON.stringify(after.reported)}`);
    const result = await started;
    assert(after.state === 'verified' && result.state === 'verified', `browser: ${after.state}, node: ${result.state}`);
  });
  await step('browser', 'a second open of the same store is refused while it is open (Web Lock): STORE', async () => {
    const code = await page.evaluate(({ user, pass }) => globalThis.parleyTest.sdk.IndexedDbClientStore.open(user, pass).then(() => 'opened', (e) => e.code), { user: names.alice, pass: PASS });
    assert(code === 'STORE', `got ${code}`);
  });
  await step('browser', 'an open store cannot be deleted: STORE at once (the deletion is not left queued)', async () => {
    const code = await page.evaluate(({ user }) => globalThis.parleyTest.sdk.IndexedDbClientStore.delete(user).then(() => 'deleted', (e) => e.code), { user: names.alice });
    assert(code === 'STORE', `got ${code}`);
  });
  await step('browser', 'close() resolves once the lock is free: the same tab opens, closes and deletes a store straight after', async () => {
    const r = await page.evaluate(async ({ pass }) => {
      const { IndexedDbClientStore } = globalThis.parleyTest.sdk;
      const name = `scratch-${Date.now()}`;
      const a = await IndexedDbClientStore.open(name, pass);
      await a.close();
      const b = await IndexedDbClientStore.open(name, pass, { mustExist: true });
      await b.close();
      await IndexedDbClientStore.delete(name);
      return 'ok';
    }, { pass: PASS }).catch((e) => String(e));
    assert(r === 'ok', r);
  });
  await step('browser', 'without Web Locks (as in a page that is not a secure context) an open is refused with STORE, unless singleTab: true', async () => {
    const r = await page.evaluate(async ({ pass }) => {
      const { IndexedDbClientStore } = globalThis.parleyTest.sdk;
      const locks = Object.getOwnPropertyDescriptor(globalThis.Navigator.prototype, 'locks');
      Object.defineProperty(globalThis.Navigator.prototype, 'locks', { configurable: true, get: () => undefined });
      try {
        const name = `nolocks-${Date.now()}`;
        const refused = await IndexedDbClientStore.open(name, pass).then(() => 'opened', (e) => e.code);
        const store = await IndexedDbClientStore.open(name, pass, { singleTab: true });
        await store.close();
        await IndexedDbClientStore.delete(name);
        return { refused, opened: true };
      } finally {
        Object.defineProperty(globalThis.Navigator.prototype, 'locks', locks);
      }
    }, { pass: PASS }).catch((e) => ({ error: String(e) }));
    assert(r.refused === 'STORE' && r.opened === true, JSON.stringify(r));
  });
  await step('browser', 'a message leaves only once the IndexedDB write of its ratchet step is committed (a slow disk: another connection holds the database)', async () => {
    const started = await page.evaluate(
      async ({ user, room, text }) => {
        // A second connection keeps a readwrite transaction on the records busy: the store's writes queue behind it.
        const db = await new Promise((resolve, reject) => {
          const r = globalThis.indexedDB.open(`parley-store:${user}`);
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
        const tx = db.transaction(['records'], 'readwrite');
        globalThis.blocker = { stop: false };
        const spin = () => {
          if (!globalThis.blocker.stop) tx.objectStore('records').get('none').onsuccess = spin;
        };
        spin();
        globalThis.blocker.done = new Promise((resolve) => (tx.oncomplete = () => resolve(db.close())));
        globalThis.sending = globalThis.client.send(room, text);
        return Date.now();
      },
      { user: names.alice, room, text: marks.held },
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert(!bobEvents.messages.some((m) => m.text === marks.held), 'the message reached the server before its ratchet step was committed');
    await page.evaluate(async () => {
      globalThis.blocker.stop = true;
      await globalThis.blocker.done;
      await globalThis.sending;
    });
    await until(() => bobEvents.messages.some((m) => m.text === marks.held), 'Node to read it once the write was committed');
    return `held back ${Date.now() - started} ms`;
  });
  await step('browser', 'IndexedDB holds no plaintext, user id or room id', async () => {
    await page.evaluate(() => globalThis.store.flush());
    const raw = await page.evaluate((user) => globalThis.parleyTest.rawBytes(user), names.alice);
    const bytes = Buffer.from(raw.bytes);
    for (const needle of [...Object.values(marks), names.alice, names.bob, room]) assert(bytes.indexOf(Buffer.from(needle)) === -1, `"${needle}" found in IndexedDB`);
    return `${raw.records} sealed records (${raw.kinds.join(', ')}), ${bytes.length} bytes scanned`;
  });
  await step('browser', 'a restore from the key backup into a new IndexedDB store makes a new device: the earlier tab ends (DEVICE_REMOVED), the new one reads at once', async () => {
    const r = await page.evaluate(
      async ({ wsUrl, user, pass }) => {
        const { sdk } = globalThis.parleyTest;
        const backupPass = `${pass} for the backup`;
        const [bytes, secret] = await Promise.all([sdk.exportKeyBackup(globalThis.store, backupPass), sdk.backupFetchSecret(backupPass, user)]);
        await globalThis.client.storeKeyBackup(bytes, secret);
        const ended = new Promise((resolve) => globalThis.client.on('connection', (c) => c.state === 'ended' && resolve(c.error.code)));
        const fetched = await sdk.ParleyClient.fetchKeyBackup(wsUrl, user, await sdk.backupFetchSecret(backupPass, user));
        const store = await sdk.IndexedDbClientStore.open(`${user}-restored`, pass);
        const received = [];
        const restored = await sdk.ParleyClient.restore(wsUrl, fetched.backup, backupPass, { store, on: { message: (m) => received.push(m.text) } });
        globalThis.restored = { ...restored, store, received };
        const backupOf = sdk.readKeyBackupOwner((await restored.client.loadKeyBackup()).backup).deviceId;
        return { deviceId: restored.client.deviceId, replaced: restored.replaced.deviceId, others: restored.otherDevices.length, backupOf, ended: await ended };
      },
      { wsUrl, user: names.alice, pass: PASS },
    );
    assert(r.deviceId === 'browser-r2' && r.replaced === 'browser' && r.others === 0 && r.backupOf === 'browser-r2' && r.ended === 'DEVICE_REMOVED', JSON.stringify(r));
    await bob.send(room, marks.restored);
    await page.waitForFunction((text) => globalThis.restored.received.includes(text), marks.restored, { timeout: 20_000 });
  });
  await page.evaluate(async () => {
    await globalThis.client.close();
    await globalThis.store.close();
    await globalThis.restored.client.close();
    await globalThis.restored.store.close();
  });
  record('browser', 'no page errors', pageErrors.length === 0, JSON.stringify(pageErrors));
}
