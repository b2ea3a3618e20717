/**
 * Keeping a device reachable and messages within bounds: one-time prekeys
 * drained by key-directory fetches are topped up when the next new session
 * arrives, and a message too large for the room's devices is refused before
 * any session advances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hello, loginDevice } from '../src/auth.ts';
import { ParleyClient } from '../src/client.ts';
import { Connection } from '../src/connection.ts';
import { SdkError } from '../src/errors.ts';
import { ONE_TIME_PREKEYS_KEPT_MAX, ONE_TIME_PREKEYS_LOW_WATER, ONE_TIME_PREKEYS_TARGET } from '../src/limits.ts';
import { CONTENT_BYTES_MAX } from '../src/payload.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { closeAll, provisionDevice, recorder, sleep, startServer, texts, until, type ServerProcess } from './_harness.ts';

describe('upkeep and limits', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];
  const raws: Connection[] = [];

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const r of raws) r.close();
    await closeAll(clients);
    server.cleanup();
  });

  /** A bare connection logged in as `client`'s device. */
  async function rawAs(client: ParleyClient): Promise<Connection> {
    const raw = await Connection.open(server.url, { onFrame: () => undefined, onClose: () => undefined });
    raws.push(raw);
    await hello(raw);
    await loginDevice(raw, client.store.identity.identityKeyPair(), { userId: client.userId, deviceId: client.deviceId });
    return raw;
  }

  it('tops up one-time prekeys when a new session finds them running low', async () => {
    const rb = recorder();
    const bob = await ParleyClient.register(server.url, 'pk-bob', 'dev1', { on: rb.on });
    const carol = await ParleyClient.register(server.url, 'pk-carol', 'dev1');
    clients.push(bob, carol);
    const asBob = await rawAs(bob);
    const count = async (): Promise<number> => (await asBob.request({ t: 'keys.upload' }, ['keys.uploaded']))['oneTimePrekeys'] as number;
    assert.equal(await count(), ONE_TIME_PREKEYS_TARGET);

    // Someone fetches bob's bundle again and again: each fetch hands out a one-time prekey.
    const asCarol = await rawAs(carol);
    const drain = ONE_TIME_PREKEYS_TARGET - ONE_TIME_PREKEYS_LOW_WATER + 5;
    for (let i = 0; i < drain; i++) await asCarol.request({ t: 'keys.fetch', userId: 'pk-bob' }, ['keys']);
    assert.equal(await count(), ONE_TIME_PREKEYS_TARGET - drain);

    // A first message from a new peer (a prekey message) makes bob check, and top up.
    const alice = await ParleyClient.register(server.url, 'pk-alice', 'dev1');
    clients.push(alice);
    const room = await alice.startDirect('pk-bob');
    await alice.send(room, 'hello');
    await until(() => rb.messages.length === 1, 'bob to read the first message');
    let held = await count();
    const deadline = Date.now() + 20_000;
    while (held !== ONE_TIME_PREKEYS_TARGET && Date.now() < deadline) {
      await sleep(50);
      held = await count();
    }
    assert.equal(held, ONE_TIME_PREKEYS_TARGET);
    assert.deepEqual(rb.errors, []);
  });

  it('keeps the private halves of the newest ONE_TIME_PREKEYS_KEPT_MAX one-time prekeys only, however often peers drain them', async () => {
    const rb = recorder();
    const store = MemoryClientStore.create();
    const bob = await ParleyClient.register(server.url, 'pkx-bob', 'dev1', { store, on: rb.on });
    const drainer = await ParleyClient.register(server.url, 'pkx-drain', 'dev1');
    clients.push(bob, drainer);
    const asBob = await rawAs(bob);
    const asDrainer = await rawAs(drainer);
    const count = async (): Promise<number> => (await asBob.request({ t: 'keys.upload' }, ['keys.uploaded']))['oneTimePrekeys'] as number;
    const cycles = Math.ceil(ONE_TIME_PREKEYS_KEPT_MAX / ONE_TIME_PREKEYS_TARGET) + 3;
    for (let cycle = 0; cycle < cycles; cycle++) {
      // Every one-time prekey on the server handed out (bundles fetched, never written with), paced under the frame rate …
      for (let held = await count(); held > 0; held--) await asDrainer.request({ t: 'keys.fetch', userId: 'pkx-bob' }, ['keys']);
      await sleep(600);
      // … then a new peer's first message makes bob top up again.
      const peer = await ParleyClient.register(server.url, `pkx-peer${cycle}`, 'dev1');
      clients.push(peer);
      await peer.send(await peer.startDirect('pkx-bob'), `hello ${cycle}`);
      await until(() => rb.messages.length === cycle + 1, `bob to read peer ${cycle}`);
      await until(async () => (await count()) === ONE_TIME_PREKEYS_TARGET, 'the top-up');
    }
    assert.ok(store.reserveOneTimePrekeyIds(0) > ONE_TIME_PREKEYS_KEPT_MAX + ONE_TIME_PREKEYS_TARGET, 'more were made than are kept');
    assert.equal(store.prekeys.oneTimePrekeyCount, ONE_TIME_PREKEYS_KEPT_MAX, 'only the newest are kept');
    // A new contact still gets a key bob holds.
    const late = await ParleyClient.register(server.url, 'pkx-late', 'dev1');
    clients.push(late);
    await late.send(await late.startDirect('pkx-bob'), 'still reachable');
    await until(() => rb.messages.length === cycles + 1, 'bob to read the late first message');
    assert.deepEqual(rb.errors, []);
  });

  it('refuses a message too large for the room before encrypting, and the conversation goes on', async () => {
    const ra = recorder();
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'lim-alice', 'dev1', { on: ra.on });
    const bob = await ParleyClient.register(server.url, 'lim-bob', 'dev1', { on: rb.on });
    const store = MemoryClientStore.create();
    await provisionDevice(alice, store, 'dev2');
    const alice2 = await ParleyClient.login(server.url, 'lim-alice', 'dev2', { store });
    clients.push(alice, bob, alice2);
    const room = await alice.startDirect('lim-bob');

    await assert.rejects(alice.send(room, new Uint8Array(CONTENT_BYTES_MAX + 1)), (e) => SdkError.is(e, 'LIMIT'));
    // Fits one envelope, but not one for each of bob/dev1 and alice/dev2 in one body.
    await assert.rejects(alice.send(room, new Uint8Array(40_000)), (e) => SdkError.is(e, 'LIMIT'));
    await assert.rejects(alice.send(room, 42 as unknown as string), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.send('not a room!', 'x'), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));

    const big = new Uint8Array(20_000).fill(7);
    await alice.send(room, big);
    await alice.send(room, 'after the big one');
    await until(() => rb.messages.length === 2, 'both messages');
    assert.deepEqual(texts(rb.messages), ['<20000 bytes>', 'after the big one']);
    assert.deepEqual(rb.failures, []);
    await bob.send(room, 'got it');
    await until(() => ra.messages.length === 1, 'the reply');
  });
});
