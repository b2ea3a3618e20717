/**
 * `parley backup` and `parley restore <user>`: the device's identity key,
 * sealed under a backup passphrase (the SDK's key backup: Secure Cell,
 * PBKDF2), kept on the server; and, on a new machine, fetched before login
 * with the secret derived from that passphrase, opened, and used once to
 * replace its device with a new one (the SDK's `ParleyClient.restore`).
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { backupFetchSecret, exportKeyBackup, keyBackupDeviceId, ParleyClient, readKeyBackupOwner, readKeyBackupReplaces, restoredDeviceIds, SdkError } from '@parley/sdk';
import { backupPassphrase, explain, newStorePassphrase, refuseArgvPassphrase, withNewStore, withSession, type BackupPassphraseOptions, type Session, type StoreOptions } from './account.ts';
import { failure, usageError } from './cli-error.ts';
import { keyFingerprint } from './devices.ts';
import { canPrompt } from './passphrase.ts';
import { note, writeLine } from './output.ts';
import { checkDeviceId, checkUserId, ensureProfileDir, profileDir, readConfig, rememberAccount, resolveServer, storePath } from './profile.ts';

export interface BackupOptions extends StoreOptions, BackupPassphraseOptions {}

export interface RestoreOptions extends BackupOptions {
  device?: string;
  /** The backed-up device the restore may remove (checked against the backup). */
  replaces?: string;
  yes?: boolean;
}

/** Below this many characters a backup passphrase gets a warning: the server can try guesses offline. */
const BACKUP_PASSPHRASE_WARN_BELOW = 16;

function passLength(p: string | Uint8Array): number {
  return typeof p === 'string' ? [...p].length : p.length;
}

function wipe(p: string | Uint8Array): void {
  if (p instanceof Uint8Array) p.fill(0);
}

/**
 * The server's backup of this very device may record a device that an
 * interrupted restore was replacing (format version 2): a new backup does
 * not, so if that device is still listed, say so — the next restore would
 * no longer remove it.
 */
async function warnIfReplacedDeviceListed(s: Session, previous: Uint8Array | null): Promise<void> {
  if (previous === null || keyBackupDeviceId(previous) !== s.device) return;
  const replaces = readKeyBackupReplaces(previous);
  if (replaces === null) return;
  const id = replaces.deviceId;
  const key = replaces.identityKey;
  if (!(await s.client.ownDevices()).some((d) => d.deviceId === id && Buffer.compare(Buffer.from(d.identityKey), Buffer.from(key)) === 0)) return;
  note(`warning: ${id} is still a device of ${s.user}: the restore that made this device was cut off before removing it. If it is not in use, remove it: parley remove-device ${id}.`);
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
      await warnIfReplacedDeviceListed(s, previous?.backup ?? null);
      const [bytes, fetchSecret] = await Promise.all([exportKeyBackup(s.store, pass), backupFetchSecret(pass, s.user)]);
      await s.client.storeKeyBackup(bytes, fetchSecret);
      const owner = keyBackupDeviceId(previous?.backup);
      if (owner !== null && owner !== s.device) note(`note: this replaced the backup of ${s.user}'s device ${owner} (the server keeps one per user).`);
    } finally {
      wipe(pass);
    }
    await writeLine(`Key backup of ${s.user} (device ${s.device}) stored on ${s.server}.`);
    note(
      `To restore it on a new machine: parley restore ${s.user} --server ${s.server} --replaces ${s.device}. ` +
        `The restored machine becomes a new device and ${s.device} is removed; messages from before the restore cannot be read there.`,
    );
  });
}

/** How long input typed before a confirmation question is taken as typed ahead, and dropped. */
const TYPED_AHEAD_MS = 50;

/**
 * Asks a yes/no question on the terminal (echoed); true only for "y" or
 * "yes". What was typed before the question showed is dropped (an answer
 * must be to the question), and end of input (Ctrl-D) is "no".
 */
async function confirmOnTerminal(question: string): Promise<boolean> {
  const stdin = process.stdin;
  // Raw for a moment: a line typed ahead without Enter is read (and dropped) too, not left to join the answer.
  let ended = stdin.readableEnded;
  const drop = (): void => undefined;
  const end = (): void => {
    ended = true;
  };
  stdin.setRawMode(true);
  stdin.on('data', drop).on('end', end);
  stdin.resume();
  await new Promise((resolve) => setTimeout(resolve, TYPED_AHEAD_MS));
  stdin.off('data', drop).off('end', end);
  stdin.setRawMode(false);
  stdin.pause();
  // Input ended before the question (Ctrl-D typed ahead, a closed terminal): no answer is "no".
  if (ended || stdin.readableEnded) return false;
  // Not as a readline terminal: the tty echoes in cooked mode, and no cursor codes follow the question.
  const rl = createInterface({ input: stdin, output: process.stderr, terminal: false });
  try {
    const ended = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
    return /^y(es)?$/i.test((await Promise.race([rl.question(question), ended])).trim());
  } finally {
    rl.close();
  }
}

/**
 * The restore removes the backed-up device: the user says so (`--replaces
 * <id>`, `--yes`, or at the prompt), since the backup may be of a device
 * still in use — the last one to run `parley backup`. A backup left by a
 * restore that was cut off also removes the device that restore replaced.
 */
async function confirmReplacement(user: string, backup: Uint8Array, storedAt: number, options: RestoreOptions): Promise<void> {
  const backedUp = readKeyBackupOwner(backup).deviceId;
  const earlier = readKeyBackupReplaces(backup)?.deviceId;
  const removed = earlier === undefined ? backedUp : `${backedUp} and, if it is still there, ${earlier} (which an interrupted restore made ${backedUp} to replace)`;
  if (options.replaces !== undefined) {
    if (options.replaces !== backedUp && options.replaces !== earlier) throw failure(`the key backup of ${user} is of device ${backedUp}, not ${options.replaces}: nothing was changed`);
    return;
  }
  if (options.yes === true) return;
  const what = `The key backup of ${user} is of device ${backedUp} (stored ${new Date(storedAt).toISOString()}). Restoring makes this machine a new device and removes ${removed}: every copy of it is logged out for good.`;
  if (!canPrompt()) throw usageError(`${what} Run again with --replaces ${backedUp} to confirm (or --yes).`);
  note(what);
  if (!(await confirmOnTerminal(`Replace ${backedUp}? [y/N] `))) throw failure(`${backedUp} was not replaced: nothing was changed`);
}

export async function restore(userArg: string, options: RestoreOptions): Promise<void> {
  refuseArgvPassphrase(options);
  const user = checkUserId(userArg);
  const wanted = options.device === undefined ? undefined : checkDeviceId(options.device);
  if (options.replaces !== undefined) checkDeviceId(options.replaces);
  const dir = profileDir(options);
  const config = readConfig(dir);
  const server = resolveServer(options, config.accounts[user]);
  const path = storePath(dir, user);
  if (existsSync(path)) {
    throw usageError(`the profile ${JSON.stringify(dir)} already has an account ${user}; restore into another profile (--profile), or move ${JSON.stringify(path)} away`);
  }
  const ctx = { server, user, action: 'backup download' };
  const pass = await backupPassphrase(options, false);
  try {
    let stored;
    try {
      stored = await ParleyClient.fetchKeyBackup(server, user, await backupFetchSecret(pass, user));
    } catch (e) {
      if (SdkError.is(e, 'AUTH_FAILED')) throw failure(`${server} has no key backup of ${user} for this passphrase (a wrong passphrase, or no 'parley backup' yet)`);
      throw explain(e, ctx);
    }
    const owner = readKeyBackupOwner(stored.backup);
    if (owner.userId !== user) throw failure(`the server's backup for ${user} belongs to ${owner.userId}`);
    if (wanted === owner.deviceId) {
      throw usageError(`the backup is of device ${owner.deviceId}; the restored device gets a new id (--device names it; leave it out for ${restoredDeviceIds(owner.deviceId)[0] ?? 'one derived from it'}): the backed-up device is removed, so that no earlier copy of it can be used`);
    }
    await confirmReplacement(user, stored.backup, stored.updatedAt, options);
    const storePass = await newStorePassphrase(options, user);
    ensureProfileDir(dir);
    // A failed or interrupted restore leaves nothing behind — unless the server already accepted the
    // new device (see withNewStore) — so that it can simply be run again.
    const kept = (account: { readonly deviceId: string } | null): void => {
      if (account !== null) rememberAccount(dir, user, { device: account.deviceId, server });
    };
    // Stopped once the new device was added: the backed-up one may still be there (the server's backup is the new device's from before its removal).
    const unfinished = (account: { readonly deviceId: string }): string =>
      `note: the restore of ${user} stopped after the new device ${account.deviceId} was added: once 'parley login ${user}' works, check 'parley devices' and remove ${owner.deviceId} if it is still listed ('parley remove-device ${owner.deviceId}').`;
    const restored = await withNewStore(path, storePass, { ctx: { ...ctx, action: 'restore' }, kept, unfinished }, async (store) => {
      let r;
      try {
        r = await ParleyClient.restore(server, stored.backup, pass, { store, ...(wanted !== undefined && { deviceId: wanted }) });
      } catch (e) {
        if (SdkError.is(e, 'BAD_PASSPHRASE')) throw failure(`the passphrase does not open the key backup of ${user}`);
        if (SdkError.is(e, 'DEVICE_REMOVED')) {
          const changed = store.account() === null ? 'nothing was changed here' : 'see the note above';
          throw failure(`the backup is of ${user}'s device ${owner.deviceId}, which was removed meanwhile (by another restore, or from another device): ${changed}; run 'parley restore ${user}' again for the newest backup`);
        }
        if (SdkError.is(e, 'SERVER') && e.serverCode === 'conflict' && wanted !== undefined) throw failure(`${user} already has (or had) a device ${wanted}: pick another --device`);
        throw e;
      }
      await r.client.close();
      return r;
    });
    const made = restored.client.deviceId;
    const replaced = restored.replaced.deviceId;
    await writeLine(`Restored ${user} from the key backup of device ${replaced} on ${server}: this machine is the new device ${made}.`);
    if (restored.replacedElsewhere) note(`warning: ${replaced} had already been removed when this restore came to remove it (by another restore of the same backup, or from another device): look at the devices below.`);
    else note(`The backed-up device ${replaced} was removed: no copy of it (the old machine, or an earlier restore) can log in again.`);
    if (restored.alsoRemoved !== null) {
      note(`Also removed: ${restored.alsoRemoved.deviceId} (${keyFingerprint(restored.alsoRemoved.identityKey)}), which the interrupted restore that made ${replaced} was replacing.`);
    }
    note(`Your contacts see ${made} as a new device of ${user}, so your safety numbers with them change. The key backup on the server is now this device's, under the same passphrase.`);
    if (restored.otherDevices.length > 0) {
      note(`${user} has other devices: ${restored.otherDevices.map((d) => `${d.deviceId} (${keyFingerprint(d.identityKey)})`).join(', ')}.`);
      note(`Each of them receives your conversations. If one is not yours — added by whoever held ${replaced}'s key before, or left by an interrupted restore — remove it: parley remove-device <id>.`);
    }
    note('Messages sent before now cannot be read on this machine (the backup holds no sessions, for forward secrecy). Conversations go on: your contacts encrypt to this device from their next message.');
  } finally {
    wipe(pass);
  }
}
