/**
 * Key backup: what gets a user who lost their machine back into the account
 * — a device's Ed25519 identity key — sealed under a passphrase with Themis
 * Secure Cell (Seal mode, passphrase: PBKDF2-HMAC-SHA-256 with 314,110
 * iterations and a random salt, then AES-256-GCM), so the backup can be kept
 * anywhere, the server included.
 *
 * What is in it, and why only that:
 *
 * - **The identity seed.** The server knows the device by this key (login is
 *   a signature by it). `ParleyClient.restore` uses it once: it approves a
 *   new device and removes its own (device-restore.ts), so that no other
 *   copy of the key stays usable. (`importKeyBackup` + `login` bring the
 *   device itself back, in place — then every earlier copy can log in too.)
 * - **The next one-time prekey id**, for a restore in place. The server ignores an uploaded one-time
 *   prekey whose id it already holds; a restored device that counted from 1
 *   again would keep private keys for ids the server maps to old public
 *   keys. On import the counter resumes {@link ONE_TIME_PREKEY_ID_RESTORE_GAP}
 *   ids further still, past whatever the device uploaded after the backup.
 *
 * Deliberately *not* in it:
 *
 * - **Sessions.** A Double Ratchet state changes with every message: a
 *   snapshot is stale within minutes, and resuming one would re-derive
 *   message keys already used (sending under a reused key) or fail to
 *   decrypt. Keeping them would also defeat forward secrecy: whoever gets
 *   the backup and the passphrase could decrypt recorded traffic. After a
 *   restore, the device starts new sessions; messages peers encrypt under
 *   their old sessions with it cannot be read.
 * - **Private prekeys** (signed, PQ, one-time), for the same forward-secrecy
 *   reason. The restored store is unpublished, so the next login publishes
 *   fresh ones.
 * - **Trusted identities, cursors, kept messages**: `ClientStore` cannot
 *   list trusted identities yet (a later format version can add them), and
 *   the rest is not secret and can be fetched again.
 *
 * Format (what {@link exportKeyBackup} returns; integers big-endian):
 *
 * ```
 *  offset   size  field
 *  0        4     magic "PKB1" (0x50 0x4B 0x42 0x31)
 *  4        1     format version v = 0x01, or 0x02 for a backup that records the device it replaces
 *  5        1     u: length of userId, 1 … 64
 *  6        u     userId (ASCII, the server's user id pattern)
 *  6+u      1     d: length of deviceId, 1 … 64
 *  7+u      d     deviceId (ASCII, the server's device id pattern)
 *  ── version 2 only ──
 *  7+u+d    1     r: length of the replaced device's id, 1 … 64
 *  8+u+d    r     replaced deviceId (ASCII)
 *  8+u+d+r  32    replaced device's Ed25519 identity key
 *  ── both ──
 *  h        107   Secure Cell, Seal with passphrase (70-byte Themis header, 37 bytes sealed):
 *                   context v1 = UTF-8("parley-key-backup-v1\n") ‖ u8(u) ‖ userId ‖ u8(d) ‖ deviceId
 *                   context v2 = UTF-8("parley-key-backup-v2\n") ‖ u8(u) ‖ userId ‖ u8(d) ‖ deviceId
 *                                ‖ u8(r) ‖ replaced deviceId ‖ replaced identity key
 *                   plaintext  = v ‖ identity seed (32) ‖ next one-time prekey id (u32be)
 *  ── nothing may follow ──
 * ```
 *
 * Version 2 is what a restore stores for the new device (device-restore.ts)
 * until the backed-up device is removed: if the restore is cut off in
 * between, the next restore from this backup removes the replaced device
 * too (when it is still listed with that key), so a stolen one is not left
 * running by an interrupted restore.
 *
 * The ids are in clear so that a machine with nothing but the user id and
 * the passphrase learns which device the backup restores
 * ({@link readKeyBackupOwner}); they are not secret (the server knows
 * them). The cell's context binds the backup to them (and to the replaced
 * device and key): ids altered in the header, or a backup opened for
 * another account, fail exactly like a wrong passphrase (`BAD_PASSPHRASE`),
 * as does any altered byte of the cell.
 * Nothing is restored unless everything checks out.
 *
 * A backup kept by the server can be attacked offline: the passphrase's
 * strength is the protection (docs/security.md, "key backups"). Prefer a
 * generated recovery key to a memorable passphrase.
 *
 * @module
 */
import { IdentityKeyPair } from '@parley/protocol';
import { SecureCellSealWithPassphrase, ThemisError } from '@parley/themis';
import { backend, concatBytes, equalBytes, wipe } from '@parley/themis/hazmat';
import { ByteReader, ByteWriter, utf8 } from './_bytes.ts';
import { MemoryClientStore, type ClientStore } from './client-store.ts';
import { storeArg } from './_args.ts';
import { SdkError } from './errors.ts';
import { DEVICE_ID, USER_ID } from './frames.ts';

const KEY_BACKUP_MAGIC: Uint8Array = Uint8Array.of(0x50, 0x4b, 0x42, 0x31);
export const KEY_BACKUP_VERSION = 0x01;
/** The version that records the device a restore replaces. */
export const KEY_BACKUP_VERSION_REPLACING = 0x02;
/** Largest input `importKeyBackup` looks at (the server's KEY_BACKUP_BYTES_MAX); a version 1 backup is at most 242 bytes, a version 2 one 339. */
export const KEY_BACKUP_BYTES_MAX = 64 * 1024;
/** Bytes of a Themis passphrase Seal header (packages/themis, cell format). */
const CELL_OVERHEAD = 70;
const IDENTITY_SEED_BYTES = 32;
const PLAINTEXT_BYTES = 1 + IDENTITY_SEED_BYTES + 4;
/** The exact size of a backup's cell (versions 1 and 2). */
export const KEY_BACKUP_V1_CELL_BYTES = CELL_OVERHEAD + PLAINTEXT_BYTES;
const IDENTITY_KEY_BYTES = 32;
/** Longest user or device id (the SDK's ID_LENGTH_MAX). */
const ID_BYTES_MAX = 64;
/** How far past the backed-up counter a restored device's one-time prekey ids start (2^20: ~10,000 top-ups of 100). */
export const ONE_TIME_PREKEY_ID_RESTORE_GAP = 1 << 20;
/** Largest one-time prekey id (key ids are u32). */
const PREKEY_ID_MAX = 0xffff_ffff;
/** Length of the backup fetch secret (the server's BACKUP_FETCH_SECRET_BYTES). */
export const BACKUP_FETCH_SECRET_BYTES = 32;
/** PBKDF2 iterations of the fetch secret: as many as a Secure Cell's, so neither is the cheaper guess. */
export const BACKUP_FETCH_SECRET_ITERATIONS = 314_110;

const CONTEXT_LABEL = utf8('parley-key-backup-v1\n');
const CONTEXT_LABEL_REPLACING = utf8('parley-key-backup-v2\n');
const FETCH_SALT_LABEL = utf8('parley-key-backup-fetch-v1\n');

/** Which account a backup belongs to. */
export interface KeyBackupOwner {
  readonly userId: string;
  readonly deviceId: string;
}

/** The device a version 2 backup's device replaces (a restore cut off before removing it). */
export interface KeyBackupReplaced {
  readonly deviceId: string;
  /** Its Ed25519 identity key: only a device listed with this key is the one meant. */
  readonly identityKey: Uint8Array;
}

/**
 * Seal this device's identity under `passphrase` (see the module comment
 * for what is kept). The store must belong to an account (registered or
 * logged in). Takes ~0.3 s (PBKDF2), off the event loop where the platform
 * allows.
 */
export async function exportKeyBackup(store: ClientStore, passphrase: string | Uint8Array): Promise<Uint8Array> {
  storeArg(store);
  const owner = store.account();
  if (owner === null) throw new SdkError('INVALID_ARGUMENT', 'the store belongs to no account yet: register or log in first');
  return sealKeyBackup(store, owner, passphrase, null);
}

/**
 * {@link exportKeyBackup} for `owner` (which the store need not belong to
 * yet: a restore seals the new device's backup before adding it), recording
 * `replaces` (version 2) when given.
 */
export async function sealKeyBackup(store: ClientStore, owner: KeyBackupOwner, passphrase: string | Uint8Array, replaces: KeyBackupReplaced | null): Promise<Uint8Array> {
  const version = replaces === null ? KEY_BACKUP_VERSION : KEY_BACKUP_VERSION_REPLACING;
  const context = backupContext(owner, replaces);
  const pass = passphraseBytes(passphrase);
  // reserveOneTimePrekeyIds(0) reserves nothing and returns the next id.
  const nextPrekeyId = store.reserveOneTimePrekeyIds(0);
  if (!Number.isSafeInteger(nextPrekeyId) || nextPrekeyId < 1 || nextPrekeyId > PREKEY_ID_MAX) {
    throw new SdkError('INTERNAL', 'the store returned an invalid next one-time prekey id');
  }
  const seed = store.identity.identityKeyPair().exportSeed();
  const plaintext = new ByteWriter().u8(version).bytes(seed).u32be(nextPrekeyId).finish();
  try {
    const cell = await new SecureCellSealWithPassphrase(pass).encryptAsync(plaintext, context);
    const u = utf8(owner.userId);
    const d = utf8(owner.deviceId);
    const w = new ByteWriter().bytes(KEY_BACKUP_MAGIC).u8(version).u8(u.length).bytes(u).u8(d.length).bytes(d);
    if (replaces !== null) {
      const r = utf8(replaces.deviceId);
      w.u8(r.length).bytes(r).bytes(replaces.identityKey);
    }
    return w.bytes(cell).finish();
  } finally {
    wipe(seed, plaintext, pass);
  }
}

/**
 * The account a backup says it belongs to, read from its clear header
 * without the passphrase: which device to restore (pass it to
 * {@link importKeyBackup}, after checking the user id is the one being
 * restored). Not yet authenticated — the import is. Throws `MALFORMED` /
 * `LIMIT` as the import does for the same bytes.
 */
export function readKeyBackupOwner(backup: Uint8Array): KeyBackupOwner {
  return readHeader(backup).owner;
}

/** The device id a backup's header names, or null for no backup or bytes that are not one (for notes: unauthenticated). */
export function keyBackupDeviceId(backup: Uint8Array | null | undefined): string | null {
  if (backup === null || backup === undefined) return null;
  try {
    return readHeader(backup).owner.deviceId;
  } catch {
    return null;
  }
}

/** The device a backup says its device replaces (version 2), unauthenticated like the owner; null for version 1. */
export function readKeyBackupReplaces(backup: Uint8Array): KeyBackupReplaced | null {
  return readHeader(backup).replaces;
}

interface Header {
  readonly version: number;
  readonly owner: KeyBackupOwner;
  readonly replaces: KeyBackupReplaced | null;
  readonly cell: Uint8Array;
}

function readHeader(backup: Uint8Array): Header {
  if (!(backup instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'the backup is a Uint8Array');
  if (backup.length > KEY_BACKUP_BYTES_MAX) throw new SdkError('LIMIT', `a key backup is at most ${KEY_BACKUP_BYTES_MAX} bytes`);
  const r = new ByteReader(backup, 'key backup');
  if (backup.length < KEY_BACKUP_MAGIC.length + 1 || !equalBytes(r.bytes(KEY_BACKUP_MAGIC.length), KEY_BACKUP_MAGIC)) throw r.malformed('not a Parley key backup');
  const version = r.u8();
  if (version !== KEY_BACKUP_VERSION && version !== KEY_BACKUP_VERSION_REPLACING) throw r.malformed('unknown backup version');
  const userId = readId(r, USER_ID, 'user id');
  const deviceId = readId(r, DEVICE_ID, 'device id');
  let replaces: KeyBackupReplaced | null = null;
  if (version === KEY_BACKUP_VERSION_REPLACING) {
    const replacedId = readId(r, DEVICE_ID, 'replaced device id');
    if (replacedId === deviceId) throw r.malformed('a device cannot replace itself');
    replaces = { deviceId: replacedId, identityKey: r.bytes(IDENTITY_KEY_BYTES).slice() };
  }
  // One cell size: anything else is refused before PBKDF2 runs.
  const cell = r.bytes(KEY_BACKUP_V1_CELL_BYTES);
  r.end();
  return { version, owner: { userId, deviceId }, replaces, cell };
}

function readId(r: ByteReader, pattern: RegExp, what: string): string {
  const length = r.u8();
  if (length === 0 || length > ID_BYTES_MAX) throw r.malformed(`${what} length out of range`);
  // ASCII patterns: one byte per character, so Latin-1 decoding is exact for every id that matches.
  const id = String.fromCharCode(...r.bytes(length));
  if (!pattern.test(id)) throw r.malformed(`invalid ${what}`);
  return id;
}

/** What a backup restores, for a store of any kind. */
export interface RestoredKeys {
  /** The device's identity key pair. */
  readonly identity: IdentityKeyPair;
  /** The first one-time prekey id the restored device may use ({@link ONE_TIME_PREKEY_ID_RESTORE_GAP} past the backed-up counter). */
  readonly nextOneTimePrekeyId: number;
  /** The device this one replaces, if the backup records one (version 2; authenticated with the rest). */
  readonly replaces: KeyBackupReplaced | null;
}

/**
 * Open a backup for the account it was made for and return a fresh store
 * holding that identity (unpublished: the next `login` publishes new
 * prekeys). Nothing is returned unless every check passes. Throws as
 * {@link openKeyBackup}.
 */
export async function importKeyBackup(backup: Uint8Array, passphrase: string | Uint8Array, owner: KeyBackupOwner): Promise<MemoryClientStore> {
  const keys = await openKeyBackup(backup, passphrase, owner);
  const store = new MemoryClientStore(keys.identity);
  store.setAccount({ userId: owner.userId, deviceId: owner.deviceId });
  store.reserveOneTimePrekeyIds(keys.nextOneTimePrekeyId - 1);
  return store;
}

/**
 * Open a backup for the account it was made for; for stores other than
 * {@link MemoryClientStore}, which {@link importKeyBackup} fills. Throws:
 *
 * - `BAD_PASSPHRASE`: the sealed part does not open — a wrong passphrase,
 *   a backup made for another user or device than its header says, or
 *   altered bytes (one outcome: the cell cannot tell them apart, by design);
 * - `INVALID_ARGUMENT`: the header names another account than `owner`
 *   (refused before PBKDF2 runs), an empty passphrase, an invalid id;
 * - `MALFORMED`: not a Parley key backup, an unknown version, ids that do
 *   not match the id patterns, a cell not of its version's size (refused
 *   before PBKDF2 runs);
 * - `LIMIT`: input above KEY_BACKUP_BYTES_MAX, or a cell asking for more
 *   PBKDF2 iterations than Themis allows.
 */
export async function openKeyBackup(backup: Uint8Array, passphrase: string | Uint8Array, owner: KeyBackupOwner): Promise<RestoredKeys> {
  const header = readHeader(backup);
  const context = backupContext(owner, header.replaces);
  if (header.owner.userId !== owner.userId || header.owner.deviceId !== owner.deviceId) {
    throw new SdkError('INVALID_ARGUMENT', `this backup is of ${header.owner.userId}/${header.owner.deviceId}, not ${owner.userId}/${owner.deviceId}`);
  }
  const pass = passphraseBytes(passphrase);
  try {
    let plaintext: Uint8Array;
    try {
      plaintext = await new SecureCellSealWithPassphrase(pass).decryptAsync(header.cell, context);
    } catch (e) {
      // Only the code: a ThemisError's message is not for callers.
      if (e instanceof ThemisError && e.code === 'DECRYPT_FAILED') throw doesNotOpen();
      if (e instanceof ThemisError && e.code === 'LIMIT_EXCEEDED') throw new SdkError('LIMIT', 'key backup asks for more PBKDF2 iterations than allowed');
      throw new SdkError('MALFORMED', `key backup: the sealed part does not parse (${e instanceof ThemisError ? e.code : 'unexpected error'})`);
    }
    try {
      const p = new ByteReader(plaintext, 'key backup');
      if (p.u8() !== header.version) throw p.malformed('sealed content of another version');
      const seed = p.bytes(IDENTITY_SEED_BYTES);
      const nextPrekeyId = p.u32be();
      p.end();
      if (nextPrekeyId < 1) throw p.malformed('one-time prekey id 0');
      // Near the top of the id space (thousands of restores) the gap is skipped rather than wrapping.
      const fits = nextPrekeyId <= PREKEY_ID_MAX - 2 * ONE_TIME_PREKEY_ID_RESTORE_GAP;
      // Everything checked: only now make the key pair (fromSeed copies the seed).
      return { identity: IdentityKeyPair.fromSeed(seed), nextOneTimePrekeyId: fits ? nextPrekeyId + ONE_TIME_PREKEY_ID_RESTORE_GAP : nextPrekeyId, replaces: header.replaces };
    } catch (e) {
      throw SdkError.is(e) ? e : new SdkError('MALFORMED', 'key backup: the sealed content does not parse');
    } finally {
      wipe(plaintext);
    }
  } finally {
    wipe(pass);
  }
}

/**
 * The 32-byte *fetch secret* for `backup.put` / `backup.fetch`
 * (docs/protocol.md, "Key backup"): what lets a device without keys download
 * its user's backup before login. Derived from the passphrase alone, since
 * such a device has nothing else:
 *
 * ```
 * PBKDF2-HMAC-SHA-256(passphrase, UTF-8("parley-key-backup-fetch-v1\n") ‖ UTF-8(userId), 314,110, 32)
 * ```
 *
 * The server keeps its SHA-256, so it can test passphrase guesses against
 * it as fast as against the sealed backup — no faster. It reveals nothing
 * about the backup's own key (PBKDF2 with another salt).
 */
export async function backupFetchSecret(passphrase: string | Uint8Array, userId: string): Promise<Uint8Array> {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId is not a valid user id');
  const pass = passphraseBytes(passphrase);
  try {
    return await backend.pbkdf2Sha256Async(pass, concatBytes(FETCH_SALT_LABEL, utf8(userId)), BACKUP_FETCH_SECRET_ITERATIONS, BACKUP_FETCH_SECRET_BYTES);
  } finally {
    wipe(pass);
  }
}

function backupContext(owner: KeyBackupOwner, replaces: KeyBackupReplaced | null): Uint8Array {
  if (typeof owner !== 'object' || owner === null) throw new SdkError('INVALID_ARGUMENT', 'owner must be { userId, deviceId }');
  const { userId, deviceId } = owner;
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId is not a valid user id');
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) throw new SdkError('INVALID_ARGUMENT', 'deviceId is not a valid device id');
  const u = utf8(userId);
  const d = utf8(deviceId);
  if (replaces === null) return new ByteWriter().bytes(CONTEXT_LABEL).u8(u.length).bytes(u).u8(d.length).bytes(d).finish();
  if (!DEVICE_ID.test(replaces.deviceId) || replaces.deviceId === deviceId) throw new SdkError('INVALID_ARGUMENT', 'the replaced device id is not a valid device id, or is the device itself');
  if (!(replaces.identityKey instanceof Uint8Array) || replaces.identityKey.length !== IDENTITY_KEY_BYTES) throw new SdkError('INVALID_ARGUMENT', 'the replaced identity key must be 32 bytes');
  const r = utf8(replaces.deviceId);
  return new ByteWriter().bytes(CONTEXT_LABEL_REPLACING).u8(u.length).bytes(u).u8(d.length).bytes(d).u8(r.length).bytes(r).bytes(replaces.identityKey).finish();
}

/** A text passphrase is NFKC-normalised (so the same characters typed on two systems give the same bytes); bytes are taken as they are. */
function passphraseBytes(passphrase: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof passphrase === 'string') bytes = utf8(passphrase.normalize('NFKC'));
  else if (passphrase instanceof Uint8Array) bytes = passphrase.slice();
  else throw new SdkError('INVALID_ARGUMENT', 'the passphrase must be a string or a Uint8Array');
  if (bytes.length === 0) throw new SdkError('INVALID_ARGUMENT', 'the passphrase is empty');
  return bytes;
}

function doesNotOpen(): SdkError {
  return new SdkError('BAD_PASSPHRASE', 'the passphrase does not open this key backup (or it was made for another user or device, or altered)');
}
