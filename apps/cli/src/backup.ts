/**
 * `parley backup` and `parley restore <user>`: the device's identity key,
 * sealed under a backup passphrase (the SDK's key backup: Secure Cell,
 * PBKDF2), kept on the server; and, on a new machine, fetched before login
 * with the secret derived from that passphrase, opened, and logged in as
 * the same device.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { backupFetchSecret, exportKeyBackup, openKeyBackup, ParleyClient, readKeyBackupOwner, SdkError } from '@parley/sdk';
import { backupPassphrase, explain, newStorePassphrase, refuseArgvPassphrase, withNewStore, withSession, type BackupPassphraseOptions, type StoreOptions } from './account.ts';
import { failure, usageError } from './cli-error.ts';
import { note, writeLine } from './output.ts';
import { checkDeviceId, checkUserId, ensureProfileDir, profileDir, readConfig, rememberAccount, resolveServer, storePath } from './profile.ts';

export interface BackupOptions extends StoreOptions, BackupPassphraseOptions {}

export interface RestoreOptions extends BackupOptions {
  device?: string;
}

/** Below this many characters a backup passphrase gets a warning: the server can try guesses offline. */
const BACKUP_PASSPHRASE_WARN_BELOW = 16;

function passLength(p: string | Uint8Array): number {
  return typeof p === 'string' ? [...p].length : p.length;
}

function wipe(p: string | Uint8Array): void {
  if (p instanceof Uint8Array) p.fill(0);
}

export async function backup(options: BackupOptions): Promise<void> {
  refuseArgvPassphrase(options);
  await withSession(options, async (s) => {
    const pass = await backupPassphrase(options, true);
    try {
      if (passLength(pass) < BACKUP_PASSPHRASE_WARN_BELOW) {
        note(`warning: the backup passphrase is short. The server keeps the backup and could try passphrases offline; a long random one (${BACKUP_PASSPHRASE_WARN_BELOW}+ characters) is what protects it.`);
      }
      if (s.isStorePassphrase(typeof pass === 'string' ? Buffer.from(pass, 'utf8') : pass)) {
        note("warning: the backup passphrase is the store's. Whoever guesses it at the backup (the server can try offline) can also open the store file; a different one is safer.");
      }
      const previous = await s.client.loadKeyBackup();
      const [bytes, fetchSecret] = await Promise.all([exportKeyBackup(s.store, pass), backupFetchSecret(pass, s.user)]);
      await s.client.storeKeyBackup(bytes, fetchSecret);
      if (previous !== null) {
        let owner: string | null = null;
        try {
          owner = readKeyBackupOwner(previous.backup).deviceId;
        } catch {
          owner = null;
        }
        if (owner !== null && owner !== s.device) note(`note: this replaced the backup of ${s.user}'s device ${owner} (the server keeps one per user).`);
      }
    } finally {
      wipe(pass);
    }
    await writeLine(`Key backup of ${s.user} (device ${s.device}) stored on ${s.server}.`);
    note(
      `To restore it on a new machine: parley restore ${s.user} --device ${s.device} --server ${s.server}. ` +
        'It holds the identity key only: messages from before the restore cannot be read there; after the restore your contacts are told to start new sessions.',
    );
  });
}

export async function restore(userArg: string, options: RestoreOptions): Promise<void> {
  refuseArgvPassphrase(options);
  const user = checkUserId(userArg);
  const wanted = options.device === undefined ? undefined : checkDeviceId(options.device);
  const dir = profileDir(options);
  const config = readConfig(dir);
  const server = resolveServer(options, config.accounts[user]);
  const path = storePath(dir, user);
  if (existsSync(path)) {
    throw usageError(`the profile ${JSON.stringify(dir)} already has an account ${user}; restore into another profile (--profile), or move ${JSON.stringify(path)} away`);
  }
  const ctx = { server, user, action: 'backup download' };
  const pass = await backupPassphrase(options, false);
  let keys;
  let owner;
  try {
    const fetchSecret = await backupFetchSecret(pass, user);
    let stored;
    try {
      stored = await ParleyClient.fetchKeyBackup(server, user, fetchSecret);
    } catch (e) {
      if (SdkError.is(e, 'AUTH_FAILED')) throw failure(`${server} has no key backup of ${user} for this passphrase (a wrong passphrase, or no 'parley backup' yet)`);
      throw e;
    }
    owner = readKeyBackupOwner(stored.backup);
    if (owner.userId !== user) throw failure(`the server's backup for ${user} belongs to ${owner.userId}`);
    if (wanted !== undefined && owner.deviceId !== wanted) throw failure(`the key backup of ${user} is of device ${owner.deviceId}, not ${wanted}`);
    keys = await openKeyBackup(stored.backup, pass, owner);
  } catch (e) {
    if (SdkError.is(e, 'BAD_PASSPHRASE')) throw failure(`the passphrase does not open the key backup of ${user}`);
    throw explain(e, ctx);
  } finally {
    wipe(pass);
  }
  const device = owner.deviceId;
  const { identity, nextOneTimePrekeyId } = keys;
  /** Whether the contacts were told to start new sessions (then they need not wait for this device to write). */
  let contactsTold = false;
  try {
    const storePass = await newStorePassphrase(options, user);
    ensureProfileDir(dir);
    // A failed or interrupted restore leaves nothing behind — unless the server already accepted the
    // device's login (see withNewStore) — so that it can simply be run again.
    const kept = (): void => rememberAccount(dir, user, { device, server });
    await withNewStore(path, storePass, { ctx: { ...ctx, device, action: 'login' }, identity, kept }, async (store) => {
      // One-time prekey ids continue past the old device's (see the SDK's key-backup.ts).
      store.reserveOneTimePrekeyIds(nextOneTimePrekeyId - 1);
      const client = await ParleyClient.login(server, user, device, { store });
      try {
        // The earlier copy's one-time prekeys are still handed out, and their private halves are gone.
        await client.discardStaleOneTimePrekeys();
      } catch {
        note("warning: could not remove the old device's one-time prekeys from the server; until they are used up, a new contact's first message may be unreadable here");
      }
      try {
        // Peers still hold sessions with the old copy: tell them to start over with this one.
        const rooms = await client.resetSessions();
        contactsTold = true;
        if (rooms > 0) note(`Told the members of ${rooms} conversation${rooms === 1 ? '' : 's'} to start new sessions with this device.`);
      } catch {
        note("warning: could not tell your contacts to start over; their messages stay unreadable here until you write to them");
      } finally {
        await client.close();
      }
    });
  } finally {
    identity.destroy();
  }
  await writeLine(`Restored ${user} (device ${device}) from its key backup on ${server}.`);
  // What peers send once their client has the session reset is readable here (the SDK's resetSessions).
  const existing = contactsTold
    ? "in existing ones, what your contacts send once their parley has received the request to start new sessions (when it next connects) can be read here: you need not write first"
    : 'in an existing one, write first (see the warning above): what the others send before that cannot be read here';
  note(`Messages sent before now cannot be read on this machine (the backup holds no sessions, for forward secrecy). New conversations work at once; ${existing}.`);
}
