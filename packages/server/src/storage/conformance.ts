/**
 * The storage conformance suite: one set of node:test cases that every
 * `Storage` backend must pass. A backend's test file is a few lines that
 * call `storageConformance` with a factory for fresh, isolated stores.
 *
 * Each test gets its own store from `make()`, migrates it, and cleans it up
 * afterwards, so tests never see each other's data.
 *
 * @module
 */

import { deepStrictEqual, equal, rejects } from 'node:assert/strict';
import { describe, test } from 'node:test';
import { roomLogConformance } from './_conformance-log.ts';
import { refreshTokenConformance } from './_conformance-refresh.ts';
import { isUnknownDevice, type Storage } from './types.ts';

/** What a backend's test file hands the suite for each test. */
export interface StorageFixture {
  /** A fresh, empty store (not yet migrated: the suite calls `migrate()`). */
  storage: Storage;
  /** Opens another `Storage` on the same data, as a restarted server would. Not yet migrated. */
  reopen(): Promise<Storage>;
  /** Closes every store this fixture opened and deletes its data. */
  cleanup(): Promise<void>;
}

export type StorageFactory = () => Promise<StorageFixture>;

/** Runs `fn` on a fresh migrated store and always cleans up. */
export async function withStorage(make: StorageFactory, fn: (s: Storage, f: StorageFixture) => Promise<void>): Promise<void> {
  const f = await make();
  try {
    await f.storage.migrate();
    await fn(f.storage, f);
  } finally {
    await f.cleanup();
  }
}

/** Bytes from numbers; covers 0x00 and 0xff in the fixtures. */
export const b = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

/**
 * Three rounds of: stock 20 items, fire 50 claims at once. Each round must
 * hand out all 20, each exactly once, and answer the other 30 with nothing
 * (`claim` returns '' for null).
 */
async function claimRace(stock: (round: number) => Promise<string[]>, claim: () => Promise<string>): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const ids = await stock(round);
    const claims = await Promise.all(Array.from({ length: 50 }, claim));
    const got = claims.filter((c) => c !== '');
    equal(claims.length - got.length, 30, `round ${round}: nulls`);
    deepStrictEqual(got.sort(), [...ids].sort(), `round ${round}: each item exactly once`);
  }
}

/** Creates `userId` (unless there) with `deviceIds`: a device's own rows are stored for existing devices only. */
async function withDevices(s: Storage, userId: string, ...deviceIds: string[]): Promise<void> {
  if ((await s.getUser(userId)) === null) equal(await s.createUser({ userId, createdAt: 0 }), true);
  for (const deviceId of deviceIds) equal(await s.addDevice({ userId, deviceId, identityKey: b(0), createdAt: 0 }), true);
}

/** Nothing of the device is stored: no prekey of any kind, no KeyPackage, no mailbox entry. */
async function holdsNothing(s: Storage, userId: string, deviceId: string, what: string): Promise<void> {
  equal(await s.getSignedPrekey(userId, deviceId), null, `${what}: signed prekey`);
  equal(await s.getPqPrekey(userId, deviceId), null, `${what}: PQ prekey`);
  equal(await s.countOneTimePrekeys(userId, deviceId), 0, `${what}: one-time prekeys`);
  equal(await s.countKeyPackages(userId, deviceId), 0, `${what}: KeyPackages`);
  deepStrictEqual(await s.readMailbox(userId, deviceId, 0, 100), [], `${what}: mailbox`);
}

export function storageConformance(name: string, make: StorageFactory): void {
  const run = (fn: (s: Storage, f: StorageFixture) => Promise<void>) => () => withStorage(make, fn);
  // User u with the devices the key-directory cases write to.
  const runKeys = (fn: (s: Storage) => Promise<void>) =>
    run(async (s) => {
      await withDevices(s, 'u', 'd', 'other', 'none');
      await fn(s);
    });

  describe(`storage conformance: ${name}`, () => {
    describe('schema', () => {
      test('migrate() twice is harmless and keeps data', run(async (s) => {
        equal(await s.createUser({ userId: 'u1', createdAt: 1 }), true);
        await s.migrate();
        await s.migrate();
        deepStrictEqual(await s.getUser('u1'), { userId: 'u1', createdAt: 1 });
      }));

      test('two stores on the same data migrate at once, then share it', async () => {
        const f = await make();
        try {
          const other = await f.reopen();
          await Promise.all([f.storage.migrate(), other.migrate()]);
          equal(await f.storage.createUser({ userId: 'u', createdAt: 1 }), true);
          equal(await other.createUser({ userId: 'u', createdAt: 2 }), false);
          deepStrictEqual(await other.getUser('u'), { userId: 'u', createdAt: 1 });
        } finally {
          await f.cleanup();
        }
      });

      test('close() is idempotent', run(async (s) => {
        await s.close();
        await s.close();
      }));
    });

    describe('users and devices', () => {
      test('user ids are unique; unknown user is null', run(async (s) => {
        equal(await s.createUser({ userId: 'alice', createdAt: 1000 }), true);
        equal(await s.createUser({ userId: 'alice', createdAt: 2000 }), false);
        deepStrictEqual(await s.getUser('alice'), { userId: 'alice', createdAt: 1000 });
        equal(await s.getUser('bob'), null);
        equal(await s.getUser('ALICE'), null, 'ids are case-sensitive');
      }));

      test('concurrent createUser of one id: exactly one succeeds', run(async (s) => {
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.createUser({ userId: 'x', createdAt: i })));
        equal(results.filter((r) => r).length, 1);
      }));

      test('createUser with its first device stores both together, or neither', run(async (s) => {
        const device = { userId: 'reg', deviceId: 'phone', identityKey: b(3), createdAt: 4, sessionEpoch: 'e' };
        equal(await s.createUser({ userId: 'reg', createdAt: 4 }, device), true);
        deepStrictEqual(await s.listDevices('reg'), [device]);
        // Taken: the second registration's device is not added either.
        equal(await s.createUser({ userId: 'reg', createdAt: 5 }, { ...device, deviceId: 'laptop', identityKey: b(4) }), false);
        deepStrictEqual(await s.listDevices('reg'), [device]);
        // The device's write fails (NOT NULL): the user is not left behind without it.
        await rejects(s.createUser({ userId: 'half', createdAt: 6 }, { userId: 'half', deviceId: null as unknown as string, identityKey: b(5), createdAt: 6 }));
        equal(await s.getUser('half'), null);
        equal(await s.createUser({ userId: 'half', createdAt: 7 }, { userId: 'half', deviceId: 'd', identityKey: b(5), createdAt: 7 }), true);
        await rejects(s.createUser({ userId: 'other', createdAt: 8 }, device), TypeError);
        equal(await s.getUser('other'), null);
      }));

      test('concurrent registrations of one user id, each with its own first device: exactly one wins, and only its device is stored', run(async (s) => {
        const tries = Array.from({ length: 12 }, (_, i) => ({ userId: 'race', deviceId: `dev${i}`, identityKey: b(i), createdAt: 100 + i, sessionEpoch: `e${i}` }));
        const results = await Promise.all(tries.map((d) => s.createUser({ userId: 'race', createdAt: d.createdAt }, d)));
        equal(results.filter((r) => r).length, 1);
        const winner = tries[results.indexOf(true)];
        deepStrictEqual(await s.listDevices('race'), [winner]);
        deepStrictEqual(await s.getUser('race'), { userId: 'race', createdAt: winner?.createdAt });
        // A plain createUser (no device) racing registrations with devices: still one user, and no device of a loser.
        const mixed = await Promise.all([
          s.createUser({ userId: 'mix', createdAt: 1 }),
          s.createUser({ userId: 'mix', createdAt: 2 }, { userId: 'mix', deviceId: 'a', identityKey: b(1), createdAt: 2 }),
          s.createUser({ userId: 'mix', createdAt: 3 }, { userId: 'mix', deviceId: 'b', identityKey: b(2), createdAt: 3 }),
        ]);
        equal(mixed.filter((r) => r).length, 1);
        const devices = await s.listDevices('mix');
        const user = await s.getUser('mix');
        deepStrictEqual(devices.map((d) => d.createdAt), user?.createdAt === 1 ? [] : [user?.createdAt]);
      }));

      test('device ids are unique per user, not globally; bytes round-trip', run(async (s) => {
        const key = b(0, 1, 2, 254, 255);
        await s.createUser({ userId: 'alice', createdAt: 1 });
        await s.createUser({ userId: 'bob', createdAt: 1 });
        equal(await s.addDevice({ userId: 'alice', deviceId: 'd1', identityKey: key, createdAt: 5 }), true);
        equal(await s.addDevice({ userId: 'alice', deviceId: 'd1', identityKey: b(9), createdAt: 6 }), false);
        equal(await s.addDevice({ userId: 'bob', deviceId: 'd1', identityKey: b(7), createdAt: 7 }), true);
        deepStrictEqual(await s.getDevice('alice', 'd1'), { userId: 'alice', deviceId: 'd1', identityKey: key, createdAt: 5, sessionEpoch: '' });
        deepStrictEqual((await s.getDevice('bob', 'd1'))?.identityKey, b(7));
        equal(await s.getDevice('alice', 'd2'), null);
        equal(await s.getDevice('carol', 'd1'), null);
      }));

      test('listDevices: only that user, ordered by device id byte-wise', run(async (s) => {
        for (const d of ['b', 'B', 'á', 'a', 'a0']) {
          await s.addDevice({ userId: 'alice', deviceId: d, identityKey: b(1), createdAt: 1 });
        }
        await s.addDevice({ userId: 'bob', deviceId: 'z', identityKey: b(1), createdAt: 1 });
        deepStrictEqual((await s.listDevices('alice')).map((d) => d.deviceId), ['B', 'a', 'a0', 'b', 'á']);
        deepStrictEqual(await s.listDevices('nobody'), []);
      }));

      test('removeDevice: the device and everything kept for it go, nothing of any other device', run(async (s) => {
        const mail = { fromUserId: 'bob', fromDeviceId: 'b1', clientId: 'm1', payload: b(1), createdAt: 1 };
        const fill = async (userId: string, deviceId: string, epoch: string) => {
          await s.addDevice({ userId, deviceId, identityKey: b(1), createdAt: 1, sessionEpoch: epoch });
          await s.setSignedPrekey(userId, deviceId, { keyId: 1, publicKey: b(1), signature: b(2) });
          await s.setPqPrekey(userId, deviceId, { keyId: 1, publicKey: b(1), signature: b(2) });
          await s.addOneTimePrekeys(userId, deviceId, [{ keyId: 1, publicKey: b(1) }]);
          await s.addKeyPackages(userId, deviceId, [{ ref: 'r1', data: b(1) }]);
          await s.enqueueMailbox(userId, deviceId, mail, 10);
          await s.putRefreshToken({ tokenHash: `t-${userId}-${deviceId}`, userId, deviceId, issuedAt: 1, expiresAt: 10 ** 12 }, 16);
        };
        await fill('alice', 'phone', 'e1');
        await fill('alice', 'laptop', 'e2');
        await fill('bob', 'phone', 'e3');
        equal(await s.removeDevice('alice', 'phone', 5), 'removed');
        equal(await s.getDevice('alice', 'phone'), null);
        equal(await s.getSignedPrekey('alice', 'phone'), null);
        equal(await s.getPqPrekey('alice', 'phone'), null);
        equal(await s.countOneTimePrekeys('alice', 'phone'), 0);
        equal(await s.countKeyPackages('alice', 'phone'), 0);
        deepStrictEqual(await s.readMailbox('alice', 'phone', 0, 10), []);
        const next = { tokenHash: 'n', issuedAt: 2, expiresAt: 10 ** 12 };
        equal((await s.rotateRefreshToken('t-alice-phone', next, { graceMs: 0, spentKept: 16 })).ok, false);
        // Removing it again, or a device that never was, changes nothing.
        equal(await s.removeDevice('alice', 'phone', 6), 'unknown');
        equal(await s.removeDevice('nobody', 'phone', 6), 'unknown');
        deepStrictEqual(await s.removedDeviceKey('alice', 'phone'), b(1), 'its key is kept');
        equal(await s.removedDeviceKey('alice', 'laptop'), null);
        equal(await s.removedDeviceKey('bob', 'phone'), null);
        for (const [userId, deviceId] of [['alice', 'laptop'], ['bob', 'phone']] as const) {
          equal((await s.getDevice(userId, deviceId))?.deviceId, deviceId);
          equal((await s.getSignedPrekey(userId, deviceId))?.keyId, 1);
          equal((await s.getPqPrekey(userId, deviceId))?.keyId, 1);
          equal(await s.countOneTimePrekeys(userId, deviceId), 1);
          equal(await s.countKeyPackages(userId, deviceId), 1);
          equal((await s.readMailbox(userId, deviceId, 0, 10)).length, 1);
        }
        deepStrictEqual(await s.rotateRefreshToken('t-alice-laptop', { ...next, tokenHash: 'n2' }, { graceMs: 0, spentKept: 16 }), { ok: true, userId: 'alice', deviceId: 'laptop', epoch: 'e2' });
        // Its id is never given to another key; another user's device of that id is another device.
        equal(await s.addDevice({ userId: 'alice', deviceId: 'phone', identityKey: b(9), createdAt: 3 }), false);
        equal(await s.getDevice('alice', 'phone'), null);
        equal(await s.addDevice({ userId: 'carol', deviceId: 'phone', identityKey: b(9), createdAt: 3 }), true);
        equal(await s.removeDevice('bob', 'phone', 7), 'last', "bob's only device stays");
        equal(await s.addDeviceWithin({ userId: 'alice', deviceId: 'phone', identityKey: b(9), createdAt: 3 }, { devicesMax: 16, idsMax: 1000 }), 'taken');
      }));

      test('a write of a device\'s own rows for a device that does not exist (or was removed) stores nothing and is refused (UNKNOWN_DEVICE)', run(async (s) => {
        await withDevices(s, 'u', 'keep', 'gone');
        equal(await s.removeDevice('u', 'gone', 2), 'removed');
        const mail = { fromUserId: 'v', fromDeviceId: 'e', clientId: 'm1', payload: b(1), createdAt: 3 };
        for (const [userId, deviceId] of [['u', 'gone'], ['u', 'never'], ['nobody', 'keep']] as const) {
          const what = `${userId}/${deviceId}`;
          await rejects(s.setSignedPrekey(userId, deviceId, { keyId: 1, publicKey: b(1), signature: b(2) }), isUnknownDevice, `${what}: setSignedPrekey`);
          await rejects(s.setPqPrekey(userId, deviceId, { keyId: 1, publicKey: b(1), signature: b(2) }), isUnknownDevice, `${what}: setPqPrekey`);
          await rejects(s.addOneTimePrekeys(userId, deviceId, [{ keyId: 1, publicKey: b(1) }]), isUnknownDevice, `${what}: addOneTimePrekeys`);
          await rejects(s.addOneTimePrekeys(userId, deviceId, []), isUnknownDevice, `${what}: addOneTimePrekeys, none`);
          await rejects(s.replaceOneTimePrekeys(userId, deviceId, [{ keyId: 1, publicKey: b(1) }]), isUnknownDevice, `${what}: replaceOneTimePrekeys`);
          await rejects(s.addKeyPackages(userId, deviceId, [{ ref: 'r1', data: b(1) }]), isUnknownDevice, `${what}: addKeyPackages`);
          await rejects(s.enqueueMailbox(userId, deviceId, mail, 10), isUnknownDevice, `${what}: enqueueMailbox`);
          await holdsNothing(s, userId, deviceId, what);
        }
        // Argument checks still come first; the device still there takes every write.
        await rejects(s.enqueueMailbox('u', 'gone', mail, -1), RangeError);
        await s.setSignedPrekey('u', 'keep', { keyId: 1, publicKey: b(1), signature: b(2) });
        await s.setPqPrekey('u', 'keep', { keyId: 1, publicKey: b(1), signature: b(2) });
        deepStrictEqual(await s.replaceOneTimePrekeys('u', 'keep', [{ keyId: 1, publicKey: b(1) }]), { dropped: 0, held: 1 });
        equal(await s.addOneTimePrekeys('u', 'keep', [{ keyId: 2, publicKey: b(2) }]), 2);
        equal(await s.addKeyPackages('u', 'keep', [{ ref: 'r1', data: b(1) }]), 1);
        equal((await s.enqueueMailbox('u', 'keep', mail, 10))?.entry.id, 1);
      }));

      test('writes racing removeDevice leave no row of the device: each is removed with it or refused (20 rounds)', run(async (s) => {
        await withDevices(s, 'u', 'keep');
        const refused = (e: unknown): null => {
          if (!isUnknownDevice(e)) throw e;
          return null;
        };
        for (let round = 0; round < 20; round++) {
          const deviceId = `r${round}`;
          await withDevices(s, 'u', deviceId);
          const mail = { fromUserId: 'v', fromDeviceId: 'e', clientId: `m${round}`, payload: b(round), createdAt: 3 };
          const calls: (() => Promise<unknown>)[] = [
            () => (round % 2 === 0 ? s.addOneTimePrekeys('u', deviceId, [{ keyId: 1, publicKey: b(1) }, { keyId: 2, publicKey: b(2) }]) : s.replaceOneTimePrekeys('u', deviceId, [{ keyId: 1, publicKey: b(1) }])).catch(refused),
            () => s.setSignedPrekey('u', deviceId, { keyId: 1, publicKey: b(1), signature: b(2) }).catch(refused),
            () => s.setPqPrekey('u', deviceId, { keyId: 1, publicKey: b(1), signature: b(2) }).catch(refused),
            () => s.addKeyPackages('u', deviceId, [{ ref: 'k1', data: b(1) }]).catch(refused),
            () => s.enqueueMailbox('u', deviceId, mail, 10).catch(refused),
          ];
          // The removal is called at a different place among the writes each round.
          const at = round % (calls.length + 1);
          calls.splice(at, 0, () => s.removeDevice('u', deviceId, 4));
          const results = await Promise.all(calls.map((call) => call()));
          equal(results[at], 'removed', `round ${round}`);
          await holdsNothing(s, 'u', deviceId, `round ${round}`);
        }
      }));

      test('addDeviceWithin and removeDevice hold their limits under concurrency: never more than devicesMax devices, never none', run(async (s) => {
        await s.createUser({ userId: 'u', createdAt: 1 }, { userId: 'u', deviceId: 'd0', identityKey: b(0), createdAt: 1 });
        const limits = { devicesMax: 4, idsMax: 6 };
        const add = (deviceId: string) => s.addDeviceWithin({ userId: 'u', deviceId, identityKey: b(1), createdAt: 2 }, limits);
        const added = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(add));
        equal(added.filter((r) => r === 'added').length, 3, JSON.stringify(added));
        equal(added.filter((r) => r === 'too-many-devices').length, 3);
        equal((await s.listDevices('u')).length, 4);
        equal(await add('d0'), 'too-many-devices', 'the limit is checked before the id');
        // Every device removes itself at once: exactly one stays.
        const devices = (await s.listDevices('u')).map((d) => d.deviceId);
        const removed = await Promise.all(devices.map((d) => s.removeDevice('u', d, 3)));
        equal(removed.filter((r) => r === 'removed').length, devices.length - 1, JSON.stringify(removed));
        equal(removed.filter((r) => r === 'last').length, 1);
        equal((await s.listDevices('u')).length, 1);
        // Ids: 1 device + 3 removed = 4 of 6; two more ids, then none.
        const gone = devices.filter((_, i) => removed[i] === 'removed');
        equal(await add(gone[0] as string), 'taken', 'a removed id is taken');
        equal(await add('g'), 'added');
        equal(await add('h'), 'added');
        equal(await add('i'), 'too-many-ids');
      }));

      test('resetSessions: every device of the user gets the epoch and loses its refresh tokens; other users keep theirs', run(async (s) => {
        await s.createUser({ userId: 'alice', createdAt: 1 }, { userId: 'alice', deviceId: 'a', identityKey: b(1), createdAt: 1, sessionEpoch: 'old-a' });
        await s.addDevice({ userId: 'alice', deviceId: 'b', identityKey: b(2), createdAt: 1 });
        await s.createUser({ userId: 'bob', createdAt: 1 }, { userId: 'bob', deviceId: 'a', identityKey: b(3), createdAt: 1, sessionEpoch: 'old-bob' });
        equal((await s.getDevice('alice', 'a'))?.sessionEpoch, 'old-a');
        equal((await s.getDevice('alice', 'b'))?.sessionEpoch, '', 'a device stored without an epoch has the empty one');
        for (const [userId, deviceId] of [['alice', 'a'], ['alice', 'b'], ['bob', 'a']] as const) {
          await s.putRefreshToken({ tokenHash: `t-${userId}-${deviceId}`, userId, deviceId, issuedAt: 1, expiresAt: 10 ** 12 }, 16);
        }
        equal(await s.resetSessions('alice', 'new'), 2);
        deepStrictEqual((await s.listDevices('alice')).map((d) => d.sessionEpoch), ['new', 'new']);
        equal((await s.getDevice('bob', 'a'))?.sessionEpoch, 'old-bob');
        const next = (tokenHash: string) => ({ tokenHash, issuedAt: 2, expiresAt: 10 ** 12 });
        const policy = { graceMs: 0, spentKept: 16 };
        equal((await s.rotateRefreshToken('t-alice-a', next('n1'), policy)).ok, false);
        equal((await s.rotateRefreshToken('t-alice-b', next('n2'), policy)).ok, false);
        equal((await s.rotateRefreshToken('t-bob-a', next('n3'), policy)).ok, true);
        equal(await s.resetSessions('nobody', 'x'), 0);
      }));
    });

    describe('key directory', () => {
      test('signed prekey and PQ prekey: set, get, replace, per device', runKeys(async (s) => {
        equal(await s.getSignedPrekey('u', 'd'), null);
        equal(await s.getPqPrekey('u', 'd'), null);
        await s.setSignedPrekey('u', 'd', { keyId: 1, publicKey: b(1, 2), signature: b(3) });
        await s.setPqPrekey('u', 'd', { keyId: 7, publicKey: b(7, 7), signature: b(8) });
        deepStrictEqual(await s.getSignedPrekey('u', 'd'), { keyId: 1, publicKey: b(1, 2), signature: b(3) });
        deepStrictEqual(await s.getPqPrekey('u', 'd'), { keyId: 7, publicKey: b(7, 7), signature: b(8) });
        await s.setSignedPrekey('u', 'd', { keyId: 2, publicKey: b(4), signature: b(5, 6) });
        await s.setPqPrekey('u', 'd', { keyId: 2 ** 32, publicKey: b(0), signature: b(255) });
        deepStrictEqual(await s.getSignedPrekey('u', 'd'), { keyId: 2, publicKey: b(4), signature: b(5, 6) });
        deepStrictEqual(await s.getPqPrekey('u', 'd'), { keyId: 2 ** 32, publicKey: b(0), signature: b(255) });
        equal(await s.getSignedPrekey('u', 'other'), null);
        equal(await s.getPqPrekey('other', 'd'), null);
      }));

      test('one-time prekeys: replace drops every stored one of the device (that device only) and stores the new ones, even under the same ids', runKeys(async (s) => {
        await s.addOneTimePrekeys('u', 'd', [{ keyId: 1, publicKey: b(1) }, { keyId: 2, publicKey: b(2) }, { keyId: 3, publicKey: b(3) }]);
        await s.addOneTimePrekeys('u', 'other', [{ keyId: 1, publicKey: b(9) }]);
        deepStrictEqual(await s.replaceOneTimePrekeys('u', 'd', [{ keyId: 2, publicKey: b(20) }, { keyId: 7, publicKey: b(70) }]), { dropped: 3, held: 2 });
        deepStrictEqual(await s.claimOneTimePrekey('u', 'd'), { keyId: 2, publicKey: b(20) }, 'the new key under a reused id');
        deepStrictEqual(await s.claimOneTimePrekey('u', 'd'), { keyId: 7, publicKey: b(70) });
        equal(await s.claimOneTimePrekey('u', 'd'), null);
        equal(await s.countOneTimePrekeys('u', 'other'), 1);
        deepStrictEqual(await s.replaceOneTimePrekeys('u', 'none', []), { dropped: 0, held: 0 });
      }));

      test('one-time prekeys: add ignores known ids, count, claim lowest first, then null', runKeys(async (s) => {
        equal(await s.addOneTimePrekeys('u', 'd', [{ keyId: 3, publicKey: b(3) }, { keyId: 1, publicKey: b(1) }]), 2);
        // 1 is already stored and 5 appears twice in the batch: both count once.
        const again = [{ keyId: 1, publicKey: b(99) }, { keyId: 5, publicKey: b(5) }, { keyId: 5, publicKey: b(55) }];
        equal(await s.addOneTimePrekeys('u', 'd', again), 3);
        equal(await s.addOneTimePrekeys('u', 'd', []), 3);
        equal(await s.addOneTimePrekeys('u', 'other', [{ keyId: 1, publicKey: b(42) }]), 1);
        equal(await s.countOneTimePrekeys('u', 'd'), 3);
        deepStrictEqual(await s.claimOneTimePrekey('u', 'd'), { keyId: 1, publicKey: b(1) });
        deepStrictEqual(await s.claimOneTimePrekey('u', 'd'), { keyId: 3, publicKey: b(3) });
        equal((await s.claimOneTimePrekey('u', 'd'))?.keyId, 5);
        equal(await s.claimOneTimePrekey('u', 'd'), null);
        equal(await s.countOneTimePrekeys('u', 'd'), 0);
        equal(await s.countOneTimePrekeys('u', 'other'), 1, 'another device keeps its keys');
        equal(await s.countOneTimePrekeys('nobody', 'd'), 0);
      }));

      test('50 concurrent prekey claims on 20 keys: 20 distinct keys and 30 nulls (3 rounds)', runKeys(async (s) => {
        await claimRace(
          async (round) => {
            const keys = Array.from({ length: 20 }, (_, i) => ({ keyId: round * 100 + i, publicKey: b(i) }));
            equal(await s.addOneTimePrekeys('u', 'd', keys), 20);
            return keys.map((k) => String(k.keyId));
          },
          async () => String((await s.claimOneTimePrekey('u', 'd'))?.keyId ?? ''),
        );
        equal(await s.countOneTimePrekeys('u', 'd'), 0);
      }));

      test('concurrent overlapping prekey batches neither fail nor double-store', runKeys(async (s) => {
        const batch = (from: number) => Array.from({ length: 30 }, (_, i) => ({ keyId: from + i, publicKey: b(i) }));
        const reversed = (xs: { keyId: number; publicKey: Uint8Array }[]) => [...xs].reverse();
        await Promise.all([
          s.addOneTimePrekeys('u', 'd', batch(0)),
          s.addOneTimePrekeys('u', 'd', reversed(batch(10))),
          s.addOneTimePrekeys('u', 'd', batch(20)),
          s.addOneTimePrekeys('u', 'd', reversed(batch(5))),
        ]);
        equal(await s.countOneTimePrekeys('u', 'd'), 50);
      }));

      test('KeyPackages: add ignores known refs, count, claim earlier batches first, then null', runKeys(async (s) => {
        equal(await s.addKeyPackages('u', 'd', [{ ref: 'r2', data: b(2) }, { ref: 'r1', data: b(1) }]), 2);
        equal(await s.addKeyPackages('u', 'd', [{ ref: 'r0', data: b(0) }, { ref: 'r1', data: b(9) }]), 3);
        equal(await s.addKeyPackages('u', 'other', [{ ref: 'r1', data: b(7) }]), 1);
        equal(await s.countKeyPackages('u', 'd'), 3);
        deepStrictEqual(await s.claimKeyPackage('u', 'd'), { ref: 'r1', data: b(1) });
        deepStrictEqual(await s.claimKeyPackage('u', 'd'), { ref: 'r2', data: b(2) });
        deepStrictEqual(await s.claimKeyPackage('u', 'd'), { ref: 'r0', data: b(0) });
        equal(await s.claimKeyPackage('u', 'd'), null);
        equal(await s.countKeyPackages('u', 'other'), 1);
        // A claimed ref may be uploaded again (the client decides what is fresh).
        equal(await s.addKeyPackages('u', 'd', [{ ref: 'r1', data: b(1) }]), 1);
      }));

      test("a KeyPackage's signature is kept and handed out with it; one stored without has none", runKeys(async (s) => {
        equal(await s.addKeyPackages('u', 'd', [{ ref: 's1', data: b(1), signature: b(5, 6) }, { ref: 's2', data: b(2) }]), 2);
        deepStrictEqual(await s.claimKeyPackage('u', 'd'), { ref: 's1', data: b(1), signature: b(5, 6) });
        deepStrictEqual(await s.claimKeyPackage('u', 'd'), { ref: 's2', data: b(2) });
      }));

      test('countStored…: how many of the given prekey ids or KeyPackage refs the device has (what an upload of them would not add)', runKeys(async (s) => {
        await s.addOneTimePrekeys('u', 'd', [{ keyId: 1, publicKey: b(1) }, { keyId: 2, publicKey: b(2) }]);
        await s.addOneTimePrekeys('u', 'other', [{ keyId: 3, publicKey: b(3) }]);
        equal(await s.countStoredOneTimePrekeys('u', 'd', [1, 2, 3, 4]), 2);
        equal(await s.countStoredOneTimePrekeys('u', 'd', []), 0);
        equal(await s.countStoredOneTimePrekeys('u', 'other', [1, 3]), 1);
        await s.addKeyPackages('u', 'd', [{ ref: 'k1', data: b(1) }, { ref: 'k2', data: b(2) }]);
        equal(await s.countStoredKeyPackages('u', 'd', ['k1', 'k2', 'k3']), 2);
        equal(await s.countStoredKeyPackages('u', 'd', []), 0);
        equal(await s.countStoredKeyPackages('u', 'other', ['k1']), 0);
      }));

      test('50 concurrent KeyPackage claims on 20 packages: 20 distinct and 30 nulls (3 rounds)', runKeys(async (s) => {
        await claimRace(
          async (round) => {
            const pkgs = Array.from({ length: 20 }, (_, i) => ({ ref: `kp${round}-${String(i).padStart(2, '0')}`, data: b(i) }));
            equal(await s.addKeyPackages('u', 'd', pkgs), 20);
            return pkgs.map((p) => p.ref);
          },
          async () => (await s.claimKeyPackage('u', 'd'))?.ref ?? '',
        );
        equal(await s.countKeyPackages('u', 'd'), 0);
      }));
    });

    describe('rooms and membership', () => {
      test('room ids are unique; unknown room is null', run(async (s) => {
        const room = { roomId: 'r1', kind: 'group' as const, createdBy: 'alice', createdAt: 10 };
        equal(await s.createRoom(room), true);
        equal(await s.createRoom({ ...room, kind: 'direct', createdAt: 11 }), false);
        deepStrictEqual(await s.getRoom('r1'), room);
        equal(await s.getRoom('r2'), null);
      }));

      test('setMember inserts and updates; removeMember; getMember; listMembers ordered', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'carol', createdAt: 1 });
        await s.setMember('r', { userId: 'carol', role: 'owner' });
        await s.setMember('r', { userId: 'alice', role: 'member' });
        await s.setMember('r', { userId: 'bob', role: 'member' });
        await s.setMember('r', { userId: 'alice', role: 'admin' });
        deepStrictEqual(await s.getMember('r', 'alice'), { userId: 'alice', role: 'admin' });
        deepStrictEqual(await s.listMembers('r'), [
          { userId: 'alice', role: 'admin' },
          { userId: 'bob', role: 'member' },
          { userId: 'carol', role: 'owner' },
        ]);
        equal(await s.removeMember('r', 'bob'), true);
        equal(await s.removeMember('r', 'bob'), false);
        equal(await s.removeMember('r', 'nobody'), false);
        equal(await s.getMember('r', 'bob'), null);
        deepStrictEqual((await s.listMembers('r')).map((m) => m.userId), ['alice', 'carol']);
        deepStrictEqual(await s.listMembers('unknown'), []);
      }));

      test('listRoomsOf and countRoomsOf follow membership', run(async (s) => {
        const rooms = ['r3', 'r1', 'r2'].map((roomId, i) => ({ roomId, kind: 'group' as const, createdBy: 'a', createdAt: i }));
        for (const r of rooms) await s.createRoom(r);
        await s.setMember('r3', { userId: 'a', role: 'owner' });
        await s.setMember('r1', { userId: 'a', role: 'member' });
        await s.setMember('r2', { userId: 'b', role: 'member' });
        await s.setMember('r1', { userId: 'a', role: 'admin' });
        deepStrictEqual(await s.listRoomsOf('a'), [{ ...rooms[1], role: 'admin', lastSeq: 0 }, { ...rooms[0], role: 'owner', lastSeq: 0 }]);
        equal(await s.countRoomsOf('a'), 2);
        equal(await s.countRoomsOf('b'), 1);
        await s.removeMember('r3', 'a');
        deepStrictEqual((await s.listRoomsOf('a')).map((r) => r.roomId), ['r1']);
        equal(await s.countRoomsOf('a'), 1);
        deepStrictEqual(await s.listRoomsOf('nobody'), []);
        equal(await s.countRoomsOf('nobody'), 0);
      }));
    });

    describe('membership changes in the log (changeMember)', () => {
      const ev = (kind: 'member-added' | 'member-removed' | 'role-changed', clientId: string) =>
        ({ kind, senderUserId: 'owner', senderDeviceId: 'd', clientId, body: b(1), createdAt: 5 });
      const msg = (userId: string, clientId: string) => ({ kind: 'message' as const, senderUserId: userId, senderDeviceId: 'd', clientId, body: b(2), createdAt: 6 });

      test('listRoomsOf gives each room its last seq as appends and membership events move it', run(async (s) => {
        for (const roomId of ['r', 'q']) await s.createRoom({ roomId, kind: 'group', createdBy: 'owner', createdAt: 1 });
        await s.changeMember('r', 'owner', null, 'owner', ev('member-added', 'e1'));
        await s.changeMember('q', 'owner', null, 'member', ev('member-added', 'e2'));
        const seqs = async (): Promise<unknown> => (await s.listRoomsOf('owner')).map((r) => [r.roomId, r.role, r.lastSeq]);
        deepStrictEqual(await seqs(), [['q', 'member', 1], ['r', 'owner', 1]]);
        await Promise.all([s.append('r', msg('owner', 'm1')), s.append('r', msg('owner', 'm2'))]);
        await s.append('r', msg('owner', 'm1'));
        deepStrictEqual(await seqs(), [['q', 'member', 1], ['r', 'owner', 3]], 'a repeated client id moves nothing');
        await s.changeMember('r', 'bob', null, 'member', ev('member-added', 'e3'));
        deepStrictEqual(await seqs(), [['q', 'member', 1], ['r', 'owner', 4]]);
        for (let i = 0; i < 5; i++) await s.append('r', msg('bob', `b${i}`));
        equal((await s.listRoomsOf('owner')).find((r) => r.roomId === 'r')?.lastSeq, await s.lastSeq('r'));
      }));

      test('add, change role, remove: each logs its event at the next seq and returns the members after it; a stale expectation writes nothing', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'owner', createdAt: 1 });
        const added = await s.changeMember('r', 'owner', null, 'owner', ev('member-added', 'e1'));
        deepStrictEqual(added && [added.entry.seq, added.entry.kind, added.members], [1, 'member-added', ['owner']]);
        equal((await s.append('r', msg('owner', 'm1'))).entry.seq, 2);
        const bob = await s.changeMember('r', 'bob', null, 'member', ev('member-added', 'e2'));
        deepStrictEqual(bob && [bob.entry.seq, bob.members], [3, ['bob', 'owner']]);
        equal(await s.changeMember('r', 'bob', null, 'admin', ev('member-added', 'e3')), null, 'bob is already a member');
        equal(await s.changeMember('r', 'carol', 'member', null, ev('member-removed', 'e4')), null, 'carol is not a member');
        const promoted = await s.changeMember('r', 'bob', 'member', 'admin', ev('role-changed', 'e5'));
        deepStrictEqual(promoted && [promoted.entry.seq, promoted.entry.kind], [4, 'role-changed']);
        deepStrictEqual(await s.getMember('r', 'bob'), { userId: 'bob', role: 'admin' });
        const removed = await s.changeMember('r', 'bob', 'admin', null, ev('member-removed', 'e6'));
        deepStrictEqual(removed && [removed.entry.seq, removed.members], [5, ['owner']]);
        equal(await s.getMember('r', 'bob'), null);
        equal(await s.lastSeq('r'), 5);
        deepStrictEqual((await s.readAfter('r', 0, 10)).map((e) => e.clientId), ['e1', 'm1', 'e2', 'e5', 'e6']);
        await rejects(s.changeMember('nope', 'bob', null, 'member', ev('member-added', 'e7')));
        await rejects(s.changeMember('r', 'bob', null, null, ev('member-removed', 'e8')));
      }));

      test('racing changes: 10 removals of one member log one event; a promotion racing a removal never brings the member back', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'owner', createdAt: 1 });
        await s.changeMember('r', 'm', null, 'member', ev('member-added', 'add'));
        const removals = await Promise.all(Array.from({ length: 10 }, (_, i) => s.changeMember('r', 'm', 'member', null, ev('member-removed', `rm${i}`))));
        equal(removals.filter((r) => r !== null).length, 1);
        for (let round = 0; round < 5; round++) {
          await s.changeMember('r', 'm', null, 'member', ev('member-added', `again${round}`));
          const [promote, leave] = await Promise.all([
            s.changeMember('r', 'm', 'member', 'admin', ev('role-changed', `up${round}`)),
            s.changeMember('r', 'm', 'member', null, ev('member-removed', `leave${round}`)),
          ]);
          equal([promote, leave].filter((r) => r !== null).length, 1, `round ${round}: exactly one applies`);
          // Whatever won, the log replays to the member table.
          const role = (await s.getMember('r', 'm'))?.role ?? null;
          equal(role, promote !== null ? 'admin' : null);
          if (role !== null) await s.changeMember('r', 'm', 'admin', null, ev('member-removed', `tidy${round}`));
        }
        const log = await s.readAfter('r', 0, 100);
        deepStrictEqual(log.map((e) => e.seq), log.map((_, i) => i + 1), 'gapless');
      }));

      test('actorRole: a change applies only while its maker still has the role it was decided with; handOver: removing the last owner makes the first admin (else member) owner in the same step, logged right after', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'owner', createdAt: 1 });
        await s.changeMember('r', 'owner', null, 'owner', ev('member-added', 'e1'));
        await s.changeMember('r', 'adm', null, 'admin', ev('member-added', 'e2'));
        await s.changeMember('r', 'zed', null, 'member', ev('member-added', 'e3'));
        const byAdm = (kind: 'member-added' | 'member-removed', clientId: string) => ({ ...ev(kind, clientId), senderUserId: 'adm' });
        // adm decided as an admin, then was removed: its change does not apply.
        await s.changeMember('r', 'adm', 'admin', null, ev('member-removed', 'e4'));
        equal(await s.changeMember('r', 'newbie', null, 'member', byAdm('member-added', 'e5'), { actorRole: 'admin' }), null);
        equal(await s.getMember('r', 'newbie'), null);
        await s.changeMember('r', 'adm', null, 'admin', ev('member-added', 'e6'));
        const ok = await s.changeMember('r', 'newbie', null, 'member', byAdm('member-added', 'e7'), { actorRole: 'admin' });
        deepStrictEqual(ok?.members, ['adm', 'newbie', 'owner', 'zed']);
        // The owner leaves: adm (the first admin) becomes owner, logged at the very next seq.
        const left = await s.changeMember('r', 'owner', 'owner', null, { ...ev('member-removed', 'e8'), senderUserId: 'owner' }, { handOver: true, actorRole: 'owner' });
        equal(left?.handedOver?.userId, 'adm');
        equal(left?.handedOver?.entry.seq, (left?.entry.seq ?? 0) + 1);
        equal(left?.handedOver?.entry.kind, 'role-changed');
        deepStrictEqual(JSON.parse(new TextDecoder().decode(left?.handedOver?.entry.body)), { userId: 'adm', role: 'owner', by: 'owner' });
        deepStrictEqual(await s.getMember('r', 'adm'), { userId: 'adm', role: 'owner' });
        // Members only: the first by user id inherits. Alone: nothing to hand over.
        const left2 = await s.changeMember('r', 'adm', 'owner', null, { ...ev('member-removed', 'e9'), senderUserId: 'adm' }, { handOver: true });
        equal(left2?.handedOver?.userId, 'newbie');
        await s.createRoom({ roomId: 'solo', kind: 'group', createdBy: 'o', createdAt: 1 });
        await s.changeMember('solo', 'o', null, 'owner', ev('member-added', 's1'));
        const alone = await s.changeMember('solo', 'o', 'owner', null, ev('member-removed', 's2'), { handOver: true });
        equal(alone?.handedOver, undefined);
        deepStrictEqual(alone?.members, []);
      }));

      test('readMembershipEvents: only membership events, after a seq, ascending, bounded', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'owner', createdAt: 1 });
        await s.changeMember('r', 'owner', null, 'owner', ev('member-added', 'e1'));
        await s.append('r', msg('owner', 'm1'));
        await s.changeMember('r', 'b', null, 'member', ev('member-added', 'e2'));
        await s.append('r', msg('b', 'm2'));
        await s.changeMember('r', 'b', 'member', null, ev('member-removed', 'e3'));
        deepStrictEqual((await s.readMembershipEvents('r', 0, 10)).map((e) => [e.seq, e.kind]), [[1, 'member-added'], [3, 'member-added'], [5, 'member-removed']]);
        deepStrictEqual((await s.readMembershipEvents('r', 1, 1)).map((e) => e.seq), [3]);
        deepStrictEqual(await s.readMembershipEvents('r', 5, 10), []);
        deepStrictEqual(await s.readMembershipEvents('unknown', 0, 10), []);
      }));

      test('append with requireMember refuses (NOT_A_MEMBER) a sender who is not a member at that point, writing nothing; members come back where the store reads them', run(async (s) => {
        await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'owner', createdAt: 1 });
        await s.changeMember('r', 'a', null, 'member', ev('member-added', 'e1'));
        const ok = await s.append('r', msg('a', 'm1'), { requireMember: true });
        equal(ok.entry.seq, 2);
        if (ok.members !== undefined) deepStrictEqual(ok.members, ['a']);
        await rejects(s.append('r', msg('b', 'm2'), { requireMember: true }), (e: Error) => (e as { code?: unknown }).code === 'NOT_A_MEMBER');
        // Queued behind a removal: refused too.
        const [removal, late] = await Promise.allSettled([
          s.changeMember('r', 'a', 'member', null, ev('member-removed', 'e2')),
          s.append('r', msg('a', 'm3'), { requireMember: true }),
        ]);
        equal(removal.status, 'fulfilled');
        if (s.appendsInCallOrder) equal(late.status, 'rejected', 'in call order, the append comes after the removal');
        equal(await s.lastSeq('r'), late.status === 'fulfilled' ? 4 : 3);
        deepStrictEqual((await s.readAfter('r', 0, 10)).map((e) => e.clientId).filter((c) => c !== 'm3'), ['e1', 'm1', 'e2']);
      }));
    });

    roomLogConformance(run);

    refreshTokenConformance(run);

    describe('read markers', () => {
      test('markers only rise; read raises delivered; per room and user; listed by user id', run(async (s) => {
        deepStrictEqual(await s.listReceipts('r'), []);
        deepStrictEqual(await s.setReceipt('r', 'bob', 'delivered', 3, 10), { marker: { userId: 'bob', delivered: 3, read: 0, updatedAt: 10 }, changed: true });
        deepStrictEqual(await s.setReceipt('r', 'bob', 'delivered', 2, 11), { marker: { userId: 'bob', delivered: 3, read: 0, updatedAt: 10 }, changed: false });
        deepStrictEqual(await s.setReceipt('r', 'bob', 'read', 5, 12), { marker: { userId: 'bob', delivered: 5, read: 5, updatedAt: 12 }, changed: true });
        deepStrictEqual(await s.setReceipt('r', 'bob', 'read', 4, 13), { marker: { userId: 'bob', delivered: 5, read: 5, updatedAt: 12 }, changed: false });
        deepStrictEqual(await s.setReceipt('r', 'bob', 'delivered', 7, 14), { marker: { userId: 'bob', delivered: 7, read: 5, updatedAt: 14 }, changed: true });
        await s.setReceipt('r', 'alice', 'read', 1, 15);
        await s.setReceipt('other', 'bob', 'read', 9, 16);
        deepStrictEqual(await s.listReceipts('r'), [
          { userId: 'alice', delivered: 1, read: 1, updatedAt: 15 },
          { userId: 'bob', delivered: 7, read: 5, updatedAt: 14 },
        ]);
        deepStrictEqual(await s.listReceipts('other'), [{ userId: 'bob', delivered: 9, read: 9, updatedAt: 16 }]);
      }));

      test('seq must be a positive integer', run(async (s) => {
        for (const bad of [0, -1, 1.5, Number.NaN]) await rejects(s.setReceipt('r', 'u', 'read', bad, 1), RangeError);
        deepStrictEqual(await s.listReceipts('r'), []);
      }));

      test('concurrent receipts of one member end at the highest', run(async (s) => {
        const seqs = Array.from({ length: 40 }, (_, i) => ((i * 17) % 40) + 1);
        await Promise.all(seqs.map((q, i) => s.setReceipt('r', 'u', i % 2 === 0 ? 'read' : 'delivered', q, 100 + i)));
        const [m] = await s.listReceipts('r');
        equal(m?.delivered, 40);
        equal(m?.read, Math.max(...seqs.filter((_, i) => i % 2 === 0)));
      }));
    });

    describe('key backup', () => {
      test('get before put is null; put, get, overwrite; per user; the fetch-secret hash is optional', run(async (s) => {
        equal(await s.getKeyBackup('u'), null);
        await s.putKeyBackup('u', { backup: b(1, 2, 3), authHash: null, updatedAt: 100 });
        deepStrictEqual(await s.getKeyBackup('u'), { backup: b(1, 2, 3), authHash: null, updatedAt: 100 });
        const big = new Uint8Array(256 * 1024).map((_, i) => i * 7);
        const hash = new Uint8Array(32).map((_, i) => 255 - i);
        await s.putKeyBackup('u', { backup: big, authHash: hash, updatedAt: 200 });
        deepStrictEqual(await s.getKeyBackup('u'), { backup: big, authHash: hash, updatedAt: 200 });
        equal(await s.getKeyBackup('v'), null);
      }));
    });

    describe('server secrets', () => {
      test('the first value stored wins, also when callers race; names are separate', run(async (s) => {
        const racers = await Promise.all(Array.from({ length: 8 }, (_, i) => s.serverSecret('token', b(i, 0xff, 0x00))));
        const first = racers[0] as Uint8Array;
        for (const r of racers) deepStrictEqual(r, first);
        deepStrictEqual(await s.serverSecret('token', b(9, 9)), first);
        deepStrictEqual(await s.serverSecret('other', b(7)), b(7));
      }));
    });

    describe('blobs', () => {
      test('create, chunks in any order (a chunk replaced), count, complete, read back; usage per user', run(async (s) => {
        equal(await s.getBlob('x'), null);
        deepStrictEqual(await s.blobUsage('u'), { count: 0, bytes: 0, open: 0 });
        await s.createBlob({ blobId: 'x', ownerUserId: 'u', size: 300_000, createdAt: 7 });
        deepStrictEqual(await s.getBlob('x'), { blobId: 'x', ownerUserId: 'u', size: 300_000, complete: false, createdAt: 7, completedAt: null });
        const chunk = (n: number, len: number): Uint8Array => new Uint8Array(len).map((_, i) => (i * 31 + n) & 0xff);
        equal(await s.putBlobChunk('x', 2, chunk(2, 10)), true);
        await s.putBlobChunk('x', 0, chunk(9, 128 * 1024));
        await s.putBlobChunk('x', 0, chunk(0, 128 * 1024));
        equal(await s.countBlobChunks('x'), 2);
        await s.putBlobChunk('x', 1, chunk(1, 128 * 1024));
        equal(await s.countBlobChunks('x'), 3);
        deepStrictEqual(await s.blobUsage('u'), { count: 1, bytes: 300_000, open: 1 });
        equal(await s.completeBlob('x', 50), true);
        deepStrictEqual(await s.getBlob('x'), { blobId: 'x', ownerUserId: 'u', size: 300_000, complete: true, createdAt: 7, completedAt: 50 });
        equal(await s.completeBlob('x', 60), true, 'completing again is harmless ...');
        equal((await s.getBlob('x'))?.completedAt, 50, '... and keeps the first completion time');
        equal(await s.completeBlob('nope', 50), false, 'a blob that is gone is not completed');
        equal(await s.putBlobChunk('x', 0, chunk(5, 128 * 1024)), false, 'a complete blob takes no chunk');
        deepStrictEqual(await s.getBlobChunk('x', 0), chunk(0, 128 * 1024));
        deepStrictEqual(await s.getBlobChunk('x', 2), chunk(2, 10));
        equal(await s.getBlobChunk('x', 3), null);
        equal(await s.getBlobChunk('y', 0), null);
        await s.createBlob({ blobId: 'y', ownerUserId: 'u', size: 5, createdAt: 8 });
        deepStrictEqual(await s.blobUsage('u'), { count: 2, bytes: 300_005, open: 1 });
        deepStrictEqual(await s.blobUsage('v'), { count: 0, bytes: 0, open: 0 });
      }));

      test('delete removes a blob with its chunks, once; a chunk for a deleted blob is not stored', run(async (s) => {
        await s.createBlob({ blobId: 'x', ownerUserId: 'u', size: 20, createdAt: 7 });
        await s.putBlobChunk('x', 0, new Uint8Array(20).fill(1));
        await s.completeBlob('x', 9);
        await s.createBlob({ blobId: 'y', ownerUserId: 'u', size: 5, createdAt: 8 });
        await s.putBlobChunk('y', 0, new Uint8Array(5).fill(2));
        equal(await s.deleteBlob('x'), true);
        equal(await s.deleteBlob('x'), false);
        equal(await s.getBlob('x'), null);
        equal(await s.getBlobChunk('x', 0), null);
        equal(await s.countBlobChunks('x'), 0);
        deepStrictEqual(await s.blobUsage('u'), { count: 1, bytes: 5, open: 1 });
        deepStrictEqual(await s.getBlobChunk('y', 0), new Uint8Array(5).fill(2));
        equal(await s.deleteBlob('nope'), false);
        // An upload deleted while its chunks are still coming: nothing outlives it.
        equal(await s.deleteBlob('y'), true);
        equal(await s.putBlobChunk('y', 0, new Uint8Array(5).fill(3)), false);
        equal(await s.putBlobChunk('never', 0, new Uint8Array(5).fill(3)), false);
        equal(await s.countBlobChunks('y'), 0);
        equal(await s.countBlobChunks('never'), 0);
      }));

      test('a delete racing chunk writes leaves no chunk behind', run(async (s) => {
        await s.createBlob({ blobId: 'r', ownerUserId: 'u', size: 40 * 1024, createdAt: 1 });
        const writes = Array.from({ length: 40 }, (_, i) => s.putBlobChunk('r', i, new Uint8Array(1024).fill(i)));
        const deleted = s.deleteBlob('r');
        const more = Array.from({ length: 10 }, (_, i) => s.putBlobChunk('r', 40 + i, new Uint8Array(10)));
        await Promise.all([...writes, deleted, ...more]);
        equal(await deleted, true);
        equal(await s.countBlobChunks('r'), 0);
        equal(await s.getBlob('r'), null);
      }));

      test('expiry: incomplete blobs by creation, complete ones by completion (strictly before the cutoff), optionally of one owner, in batches', run(async (s) => {
        const make = async (blobId: string, ownerUserId: string, createdAt: number, completedAt: number | null): Promise<void> => {
          await s.createBlob({ blobId, ownerUserId, size: 3, createdAt });
          await s.putBlobChunk(blobId, 0, new Uint8Array(3).fill(createdAt & 0xff));
          if (completedAt !== null) await s.completeBlob(blobId, completedAt);
        };
        await make('open-old', 'u', 100, null);
        await make('open-edge', 'u', 200, null);
        await make('open-new', 'u', 300, null);
        // Created long ago, completed recently: retention counts from completion.
        await make('done-slow', 'u', 10, 250);
        await make('done-old', 'u', 100, 150);
        await make('done-edge', 'u', 100, 200);
        await make('v-open-old', 'v', 100, null);
        await make('v-done-old', 'v', 100, 150);
        const ids = ['open-old', 'open-edge', 'open-new', 'done-slow', 'done-old', 'done-edge', 'v-open-old', 'v-done-old'];
        const left = async (): Promise<string[]> => {
          const out: string[] = [];
          for (const id of ids) if ((await s.getBlob(id)) !== null) out.push(id);
          return out;
        };
        // One owner, complete blobs kept (no retention): only u's incomplete blobs created before 200.
        equal(await s.expireBlobs({ incompleteBefore: 200, completeBefore: null, ownerUserId: 'u' }, 100), 1);
        deepStrictEqual(await left(), ['open-edge', 'open-new', 'done-slow', 'done-old', 'done-edge', 'v-open-old', 'v-done-old']);
        equal(await s.countBlobChunks('open-old'), 0);
        // Everyone: incomplete created before 201, complete completed before 200 — two at a time.
        equal(await s.expireBlobs({ incompleteBefore: 201, completeBefore: 200 }, 2), 2);
        equal(await s.expireBlobs({ incompleteBefore: 201, completeBefore: 200 }, 2), 2);
        equal(await s.expireBlobs({ incompleteBefore: 201, completeBefore: 200 }, 2), 0);
        deepStrictEqual(await left(), ['open-new', 'done-slow', 'done-edge']);
        equal(await s.getBlobChunk('done-old', 0), null);
        deepStrictEqual(await s.getBlobChunk('done-edge', 0), new Uint8Array(3).fill(100));
        deepStrictEqual(await s.blobUsage('u'), { count: 3, bytes: 9, open: 1 });
        deepStrictEqual(await s.blobUsage('v'), { count: 0, bytes: 0, open: 0 });
        equal(await s.expireBlobs({ incompleteBefore: 0, completeBefore: 0 }, 100), 0);
      }));
    });

    describe('persistence', () => {
      test('everything survives close() and reopening', run(async (s, f) => {
        await s.createUser({ userId: 'u', createdAt: 1 });
        await s.addDevice({ userId: 'u', deviceId: 'd', identityKey: b(1), createdAt: 2 });
        await s.setSignedPrekey('u', 'd', { keyId: 1, publicKey: b(2), signature: b(3) });
        await s.setPqPrekey('u', 'd', { keyId: 2, publicKey: b(4), signature: b(5) });
        await s.addOneTimePrekeys('u', 'd', [{ keyId: 1, publicKey: b(6) }, { keyId: 2, publicKey: b(7) }]);
        await s.addKeyPackages('u', 'd', [{ ref: 'k', data: b(8) }]);
        await s.createRoom({ roomId: 'r', kind: 'direct', createdBy: 'u', createdAt: 3 });
        await s.setMember('r', { userId: 'u', role: 'owner' });
        const msg = { kind: 'message' as const, senderUserId: 'u', senderDeviceId: 'd', body: b(9), createdAt: 4 };
        await s.append('r', { ...msg, clientId: 'c1' });
        await s.append('r', { ...msg, clientId: 'c2' });
        const mail = { fromUserId: 'v', fromDeviceId: 'e', clientId: 'm1', payload: b(10), createdAt: 5 };
        await s.enqueueMailbox('u', 'd', mail, 10);
        await s.putRefreshToken({ tokenHash: 't', userId: 'u', deviceId: 'd', issuedAt: 6, expiresAt: 60 }, 16);
        await s.putKeyBackup('u', { backup: b(11), authHash: b(12), updatedAt: 7 });
        await s.close();

        const r = await f.reopen();
        await r.migrate();
        deepStrictEqual(await r.getUser('u'), { userId: 'u', createdAt: 1 });
        deepStrictEqual((await r.listDevices('u')).map((d) => d.deviceId), ['d']);
        deepStrictEqual(await r.getSignedPrekey('u', 'd'), { keyId: 1, publicKey: b(2), signature: b(3) });
        deepStrictEqual(await r.getPqPrekey('u', 'd'), { keyId: 2, publicKey: b(4), signature: b(5) });
        equal(await r.countOneTimePrekeys('u', 'd'), 2);
        equal(await r.countKeyPackages('u', 'd'), 1);
        deepStrictEqual(await r.listMembers('r'), [{ userId: 'u', role: 'owner' }]);
        equal(await r.lastSeq('r'), 2);
        // The counters carry on where they stopped.
        equal((await r.append('r', { ...msg, clientId: 'c3' })).entry.seq, 3);
        equal((await r.append('r', { ...msg, clientId: 'c1' })).duplicate, true);
        deepStrictEqual(await r.readMailbox('u', 'd', 0, 10), [{ id: 1, ...mail }]);
        equal((await r.enqueueMailbox('u', 'd', { ...mail, clientId: 'm2' }, 10))?.entry.id, 2);
        deepStrictEqual(await r.rotateRefreshToken('t', { tokenHash: 't2', issuedAt: 7, expiresAt: 70 }, { graceMs: 0, spentKept: 1 }), { ok: true, userId: 'u', deviceId: 'd', epoch: '' });
        deepStrictEqual(await r.getKeyBackup('u'), { backup: b(11), authHash: b(12), updatedAt: 7 });
      }));
    });
  });
}
