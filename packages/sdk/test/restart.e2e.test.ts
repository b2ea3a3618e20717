/**
 * A device survives a restart through its SqliteClientStore: everything the
 * client knew in memory is dropped (client closed, store closed) and a new
 * client is made from the file alone. Missed messages arrive exactly once
 * (the room cursors were kept), the sessions go on, messages queued but
 * never acknowledged are published by the new client with their clientId
 * (once, even when the server had stored them before the restart), and
 * `history` shows this device's own messages from the kept copies. The
 * last case kills the first process with SIGKILL instead of closing it.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';
import { closeAll, marker, recorder, sleep, startServer, TcpProxy, texts, until, type Recorder, type ServerProcess } from './_harness.ts';

const PASS = 'restart test passphrase';
const CHILD_JS = new URL('./_restart-child.js', import.meta.url);

/** The next IPC message from `child` with type `t`; fails if the child exits or reports a failure first. */
function nextReport<T extends { t: string }>(child: ChildProcess, t: T['t']): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { t: string; error?: string }): void => {
      if (m.t === 'failed') reject(new Error(`child failed: ${m.error ?? '?'}`));
      else if (m.t === t) resolve(m as T);
      else return;
      child.off('message', onMessage);
    };
    child.on('message', onMessage);
    child.once('exit', (code, signal) => reject(new Error(`child exited (${String(code ?? signal)}) before reporting ${t}`)));
  });
}

describe('restart from a SQLite store', () => {
  let server: ServerProcess & { url: string };
  let dir: string;
  const clients: ParleyClient[] = [];
  const stores: SqliteClientStore[] = [];
  const proxies: TcpProxy[] = [];

  before(async () => {
    server = await startServer();
    dir = mkdtempSync(join(tmpdir(), 'parley-sdk-restart-'));
  });
  after(async () => {
    await closeAll(clients);
    for (const s of stores) s.close();
    for (const p of proxies) await p.close();
    server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function device(name: string, userId: string, how: 'register' | 'login', url = server.url): Promise<{ client: ParleyClient; store: SqliteClientStore; rec: Recorder; path: string }> {
    const path = join(dir, `${name}.parley`);
    const store = await SqliteClientStore.open(path, PASS, { mustExist: how === 'login' });
    stores.push(store);
    const rec = recorder();
    const client = how === 'register' ? await ParleyClient.register(url, userId, 'dev1', { store, on: rec.on }) : await ParleyClient.login(url, userId, 'dev1', { store, on: rec.on });
    clients.push(client);
    return { client, store, rec, path };
  }

  /** Close the client and its store: nothing of this device is left in memory. */
  async function shutDown(d: { client: ParleyClient; store: SqliteClientStore }): Promise<void> {
    await d.client.close();
    d.store.close();
  }

  it('bob, restarted from his file, gets exactly the messages he missed, once, and replies on the same sessions', async () => {
    const alice = await device('rs-alice', 'rs-alice', 'register');
    const bob = await device('rs-bob', 'rs-bob', 'register');
    const room = await alice.client.startDirect('rs-bob');
    const secret = marker('before-restart');
    await alice.client.send(room, `hello ${secret}`);
    await until(() => bob.rec.messages.length === 1, 'bob to get the first message');
    await bob.client.send(room, 'hi alice');
    await until(() => alice.rec.messages.length === 1, 'alice to get the reply');

    await shutDown(bob);
    const missed = ['one', 'two', 'three'].map((t) => `${t} ${marker('missed')}`);
    for (const t of missed) await alice.client.send(room, t);

    const bob2 = await device('rs-bob', 'rs-bob', 'login');
    await bob2.client.synced();
    await until(() => bob2.rec.messages.length >= 3, 'the missed messages');
    await sleep(300); // anything more would be a repeat
    assert.deepEqual(texts(bob2.rec.messages), missed, 'exactly the missed ones, in order: the cursor survived');
    assert.deepEqual(bob2.rec.failures, []);

    await bob2.client.send(room, 'back after a restart');
    await until(() => alice.rec.messages.length === 2, 'alice to read bob after his restart');
    assert.deepEqual(texts(alice.rec.messages), ['hi alice', 'back after a restart']);
    assert.deepEqual(alice.rec.failures, []);

    const page = await bob2.client.history(room, { limit: 50 });
    const read = page.flatMap((e) => (e.type === 'message' ? [e.kind === 'text' ? e.text : '?'] : e.type === 'undecryptable' ? [`undecryptable:${e.reason}`] : []));
    assert.deepEqual(read, [`hello ${secret}`, 'hi alice', ...missed, 'back after a restart'], 'history from the kept copies, own messages included');

    // The file itself: no plaintext, no user or room id.
    await shutDown(bob2);
    const bytes = Buffer.concat([bob2.path, `${bob2.path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
    for (const needle of [secret, ...missed, 'hi alice', 'back after a restart', 'rs-alice', 'rs-bob', room]) assert.equal(bytes.indexOf(Buffer.from(needle)), -1, `"${needle}" in bob's file`);
  });

  it('messages alice queued while disconnected are delivered once by her restarted client — also one whose ack was lost', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const alice = await device('q-alice', 'q-alice', 'register', proxy.url);
    const bob = await device('q-bob', 'q-bob', 'register');
    const room = await alice.client.startDirect('q-bob');
    await alice.client.send(room, 'warm-up');
    await until(() => bob.rec.messages.length === 1, 'warm-up');

    // 1. A publish that reaches the server, whose ack never reaches alice.
    proxy.blackhole = true;
    const lostAck = alice.client.send(room, 'stored, ack lost');
    lostAck.catch(() => undefined);
    await until(() => bob.rec.messages.length === 2, 'the server to store it');
    // 2. The server out of reach: three more wait in the queue.
    await proxy.close();
    await until(() => !alice.client.connected, 'alice to notice');
    const queued = ['queued one', 'queued two', 'queued three'];
    const sends = queued.map((t) => alice.client.send(room, t));
    for (const s of sends) s.catch(() => undefined);
    await until(() => alice.store.queuedMessages().length === 4, 'all four kept in the store');
    const clientIds = alice.store.queuedMessages().map((m) => m.clientId);

    await shutDown(alice);
    for (const s of [lostAck, ...sends]) await assert.rejects(s, { code: 'CLOSED' });

    const alice2 = await device('q-alice', 'q-alice', 'login');
    await until(() => bob.rec.messages.length >= 5, 'bob to get the queued messages');
    await until(() => alice2.store.queuedMessages().length === 0, 'the store to forget them once acknowledged');
    await sleep(300);
    assert.deepEqual(texts(bob.rec.messages), ['warm-up', 'stored, ack lost', ...queued], 'each once, in order');
    assert.deepEqual(
      bob.rec.messages.slice(1).map((m) => m.id),
      clientIds,
      'published with the clientIds of the first run',
    );
    assert.deepEqual(bob.rec.failures, []);
    assert.deepEqual(alice2.rec.errors, []);

    const page = await alice2.client.history(room, { limit: 50 });
    const mine = page.flatMap((e) => (e.type === 'message' && e.sender.userId === 'q-alice' ? [e.kind === 'text' ? e.text : '?'] : []));
    assert.deepEqual(mine, ['warm-up', 'stored, ack lost', ...queued], 'her own copies were kept when the restarted client saw them stored');
    assert.equal(page.filter((e) => e.type === 'message' && e.id === clientIds[0]).length, 1, 'one room entry for the message whose ack was lost');

    // The conversation goes on both ways.
    await bob.client.send(room, 'got them all');
    await until(() => alice2.rec.messages.length === 1, 'alice to read bob');
    assert.deepEqual(texts(alice2.rec.messages), ['got them all']);
  });

  it("a process's first message, typed while the server is out of reach, is encrypted over the existing sessions, kept and delivered by the next run", async () => {
    const alice = await device('cold-alice', 'cold-alice', 'register');
    const bob = await device('cold-bob', 'cold-bob', 'register');
    const room = await alice.client.startDirect('cold-bob');
    await alice.client.send(room, 'hello');
    await until(() => bob.rec.messages.length === 1, 'bob has the room');
    await bob.client.send(room, 'hi');
    await until(() => alice.rec.messages.length === 1, 'alice has the reply');
    await shutDown(alice);
    // A new process: nothing in memory, no device list cached. Connected through a proxy, which then goes away.
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const alice2 = await device('cold-alice', 'cold-alice', 'login', proxy.url);
    await proxy.close();
    await until(() => !alice2.client.connected, 'alice to notice');
    const pending = alice2.client.send(room, 'typed offline');
    pending.catch(() => undefined);
    await until(() => alice2.store.queuedMessages().length === 1, 'kept in the store although no device list could be fetched');
    await shutDown(alice2);
    await assert.rejects(pending, { code: 'CLOSED' });
    const alice3 = await device('cold-alice', 'cold-alice', 'login');
    await until(() => bob.rec.messages.length === 2, 'bob gets it from the next run');
    assert.deepEqual(texts(bob.rec.messages), ['hello', 'typed offline']);
    await until(() => alice3.store.queuedMessages().length === 0, 'and the store forgets it once stored');
  });

  it('a process killed (SIGKILL) with messages queued: the next process on the file delivers them once', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const bob = await device('k-bob', 'k-bob', 'register');
    const path = join(dir, 'k-alice.parley');
    const child = fork(CHILD_JS, [path, PASS, proxy.url, 'k-alice', 'k-bob'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const stderr: string[] = [];
    child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    try {
      const { roomId } = await nextReport<{ t: 'ready'; roomId: string }>(child, 'ready');
      await until(() => bob.rec.messages.length === 1, 'the first process to reach bob');

      await proxy.close(); // the server out of reach for the first process
      const queued = ['killed one', 'killed two'];
      const q = nextReport<{ t: 'queued'; clientIds: string[] }>(child, 'queued');
      child.send({ t: 'send', texts: queued });
      const { clientIds } = await q;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      const [, signal] = (await exited) as [number | null, string | null];
      assert.equal(signal, 'SIGKILL');

      const alice2 = await device('k-alice', 'k-alice', 'login');
      await until(() => bob.rec.messages.length >= 3, 'bob to get what the killed process queued');
      await until(() => alice2.store.queuedMessages().length === 0, 'the queue to empty');
      await sleep(300);
      assert.deepEqual(texts(bob.rec.messages), ['from the first process', ...queued]);
      assert.deepEqual(bob.rec.messages.slice(1).map((m) => m.id), clientIds);
      assert.ok(bob.rec.messages.every((m) => m.roomId === roomId));
      assert.deepEqual(bob.rec.failures, []);
      await alice2.client.send(roomId, 'and a new one');
      await until(() => bob.rec.messages.length === 4, 'a message from the second process');
      assert.deepEqual(bob.rec.failures, []);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      assert.equal(stderr.join(''), '', 'the child wrote nothing to stderr');
    }
  });
});
