/**
 * `ParleyClient.restore` against a real `parley serve`: a key backup does
 * not bring its device back, it replaces it — the backed-up key approves a
 * new device and removes its own, so the earlier copy (here still running)
 * ends with `DEVICE_REMOVED` and cannot log in again, while the new device
 * reads and writes at once. The backup on the server is renewed for the new
 * device, so the next restore starts from it; an older backup restores
 * nothing and changes nothing. Ids: derived (`laptop` → `laptop-r2`,
 * skipping taken ones, a bounded number of tries) or given.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { replaceBackedUpDevice, restoredDeviceIds } from '../src/device-restore.ts';
import type { Transport, TransportFactory } from '../src/transport.ts';
import { webSocketTransport } from '../src/transport-ws.ts';
import { SdkError } from '../src/errors.ts';
import { backupFetchSecret, exportKeyBackup, readKeyBackupOwner, readKeyBackupReplaces } from '../src/key-backup.ts';
import { RESTORE_DEVICE_ID_ATTEMPTS } from '../src/limits.ts';
import { closeAll, hostileTransport, provisionDevice, recorder, serverForSuite, TcpProxy, texts, until } from './_harness.ts';

const PASSPHRASE = 'a long passphrase for the key backup of the restore test';

/** Keep `client`'s key backup on the server, as `parley backup` does. */
async function storeBackup(client: ParleyClient): Promise<Uint8Array> {
  const [bytes, secret] = await Promise.all([exportKeyBackup(client.store, PASSPHRASE), backupFetchSecret(PASSPHRASE, client.userId)]);
  await client.storeKeyBackup(bytes, secret);
  return bytes;
}

async function fetchBackup(url: string, userId: string): Promise<Uint8Array> {
  return (await ParleyClient.fetchKeyBackup(url, userId, await backupFetchSecret(PASSPHRASE, userId))).backup;
}

const ids = (devices: readonly { readonly deviceId: string }[]): string[] => devices.map((d) => d.deviceId).sort();

describe('ParleyClient.restore: a new device replaces the backed-up one', () => {
  const server = serverForSuite();
  const clients: (ParleyClient | undefined)[] = [];
  let alice: ParleyClient;
  let bob: ParleyClient;
  let room: string;
  let firstBackup: Uint8Array;
  let restored: ParleyClient;
  const ra = recorder();
  const rb = recorder();

  before(async () => {
    alice = await ParleyClient.register(server.url, 'alice', 'laptop', { on: ra.on });
    bob = await ParleyClient.register(server.url, 'bob', 'phone', { on: rb.on });
    clients.push(alice, bob);
    room = await alice.startDirect('bob');
    await alice.send(room, 'before the restore');
    await until(() => texts(rb.messages).includes('before the restore'), "bob reads alice's first message");
    firstBackup = await storeBackup(alice);
  });
  after(() => closeAll(clients));

  it('the running earlier copy ends (DEVICE_REMOVED) and cannot log in again; the new device reads and writes at once; the backup is renewed', async () => {
    const rr = recorder();
    const store = MemoryClientStore.create();
    const r = await ParleyClient.restore(server.url, await fetchBackup(server.url, 'alice'), PASSPHRASE, { store, on: rr.on });
    restored = r.client;
    clients.push(restored);
    assert.equal(restored.deviceId, 'laptop-r2');
    assert.deepEqual(store.account(), { userId: 'alice', deviceId: 'laptop-r2' });
    assert.equal(r.replaced.deviceId, 'laptop');
    assert.deepEqual(r.replaced.identityKey, alice.store.identity.identityKeyPair().publicKey);
    assert.equal(r.replacedElsewhere, false);
    assert.equal(r.alsoRemoved, null);
    assert.deepEqual(r.otherDevices, []);
    assert.notDeepEqual(store.identity.identityKeyPair().publicKey, r.replaced.identityKey, 'the new device has a key of its own');

    // The earlier copy, still connected, is ended by the server.
    await until(() => ra.connection.some((c) => c.state === 'ended'), 'the earlier copy ends');
    const ended = ra.connection.find((c) => c.state === 'ended');
    assert.ok(ended?.state === 'ended' && SdkError.is(ended.error, 'DEVICE_REMOVED'), JSON.stringify(ended));
    await assert.rejects(alice.send(room, 'from the earlier copy'), (e: unknown) => SdkError.is(e, 'DEVICE_REMOVED'));
    await assert.rejects(ParleyClient.login(server.url, 'alice', 'laptop', { store: alice.store }), (e: unknown) => SdkError.is(e, 'DEVICE_REMOVED'));
    assert.deepEqual(ids(await restored.ownDevices()), ['laptop-r2']);

    // Both ways, without the restored device writing first.
    await bob.send(room, 'to the restored alice');
    await until(() => texts(rr.messages).includes('to the restored alice'), 'the restored device reads bob');
    await restored.send(room, 'from the restored alice');
    await until(() => texts(rb.messages).includes('from the restored alice'), 'bob reads the restored device');
    assert.equal(rr.failures.filter((f) => f.from.userId === 'bob').length, 0, 'nothing of bob undecryptable after the restore');

    // The backup on the server is the new device's now.
    assert.deepEqual(readKeyBackupOwner(await fetchBackup(server.url, 'alice')), { userId: 'alice', deviceId: 'laptop-r2' });
  });

  it('an older backup restores nothing and changes nothing (DEVICE_REMOVED); the renewed one replaces the first restore in turn, under a given id', async () => {
    const stale = MemoryClientStore.create();
    await assert.rejects(ParleyClient.restore(server.url, firstBackup, PASSPHRASE, { store: stale }), (e: unknown) => SdkError.is(e, 'DEVICE_REMOVED') && /newest backup/.test(e.message));
    assert.equal(stale.account(), null);
    assert.deepEqual(ids(await restored.ownDevices()), ['laptop-r2']);

    // A taken id — a removed device's too, never given out again — is refused, and nothing changes.
    const taken = MemoryClientStore.create();
    const backup = await fetchBackup(server.url, 'alice');
    await assert.rejects(ParleyClient.restore(server.url, backup, PASSPHRASE, { store: taken, deviceId: 'laptop' }), (e: unknown) => SdkError.is(e, 'SERVER') && e.serverCode === 'conflict');
    assert.equal(taken.account(), null);
    assert.deepEqual(ids(await restored.ownDevices()), ['laptop-r2']);

    const rr = recorder();
    const stopped = recorder();
    restored.on('connection', stopped.on.connection);
    const r = await ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create(), deviceId: 'desk', on: rr.on });
    clients.push(r.client);
    assert.equal(r.client.deviceId, 'desk');
    assert.equal(r.replaced.deviceId, 'laptop-r2');
    await until(() => stopped.connection.some((c) => c.state === 'ended'), 'the first restore ends');
    assert.deepEqual(ids(await r.client.ownDevices()), ['desk']);
    await bob.send(room, 'to the desk');
    await until(() => texts(rr.messages).includes('to the desk'), 'the second restore reads bob');
  });

  it('refuses, before anything reaches the server: the backed-up id, a store of an account, a wrong passphrase', async () => {
    const backup = await fetchBackup(server.url, 'alice');
    await assert.rejects(ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create(), deviceId: 'desk' }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(ParleyClient.restore(server.url, backup, PASSPHRASE, { store: bob.store }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(ParleyClient.restore(server.url, backup, 'not the passphrase', { store: MemoryClientStore.create() }), (e: unknown) => SdkError.is(e, 'BAD_PASSPHRASE'));
    await assert.rejects(ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create(), deviceId: 'not an id!' }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    assert.deepEqual(ids(await bob.ownDevices()), ['phone']);
  });

  it('a derived id skips taken ones; a server that calls every id taken stops after RESTORE_DEVICE_ID_ATTEMPTS tries', async () => {
    const carol = await ParleyClient.register(server.url, 'carol', 'pc');
    clients.push(carol);
    await provisionDevice(carol, MemoryClientStore.create(), 'pc-r2');
    await storeBackup(carol);
    const r = await ParleyClient.restore(server.url, await fetchBackup(server.url, 'carol'), PASSPHRASE, { store: MemoryClientStore.create() });
    clients.push(r.client);
    assert.equal(r.client.deviceId, 'pc-r3');
    assert.deepEqual(ids(await r.client.ownDevices()), ['pc-r2', 'pc-r3']);

    const dave = await ParleyClient.register(server.url, 'dave', 'tab');
    clients.push(dave);
    await storeBackup(dave);
    let adds = 0;
    const liar = hostileTransport((f, text) => {
      if (f.t !== 'device.added') return [text];
      adds++;
      return [JSON.stringify({ t: 'error', re: f['re'], code: 'conflict', message: 'taken' })];
    });
    const store = MemoryClientStore.create();
    await assert.rejects(
      ParleyClient.restore(server.url, await fetchBackup(server.url, 'dave'), PASSPHRASE, { store, transport: liar }),
      (e: unknown) => SdkError.is(e, 'SERVER') && e.serverCode === 'conflict' && /pass one/.test(e.message),
    );
    assert.equal(adds, RESTORE_DEVICE_ID_ATTEMPTS);
    assert.equal(store.account(), null);
  });
  it('a server naming another device in its device.added answer is refused (BAD_RESPONSE): the store is not taken for that device and the backed-up one is not removed', async () => {
    const gus = await ParleyClient.register(server.url, 'gus', 'box');
    clients.push(gus);
    await storeBackup(gus);
    const liar = hostileTransport((f, text) => (f.t === 'device.added' ? [JSON.stringify({ ...f, deviceId: 'elsewhere' })] : [text]));
    const store = MemoryClientStore.create();
    await assert.rejects(ParleyClient.restore(server.url, await fetchBackup(server.url, 'gus'), PASSPHRASE, { store, transport: liar }), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE'));
    assert.equal(store.account(), null);
    assert.ok(ids(await gus.ownDevices()).includes('box'), 'the backed-up device stays');
  });
});

describe('a restore cut off', () => {
  const server = serverForSuite();
  const clients: (ParleyClient | undefined)[] = [];
  after(() => closeAll(clients));

  it("stops after the server removed the backed-up device, and the new device's store is lost: the server's backup is already the new device's, so restoring again works", async () => {
    const hana = await ParleyClient.register(server.url, 'hana', 'laptop');
    clients.push(hana);
    await storeBackup(hana);
    // The backed-up key's connection: what it sends is recorded, and it goes down right after sending the removal.
    const sent: string[] = [];
    const cut: TransportFactory = async (url, events) => {
      const t = await webSocketTransport(url, events);
      return {
        send(text) {
          const f = JSON.parse(text) as { t: string };
          sent.push(f.t);
          t.send(text);
          if (f.t === 'device.remove') t.close(1001, 'gone');
        },
        close: (code, reason) => t.close(code, reason),
      };
    };
    const lost = MemoryClientStore.create();
    const r = await replaceBackedUpDevice(server.url, await fetchBackup(server.url, 'hana'), PASSPHRASE, lost, { transport: cut });
    assert.equal(r.deviceId, 'laptop-r2');
    assert.equal(r.removal, 'pending');
    assert.deepEqual(sent.slice(-3), ['device.add', 'backup.put', 'device.remove'], 'the backup is renewed before anything is removed');
    await until(() => hana.connected === false, 'the backed-up device is removed all the same');

    // The new device's store is gone (the process died): the server's backup restores the account.
    const backup = await fetchBackup(server.url, 'hana');
    assert.deepEqual(readKeyBackupOwner(backup), { userId: 'hana', deviceId: 'laptop-r2' });
    const again = await ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create() });
    clients.push(again.client);
    assert.equal(again.client.deviceId, 'laptop-r3');
    assert.equal(again.replaced.deviceId, 'laptop-r2');
    assert.deepEqual(again.otherDevices, []);
  });

  it('stops after the new backup was stored but before the removal: the backed-up device is still there, and the next restore (from the new backup, which records what it replaces) removes it too', async () => {
    const jo = await ParleyClient.register(server.url, 'jo', 'laptop');
    const rj = recorder();
    jo.on('connection', rj.on.connection);
    clients.push(jo);
    await storeBackup(jo);
    // The backed-up key's connection goes down as the backup's answer comes: device.remove is never sent.
    const cut: TransportFactory = async (url, events) => {
      const socket: { t?: Transport } = {};
      socket.t = await webSocketTransport(url, {
        message: (text) => {
          events.message(text);
          if ((JSON.parse(text) as { t?: string }).t === 'backup.stored') socket.t?.close(1001, 'gone');
        },
        close: (code, reason) => events.close(code, reason),
      });
      return socket.t;
    };
    const r = await replaceBackedUpDevice(server.url, await fetchBackup(server.url, 'jo'), PASSPHRASE, MemoryClientStore.create(), { transport: cut });
    assert.equal(r.removal, 'pending');
    const backup = await fetchBackup(server.url, 'jo');
    assert.deepEqual(readKeyBackupOwner(backup), { userId: 'jo', deviceId: 'laptop-r2' });
    assert.deepEqual(readKeyBackupReplaces(backup), { deviceId: 'laptop', identityKey: jo.store.identity.identityKeyPair().publicKey });
    assert.ok(jo.connected, 'the backed-up device is still there');

    // The new device's store was lost with the process: the next restore finishes the job.
    const again = await ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create() });
    clients.push(again.client);
    assert.equal(again.client.deviceId, 'laptop-r3');
    assert.equal(again.alsoRemoved?.deviceId, 'laptop', 'said so');
    assert.deepEqual(ids(await again.client.ownDevices()), ['laptop-r3']);
    assert.deepEqual(again.otherDevices, []);
    await until(() => rj.connection.some((c) => c.state === 'ended'), 'the first backed-up device ends too');
  });

  it("the earlier copy storing a backup of its own just before its removal: the restored device stores its own again (a backup must be of a device that exists)", async () => {
    const kim = await ParleyClient.register(server.url, 'kim', 'laptop');
    clients.push(kim);
    await storeBackup(kim);
    // The restore's device.remove is held until the earlier copy (still logged in) has stored its backup.
    const held: TransportFactory = async (url, events) => {
      const t = await webSocketTransport(url, events);
      return {
        send(text) {
          if ((JSON.parse(text) as { t?: string }).t !== 'device.remove') return t.send(text);
          void storeBackup(kim).then(() => t.send(text));
        },
        close: (code, reason) => t.close(code, reason),
      };
    };
    const r = await ParleyClient.restore(server.url, await fetchBackup(server.url, 'kim'), PASSPHRASE, { store: MemoryClientStore.create(), transport: held });
    clients.push(r.client);
    assert.equal(r.client.deviceId, 'laptop-r2');
    assert.deepEqual(ids(await r.client.ownDevices()), ['laptop-r2']);
    assert.deepEqual(readKeyBackupOwner(await fetchBackup(server.url, 'kim')), { userId: 'kim', deviceId: 'laptop-r2' });
  });

  it("lists the devices the key's earlier holder added (they are not removed), and says when the backed-up device was gone already (another restore got there first)", async () => {
    const ivy = await ParleyClient.register(server.url, 'ivy', 'laptop');
    clients.push(ivy);
    await storeBackup(ivy);
    // Whoever held the laptop's key before the restore added a device of their own.
    await provisionDevice(ivy, MemoryClientStore.create(), 'not-ivys');
    const backup = await fetchBackup(server.url, 'ivy');
    // Two restores of one backup: the first removes the laptop, the second finds it gone.
    const [one, two] = await Promise.allSettled([
      ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create(), deviceId: 'one' }),
      ParleyClient.restore(server.url, backup, PASSPHRASE, { store: MemoryClientStore.create(), deviceId: 'two' }),
    ]);
    const done = [one, two].flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
    // One that lost the race was told why: the backed-up device was removed meanwhile (not a bare CLOSED).
    for (const p of [one, two]) if (p.status === 'rejected') assert.ok(SdkError.is(p.reason, 'DEVICE_REMOVED'), String(p.reason));
    clients.push(...done.map((d) => d.client));
    assert.ok(done.length >= 1, JSON.stringify([one, two].map((p) => (p.status === 'rejected' ? String(p.reason) : 'ok'))));
    for (const d of done) assert.ok(d.otherDevices.some((o) => o.deviceId === 'not-ivys'), JSON.stringify(d.otherDevices));
    if (done.length === 2) {
      assert.equal(done.filter((d) => d.replacedElsewhere).length, 1, 'one of them found the laptop gone');
      assert.ok(done.every((d) => d.otherDevices.some((o) => o.deviceId === (d.client.deviceId === 'one' ? 'two' : 'one'))), 'each lists the other');
    }
    const listed = ids(await (done[0] as { client: ParleyClient }).client.ownDevices());
    assert.ok(!listed.includes('laptop') && listed.includes('not-ivys'), listed.join(', '));
  });
});

describe('a contact away during a restore', () => {
  const server = serverForSuite();
  const clients: (ParleyClient | undefined)[] = [];
  let proxy: TcpProxy | undefined;
  after(async () => {
    await closeAll(clients);
    await proxy?.close();
  });

  it('fetches the device list again when it is back (the devices.changed it missed is not replayed), so its next message reaches the new device', async () => {
    proxy = await TcpProxy.start(server.port);
    const erin = await ParleyClient.register(server.url, 'erin', 'laptop');
    const rf = recorder();
    const frank = await ParleyClient.register(proxy.url, 'frank', 'phone', { on: rf.on });
    clients.push(erin, frank);
    const room = await frank.startDirect('erin');
    await frank.send(room, 'before'); // frank's list of erin's devices is fresh now
    await storeBackup(erin);

    // frank is cut off, and his reconnections get no answer, while erin restores on a new machine.
    proxy.blackhole = true;
    proxy.dropAll();
    await until(() => rf.connection.some((c) => c.state === 'disconnected'), 'frank loses his connection');
    const rr = recorder();
    const r = await ParleyClient.restore(server.url, await fetchBackup(server.url, 'erin'), PASSPHRASE, { store: MemoryClientStore.create(), on: rr.on });
    clients.push(r.client);
    await erin.close();

    const synced = rf.connection.length;
    proxy.blackhole = false;
    proxy.dropAll();
    await until(() => rf.connection.slice(synced).some((c) => c.state === 'synced'), 'frank is back', 40_000);
    const sent = await frank.send(room, 'after');
    assert.ok(sent.recipients.some((d) => d.userId === 'erin' && d.deviceId === 'laptop-r2'), JSON.stringify(sent.recipients));
    const late = (): number => rr.failures.filter((f) => f.seq >= sent.seq).length;
    await until(() => texts(rr.messages).includes('after') || late() > 0, "frank's message at the new device");
    assert.deepEqual(texts(rr.messages), ['after']);
    assert.equal(late(), 0);
  });
});

describe('restoredDeviceIds', () => {
  it('counts on from the id, keeps within the id length, and offers RESTORE_DEVICE_ID_ATTEMPTS ids', () => {
    const first = restoredDeviceIds('laptop');
    assert.equal(first.length, RESTORE_DEVICE_ID_ATTEMPTS);
    assert.deepEqual(first.slice(0, 3), ['laptop-r2', 'laptop-r3', 'laptop-r4']);
    assert.deepEqual(restoredDeviceIds('laptop-r9').slice(0, 2), ['laptop-r10', 'laptop-r11']);
    assert.deepEqual(restoredDeviceIds('r2').slice(0, 1), ['r2-r2']);
    const long = 'x'.repeat(64);
    for (const id of [...restoredDeviceIds(long), ...restoredDeviceIds(`${'y'.repeat(57)}-r999999`)]) {
      assert.ok(/^[A-Za-z0-9_-]{1,64}$/.test(id), id);
    }
    assert.equal(restoredDeviceIds(long)[0], `${'x'.repeat(61)}-r2`);
    assert.equal(new Set(restoredDeviceIds(`${'y'.repeat(57)}-r999999`)).size, RESTORE_DEVICE_ID_ATTEMPTS, 'no id offered twice');
  });
});
