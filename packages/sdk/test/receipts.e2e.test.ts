/**
 * Receipts and presence through a real `parley serve`: delivery receipts
 * sent by the receiving client on its own (coalesced per room), read
 * receipts by `markRead`, the members' read markers by `receipts`, and
 * presence events when a user sharing a room connects and leaves.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { PresenceEvent, ReceiptEvent } from '../src/events.ts';
import { closeAll, recorder, sleep, startServer, until, type ServerProcess } from './_harness.ts';

describe('receipts and presence', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await closeAll(clients);
    server.cleanup();
  });

  it('delivered on its own (one receipt for a burst), read on markRead, markers listed per member', async () => {
    const receipts: ReceiptEvent[] = [];
    const alice = await ParleyClient.register(server.url, 'rc-alice', 'laptop', { on: { receipt: (r) => receipts.push(r) } });
    const rb = recorder();
    const bob = await ParleyClient.register(server.url, 'rc-bob', 'phone', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect('rc-bob');
    const sent = [];
    for (const t of ['one', 'two', 'three']) sent.push(await alice.send(room, t));
    await until(() => rb.messages.length === 3, 'bob to get them');
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
});
