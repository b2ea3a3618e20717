/**
 * Records of a persistent ClientStore, sealed at rest. Platform-neutral
 * (no database here): the key hierarchy, the row ids and the record format
 * that `sqlite-store.ts` (and any later file or IndexedDB store) writes.
 *
 * Keys. A random 32-byte **master key** is made once per store and kept
 * only sealed with Secure Cell Seal under the passphrase (PBKDF2-SHA-256,
 * Themis's 314,110 iterations, run once per open). Two keys are derived from
 * it with HMAC-SHA-256:
 *
 * ```
 * record key = HMAC(master, "parley-sdk-store-v1\nrecords")
 * row-id key = HMAC(master, "parley-sdk-store-v1\nrow ids")
 * ```
 *
 * Rows. A record has a kind (`session`, `cursor`, …) and a logical key (a
 * device address, a room id, …). Its row id is
 * `HMAC(row-id key, kind ‖ 0x00 ‖ key)`, so the file names no user, device
 * or room. Its value is a Secure Cell Seal under the record key whose
 * context is `"parley-sdk-store-v1\n" ‖ kind ‖ "\n" ‖ row id`: a value moved
 * to another row or kind does not open.
 *
 * Record plaintext (all integers big-endian), padded so that the sealed
 * size reveals a value's length only to RECORD_PAD_BYTES:
 *
 * ```
 *  offset  size  field
 *  0       1     version = 0x01
 *  1       4     J: length of the header, u32be
 *  5       J     header: UTF-8 JSON object; its "k" is the logical key
 *  5+J     1     P: number of byte parts, 0 … RECORD_PARTS_MAX
 *  ── P parts, each ─────────────────────────────────────────────
 *  +0      4     L: length, u32be
 *  +4      L     bytes
 *  ── then zero bytes up to a multiple of RECORD_PAD_BYTES ──────
 * ```
 *
 * @module
 */
import { SecureCellSeal, ThemisError } from '@parley/themis';
import { backend, concatBytes, equalBytes, wipe } from '@parley/themis/hazmat';
import { ByteReader, ByteWriter, fromUtf8, utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';

/** Sealed records are padded to a multiple of this many bytes. */
export const RECORD_PAD_BYTES = 256;
/** Byte parts in one record. */
export const RECORD_PARTS_MAX = 4;
/** Length of the master key and of a row id. */
export const MASTER_KEY_BYTES = 32;

const RECORD_VERSION = 0x01;
const PREFIX = 'parley-sdk-store-v1\n';
const MASTER_CONTEXT = utf8(`${PREFIX}master key`);

/** Every kind of record a store keeps. */
export type RecordKind =
  | 'identity'
  | 'signed-prekey'
  | 'pq-prekey'
  | 'one-time-prekey'
  | 'session'
  | 'trusted-identity'
  | 'state'
  | 'room-cursor'
  | 'message'
  | 'outbound'
  | 'peer'
  | 'verification';

/** A record in the clear: a JSON header and a few byte strings. */
export interface PlainRecord {
  readonly header: Readonly<Record<string, unknown>>;
  readonly parts: readonly Uint8Array[];
}

/** A passphrase: a string (used as UTF-8) or bytes (e.g. a generated recovery key). */
export type Passphrase = string | Uint8Array;

/** The passphrase as bytes of our own (the caller's are never wiped); refuses an empty one. */
function passphraseBytes(passphrase: unknown): Uint8Array {
  if (typeof passphrase === 'string' && passphrase.length > 0) return utf8(passphrase);
  if (passphrase instanceof Uint8Array && passphrase.length > 0) return passphrase.slice();
  throw new SdkError('INVALID_ARGUMENT', 'passphrase must be a non-empty string or Uint8Array');
}

/**
 * The keys of one open store. `seal`/`open` are synchronous and cheap;
 * only {@link RecordKeys.create} and {@link RecordKeys.unlock} run PBKDF2
 * (asynchronously, off the event loop). A new passphrase means a new master
 * key (`create`) and re-sealing every record.
 */
export class RecordKeys {
  #master: Uint8Array;
  #recordKey: Uint8Array;
  #rowIdKey: Uint8Array;

  private constructor(master: Uint8Array) {
    this.#master = master;
    this.#recordKey = backend.hmacSha256(master, [utf8(`${PREFIX}records`)]);
    this.#rowIdKey = backend.hmacSha256(master, [utf8(`${PREFIX}row ids`)]);
  }

  /** Fresh keys for a new store, and the master key sealed under `passphrase` (to keep in the file). */
  static async create(passphrase: Passphrase): Promise<{ keys: RecordKeys; sealedMaster: Uint8Array }> {
    const pass = passphraseBytes(passphrase);
    const keys = new RecordKeys(backend.randomBytes(MASTER_KEY_BYTES));
    return { keys, sealedMaster: await keys.#sealMaster(pass) };
  }

  /** Open the sealed master key with `passphrase`; `BAD_PASSPHRASE` if it does not open. */
  static async unlock(sealedMaster: Uint8Array, passphrase: Passphrase): Promise<RecordKeys> {
    const pass = passphraseBytes(passphrase);
    let master: Uint8Array;
    try {
      master = await SecureCellSeal.withPassphrase(pass).decryptAsync(sealedMaster, MASTER_CONTEXT);
    } catch (e) {
      // Only the code: a ThemisError's message is not for callers.
      if (e instanceof ThemisError && e.code === 'DECRYPT_FAILED') throw new SdkError('BAD_PASSPHRASE', 'the passphrase does not open this store');
      throw new SdkError('STORE', `the store's master key cannot be read (${e instanceof ThemisError ? e.code : 'unexpected error'})`);
    } finally {
      wipe(pass);
    }
    if (master.length !== MASTER_KEY_BYTES) {
      wipe(master);
      throw new SdkError('STORE', 'the store\'s master key has the wrong length');
    }
    return new RecordKeys(master);
  }

  /** The master key sealed under `passphrase` (PBKDF2 runs here). */
  async #sealMaster(pass: Uint8Array): Promise<Uint8Array> {
    try {
      return await SecureCellSeal.withPassphrase(pass).encryptAsync(this.#master, MASTER_CONTEXT);
    } finally {
      wipe(pass);
    }
  }

  /** The row id of a logical key: reveals neither the key nor, across kinds, whether two keys are equal. */
  rowId(kind: RecordKind, key: string): Uint8Array {
    return backend.hmacSha256(this.#rowIdKey, [utf8(kind), Uint8Array.of(0), utf8(key)]);
  }

  /** Seal a record for the row (`kind`, `key`). The plaintext is wiped afterwards. */
  seal(kind: RecordKind, rowId: Uint8Array, key: string, record: PlainRecord): Uint8Array {
    const plain = encodeRecord(key, record);
    try {
      return SecureCellSeal.withKey(this.#recordKey).encrypt(plain, cellContext(kind, rowId));
    } finally {
      wipe(plain);
    }
  }

  /**
   * Open a sealed record found at row `rowId`; `STORE` if it does not open
   * (tampered, or moved from another row) or does not parse. When `key` is
   * given, the record must be the one for that key.
   */
  open(kind: RecordKind, rowId: Uint8Array, cell: Uint8Array, key?: string): { key: string; record: PlainRecord } {
    let plain: Uint8Array;
    try {
      plain = SecureCellSeal.withKey(this.#recordKey).decrypt(cell, cellContext(kind, rowId));
    } catch {
      throw new SdkError('STORE', `a ${kind} record does not open (corrupt or tampered)`);
    }
    try {
      const opened = decodeRecord(plain, kind);
      if (key !== undefined ? opened.key !== key : !equalBytes(this.rowId(kind, opened.key), rowId)) {
        throw new SdkError('STORE', `a ${kind} record is in another record's row`);
      }
      return opened;
    } finally {
      wipe(plain);
    }
  }

  /** Wipe the keys (best effort). The object is unusable afterwards. */
  destroy(): void {
    wipe(this.#master, this.#recordKey, this.#rowIdKey);
    this.#master = new Uint8Array(0);
    this.#recordKey = new Uint8Array(0);
    this.#rowIdKey = new Uint8Array(0);
  }

  toString(): string {
    return 'RecordKeys(redacted)';
  }
  toJSON(): string {
    return this.toString();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function cellContext(kind: RecordKind, rowId: Uint8Array): Uint8Array {
  return concatBytes(utf8(`${PREFIX}${kind}\n`), rowId);
}

/** The record's plaintext (see the module comment), padded. */
export function encodeRecord(key: string, record: PlainRecord): Uint8Array {
  if (record.parts.length > RECORD_PARTS_MAX) throw new SdkError('INTERNAL', `more than ${RECORD_PARTS_MAX} parts in a record`);
  const header = utf8(JSON.stringify({ ...record.header, k: key }));
  const w = new ByteWriter().u8(RECORD_VERSION).u32be(header.length).bytes(header).u8(record.parts.length);
  let length = 1 + 4 + header.length + 1;
  for (const part of record.parts) {
    w.u32be(part.length).bytes(part);
    length += 4 + part.length;
  }
  const padded = Math.ceil(length / RECORD_PAD_BYTES) * RECORD_PAD_BYTES;
  w.bytes(new Uint8Array(padded - length));
  return w.finish();
}

/** Inverse of {@link encodeRecord}; parts are copies. */
export function decodeRecord(plain: Uint8Array, kind: RecordKind): { key: string; record: PlainRecord } {
  const r = new ByteReader(plain, `${kind} record`);
  if (r.u8() !== RECORD_VERSION) throw new SdkError('STORE', `a ${kind} record has an unknown version`);
  const text = fromUtf8(r.bytes(r.u32be()));
  let header: unknown = null;
  try {
    header = text === null ? null : JSON.parse(text);
  } catch {
    header = null;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SdkError('STORE', `a ${kind} record has no valid header`);
  const { k, ...rest } = header as Record<string, unknown>;
  if (typeof k !== 'string') throw new SdkError('STORE', `a ${kind} record has no key`);
  const count = r.u8();
  if (count > RECORD_PARTS_MAX) throw new SdkError('STORE', `a ${kind} record has too many parts`);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) parts.push(r.bytes(r.u32be()).slice());
  for (const b of r.rest()) if (b !== 0) throw new SdkError('STORE', `a ${kind} record has bytes after its padding`);
  return { key: k, record: { header: rest, parts } };
}

/** A header field that must be a string. */
export function headerString(record: PlainRecord, field: string, kind: RecordKind): string {
  const v = record.header[field];
  if (typeof v !== 'string') throw new SdkError('STORE', `a ${kind} record lacks ${field}`);
  return v;
}

/** A header field that must be a non-negative safe integer. */
export function headerInt(record: PlainRecord, field: string, kind: RecordKind): number {
  const v = record.header[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SdkError('STORE', `a ${kind} record lacks ${field}`);
  return v;
}

/** Part `i`, which must exist. */
export function recordPart(record: PlainRecord, i: number, kind: RecordKind): Uint8Array {
  const p = record.parts[i];
  if (p === undefined) throw new SdkError('STORE', `a ${kind} record lacks part ${i}`);
  return p;
}
