/**
 * The ClientStore both persistent stores share: every record sealed with
 * Secure Cell under keys only the passphrase opens (key hierarchy, row ids
 * and record format: sealed-records.ts), kept in a {@link RecordTable}
 * (record-table.ts) that each storage engine provides: SQLite in Node
 * (sqlite-store.ts), memory written through to IndexedDB in browsers
 * (indexeddb-store.ts). The protocol's identity, prekey and session stores
 * over these records are in sealed-protocol-stores.ts; how kept messages,
 * queued messages and kept verifications lie in a record, in
 * client-records.ts.
 *
 * Every method is one table operation or one transaction, and
 * `transaction(fn)` makes everything `fn` writes one transaction.
 *
 * @module
 */
import { IdentityKeyPair, type IdentityStore, type OneTimePrekey, type PqPrekey, type PrekeyStore, type SessionStore, type SignedPrekey } from '@parley/protocol';
import { wipe } from '@parley/themis/hazmat';
import type { Account } from './auth.ts';
import { messageRecord, queuedRecord, readMessage, readQueued, readVerification, verificationRecord } from './client-records.ts';
import { discardSpan, messageKey, type ClientStore } from './client-store.ts';
import { SdkError } from './errors.ts';
import type { KeptMessage } from './events.ts';
import { MESSAGE_CACHE_MAX } from './limits.ts';
import type { QueuedMessage } from './outbound-queue.ts';
import { peerRecordFromJson, peerRecordToJson, type PeerRecord } from './peer-keys.ts';
import type { KeptVerification } from './peer-verification.ts';
import { passedHolesFromJson, passedHolesToJson, type PassedHolesRecord } from './passed-holes.ts';
import type { RecordRow, RecordTable } from './record-table.ts';
import { sealedIdentityStore, sealedPrekeyStore, sealedSessionStore, type SealedRecordAccess } from './sealed-protocol-stores.ts';
import type { RecordKeys} from './sealed-records.ts';
import { headerInt, headerString, recordPart, type Passphrase, type PlainRecord, type RecordKind } from './sealed-records.ts';

export interface SealedStoreOptions {
  /** Kept messages (for `history`), oldest evicted first; default MESSAGE_CACHE_MAX. */
  readonly messagesMax?: number;
  /**
   * The identity of a new store (e.g. from `openKeyBackup`), instead of a
   * fresh one; copied, the caller keeps its object. `INVALID_ARGUMENT` when
   * the store already exists.
   */
  readonly identity?: IdentityKeyPair;
}

const inspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom');

/** Checks what every persistent store's `open` takes; returns messagesMax. */
export function checkOpenArguments(passphrase: Passphrase, options: SealedStoreOptions): number {
  if (!(typeof passphrase === 'string' || passphrase instanceof Uint8Array) || passphrase.length === 0) throw new SdkError('INVALID_ARGUMENT', 'passphrase must be a non-empty string or Uint8Array');
  if (typeof options !== 'object' || options === null) throw new SdkError('INVALID_ARGUMENT', 'options must be an object');
  const messagesMax = options.messagesMax ?? MESSAGE_CACHE_MAX;
  if (!Number.isSafeInteger(messagesMax) || messagesMax < 1) throw new SdkError('INVALID_ARGUMENT', 'messagesMax must be a positive integer');
  if (options.identity !== undefined && !(options.identity instanceof IdentityKeyPair)) throw new SdkError('INVALID_ARGUMENT', 'identity must be an IdentityKeyPair');
  return messagesMax;
}

/** The first row of a new store: its identity (a fresh key pair, or a copy of `given`), sealed. */
export function identityRow(keys: RecordKeys, given: IdentityKeyPair | undefined): RecordRow {
  let seed: Uint8Array;
  if (given !== undefined) seed = given.exportSeed();
  else {
    const identity = IdentityKeyPair.generate();
    seed = identity.exportSeed();
    identity.destroy();
  }
  try {
    const id = keys.rowId('identity', '');
    return { kind: 'identity', id, ord: 0, cell: keys.seal('identity', id, '', { header: {}, parts: [seed] }) };
  } finally {
    wipe(seed);
  }
}

export abstract class SealedClientStore implements ClientStore {
  readonly identity: IdentityStore;
  readonly prekeys: PrekeyStore;
  readonly sessions: SessionStore;
  readonly #table: RecordTable;
  #keys: RecordKeys;
  readonly #identityKeyPair: IdentityKeyPair;
  readonly #messagesMax: number;
  #closed = false;
  /** Who the store belongs to, for toString only (account() reads the record). */
  #label: string;
  #damaged = 0;

  protected constructor(table: RecordTable, keys: RecordKeys, messagesMax: number) {
    this.#table = table;
    this.#keys = keys;
    this.#messagesMax = messagesMax;
    const identity = this.#get('identity', '');
    if (identity === undefined) throw new SdkError('STORE', 'the store has no identity record');
    const seed = recordPart(identity, 0, 'identity');
    try {
      this.#identityKeyPair = IdentityKeyPair.fromSeed(seed);
    } catch {
      throw new SdkError('STORE', 'the identity record does not hold an identity seed');
    } finally {
      wipe(seed);
    }
    const account = this.account();
    this.#label = account === null ? 'unregistered' : `${account.userId}/${account.deviceId}`;
    const records: SealedRecordAccess = {
      get: (kind, key) => this.#get(kind, key),
      put: (kind, key, record) => this.#put(kind, key, record),
      remove: (kind, key) => this.#remove(kind, key),
    };
    this.identity = sealedIdentityStore(records, () => {
      this.#live();
      return this.#identityKeyPair;
    });
    this.prekeys = sealedPrekeyStore(records);
    this.sessions = sealedSessionStore(records);
  }

  /** The engine's name, for toString. */
  protected abstract readonly storeName: string;

  /** Whether `close` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws `CLOSED` after close. */
  protected assertOpen(): void {
    this.#live();
  }

  /**
   * Re-seal every record under `keys` (one transaction; `beforeCommit` runs
   * in it, e.g. to store the new sealed master key), then use them.
   */
  protected reseal(keys: RecordKeys, beforeCommit: () => void): void {
    this.#live();
    this.transaction(() => {
      const rows = this.#table.rows().map((row) => {
        const { key, record } = this.#keys.open(row.kind, row.id, row.cell);
        const id = keys.rowId(row.kind, key);
        const cell = keys.seal(row.kind, id, key, record);
        for (const p of record.parts) wipe(p);
        return { kind: row.kind, id, ord: row.ord, cell };
      });
      this.#table.replaceAll(rows);
      beforeCommit();
    });
    const old = this.#keys;
    this.#keys = keys;
    old.destroy();
  }

  /** Mark closed and wipe the keys (subclasses close their engine around it). Idempotent. */
  protected markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.destroy();
    this.#identityKeyPair.destroy();
  }

  // ------------------------------------------------------------ records

  #live(): void {
    if (this.#closed) throw new SdkError('CLOSED', 'store closed');
  }

  #get(kind: RecordKind, key: string): PlainRecord | undefined {
    this.#live();
    const id = this.#keys.rowId(kind, key);
    const cell = this.#table.get(kind, id);
    return cell === undefined ? undefined : this.#keys.open(kind, id, cell, key).record;
  }

  #put(kind: RecordKind, key: string, record: PlainRecord, ord = 0): void {
    this.#live();
    const id = this.#keys.rowId(kind, key);
    this.#table.put({ kind, id, ord, cell: this.#keys.seal(kind, id, key, record) });
  }

  /** Delete a record; true iff it was there (of two racing callers, one sees true). */
  #remove(kind: RecordKind, key: string): boolean {
    this.#live();
    return this.#table.remove(kind, this.#keys.rowId(kind, key));
  }

  /** Every record of a kind, in `ord` order. */
  #all(kind: RecordKind): PlainRecord[] {
    this.#live();
    return this.#table.all(kind).map((r) => this.#keys.open(kind, r.id, r.cell).record);
  }

  /**
   * Every record of `kind` that opens and reads, skipping (and counting in
   * `damagedRecords`) one that does not: a scan over many records — room
   * cursors, kept messages — must not fail as a whole for one damaged row.
   * (A damaged cursor means that room syncs from the start again; a damaged
   * kept message is left out of search.)
   */
  #allReadable<T>(kind: RecordKind, read: (r: PlainRecord) => T): T[] {
    this.#live();
    const out: T[] = [];
    for (const row of this.#table.all(kind)) {
      try {
        out.push(read(this.#keys.open(kind, row.id, row.cell).record));
      } catch (e) {
        if (!SdkError.is(e, 'STORE')) throw e;
        this.#damaged++;
      }
    }
    return out;
  }

  /** Records a scan skipped because they did not open or read (corrupt or tampered), since this store was opened. */
  get damagedRecords(): number {
    return this.#damaged;
  }

  // ------------------------------------------------------------ the client's records

  /** This device's Ed25519 identity key (what the server registers and peers pin). */
  get identityPublicKey(): Uint8Array {
    return this.#identityKeyPair.publicKey.slice();
  }

  account(): Account | null {
    const r = this.#get('state', 'account');
    return r === undefined ? null : { userId: headerString(r, 'userId', 'state'), deviceId: headerString(r, 'deviceId', 'state') };
  }
  setAccount(account: Account): void {
    this.#put('state', 'account', { header: { userId: account.userId, deviceId: account.deviceId }, parts: [] });
    this.#label = `${account.userId}/${account.deviceId}`;
  }

  addSignedPrekey(key: SignedPrekey): void {
    this.#putKey('signed-prekey', key.keyId, key.toBytes());
  }
  addPqPrekey(key: PqPrekey): void {
    this.#putKey('pq-prekey', key.keyId, key.toBytes());
  }
  addOneTimePrekeys(keys: readonly OneTimePrekey[]): void {
    this.transaction(() => {
      for (const k of keys) this.#putKey('one-time-prekey', k.keyId, k.toBytes());
    });
  }
  #putKey(kind: RecordKind, keyId: number, bytes: Uint8Array): void {
    try {
      this.#put(kind, String(keyId), { header: {}, parts: [bytes] });
    } finally {
      wipe(bytes);
    }
  }
  discardOneTimePrekeysBelow(keyId: number): number {
    return this.transaction(() => {
      const r = this.#get('state', 'prekeys-discarded-below');
      const [from, to] = discardSpan(r === undefined ? 1 : headerInt(r, 'value', 'state'), keyId);
      if (to === from) return 0;
      let removed = 0;
      for (let id = from; id < to; id++) if (this.#remove('one-time-prekey', String(id))) removed++;
      this.#put('state', 'prekeys-discarded-below', { header: { value: to }, parts: [] });
      return removed;
    });
  }
  reserveOneTimePrekeyIds(count: number): number {
    if (!Number.isSafeInteger(count) || count < 0) throw new SdkError('INVALID_ARGUMENT', 'count must be a non-negative integer');
    return this.transaction(() => {
      const r = this.#get('state', 'next-prekey-id');
      const first = r === undefined ? 1 : headerInt(r, 'value', 'state');
      this.#put('state', 'next-prekey-id', { header: { value: first + count }, parts: [] });
      return first;
    });
  }
  prekeysPublished(): boolean {
    return this.#get('state', 'prekeys-published')?.header['value'] === true;
  }
  setPrekeysPublished(published: boolean): void {
    this.#put('state', 'prekeys-published', { header: { value: published }, parts: [] });
  }

  roomCursor(roomId: string): number {
    // A damaged cursor reads as 0 (the room syncs from its start; kept copies and ids deduplicate)
    // and is overwritten by the next one: one bad row must not stop the room for good.
    try {
      const r = this.#get('room-cursor', roomId);
      return r === undefined ? 0 : headerInt(r, 'seq', 'room-cursor');
    } catch (e) {
      if (!SdkError.is(e, 'STORE')) throw e;
      this.#damaged++;
      return 0;
    }
  }
  directPeer(roomId: string): string | null {
    const r = this.#get('state', `direct-peer:${roomId}`);
    return r === undefined ? null : headerString(r, 'userId', 'state');
  }
  setDirectPeer(roomId: string, userId: string): void {
    this.#put('state', `direct-peer:${roomId}`, { header: { userId }, parts: [] });
  }

  roomCursors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [roomId, seq] of this.#allReadable('room-cursor', (r) => [headerString(r, 'roomId', 'room-cursor'), headerInt(r, 'seq', 'room-cursor')] as const)) out[roomId] = seq;
    return out;
  }
  setRoomCursor(roomId: string, seq: number): void {
    this.transaction(() => {
      if (seq > this.roomCursor(roomId)) this.#put('room-cursor', roomId, { header: { roomId, seq }, parts: [] });
    });
  }
  rewindRoomCursor(roomId: string, seq: number): void {
    this.transaction(() => {
      if (seq < this.roomCursor(roomId)) this.#put('room-cursor', roomId, { header: { roomId, seq }, parts: [] });
    });
  }
  forgetRoomCursor(roomId: string): void {
    this.transaction(() => {
      this.#remove('room-cursor', roomId);
    });
  }

  loadMessage(roomId: string, seq: number): KeptMessage | undefined {
    const r = this.#get('message', messageKey(roomId, seq));
    return r === undefined ? undefined : readMessage(r);
  }
  storeMessage(message: KeptMessage): void {
    const record = messageRecord(message);
    this.transaction(() => {
      this.#put('message', messageKey(message.roomId, message.seq), record, this.#table.nextOrd('message'));
      const excess = this.#table.count('message') - this.#messagesMax;
      if (excess > 0) this.#table.evict('message', excess);
    });
  }

  /**
   * Every kept message of `roomId` (of every room without it), oldest kept
   * first. Row ids name no room, so this opens every message record (a
   * scan; at most `messagesMax`) and keeps those of the room: nothing about
   * rooms or words is written to the file for it.
   */
  keptMessages(roomId?: string): KeptMessage[] {
    const all = this.#allReadable('message', (r) => (roomId !== undefined && r.header['roomId'] !== roomId ? null : readMessage(r)));
    return all.filter((m): m is KeptMessage => m !== null);
  }

  peerRecord(userId: string): PeerRecord | undefined {
    const r = this.#get('peer', userId);
    return r === undefined ? undefined : peerRecordFromJson(r.header['record']);
  }
  setPeerRecord(userId: string, record: PeerRecord): void {
    this.#put('peer', userId, { header: { record: peerRecordToJson(record) }, parts: [] });
  }

  // ------------------------------------------------------------ optional capabilities

  /** Run `fn` (synchronous) so that its writes take effect together or not at all; nested calls join. `fn`'s own errors pass through unchanged. */
  transaction<T>(fn: () => T): T {
    this.#live();
    return this.#table.transaction(fn);
  }

  queuedMessages(): QueuedMessage[] {
    return this.#all('outbound').map(readQueued);
  }
  addQueuedMessage(message: QueuedMessage): void {
    this.transaction(() => this.#put('outbound', message.clientId, queuedRecord(message), this.#table.nextOrd('outbound')));
  }
  removeQueuedMessage(clientId: string): void {
    this.#remove('outbound', clientId);
  }

  passedHoles(): PassedHolesRecord | null {
    const r = this.#get('state', 'passed-holes');
    // A record that does not read is dropped (its holes' entries are then taken as repeats), never trusted.
    return r === undefined ? null : passedHolesFromJson(r.header['record']);
  }
  setPassedHoles(record: PassedHolesRecord): void {
    if (record.holes.length === 0 && record.at.length === 0) this.#remove('state', 'passed-holes');
    else this.#put('state', 'passed-holes', { header: { record: passedHolesToJson(record) }, parts: [] });
  }

  keptVerifications(): KeptVerification[] {
    return this.#allReadable('verification', readVerification);
  }
  keepVerification(userId: string, kept: KeptVerification | null): void {
    if (kept === null) {
      this.#remove('verification', userId);
      return;
    }
    this.#put('verification', userId, verificationRecord(userId, kept));
  }

  toString(): string {
    return `${this.storeName}(${this.#label}, ${this.#closed ? 'closed' : 'open'}, secrets redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}
