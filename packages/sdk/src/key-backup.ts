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
 *  4        1     format version = 0x01
 *  5        1     u: length of userId, 1 … 64
 *  6        u     userId (ASCII, the server's user id pattern)
 *  6+u      1     d: length of deviceId, 1 … 64
 *  7+u      d     deviceId (ASCII, the server's device id pattern)
 *  7+u+d    107   Secure Cell, Seal with passphrase (70-byte Themis header, 37 bytes sealed):
 *                   context   = UTF-8("parley-key-backup-v1\n") ‖ u8(u) ‖ userId ‖ u8(d) ‖ deviceId
 *                   plaintext = 0x01 ‖ identity seed (32) ‖ next one-time prekey id (u32be)
 *  ── nothing may follow ──
 * ```
 *
 * The ids are in clear so that a machine with nothing but the user id and
 * the passphrase learns which device the backup restores
 * ({@link readKeyBackupOwner}); they are not secret (the server knows
 * them). The cell's context binds the backup to them: ids altered in the
 * header, or a backup opened for another account, fail exactly like a wrong
 * passphrase (`BAD_PASSPHRASE`), as does any altered byte of the cell.
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
/** Largest input `importKeyBackup` looks at (the server's KEY_BACKUP_BYTES_MAX); a version 1 backup is at most 242 bytes. */
export const KEY_BACKUP_BYTES_MAX = 64 * 1024;
/** Bytes of a Themis passphrase Seal header (packages/themis, cell format). */
const CELL_OVERHEAD = 70;
const IDENTITY_SEED_BYTES = 32;
const PLAINTEXT_V1_BYTES = 1 + IDENTITY_SEED_BYTES + 4;
/** The exact size of a version 1 backup's cell. */
export const KEY_BACKUP_V1_CELL_BYTES = CELL_OVERHEAD + PLAINTEXT_V1_BYTES;
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
const FETCH_SALT_LABEL = utf8('parley-key-backup-fetch-v1\n');

/** Which account a backup belongs to. */
export interface KeyBackupOwner {
  readonly userId: string;
  readonly deviceId: string;
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
  const context = backupContext(owner);
  const pass = passphraseBytes(passphrase);
  // reserveOneTimePrekeyIds(0) reserves nothing and returns the next id.
  const nextPrekeyId = store.reserveOneTimePrekeyIds(0);
  if (!Number.isSafeInteger(nextPrekeyId) || nextPrekeyId < 1 || nextPrekeyId > PREKEY_ID_MAX) {
    throw new SdkError('INTERNAL', 'the store returned an invalid next one-time prekey id');
  }
  const seed = store.identity.identityKeyPair().exportSeed();
  const plaintext = new ByteWriter().u8(KEY_BACKUP_VERSION).bytes(seed).u32be(nextPrekeyId).finish();
  try {
    const cell = await new SecureCellSealWithPassphrase(pass).encryptAsync(plaintext, context);
    const u = utf8(owner.userId);
    const d = utf8(owner.deviceId);
    return new ByteWriter().bytes(KEY_BACKUP_MAGIC).u8(KEY_BACKUP_VERSION).u8(u.length).bytes(u).u8(d.length).bytes(d).bytes(cell).finish();
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

interface Header {
  readonly owner: KeyBackupOwner;
  readonly cell: Uint8Array;
}

function readHeader(backup: Uint8Array): Header {
  if (!(backup instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'the backup is a Uint8Array');
  if (backup.length > KEY_BACKUP_BYTES_MAX) throw new SdkError('LIMIT', `a key backup is at most ${KEY_BACKUP_BYTES_MAX} bytes`);
  const r = new ByteReader(backup, 'key backup');
  if (backup.length < KEY_BACKUP_MAGIC.length + 1 || !equalBytes(r.bytes(KEY_BACKUP_MAGIC.length), KEY_BACKUP_MAGIC)) throw r.malformed('not a Parley key backup');
  if (r.u8() !== KEY_BACKUP_VERSION) throw r.malformed('unknown backup version');
  const userId = readId(r, USER_ID, 'user id');
  const deviceId = readId(r, DEVICE_ID, 'device id');
  // Version 1 has one cell size: anything else is refused before PBKDF2 runs.
  const cell = r.bytes(KEY_BACKUP_V1_CELL_BYTES);
  r.end();
  return { owner: { userId, deviceId }, cell };
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
  const context = backupContext(owner);
  const header = readHeader(backup);
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
      if (p.u8() !== KEY_BACKUP_VERSION) throw p.malformed('sealed content of another version');
      const seed = p.bytes(IDENTITY_SEED_BYTES);
      const nextPrekeyId = p.u32be();
      p.end();
      if (nextPrekeyId < 1) throw p.malformed('one-time prekey id 0');
      // Near the top of the id space (thousands of restores) the gap is skipped rather than wrapping.
      const fits = nextPrekeyId <= PREKEY_ID_MAX - 2 * ONE_TIME_PREKEY_ID_RESTORE_GAP;
      // Everything checked: only now make the key pair (fromSeed copies the seed).
      return { identity: IdentityKeyPair.fromSeed(seed), nextOneTimePrekeyId: fits ? nextPrekeyId + ONE_TIME_PREKEY_ID_RESTORE_GAP : nextPrekeyId };
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

function backupContext(owner: KeyBackupOwner): Uint8Array {
  if (typeof owner !== 'object' || owner === null) throw new SdkError('INVALID_ARGUMENT', 'owner must be { userId, deviceId }');
  const { userId, deviceId } = owner;
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId is not a valid user id');
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) throw new SdkError('INVALID_ARGUMENT', 'deviceId is not a valid device id');
  const u = utf8(userId);
  const d = utf8(deviceId);
  return new ByteWriter().bytes(CONTEXT_LABEL).u8(u.length).bytes(u).u8(d.length).bytes(d).finish();
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
