/**
 * Everything a device keeps between connections — and, with a persistent
 * implementation, between runs: its identity and private prekeys, its
 * sessions and the identity keys it trusts (the three stores of
 * `@parley/protocol`), which account it is, how far it has read each room,
 * and the messages it has decrypted or sent (for `history`).
 *
 * Two implementations: {@link MemoryClientStore} (here, everywhere) and
 * `SqliteClientStore` (Node only, from `@parley/sdk/node`: every record
 * sealed with Secure Cell under a passphrase, see sqlite-store.ts).
 *
 * Two capabilities are optional, for stores that outlive the process:
 * `transaction` (the client runs each received entry, each sealed send and
 * each history page in one, so a crash leaves either all of its writes or
 * none) and the outbound queue (`queuedMessages`, `addQueuedMessage`,
 * `removeQueuedMessage`: messages accepted by `send` and not yet stored by
 * the server are published by the next client on this store).
 *
 * @module
 */
import {
  IdentityKeyPair,
  InMemoryIdentityStore,
  InMemoryPrekeyStore,
  InMemorySessionStore,
  type OneTimePrekey,
  type PqPrekey,
  type ProtocolStores,
  type SignedPrekey,
} from '@parley/protocol';
import type { Account } from './auth.ts';
import type { KeptMessage } from './events.ts';
import type { PeerRecord } from './peer-keys.ts';
import type { KeptVerification } from './peer-verification.ts';
import { MESSAGE_CACHE_MAX, ONE_TIME_PREKEYS_DISCARD_SCAN_MAX } from './limits.ts';
import type { QueuedMessage } from './outbound-queue.ts';
import type { PassedHolesRecord } from './passed-holes.ts';
import { SdkError } from './errors.ts';

/** The symbol Node's `util.inspect` looks for: the store prints a redacted summary. */
const inspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom');

export interface ClientStore extends ProtocolStores {
  /**
   * Where writes reach the disk after the call returns (IndexedDB): resolves
   * once everything written so far is durable. The client awaits it before
   * anything leaves that depends on what was written — a message encrypted
   * by a ratchet step, public prekeys whose private halves were stored, a
   * registration — so a tab closed meanwhile cannot leave the server holding
   * what the store lost. Absent where a write is durable when it returns.
   */
  flush?(): Promise<void>;
  /** The account this store belongs to, once registered or logged in. */
  account(): Account | null;
  setAccount(account: Account): void;

  /** Keep private prekeys (before their public halves are uploaded: the server may hand them out at once). */
  addSignedPrekey(key: SignedPrekey): void;
  addPqPrekey(key: PqPrekey): void;
  addOneTimePrekeys(keys: readonly OneTimePrekey[]): void;
  /** Reserve `count` consecutive one-time prekey ids and return the first (ids are never reused). */
  reserveOneTimePrekeyIds(count: number): number;
  /**
   * Forget the private one-time prekeys with ids below `keyId` (at most
   * ONE_TIME_PREKEYS_DISCARD_SCAN_MAX ids past the last call's bound);
   * returns how many there were.
   */
  discardOneTimePrekeysBelow(keyId: number): number;
  /** Whether the server has accepted this device's signed and PQ prekeys. */
  prekeysPublished(): boolean;
  setPrekeysPublished(published: boolean): void;

  /** The highest seq this device has processed in `roomId` (0 for a room it has not seen). */
  roomCursor(roomId: string): number;
  /** The same for every room seen, to resume with `sync`. */
  roomCursors(): Record<string, number>;
  /** Record progress; a seq below the stored one is ignored. */
  setRoomCursor(roomId: string, seq: number): void;
  /** Move the cursor back to `seq` (the server's log ends below it: the seq was a false one). */
  rewindRoomCursor(roomId: string, seq: number): void;
  /** Forget a room's cursor (a room this device is no longer in, caught up to its removal). */
  forgetRoomCursor(roomId: string): void;

  /** Messages this device decrypted or sent, by room and seq. */
  loadMessage(roomId: string, seq: number): KeptMessage | undefined;
  storeMessage(message: KeptMessage): void;

  /** What this device knows of a user's device keys, and whether it verified them (peer-keys.ts). */
  peerRecord(userId: string): PeerRecord | undefined;
  setPeerRecord(userId: string, record: PeerRecord): void;

  /**
   * The other member of a direct room, pinned when this device first took
   * the room as its direct room with that user (null: none pinned). Messages
   * in a pinned room are encrypted to that user and this one only, whatever
   * member list the server gives.
   */
  directPeer(roomId: string): string | null;
  setDirectPeer(roomId: string, userId: string): void;
  /**
   * Optional: every kept message of `roomId` (of every room without it), in
   * no particular order — what `client.search` scans. Both stores of the
   * SDK have it.
   */
  keptMessages?(roomId?: string): KeptMessage[];

  /**
   * Optional. Run `fn`, which must be synchronous, so that every write it
   * makes to this store takes effect together, or (when it throws, or the
   * process dies) none does; nested calls join the outer one. Returns what
   * `fn` returns.
   */
  transaction?<T>(fn: () => T): T;

  /**
   * Optional (with the next one): the open identity verifications, one per
   * peer user, so that closing the client loses no request
   * (kept-verification.ts). Every store of the SDK has them.
   */
  keptVerifications?(): KeptVerification[];
  /** Keep the open verification with `userId`, replacing the one kept; null forgets it. */
  keepVerification?(userId: string, kept: KeptVerification | null): void;

  /**
   * Optional (with the next one): the holes the receive pipeline passed over
   * (passed-holes.ts), so that entries still missing there are processed
   * when they come after a restart too. Null when none are kept.
   */
  passedHoles?(): PassedHolesRecord | null;
  setPassedHoles?(record: PassedHolesRecord): void;

  /** Optional (with the next two): the messages waiting to be published, in queue order. */
  queuedMessages?(): QueuedMessage[];
  /** Keep a message `send` accepted, until `removeQueuedMessage`. */
  addQueuedMessage?(message: QueuedMessage): void;
  /** The server stored the message (or refused it for good): forget it. */
  removeQueuedMessage?(clientId: string): void;
}

/**
 * A ClientStore in memory: for tests, tools and short-lived clients. Keep
 * the object to resume the same device later in the same process (pass it
 * to `ParleyClient.login`); nothing survives the process. It keeps
 * neither an outbound queue (messages still queued when the client closes
 * are dropped) nor open verifications, but does keep passed holes.
 */
/** The ids [from, to) a discarding pass looks at, given the last pass's bound. */
export function discardSpan(discardedBelow: number, keyId: number): [number, number] {
  if (!Number.isSafeInteger(keyId)) throw new SdkError('INVALID_ARGUMENT', 'keyId must be an integer');
  return [discardedBelow, Math.max(discardedBelow, Math.min(keyId, discardedBelow + ONE_TIME_PREKEYS_DISCARD_SCAN_MAX))];
}

export class MemoryClientStore implements ClientStore {
  readonly identity: InMemoryIdentityStore;
  readonly prekeys = new InMemoryPrekeyStore();
  readonly sessions = new InMemorySessionStore();
  #account: Account | null = null;
  #nextPrekeyId = 1;
  #published = false;
  readonly #cursors = new Map<string, number>();
  /** Insertion-ordered, so the oldest entry is evicted first. */
  readonly #messages = new Map<string, KeptMessage>();
  readonly #peers = new Map<string, PeerRecord>();
  readonly #directPeers = new Map<string, string>();
  #passedHoles: PassedHolesRecord | null = null;
  readonly #verifications = new Map<string, KeptVerification>();
  readonly #messagesMax: number;

  constructor(identity: IdentityKeyPair, options: { messagesMax?: number } = {}) {
    this.identity = new InMemoryIdentityStore(identity);
    this.#messagesMax = options.messagesMax ?? MESSAGE_CACHE_MAX;
  }

  /** A store for a new device, with a fresh identity key pair. */
  static create(): MemoryClientStore {
    return new MemoryClientStore(IdentityKeyPair.generate());
  }

  /** This device's Ed25519 identity key (what the server registers and peers pin). */
  get identityPublicKey(): Uint8Array {
    return this.identity.identityKeyPair().publicKey.slice();
  }

  account(): Account | null {
    return this.#account;
  }
  setAccount(account: Account): void {
    this.#account = { userId: account.userId, deviceId: account.deviceId };
  }

  addSignedPrekey(key: SignedPrekey): void {
    this.prekeys.addSignedPrekey(key);
  }
  addPqPrekey(key: PqPrekey): void {
    this.prekeys.addPqPrekey(key);
  }
  addOneTimePrekeys(keys: readonly OneTimePrekey[]): void {
    this.prekeys.addOneTimePrekeys(keys);
  }
  reserveOneTimePrekeyIds(count: number): number {
    const first = this.#nextPrekeyId;
    this.#nextPrekeyId += count;
    return first;
  }
  #discardedBelow = 1;
  discardOneTimePrekeysBelow(keyId: number): number {
    const [from, to] = discardSpan(this.#discardedBelow, keyId);
    let removed = 0;
    for (let id = from; id < to; id++) if (this.prekeys.removeOneTimePrekey(id)) removed++;
    this.#discardedBelow = Math.max(this.#discardedBelow, to);
    return removed;
  }
  prekeysPublished(): boolean {
    return this.#published;
  }
  setPrekeysPublished(published: boolean): void {
    this.#published = published;
  }

  roomCursor(roomId: string): number {
    return this.#cursors.get(roomId) ?? 0;
  }
  roomCursors(): Record<string, number> {
    return Object.fromEntries(this.#cursors);
  }
  setRoomCursor(roomId: string, seq: number): void {
    if (seq > (this.#cursors.get(roomId) ?? 0)) this.#cursors.set(roomId, seq);
  }
  rewindRoomCursor(roomId: string, seq: number): void {
    if (seq < (this.#cursors.get(roomId) ?? 0)) this.#cursors.set(roomId, seq);
  }
  forgetRoomCursor(roomId: string): void {
    this.#cursors.delete(roomId);
  }

  loadMessage(roomId: string, seq: number): KeptMessage | undefined {
    return this.#messages.get(messageKey(roomId, seq));
  }
  storeMessage(message: KeptMessage): void {
    const key = messageKey(message.roomId, message.seq);
    this.#messages.delete(key);
    this.#messages.set(key, message);
    while (this.#messages.size > this.#messagesMax) {
      const oldest = this.#messages.keys().next();
      if (oldest.done === true) break;
      this.#messages.delete(oldest.value);
    }
  }

  peerRecord(userId: string): PeerRecord | undefined {
    return this.#peers.get(userId);
  }
  setPeerRecord(userId: string, record: PeerRecord): void {
    this.#peers.set(userId, record);
  }

  directPeer(roomId: string): string | null {
    return this.#directPeers.get(roomId) ?? null;
  }
  setDirectPeer(roomId: string, userId: string): void {
    this.#directPeers.set(roomId, userId);
  }

  passedHoles(): PassedHolesRecord | null {
    return this.#passedHoles;
  }
  setPassedHoles(record: PassedHolesRecord): void {
    this.#passedHoles = { holes: record.holes.slice(), at: record.at.slice() };
  }

  keptMessages(roomId?: string): KeptMessage[] {
    const all = [...this.#messages.values()];
    return roomId === undefined ? all : all.filter((m) => m.roomId === roomId);
  }

  keptVerifications(): KeptVerification[] {
    return [...this.#verifications.values()];
  }
  keepVerification(userId: string, kept: KeptVerification | null): void {
    if (kept === null) this.#verifications.delete(userId);
    else this.#verifications.set(userId, kept.state === 'request' ? { ...kept, start: kept.start.slice() } : kept);
  }

  toString(): string {
    const who = this.#account === null ? 'unregistered' : `${this.#account.userId}/${this.#account.deviceId}`;
    return `MemoryClientStore(${who}, secrets redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** The logical key of a kept message (shared by every store). */
export function messageKey(roomId: string, seq: number): string {
  return `${roomId}\n${seq}`;
}
