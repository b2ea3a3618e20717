/**
 * Removing a device and signing out everywhere through the SDK, against a
 * real server: the removed device's client ends with DEVICE_REMOVED, peers
 * stop encrypting to it at once (devices.changed), and after a sign-out
 * every device carries on by logging in again with its key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { KeysChange } from '../src/peer-keys.ts';
import { provisionDevice, recorder, serverForSuite, sleep, TcpProxy, texts, until, type Recorder } from './_harness.ts';

describe('devices: removal and signing out everywhere', () => {
  const server = serverForSuite();
  const { clients } = server;

  async function device(first: ParleyClient, deviceId: string, rec: Recorder = recorder()): Promise<ParleyClient> {
    const store = MemoryClientStore.create();
    await provisionDevice(first, store, deviceId);
    const c = await ParleyClient.login(server.url, first.userId, deviceId, { store, on: rec.on });
    clients.push(c);
    return c;
  }

  it('removeDevice: the removed client ends (DEVICE_REMOVED); the peer and the user stop encrypting to it at once; nothing is reported as a surprise', async () => {
    const [rLaptop, rPhone, rBob] = [recorder(), recorder(), recorder()];
    const laptop = await ParleyClient.register(server.url, 'dr-ann', 'laptop', { on: rLaptop.on });
    clients.push(laptop);
    const phone = await device(laptop, 'phone', rPhone);
    const bob = await ParleyClient.register(server.url, 'dr-bob', 'phone', { on: rBob.on });
    clients.push(bob);
    const changes: unknown[] = [];
    laptop.on('keysChanged', (c) => changes.push(c));
    const room = await bob.startDirect('dr-ann');
    const before = await bob.send(room, 'to both of ann');
    assert.deepEqual(before.recipients.filter((d) => d.userId === 'dr-ann').map((d) => d.deviceId).sort(), ['laptop', 'phone']);
    await until(() => rPhone.messages.length === 1 && rLaptop.messages.length === 1, 'both devices of ann receive it');

    await laptop.removeDevice('phone');
    await until(() => rPhone.connection.some((c) => c.state === 'ended'), 'the removed client ended');
    const ended = rPhone.connection.find((c) => c.state === 'ended');
    assert.ok(ended?.state === 'ended' && SdkError.is(ended.error, 'DEVICE_REMOVED'), JSON.stringify(ended));
    await assert.rejects(phone.send(room, 'after removal'), (e: unknown) => SdkError.is(e, 'DEVICE_REMOVED'));

    // bob's list was fetched a moment ago (well within its cache time); devices.changed makes him fetch it again.
    await until(async () => {
      const r = await bob.send(room, `probe ${Date.now()}`);
      return !r.recipients.some((d) => d.userId === 'dr-ann' && d.deviceId === 'phone');
    }, 'bob no longer encrypts to the removed phone');
    const fromLaptop = await laptop.send(room, 'from the laptop');
    assert.deepEqual(fromLaptop.recipients.map((d) => `${d.userId}/${d.deviceId}`).sort(), ['dr-bob/phone']);
    await until(() => texts(rBob.messages).includes('from the laptop'), 'bob reads the laptop');
    assert.deepEqual(changes, [], 'the device this one removed is no surprise to it');
    // Removing it again is no error; removing the last device is refused by the server.
    await laptop.removeDevice('phone');
    await assert.rejects(laptop.removeDevice('laptop'), (e: unknown) => SdkError.is(e, 'SERVER') && e.serverCode === 'conflict');
    await assert.rejects(laptop.removeDevice('not an id!'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('a device removed while it was away learns it on reconnecting, and ends (DEVICE_REMOVED) instead of retrying for ever', async () => {
    const rPhone = recorder();
    const desk = await ParleyClient.register(server.url, 'dr-away', 'desk');
    clients.push(desk);
    const store = MemoryClientStore.create();
    await provisionDevice(desk, store, 'phone');
    const proxy = await TcpProxy.start(server.port);
    try {
      const phone = await ParleyClient.login(proxy.url, 'dr-away', 'phone', { store, on: rPhone.on });
      clients.push(phone);
      // The phone's network goes: its connection is cut, and what it tries next is never answered.
      proxy.blackhole = true;
      proxy.dropAll();
      await until(() => rPhone.connection.some((c) => c.state === 'disconnected'), 'the phone lost its connection');
      await desk.removeDevice('phone');
      await sleep(200);
      proxy.blackhole = false;
      proxy.dropAll(); // whatever attempt is hanging starts over
      await until(() => rPhone.connection.some((c) => c.state === 'ended'), 'the removed phone ended', 45_000);
      const ended = rPhone.connection.find((c) => c.state === 'ended');
      assert.ok(ended?.state === 'ended' && SdkError.is(ended.error, 'DEVICE_REMOVED'), JSON.stringify(ended));
      const attempts = rPhone.connection.filter((c) => c.state === 'reconnecting').length;
      await sleep(1500);
      assert.equal(rPhone.connection.filter((c) => c.state === 'reconnecting').length, attempts, 'no attempt after it ended');
      // A new client on its store is refused the same way.
      await assert.rejects(ParleyClient.login(server.url, 'dr-away', 'phone', { store: MemoryClientStore.create() }), (e: unknown) => SdkError.is(e, 'AUTH_FAILED') || SdkError.is(e, 'DEVICE_REMOVED'));
    } finally {
      await proxy.close();
    }
  });

  it('a device linked while a contact was writing is reachable once it publishes its keys (not when the contact\'s cache expires); an idle contact hears of a removal at once', async () => {
    const [rBob, rTab] = [recorder(), recorder()];
    const laptop = await ParleyClient.register(server.url, 'ln-ann', 'laptop');
    clients.push(laptop);
    const bob = await ParleyClient.register(server.url, 'ln-bob', 'phone', { on: rBob.on });
    clients.push(bob);
    const bobHeard: KeysChange[] = [];
    bob.on('keysChanged', (c) => bobHeard.push(c));
    const room = await bob.startDirect('ln-ann');
    await bob.send(room, 'first');
    // The tablet is added but has not logged in yet: listed without keys, and skipped.
    const store = MemoryClientStore.create();
    await provisionDevice(laptop, store, 'tablet');
    // bob, idle, is told of the new device (devices.changed) before he writes again.
    await until(() => bobHeard.some((c) => c.added.some((d) => d.deviceId === 'tablet')), 'bob told of the tablet while idle', 5_000);
    const during = await bob.send(room, 'during the linking');
    assert.ok(during.skipped.some((d) => d.deviceId === 'tablet' && d.reason === 'no prekeys published'), JSON.stringify(during));
    const tablet = await ParleyClient.login(server.url, 'ln-ann', 'tablet', { store, on: rTab.on });
    clients.push(tablet);
    // Its first keys are announced (devices.changed): bob's next message is for it too.
    await until(async () => (await bob.send(room, `probe ${Date.now()}`)).recipients.some((d) => d.deviceId === 'tablet'), 'bob encrypts to the tablet', 5_000);
    await until(() => rTab.messages.length > 0, 'the tablet reads bob');
    // bob, idle, hears of a removal without sending anything.
    const heard = bobHeard.length;
    await laptop.removeDevice('tablet');
    await until(() => bobHeard.slice(heard).some((c) => c.removed.some((d) => d.deviceId === 'tablet')), 'bob told of the removal while idle', 5_000);
  });

  it('removeDevice of this very device ends this client', async () => {
    const rTab = recorder();
    const desk = await ParleyClient.register(server.url, 'dr-cy', 'desk');
    clients.push(desk);
    const tab = await device(desk, 'tab', rTab);
    await tab.removeDevice('tab');
    await until(() => rTab.connection.some((c) => c.state === 'ended'), 'the client ended');
    assert.equal(tab.connected, false);
  });

  it('signOutEverywhere: the other devices are signed out and log in again by themselves; this one logs in again at once on a new connection', async () => {
    const [rA, rB, rPeer] = [recorder(), recorder(), recorder()];
    const a = await ParleyClient.register(server.url, 'so-dee', 'a', { on: rA.on });
    clients.push(a);
    const b = await device(a, 'b', rB);
    const peer = await ParleyClient.register(server.url, 'so-eve', 'phone', { on: rPeer.on });
    clients.push(peer);
    const room = await peer.startDirect('so-dee');
    const before = rA.connection.filter((c) => c.state === 'connected').length;
    await a.signOutEverywhere();
    await until(() => rA.connection.filter((c) => c.state === 'connected').length > before, 'a logged in again');
    await until(() => rB.connection.some((c) => c.state === 'disconnected' && c.code === 4002), 'b was signed out');
    await until(() => b.connected, 'b logged in again with its key');
    assert.ok(!rA.connection.some((c) => c.state === 'disconnected'), 'the asking client stayed connected');
    // Both keep working: b sends, a receives and sends.
    await b.send(room, 'after the sign-out');
    await until(() => texts(rA.messages).includes('after the sign-out') && texts(rPeer.messages).includes('after the sign-out'), 'delivered');
    await a.send(room, 'from a');
    await until(() => texts(rPeer.messages).includes('from a'), 'a still sends');
    assert.deepEqual(rA.errors.concat(rB.errors).filter((e) => !SdkError.is(e, 'SERVER')), [], 'no failures but the refused old tokens');
  });
});
