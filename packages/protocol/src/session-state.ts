/**
 * A session's persistent form: every state it holds, serialized to bytes,
 * and sealed with Themis Secure Cell (Seal mode) under a caller key.
 *
 * ```
 * SessionRecord (integers big-endian)
 *  1     version = 0x02 (0x01: the same without the retired base keys)
 *  …     local address   u8 len ‖ UTF-8 userId ‖ u8 len ‖ UTF-8 deviceId
 *  …     remote address  (same)
 *  1     state count, 0 … 1 + ARCHIVED_STATES_MAX, current state first
 *  …     states (their skipped keys together at most SKIPPED_KEYS_MAX)
 *  1     retired base keys, 0 … RETIRED_BASE_KEYS_MAX, oldest first: 32 each
 *
 * SessionState
 *  1     role: 0x01 initiator | 0x02 responder
 *  32    local identity key (Ed25519)
 *  32    remote identity key (Ed25519)
 *  32    base key EK_A (names the session in prekey messages)
 *  1     pending prekey fields: 0x00 | 0x01 (the initiator, until the first reply)
 *  1645  prekey fields, laid out as in the envelope            (if pending)
 *  32    RK
 *  32    DHs private key
 *  32    DHs public key
 *  1+32  DHr present, DHr
 *  1+68  sending chain present, CKs (32), HKs (32), Ns (u32)
 *  1+68  receiving chain present, CKr (32), HKr (32), Nr (u32) — its key is DHr
 *  4     PN
 *  1     closed receiving chains, 0 … PREVIOUS_CHAINS_MAX: ratchet key (32), HK (32)
 *  2     skipped keys, 0 … SKIPPED_KEYS_MAX, oldest first: ratchet key (32), N (u32), MK (32)
 * ```
 *
 * The PQXDH associated data is not stored: it is recomputed from the
 * identity keys and addresses, so it cannot disagree with them.
 *
 * Sealing binds the bytes to the pair of devices: the Secure Cell context is
 * `UTF-8("parley-session-v1\n") ‖ local address ‖ remote address`, so a
 * record sealed for one peer does not open as another's, and a wrong key or
 * context is one opaque `DECRYPT_FAILED`.
 *
 * Serialized bytes hold every secret of the session: keep them only sealed.
 *
 * @module
 */
import { SecureCellSeal, ThemisError } from '@parley/themis';
import { wipe } from '@parley/themis/hazmat';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './_bytes.ts';
import { encodeAddress, readAddress, sameAddress, writeAddress, type DeviceAddress } from './address.ts';
import { skippedKeyId, type ClosedChain, type RatchetState, type ReceivingChain, type SendingChain, type SkippedKey } from './double-ratchet.ts';
import { RATCHET_KEY_LENGTH, readPrekeyFields, writePrekeyFields } from './envelope.ts';
import { decryptFailed, ProtocolError } from './errors.ts';
import { IDENTITY_KEY_LENGTH } from './identity.ts';
import { ARCHIVED_STATES_MAX, PREVIOUS_CHAINS_MAX, RETIRED_BASE_KEYS_MAX, SKIPPED_KEYS_MAX } from './limits.ts';
import { associatedData, type PrekeyMessageFields } from './pqxdh.ts';
import { KEY_LENGTH } from './ratchet-kdf.ts';

export interface SessionState {
  readonly role: 'initiator' | 'responder';
  readonly localIdentityKey: Uint8Array;
  readonly remoteIdentityKey: Uint8Array;
  /** EK_A of the PQXDH run that created this state. */
  readonly baseKey: Uint8Array;
  /** AD of PQXDH (identity keys and addresses, initiator first). */
  readonly associatedData: Uint8Array;
  /** The initial-message fields the initiator attaches until the first reply arrives. */
  pending: PrekeyMessageFields | null;
  ratchet: RatchetState;
}

export interface SessionRecord {
  readonly local: DeviceAddress;
  readonly remote: DeviceAddress;
  /** Current state first. */
  readonly states: SessionState[];
  /** Base keys of the peer's sessions dropped from the archive, oldest first (RETIRED_BASE_KEYS_MAX). */
  readonly retiredBaseKeys: Uint8Array[];
}

const RECORD_VERSION = 0x02;
/** Records written before the retired base keys: read, never written. */
const RECORD_VERSION_1 = 0x01;
const ROLE_INITIATOR = 0x01;
const ROLE_RESPONDER = 0x02;
const SEAL_PURPOSE = utf8('parley-session-v1\n');
/**
 * The sealing key's length: exactly 256 bits, like a themis SymmetricKey.
 * Exactly, not at least: Secure Cell keys its KDF with HMAC, which pads a
 * key shorter than 64 bytes with zeros, so `k` and `k ‖ 00…` would open each
 * other's records.
 */
export const SEALING_KEY_LENGTH = 32;

/** AD for a state, from its role, identity keys and the record's addresses. */
export function stateAssociatedData(role: SessionState['role'], localIdentity: Uint8Array, remoteIdentity: Uint8Array, local: DeviceAddress, remote: DeviceAddress): Uint8Array {
  return role === 'initiator' ? associatedData(localIdentity, remoteIdentity, local, remote) : associatedData(remoteIdentity, localIdentity, remote, local);
}

function writeState(w: ByteWriter, s: SessionState): void {
  const r = s.ratchet;
  w.u8(s.role === 'initiator' ? ROLE_INITIATOR : ROLE_RESPONDER)
    .bytes(s.localIdentityKey)
    .bytes(s.remoteIdentityKey)
    .bytes(s.baseKey)
    .flag(s.pending !== null);
  if (s.pending !== null) writePrekeyFields(w, s.pending);
  w.bytes(r.rootKey).bytes(r.ratchetPrivate).bytes(r.ratchetPublic);
  w.flag(r.remoteRatchetKey !== null);
  if (r.remoteRatchetKey !== null) w.bytes(r.remoteRatchetKey);
  w.flag(r.sending !== null);
  if (r.sending !== null) w.bytes(r.sending.chainKey).bytes(r.sending.headerKey).u32be(r.sending.index);
  w.flag(r.receiving !== null);
  if (r.receiving !== null) w.bytes(r.receiving.chainKey).bytes(r.receiving.headerKey).u32be(r.receiving.index);
  w.u32be(r.previousSendingLength);
  w.u8(r.closedChains.length);
  for (const c of r.closedChains) w.bytes(c.ratchetKey).bytes(c.headerKey);
  w.u16be(r.skipped.size);
  for (const k of r.skipped.values()) w.bytes(k.ratchetKey).u32be(k.messageNumber).bytes(k.messageKey);
}

function readState(r: ByteReader, local: DeviceAddress, remote: DeviceAddress): SessionState {
  const roleByte = r.u8();
  if (roleByte !== ROLE_INITIATOR && roleByte !== ROLE_RESPONDER) throw r.malformed('unknown role');
  const role = roleByte === ROLE_INITIATOR ? 'initiator' : 'responder';
  const localIdentityKey = r.copy(IDENTITY_KEY_LENGTH);
  const remoteIdentityKey = r.copy(IDENTITY_KEY_LENGTH);
  const baseKey = r.copy(RATCHET_KEY_LENGTH);
  const pending = r.flag() ? readPrekeyFields(r) : null;
  const rootKey = r.copy(KEY_LENGTH);
  const ratchetPrivate = r.copy(RATCHET_KEY_LENGTH);
  const ratchetPublic = r.copy(RATCHET_KEY_LENGTH);
  const remoteRatchetKey = r.flag() ? r.copy(RATCHET_KEY_LENGTH) : null;
  const sending: SendingChain | null = r.flag() ? { chainKey: r.copy(KEY_LENGTH), headerKey: r.copy(KEY_LENGTH), index: r.u32be() } : null;
  let receiving: ReceivingChain | null = null;
  if (r.flag()) {
    if (remoteRatchetKey === null) throw r.malformed('receiving chain without a remote ratchet key');
    receiving = { ratchetKey: remoteRatchetKey, chainKey: r.copy(KEY_LENGTH), headerKey: r.copy(KEY_LENGTH), index: r.u32be() };
  }
  const previousSendingLength = r.u32be();
  const closedCount = r.u8();
  if (closedCount > PREVIOUS_CHAINS_MAX) throw r.malformed('too many closed chains');
  const closedChains: ClosedChain[] = [];
  for (let i = 0; i < closedCount; i++) closedChains.push({ ratchetKey: r.copy(RATCHET_KEY_LENGTH), headerKey: r.copy(KEY_LENGTH) });
  const skippedCount = r.u16be();
  if (skippedCount > SKIPPED_KEYS_MAX) throw r.malformed('too many skipped keys');
  const skipped = new Map<string, SkippedKey>();
  for (let i = 0; i < skippedCount; i++) {
    const key = { ratchetKey: r.copy(RATCHET_KEY_LENGTH), messageNumber: r.u32be(), messageKey: r.copy(KEY_LENGTH) };
    const id = skippedKeyId(key.ratchetKey, key.messageNumber);
    if (skipped.has(id)) throw r.malformed('skipped key listed twice');
    skipped.set(id, key);
  }
  if (role === 'responder' && pending !== null) throw r.malformed('a responder state with pending prekey fields');
  return {
    role,
    localIdentityKey,
    remoteIdentityKey,
    baseKey,
    associatedData: stateAssociatedData(role, localIdentityKey, remoteIdentityKey, local, remote),
    pending,
    ratchet: { rootKey, ratchetPrivate, ratchetPublic, remoteRatchetKey, sending, receiving, previousSendingLength, closedChains, skipped },
  };
}

export function serializeSessionRecord(record: SessionRecord): Uint8Array {
  const w = new ByteWriter().u8(RECORD_VERSION);
  writeAddress(w, record.local);
  writeAddress(w, record.remote);
  w.u8(record.states.length);
  for (const s of record.states) writeState(w, s);
  w.u8(record.retiredBaseKeys.length);
  for (const k of record.retiredBaseKeys) w.bytes(k);
  return w.finish();
}

/** Parse a serialized record; throws `MALFORMED` (every count bounded before use). */
export function deserializeSessionRecord(bytes: Uint8Array): SessionRecord {
  const r = new ByteReader(bytes, 'session record');
  const version = r.u8();
  if (version !== RECORD_VERSION && version !== RECORD_VERSION_1) throw r.malformed('unknown version');
  const local = readAddress(r);
  const remote = readAddress(r);
  const count = r.u8();
  if (count > 1 + ARCHIVED_STATES_MAX) throw r.malformed('too many states');
  const states: SessionState[] = [];
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const state = readState(r, local, remote);
    skipped += state.ratchet.skipped.size;
    // The bound is per session, as a session keeps it: a record may not claim more.
    if (skipped > SKIPPED_KEYS_MAX) throw r.malformed('too many skipped keys');
    states.push(state);
  }
  const retiredBaseKeys: Uint8Array[] = [];
  if (version === RECORD_VERSION) {
    const retired = r.u8();
    if (retired > RETIRED_BASE_KEYS_MAX) throw r.malformed('too many retired base keys');
    for (let i = 0; i < retired; i++) retiredBaseKeys.push(r.copy(RATCHET_KEY_LENGTH));
  }
  r.end();
  return { local, remote, states, retiredBaseKeys };
}

function sealingContext(local: DeviceAddress, remote: DeviceAddress): Uint8Array {
  return concatBytes(SEAL_PURPOSE, encodeAddress(local), encodeAddress(remote));
}

function sealingKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== SEALING_KEY_LENGTH) {
    throw new ProtocolError('INVALID_ARGUMENT', `sealing key must be ${SEALING_KEY_LENGTH} bytes`);
  }
  return key;
}

/** Seal a record under `key` (Secure Cell Seal; context binds both addresses). */
export function sealSessionRecord(record: SessionRecord, key: Uint8Array): Uint8Array {
  const cell = SecureCellSeal.withKey(sealingKey(key));
  const plain = serializeSessionRecord(record);
  try {
    return cell.encrypt(plain, sealingContext(record.local, record.remote));
  } finally {
    wipe(plain);
  }
}

/**
 * Open a sealed record for the pair (`local`, `remote`). A wrong key, a
 * record sealed for another pair, or any modified byte is `DECRYPT_FAILED`.
 */
export function openSessionRecord(sealed: Uint8Array, key: Uint8Array, local: DeviceAddress, remote: DeviceAddress): SessionRecord {
  const cell = SecureCellSeal.withKey(sealingKey(key));
  let plain: Uint8Array;
  try {
    plain = cell.decrypt(sealed, sealingContext(local, remote));
  } catch (e) {
    if (e instanceof ThemisError) throw decryptFailed();
    throw e;
  }
  try {
    const record = deserializeSessionRecord(plain);
    // The context already binds the addresses; this only guards against a record sealed by buggy code.
    if (!sameAddress(record.local, local) || !sameAddress(record.remote, remote)) throw new ProtocolError('MALFORMED', 'session record is for another pair of devices');
    return record;
  } finally {
    wipe(plain);
  }
}
