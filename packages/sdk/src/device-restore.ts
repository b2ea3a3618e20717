/**
 * Restoring a device from a key backup, the part that talks to the server
 * (the backup's format is key-backup.ts): keeping the user's backup on the
 * server (docs/protocol.md, "Key backup"), fetching it before login on a
 * machine without the device's keys, and replacing the backed-up device
 * with a new one.
 *
 * A restore does not bring the backed-up device back: whoever still holds
 * its key (the earlier machine, left running or stolen, or an earlier
 * restore) could log in as it too, and the server and peers could not tell
 * the copies apart. Instead the backed-up key, used once, approves a new
 * device with a key of its own (`device.add`) and then removes its own
 * device (`device.remove`), so every earlier copy is shut out for good
 * (`DEVICE_REMOVED`); the user's backup is renewed for the new device
 * first. See {@link replaceBackedUpDevice}.
 *
 * Also here, for devices restored in place by earlier versions: replacing
 * the one-time prekeys earlier copies left in the key directory, and
 * resetting sessions.
 *
 * Separate from the client because these are one procedure, with its own
 * frames and checks, that a device runs once in a while and that nothing
 * else in the client depends on.
 *
 * @module
 */
import type { IdentityKeyPair } from '@parley/protocol';
import { equalBytes, wipe } from '@parley/themis/hazmat';
import { storeArg } from './_args.ts';
import { fromBase64, toBase64 } from './_bytes.ts';
import { deviceApprovalMessage, deviceLinkMessage, deviceRemovalMessage, hello, loginDevice, type Account } from './auth.ts';
import type { ClientStore } from './client-store.ts';
import { CLOSE_DEVICE_REMOVED, CLOSE_NORMAL, Connection } from './connection.ts';
import { SdkError } from './errors.ts';
import { DEVICE_ID, intField, readKeys, readRooms, USER_ID, type ServerFrame } from './frames.ts';
import { BACKUP_FETCH_SECRET_BYTES, backupFetchSecret, KEY_BACKUP_BYTES_MAX, openKeyBackup, readKeyBackupOwner, sealKeyBackup, type KeyBackupReplaced } from './key-backup.ts';
import { RESTORE_DEVICE_ID_ATTEMPTS } from './limits.ts';
import type { Link } from './link.ts';
import type { DeviceKey } from './peer-keys.ts';
import { v1Url, type TransportFactory } from './transport.ts';

/** How long `fetchKeyBackup` waits for its connection to close. */
const FETCH_CLOSE_WAIT_MS = 2_000;

/** A key backup as the server keeps it. */
export interface StoredKeyBackup {
  readonly backup: Uint8Array;
  /** When it was stored (server clock). */
  readonly updatedAt: number;
}

function readStoredBackup(f: ServerFrame): StoredKeyBackup | null {
  if (f['backup'] === null) return null;
  const backup = typeof f['backup'] === 'string' ? fromBase64(f['backup']) : null;
  if (backup === null || backup.length === 0 || backup.length > KEY_BACKUP_BYTES_MAX) throw new SdkError('BAD_RESPONSE', 'server sent an invalid backup');
  return { backup, updatedAt: intField(f, 'updatedAt', 'backup') };
}

/** A connection of its own for one procedure before login; `fn`'s connection is closed afterwards. `closedWith` is the server's close code once it closed. */
async function withOwnConnection<T>(url: string, transport: TransportFactory | undefined, fn: (conn: Connection, closedWith: () => number | null) => Promise<T>): Promise<T> {
  let code: number | null = null;
  const conn = await Connection.open(v1Url(url), { onFrame: () => undefined, onClose: (c) => (code = c) }, transport);
  try {
    await hello(conn);
    return await fn(conn, () => code);
  } finally {
    conn.close(CLOSE_NORMAL, 'done');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([conn.closed(), new Promise<void>((resolve) => (timer = setTimeout(resolve, FETCH_CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }
}

/** `ParleyClient.fetchKeyBackup`: the user's key backup, before login, over a connection of its own. */
export async function fetchKeyBackup(url: string, userId: string, fetchSecret: Uint8Array, options: { readonly transport?: TransportFactory } = {}): Promise<StoredKeyBackup> {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId must match [a-z0-9][a-z0-9._-]{0,63}');
  if (!(fetchSecret instanceof Uint8Array) || fetchSecret.length !== BACKUP_FETCH_SECRET_BYTES) throw new SdkError('INVALID_ARGUMENT', `fetchSecret must be ${BACKUP_FETCH_SECRET_BYTES} bytes`);
  return withOwnConnection(url, options.transport, async (conn) => {
    let f: ServerFrame;
    try {
      f = await conn.request({ t: 'backup.fetch', userId, fetchSecret: toBase64(fetchSecret) }, ['backup']);
    } catch (e) {
      if (SdkError.is(e, 'SERVER') && e.serverCode === 'invalid_credentials') {
        throw new SdkError('AUTH_FAILED', `no key backup of ${userId} for this fetch secret`, { cause: e, serverCode: 'invalid_credentials' });
      }
      throw e;
    }
    const stored = readStoredBackup(f);
    if (stored === null) throw new SdkError('BAD_RESPONSE', 'backup.fetch answered without a backup');
    return stored;
  });
}

/** What happened to the backed-up device in {@link replaceBackedUpDevice}. */
export type ReplacedRemoval =
  /** This restore removed it. */
  | 'removed'
  /** It was gone when this restore came to remove it: another restore or another device removed it meanwhile. */
  | 'already-removed'
  /** The removal's answer did not come: the new device must remove it (`removeDevice`). */
  | 'pending';

/** What {@link replaceBackedUpDevice} did. */
export interface ReplacedDevice extends Account {
  /** The backed-up device, replaced by the new one (`deviceId`). */
  readonly replaced: DeviceKey;
  readonly removal: ReplacedRemoval;
  /** The device an interrupted restore meant to replace (recorded in the backup), removed by this one; null when none was listed. */
  readonly alsoRemoved: DeviceKey | null;
}

/** Options of {@link replaceBackedUpDevice}. */
export interface ReplaceOptions {
  /** The new device's id; by default derived from the backed-up one (`laptop` → `laptop-r2`, `laptop-r2` → `laptop-r3`, skipping taken ids). */
  readonly deviceId?: string;
  readonly transport?: TransportFactory;
}

const RESTORED_SUFFIX = /-r([0-9]{1,6})$/;

/**
 * The ids a restore of `previous` tries, in order: `<base>-r<n>` from the
 * number after `previous`'s own (2 for a device never restored), cut to fit
 * the id length.
 */
export function restoredDeviceIds(previous: string): string[] {
  const m = RESTORED_SUFFIX.exec(previous);
  const base = m === null ? previous : previous.slice(0, m.index);
  const first = m === null ? 2 : Number(m[1]) + 1;
  const ids: string[] = [];
  for (let n = first; ids.length < RESTORE_DEVICE_ID_ATTEMPTS; n++) {
    const suffix = `-r${n}`;
    ids.push(base.slice(0, 64 - suffix.length) + suffix);
  }
  return ids;
}

/**
 * Replace the device a key backup holds with a new device, whose identity
 * `store` (fresh, of no account yet) holds — the first half of
 * `ParleyClient.restore`, which then logs the new device in. Over a
 * connection of its own, the backed-up key:
 *
 * 1. logs in as its device — `DEVICE_REMOVED` if that device is gone (an
 *    older backup, replaced by a later restore or removed by the user:
 *    nothing is changed); if the backup records a device it replaces (a
 *    restore cut off before step 4), removes that one when still listed
 *    with its key;
 * 2. approves the new device (`device.add`); on success `store` becomes the
 *    new device's (`setAccount`, flushed);
 * 3. replaces the user's backup on the server with one of the new device,
 *    under the same passphrase, recording the device it replaces (version
 *    2, see key-backup.ts; sealed before step 2, so that nothing slow runs
 *    between the add and the removal) — before anything is removed,
 *    so that whenever the procedure stops from here on (a crash, a lost
 *    connection, a store that was never kept) the server holds a backup of
 *    a device that exists, and restoring again works;
 * 4. removes its own device (`device.remove`), which ends every session of
 *    every earlier copy at once and keeps them out for good.
 *
 * A failure in step 3 stops before step 4 (the backed-up device stays, and
 * so does its backup). Throws as `openKeyBackup`, and `INVALID_ARGUMENT` for
 * a store already of an account or a `deviceId` that is the backed-up one;
 * `SERVER` `conflict` when a given `deviceId` is taken, or `limit_exceeded`
 * when the user has all the devices or ids the server allows (nothing is
 * changed then).
 */
export async function replaceBackedUpDevice(url: string, backup: Uint8Array, passphrase: string | Uint8Array, store: ClientStore, options: ReplaceOptions = {}): Promise<ReplacedDevice> {
  storeArg(store);
  if (store.account() !== null) throw new SdkError('INVALID_ARGUMENT', 'a restore needs a fresh store (this one belongs to an account)');
  if (options.deviceId !== undefined && (typeof options.deviceId !== 'string' || !DEVICE_ID.test(options.deviceId))) {
    throw new SdkError('INVALID_ARGUMENT', 'options.deviceId must match [A-Za-z0-9_-]{1,64}');
  }
  const owner = readKeyBackupOwner(backup);
  if (options.deviceId === owner.deviceId) throw new SdkError('INVALID_ARGUMENT', `the restored device needs an id other than the backed-up ${owner.deviceId}`);
  // Both PBKDF2s before anything is sent: between the add and the removal nothing slow may run (a thief holding the old key
  // and watching `devices.changed` would have that long to act).
  const [keys, fetchSecret] = await Promise.all([openKeyBackup(backup, passphrase, owner), backupFetchSecret(passphrase, owner.userId)]);
  const old = keys.identity;
  const replaced: DeviceKey = { deviceId: owner.deviceId, identityKey: old.publicKey.slice() };
  try {
    return await withOwnConnection(url, options.transport, async (conn, closedWith) => {
      const removed = (e: unknown): SdkError =>
        new SdkError('DEVICE_REMOVED', `the backup is of ${owner.userId}'s device ${owner.deviceId}, which was removed (replaced by a later restore, or removed by another device): restore from the newest backup`, { cause: e, serverCode: 'device_removed' });
      let added: { deviceId: string; backup: Uint8Array };
      let alsoRemoved: DeviceKey | null = null;
      try {
        await loginDevice(conn, old, owner);
        // A restore from this backup was cut off before it removed the device it replaced: remove that one first.
        if (keys.replaces !== null && (await removeIfListed(conn, old, owner, keys.replaces))) alsoRemoved = { deviceId: keys.replaces.deviceId, identityKey: keys.replaces.identityKey.slice() };
        added = await addReplacement(conn, old, owner, store, options.deviceId, (account) => sealKeyBackup(store, account, passphrase, replaced));
        await conn.request({ t: 'backup.put', backup: toBase64(added.backup), fetchSecret: toBase64(fetchSecret) }, ['backup.stored']);
      } catch (e) {
        // Removed before, or meanwhile (its sessions end with 4003: another restore of this backup got there first).
        if (SdkError.is(e, 'DEVICE_REMOVED') || (SdkError.is(e, 'CLOSED') && closedWith() === CLOSE_DEVICE_REMOVED)) throw removed(e);
        throw e;
      }
      let removal: ReplacedRemoval;
      try {
        // Gone meanwhile: another restore of the same backup got there first.
        removal = (await requestRemoval(conn, old, owner, replaced)) ? 'removed' : 'already-removed';
      } catch {
        // No answer: the new device removes it after logging in.
        removal = 'pending';
      }
      return { userId: owner.userId, deviceId: added.deviceId, replaced, removal, alsoRemoved };
    });
  } finally {
    old.destroy();
    wipe(fetchSecret);
  }
}

/** Step 1's second half: remove `target` (a device an interrupted restore meant to replace) if the directory still lists it with its key; whether this removed it. */
async function removeIfListed(conn: Connection, old: IdentityKeyPair, owner: Account, target: KeyBackupReplaced): Promise<boolean> {
  const listed = readKeys(await conn.request({ t: 'keys.fetch', userId: owner.userId, claimFor: [] }, ['keys']), owner.userId);
  if (!listed.some((d) => d.deviceId === target.deviceId && equalBytes(d.identityKey, target.identityKey))) return false;
  return requestRemoval(conn, old, owner, target);
}

/** `device.remove` of `target` (`old`'s own device included), approved by `old`: true once removed, false when it was gone already. */
async function requestRemoval(conn: Connection, old: IdentityKeyPair, owner: Account, target: DeviceKey): Promise<boolean> {
  const approval = old.sign(deviceRemovalMessage(owner.userId, owner.deviceId, target.deviceId, target.identityKey));
  try {
    await conn.request({ t: 'device.remove', deviceId: target.deviceId, approval: toBase64(approval) }, ['device.removed']);
    return true;
  } catch (e) {
    if (SdkError.is(e, 'SERVER') && e.serverCode === 'not_found') return false;
    throw e;
  }
}

/**
 * Step 2 of {@link replaceBackedUpDevice}: `device.add` of the store's
 * identity, approved by `old`, under the first id not taken; `seal` makes
 * the new device's backup for an id before it is offered (see above).
 */
async function addReplacement(
  conn: Connection,
  old: IdentityKeyPair,
  owner: Account,
  store: ClientStore,
  wanted: string | undefined,
  seal: (account: Account) => Promise<Uint8Array>,
): Promise<{ deviceId: string; backup: Uint8Array }> {
  const identity = store.identity.identityKeyPair();
  // The key the server is about to learn must be on disk first (IndexedDB writes land later): the backed-up device is removed next.
  await store.flush?.();
  for (const deviceId of wanted === undefined ? restoredDeviceIds(owner.deviceId) : [wanted]) {
    const backup = await seal({ userId: owner.userId, deviceId });
    const signature = identity.sign(deviceLinkMessage(owner.userId, deviceId));
    const approval = old.sign(deviceApprovalMessage(owner.userId, owner.deviceId, deviceId, identity.publicKey));
    let added: ServerFrame;
    try {
      added = await conn.request(
        { t: 'device.add', deviceId, identityKey: toBase64(identity.publicKey), signature: toBase64(signature), approval: toBase64(approval) },
        ['device.added'],
      );
    } catch (e) {
      // A taken id (a live device, or a removed one's: never given out again): try the next one.
      if (wanted === undefined && SdkError.is(e, 'SERVER') && e.serverCode === 'conflict') continue;
      throw e;
    }
    if (added['userId'] !== owner.userId || added['deviceId'] !== deviceId) throw new SdkError('BAD_RESPONSE', 'device.added names another device than the one added');
    store.setAccount({ userId: owner.userId, deviceId });
    await store.flush?.();
    return { deviceId, backup };
  }
  throw new SdkError('SERVER', `every device id tried for the restored device is taken (${RESTORE_DEVICE_ID_ATTEMPTS} of them): pass one`, { serverCode: 'conflict' });
}

export interface DeviceRestoreHooks {
  /** The client's link: requests, and whether the client closed. */
  readonly link: Pick<Link, 'request' | 'ended' | 'endError' | 'assertOpen'>;
  /** Send a session-reset control message in `roomId`; resolves once the server stored it. */
  sendSessionReset(roomId: string): Promise<unknown>;
  /** Replace this device's one-time prekeys in the key directory (prekey-upkeep.ts); resolves with how many were dropped. */
  replacePrekeys(): Promise<number>;
}

export class DeviceRestore {
  readonly #hooks: DeviceRestoreHooks;

  constructor(hooks: DeviceRestoreHooks) {
    this.#hooks = hooks;
  }

  /** `ParleyClient.storeKeyBackup`: keep `backup` on the server, with the fetch secret that lets it out before login. */
  async storeKeyBackup(backup: Uint8Array, fetchSecret?: Uint8Array): Promise<{ readonly updatedAt: number }> {
    this.#hooks.link.assertOpen();
    if (!(backup instanceof Uint8Array) || backup.length === 0 || backup.length > KEY_BACKUP_BYTES_MAX) throw new SdkError('INVALID_ARGUMENT', `a key backup is 1…${KEY_BACKUP_BYTES_MAX} bytes`);
    if (fetchSecret !== undefined && (!(fetchSecret instanceof Uint8Array) || fetchSecret.length !== BACKUP_FETCH_SECRET_BYTES)) {
      throw new SdkError('INVALID_ARGUMENT', `fetchSecret must be ${BACKUP_FETCH_SECRET_BYTES} bytes`);
    }
    const f = await this.#hooks.link.request({ t: 'backup.put', backup: toBase64(backup), ...(fetchSecret !== undefined && { fetchSecret: toBase64(fetchSecret) }) }, ['backup.stored']);
    return { updatedAt: intField(f, 'updatedAt', 'backup.stored') };
  }

  /** `ParleyClient.loadKeyBackup`: the user's key backup on the server, or null. */
  async loadKeyBackup(): Promise<StoredKeyBackup | null> {
    this.#hooks.link.assertOpen();
    return readStoredBackup(await this.#hooks.link.request({ t: 'backup.get' }, ['backup']));
  }

  /** `ParleyClient.discardStaleOneTimePrekeys`: replace every one-time prekey the directory holds for this device with fresh ones of this store. */
  async discardStaleOneTimePrekeys(): Promise<number> {
    this.#hooks.link.assertOpen();
    return this.#hooks.replacePrekeys();
  }

  /** `ParleyClient.resetSessions`: a session reset in every room this user is in; the number of rooms told. */
  async resetSessions(): Promise<number> {
    this.#hooks.link.assertOpen();
    let told = 0;
    for (const room of readRooms(await this.#hooks.link.request({ t: 'room.list' }, ['rooms']))) {
      try {
        await this.#hooks.sendSessionReset(room.roomId);
        told++;
      } catch (e) {
        // A room with no one else to tell is not a failure.
        if (!SdkError.is(e, 'NO_RECIPIENTS')) throw e;
      }
    }
    return told;
  }
}
