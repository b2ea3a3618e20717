/**
 * Restoring a device from a key backup, the part that talks to the server
 * (the backup's format is key-backup.ts): keeping the user's backup on the
 * server (docs/protocol.md, "Key backup"), fetching it before login on a
 * machine without the device's keys, and the two steps a restored device
 * takes afterwards — replacing the one-time prekeys its earlier copies left
 * in the key directory, and resetting its sessions — so that it can read,
 * and be read, again.
 *
 * Separate from the client because these are one procedure, with its own
 * frames and checks, that a device runs once in a while and that nothing
 * else in the client depends on.
 *
 * @module
 */
import { fromBase64, toBase64 } from './_bytes.ts';
import { hello } from './auth.ts';
import { CLOSE_NORMAL, Connection } from './connection.ts';
import { SdkError } from './errors.ts';
import { intField, readRooms, USER_ID, type ServerFrame } from './frames.ts';
import { BACKUP_FETCH_SECRET_BYTES, KEY_BACKUP_BYTES_MAX } from './key-backup.ts';
import type { Link } from './link.ts';
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

/** `ParleyClient.fetchKeyBackup`: the user's key backup, before login, over a connection of its own. */
export async function fetchKeyBackup(url: string, userId: string, fetchSecret: Uint8Array, options: { readonly transport?: TransportFactory } = {}): Promise<StoredKeyBackup> {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId must match [a-z0-9][a-z0-9._-]{0,63}');
  if (!(fetchSecret instanceof Uint8Array) || fetchSecret.length !== BACKUP_FETCH_SECRET_BYTES) throw new SdkError('INVALID_ARGUMENT', `fetchSecret must be ${BACKUP_FETCH_SECRET_BYTES} bytes`);
  const conn = await Connection.open(v1Url(url), { onFrame: () => undefined, onClose: () => undefined }, options.transport);
  try {
    await hello(conn);
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
  } finally {
    conn.close(CLOSE_NORMAL, 'done');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([conn.closed(), new Promise<void>((resolve) => (timer = setTimeout(resolve, FETCH_CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }
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
