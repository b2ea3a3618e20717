/**
 * Receipts and presence through a real `parley serve`: delivery receipts
 * sent by the receiving client on its own (coalesced per room), read
 * receipts by `markRead`, the members' read markers by `receipts`, and
 * presence events when a user sharing a room connects and leaves, and
 * `presence(roomId)`, who is online now.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { PresenceEvent, ReceiptEvent } from '../src/events.ts';
import { PRESENCE_KNOWN_MAX } from '../src/limits.ts';
import { hostileTransport, recorder, serverForSuite, sleep, texts, until } from './_harness.ts';

describe('receipts and presence', () => {
  const server = serverForSuite();
  const { clients } = server;

  it('delivered on its own (one receipt for a burst), read on markRead, markers listed per member', async () => {
    const receipts: ReceiptEvent[] = [];
    const alice = await ParleyClient.register(server.url, 'rc-alice', 'laptop', { on: { receipt: (r) => receipts.push(r) } });
    const rb = recorder();
    const bob = await ParleyClient.register(server.url, 'rc-bob', 'phone', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect('rc-bob');
    // Started together, so the three arrive within one RECEIPT_INTERVAL_MS of the first (send keeps call order: it seals and queues one after another).
    const sent = await Promise.all(['one', 'two', 'three'].map((t) => alice.send(room, t)));
    await until(() => rb.messages.length === 3, 'bob to get them');
    assert.deepEqual(texts(rb.messages), ['one', 'two', 'three']);
    const last = sent[2]?.seq ?? 0;
    await until(() => receipts.some((r) => r.kind === 'delivered' && r.seq === last), 'the delivery receipt');
    assert.equal(receipts.filter((r) => r.kind === 'delivered').length, 1, 'a burst is one receipt');
    assert.deepEqual(receipts[0]?.from, { userId: 'rc-bob', deviceId: 'phone' });

    await bob.markRead(room, last);
    await until(() => receipts.some((r) => r.kind === 'read'), 'the read receipt');
    assert.deepEqual(await alice.receipts(room), [{ userId: 'rc-bob', delivered: last, read: last }]);
    // A lower seq changes nothing and is not relayed.
    await bob.markRead(room, 1);
    await sleep(200);
    assert.equal(receipts.filter((r) => r.kind === 'read').length, 1);
    await assert.rejects(bob.markRead(room, 0), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('deliveryReceipts: false sends none', async () => {
    const receipts: ReceiptEvent[] = [];
    const alice = await ParleyClient.register(server.url, 'nr-alice', 'laptop', { on: { receipt: (r) => receipts.push(r) } });
    const rb = recorder();
    const bob = await ParleyClient.register(server.url, 'nr-bob', 'phone', { on: rb.on, deliveryReceipts: false });
    clients.push(alice, bob);
    const room = await alice.startDirect('nr-bob');
    await alice.send(room, 'quiet');
    await until(() => rb.messages.length === 1, 'bob to get it');
    await sleep(1_500);
    assert.deepEqual(receipts, []);
  });

  it('presence: online when a user sharing a room connects, offline when it leaves', async () => {
    const presence: PresenceEvent[] = [];
    const alice = await ParleyClient.register(server.url, 'pr-alice', 'laptop', { on: { presence: (p) => presence.push(p) } });
    const bobStore = MemoryClientStore.create();
    const bob = await ParleyClient.register(server.url, 'pr-bob', 'phone', { store: bobStore });
    clients.push(alice);
    await alice.startDirect('pr-bob');
    await bob.close();
    await until(() => presence.some((p) => p.userId === 'pr-bob' && !p.online), 'bob offline');
    assert.equal(alice.isOnline('pr-bob'), false);
    const bobAgain = await ParleyClient.login(server.url, 'pr-bob', 'phone', { store: bobStore });
    clients.push(bobAgain);
    await until(() => alice.isOnline('pr-bob') === true, 'bob online');
    assert.equal(alice.isOnline('nobody-here'), null);
  });

  it('presence(roomId): who is online now, for a connection that heard nothing yet; members only', async () => {
    const aliceStore = MemoryClientStore.create();
    const alice = await ParleyClient.register(server.url, 'ps-alice', 'laptop', { store: aliceStore });
    const bobStore = MemoryClientStore.create();
    const bob = await ParleyClient.register(server.url, 'ps-bob', 'phone', { store: bobStore });
    const carol = await ParleyClient.register(server.url, 'ps-carol', 'desk');
    clients.push(carol);
    const room = await alice.startDirect('ps-bob');
    await alice.close();
    // A new connection: nothing heard yet, so isOnline does not know — presence() asks.
    const presence: PresenceEvent[] = [];
    const again = await ParleyClient.login(server.url, 'ps-alice', 'laptop', { store: aliceStore, on: { presence: (p) => presence.push(p) } });
    clients.push(again);
    assert.equal(again.isOnline('ps-bob'), null);
    assert.deepEqual([...(await again.presence(room))].sort(), [['ps-alice', true], ['ps-bob', true]]);
    assert.equal(again.isOnline('ps-bob'), true);
    await bob.close();
    await until(() => presence.some((p) => p.userId === 'ps-bob' && !p.online), 'bob offline');
    assert.deepEqual([...(await again.presence(room))].sort(), [['ps-alice', true], ['ps-bob', false]]);
    // Not a member: the server's not_found; not a room id: refused before asking.
    await assert.rejects(carol.presence(room), (e: unknown) => e instanceof SdkError && e.code === 'SERVER' && e.serverCode === 'not_found');
    await assert.rejects(carol.presence('not a room'), (e: unknown) => e instanceof SdkError && e.code === 'INVALID_ARGUMENT');
  });

  it('presence announcements that cross (two server processes) are taken by version: an older one changes nothing', async () => {
    const presence: PresenceEvent[] = [];
    // Every real announcement is followed by a stale one (its opposite, one version older), as a slower process's would be.
    const alice = await ParleyClient.register(server.url, 'px-alice', 'laptop', {
      on: { presence: (p) => presence.push(p) },
      transport: hostileTransport((f, text) =>
        f.t === 'presence' && typeof f['version'] === 'number' ? [text, JSON.stringify({ ...f, online: !f['online'], version: f['version'] - 1 })] : [text],
      ),
    });
    const bobStore = MemoryClientStore.create();
    const bob = await ParleyClient.register(server.url, 'px-bob', 'phone', { store: bobStore });
    clients.push(alice);
    const room = await alice.startDirect('px-bob');
    await bob.close();
    await until(() => presence.length > 0, 'bob offline');
    const bobAgain = await ParleyClient.login(server.url, 'px-bob', 'phone', { store: bobStore });
    clients.push(bobAgain);
    await until(() => presence.length > 1, 'bob online');
    await sleep(200);
    assert.deepEqual(presence.map((p) => p.online), [false, true], 'the stale announcements were not taken');
    assert.equal(alice.isOnline('px-bob'), true);
    assert.equal((await alice.presence(room)).get('px-bob'), true);
  });

  it(`remembers the presence of PRESENCE_KNOWN_MAX (${PRESENCE_KNOWN_MAX}) users, the longest unheard-of forgotten first`, async () => {
    // A server that sends presence for ever more users (one real announcement, then made-up ones).
    const made = (i: number): string => JSON.stringify({ t: 'presence', userId: `ghost-${i}`, online: true, version: 1 });
    let injected = false;
    const alice = await ParleyClient.register(server.url, 'pk-alice', 'laptop', {
      transport: hostileTransport((f, text) => {
        if (f.t !== 'presence' || injected) return [text];
        injected = true;
        return [text, ...Array.from({ length: PRESENCE_KNOWN_MAX }, (_, i) => made(i))];
      }),
    });
    const bob = await ParleyClient.register(server.url, 'pk-bob', 'phone');
    clients.push(alice);
    await alice.startDirect('pk-bob');
    await bob.close();
    await until(() => alice.isOnline(`ghost-${PRESENCE_KNOWN_MAX - 1}`) === true, 'the made-up announcements');
    assert.equal(alice.isOnline('pk-bob'), null, 'the oldest heard of (bob) is forgotten');
    assert.equal(alice.isOnline('ghost-0'), true, 'the limit itself is kept');
  });
});
