/**
 * Being away and coming back: a device that was offline catches up in
 * order, exactly once; a dropped connection is re-established with the
 * outbound queue intact; a publish whose ack was lost is stored once; and
 * access tokens are renewed before they expire without a disconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { REQUEST_TIMEOUT_MS } from '../src/limits.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { closeAll, hostileTransport, provisionDevice, recorder, sleep, startServer, TcpProxy, texts, until, type ServerProcess } from './_harness.ts';

describe('offline, reconnect and resume', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];
  const proxies: TcpProxy[] = [];

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await closeAll(clients);
    for (const p of proxies) await p.close();
    server.cleanup();
  });

  async function pair(a: string, b: string, urls: { a?: string; b?: string } = {}) {
    const ra = recorder();
    const rb = recorder();
    const alice = await ParleyClient.register(urls.a ?? server.url, a, 'dev1', { on: ra.on });
    const bob = await ParleyClient.register(urls.b ?? server.url, b, 'dev1', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect(b);
    return { alice, bob, ra, rb, room };
  }

  it('while the server is down, a request that needs it fails with TIMEOUT after REQUEST_TIMEOUT_MS instead of waiting for ever; sending still queues', async () => {
    const own = await startServer();
    try {
      const r = recorder();
      const alice = await ParleyClient.register(own.url, 'down-alice', 'dev1', { on: r.on });
      clients.push(alice);
      await ParleyClient.register(own.url, 'down-bob', 'dev1').then((c) => c.close());
      const room = await alice.startDirect('down-bob');
      await own.stop();
      const started = Date.now();
      const [history, receipts] = await Promise.allSettled([alice.history(room), alice.receipts(room)]);
      const took = Date.now() - started;
      for (const o of [history, receipts]) {
        assert.equal(o.status, 'rejected');
        assert.equal((o as PromiseRejectedResult).reason.code, 'TIMEOUT');
      }
      assert.ok(took >= REQUEST_TIMEOUT_MS - 100 && took < REQUEST_TIMEOUT_MS + 5000, `took ${took} ms`);
      // A message is queued, not failed, while the server is away.
      const sending = alice.send(room, 'later');
      const outcome = await Promise.race([sending.then(() => 'sent', () => 'failed'), sleep(500).then(() => 'pending')]);
      assert.equal(outcome, 'pending');
      await alice.close();
      await sending.catch(() => undefined);
    } finally {
      own.cleanup();
    }
  });

  it('bob, offline while alice sends 5 messages, gets them in order exactly once when he comes back', async () => {
    const { alice, bob, ra, rb, room } = await pair('off-alice', 'off-bob');
    await alice.send(room, 'before');
    await until(() => rb.messages.length === 1, 'bob to get the first message');
    await bob.send(room, 'ack from bob');

    await bob.close();
    const expected = ['one', 'two', 'three', 'four', 'five'];
    for (const t of expected) await alice.send(room, t);

    const again = recorder();
    const bobAgain = await ParleyClient.login(server.url, 'off-bob', 'dev1', { store: bob.store, on: again.on });
    clients.push(bobAgain);
    await bobAgain.synced();
    await until(() => again.messages.length >= 5, 'the five messages');
    await sleep(300); // anything more would be a duplicate
    assert.deepEqual(texts(again.messages), expected);
    const seqs = again.messages.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(again.messages.map((m) => m.id)).size, 5);
    assert.deepEqual(again.failures, []);

    // And the conversation goes on from the restored sessions.
    await bobAgain.send(room, 'back');
    await until(() => ra.messages.length === 2, 'alice to read the answer');
    assert.deepEqual(texts(ra.messages), ['ack from bob', 'back']);
    assert.deepEqual(ra.messages[1]?.sender, { userId: 'off-bob', deviceId: 'dev1' });
  });

  it('re-establishes dropped connections; messages sent meanwhile wait in the queue and arrive once', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const { alice, ra, rb, room } = await pair('rc-alice', 'rc-bob', { a: proxy.url, b: proxy.url });
    await alice.send(room, 'warm-up');
    await until(() => rb.messages.length === 1, 'warm-up');

    proxy.dropAll();
    await until(() => !alice.connected, 'alice to notice');
    const sends = ['while', 'away', 'queued'].map((t) => alice.send(room, t));
    const results = await Promise.all(sends);
    assert.deepEqual(
      results.map((r) => r.seq),
      [...results.map((r) => r.seq)].sort((x, y) => x - y),
      'stored in call order',
    );
    await until(() => rb.messages.length === 4, 'bob to get the queued messages');
    await sleep(300);
    assert.deepEqual(texts(rb.messages), ['warm-up', 'while', 'away', 'queued']);
    assert.ok(ra.connection.some((c) => c.state === 'disconnected'));
    assert.ok(ra.connection.some((c) => c.state === 'reconnecting'));
    assert.ok(ra.connection.filter((c) => c.state === 'connected').length >= 2);
    assert.deepEqual(rb.failures, []);
  });

  it('a publish whose ack was lost is sent again with the same clientId and stored once', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const { alice, bob, rb, room } = await pair('ack-alice', 'ack-bob', { a: proxy.url });
    await alice.send(room, 'warm-up');
    await until(() => rb.messages.length === 1, 'warm-up');

    proxy.blackhole = true; // alice's frames reach the server; its answers never reach alice
    const pending = alice.send(room, 'ack lost');
    await until(() => rb.messages.length === 2, 'bob to get it (the server stored it)');
    proxy.dropAll();
    proxy.blackhole = false;
    const result = await pending; // after reconnecting, re-published; the server answers with the original ack
    assert.equal(result.seq, rb.messages[1]?.seq);
    await sleep(300);
    assert.deepEqual(texts(rb.messages), ['warm-up', 'ack lost']);
    const page = await bob.history(room, { limit: 50 });
    const copies = page.filter((e) => (e.type === 'message' ? e.id : e.type === 'undecryptable' ? e.clientId : null) === result.id);
    assert.equal(copies.length, 1, 'one room entry for the message');
  });

  it('a connection that looks open but answers nothing (a dead socket): a send whose device list is due is encrypted for the recorded devices and queued, and the connection is made again', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const { alice, ra, rb, room } = await pair('dead-alice', 'dead-bob', { a: proxy.url });
    await alice.send(room, 'warm-up');
    await until(() => rb.messages.length === 1, 'warm-up');
    alice.refreshDevices('dead-bob'); // the cached device list is due: the send asks the directory
    const disconnects = (): number => ra.connection.filter((c) => c.state === 'disconnected').length;
    const before = disconnects();
    proxy.blackhole = true; // nothing comes back to alice, and her socket stays open
    const sent = alice.send(room, 'through a dead socket');
    sent.catch(() => undefined);
    // The directory request times out after REQUEST_TIMEOUT_MS and the dead connection is dropped (reported as a disconnect).
    await until(() => disconnects() > before, 'the request to time out and the dead connection to be dropped', REQUEST_TIMEOUT_MS + 15_000);
    proxy.blackhole = false;
    proxy.dropAll();
    await until(() => rb.messages.length === 2, 'bob to get the queued message', 20_000);
    assert.deepEqual(texts(rb.messages), ['warm-up', 'through a dead socket']);
    assert.equal((await sent).id, rb.messages[1]?.id);
  });

  it('an idle client on a connection that died without a close (a NAT that forgot it) notices by the heartbeat, gives the socket up at once and gets what was sent meanwhile', async () => {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    // The real server announces heartbeatMs (25 s); this one is told 1 s, so the test waits seconds.
    const quick = hostileTransport((f, text) => {
      if (f.t !== 'welcome') return [text];
      const limits = f['limits'] as Record<string, unknown>;
      assert.equal(typeof limits['heartbeatMs'], 'number', 'the server announces its heartbeat');
      return [JSON.stringify({ ...f, limits: { ...limits, heartbeatMs: 1000 } })];
    });
    const ra = recorder();
    const alice = await ParleyClient.register(proxy.url, 'hb-alice', 'dev1', { on: ra.on, transport: quick });
    const bob = await ParleyClient.register(server.url, 'hb-bob', 'dev1');
    clients.push(alice, bob);
    const room = await bob.startDirect('hb-alice');
    await bob.send(room, 'before');
    await until(() => ra.messages.length === 1, 'the first message');
    proxy.freezeAll(); // alice's socket stays open and carries nothing, either way
    await bob.send(room, 'while frozen');
    // No request of alice's is pending: only the heartbeat can notice. Its ping goes unanswered.
    await until(() => ra.connection.some((c) => c.state === 'disconnected'), 'the heartbeat to give the connection up', 30_000);
    const gone = ra.connection.find((c) => c.state === 'disconnected');
    assert.deepEqual(gone, { state: 'disconnected', code: 1006, reason: 'no answer to a ping' }, 'given up, not closed by a handshake that cannot complete');
    await until(() => ra.messages.length === 2, 'the message sent while frozen', 20_000);
    assert.deepEqual(texts(ra.messages), ['before', 'while frozen']);
    assert.deepEqual(ra.failures, []);
  });

  it('a device away while its user left the room gets what it missed up to the leave, then forgets the room', async () => {
    const { alice, bob, rb, room } = await pair('lv-alice', 'lv-bob');
    await alice.send(room, 'one');
    await until(() => rb.messages.length === 1, 'the first message');
    const laptopStore = MemoryClientStore.create();
    await provisionDevice(bob, laptopStore, 'laptop');
    const laptop = await ParleyClient.login(server.url, 'lv-bob', 'laptop', { store: laptopStore });
    clients.push(laptop);
    await bob.close();
    await alice.send(room, 'two');
    await alice.send(room, 'three');
    await laptop.leave(room);
    const again = recorder();
    const bobAgain = await ParleyClient.login(server.url, 'lv-bob', 'dev1', { store: bob.store, on: again.on });
    clients.push(bobAgain);
    await bobAgain.synced();
    await until(() => again.messages.length >= 2, 'what it missed before the leave');
    assert.deepEqual(texts(again.messages), ['two', 'three']);
    const cursor = bob.store.roomCursors()[room];
    assert.ok(cursor !== undefined && cursor > (again.messages[1]?.seq ?? 0), 'caught up through the removal event');
    await bobAgain.close();
    // The next catch-up has nothing more for it: the room is forgotten.
    const third = await ParleyClient.login(server.url, 'lv-bob', 'dev1', { store: bob.store });
    clients.push(third);
    await third.synced();
    assert.equal(bob.store.roomCursors()[room], undefined);
  });

  it('renews access tokens before they expire, without losing the connection', async () => {
    // Renewed a quarter of the lifetime before expiry (auth.ts renewalTime): 2 s ahead of an 8 s token.
    const short = await startServer({ env: { PARLEY_ACCESS_TOKEN_TTL_S: '8' } });
    try {
      const ra = recorder();
      const rb = recorder();
      const alice = await ParleyClient.register(short.url, 'tk-alice', 'dev1', { on: ra.on });
      const bob = await ParleyClient.register(short.url, 'tk-bob', 'dev1', { on: rb.on });
      clients.push(alice, bob);
      const room = await alice.startDirect('tk-bob');
      const renewals = (r: typeof ra): number => r.connection.filter((c) => c.state === 'connected' && c.renewal).length;
      // Messages keep flowing, one a second, until each client has renewed twice.
      const expected: string[] = [];
      const deadline = Date.now() + 30_000;
      while ((renewals(ra) < 2 || renewals(rb) < 2) && Date.now() < deadline) {
        expected.push(`tick ${expected.length}`);
        await alice.send(room, expected.at(-1) as string);
        await sleep(1000);
      }
      await until(() => rb.messages.length === expected.length, 'every tick');
      assert.deepEqual(texts(rb.messages), expected);
      for (const r of [ra, rb]) {
        assert.deepEqual(r.connection.filter((c) => c.state === 'disconnected'), [], 'never disconnected');
        assert.ok(r.connection.filter((c) => c.state === 'connected' && c.renewal).length >= 2, 'renewed at least twice');
      }
      await alice.close();
      await bob.close();
    } finally {
      short.cleanup();
    }
  });
});
