/**
 * `ParleyClient`: one device of one user, connected to a Parley server.
 *
 * - **Connecting.** `register` creates the user with this device (identity
 *   key from the store, a new one by default) and publishes its prekeys;
 *   `login` resumes a device whose identity the store holds. The client then
 *   stays connected (link.ts: reconnect with backoff, token renewal), and
 *   every new connection catches up with `sync` from the last seq processed
 *   per room before live deliveries are released.
 * - **Sending.** `send` encrypts once for every device of every room member
 *   (and this user's other devices), in call order, and queues one room
 *   message; the queue publishes across reconnects with a stable clientId
 *   (outbound-queue.ts), and `send` resolves when the server has stored it.
 * - **Receiving.** `message` events, in room order, exactly once; anything
 *   undecryptable is a `decryptionError` event (inbound.ts).
 *
 * Listeners attached in `options.on`, or synchronously after `register` or
 * `login` resolves, see every message: catching up starts on the next turn
 * of the event loop.
 *
 * @module
 */
import type { DeviceAddress } from '@parley/protocol';
import { randomId, toBase64 } from './_bytes.ts';
import { deviceLinkMessage, type Account } from './auth.ts';
import { MemoryClientStore, type ClientStore } from './client-store.ts';
import type { Connection } from './connection.ts';
import { DeviceDirectory } from './device-directory.ts';
import { Emitter, type Listener } from './emitter.ts';
import { asSdkError, SdkError } from './errors.ts';
import type { ClientEvents, HistoryEntry } from './events.ts';
import { DEVICE_ID, readEntry, readMembers, readRooms, readSynced, ROOM_ID, stringField, USER_ID, type ServerFrame } from './frames.ts';
import { Inbound } from './inbound.ts';
import { BODY_BYTES_MAX, HISTORY_PAGE_MAX, SYNC_TIMEOUT_MS } from './limits.ts';
import { Link, type EstablishMode } from './link.ts';
import { OutboundQueue, type Ack, type QueuedMessage } from './outbound-queue.ts';
import { encodePayload, type PayloadContent } from './payload.ts';
import { maintainPrekeys } from './prekey-upkeep.ts';
import { sealRoomMessage, type SkippedDevice } from './room-cipher.ts';
import { v1Url, type TransportFactory } from './transport.ts';

export interface ClientOptions {
  /** Where the device's identity, keys, sessions and read positions live. `register` makes a MemoryClientStore when absent. */
  readonly store?: ClientStore;
  /** Listeners attached before anything is received. */
  readonly on?: { readonly [K in keyof ClientEvents]?: Listener<ClientEvents[K]> };
  /** The socket implementation (default: `ws`). */
  readonly transport?: TransportFactory;
  /** Re-establish lost connections (default true). When false, a lost connection closes the client. */
  readonly reconnect?: boolean;
}

export interface SendResult {
  /** The message id (inside the payload, and the room entry's clientId). */
  readonly id: string;
  readonly roomId: string;
  readonly seq: number;
  readonly sentAt: number;
  readonly serverTs: number;
  /** The devices the message was encrypted for. */
  readonly recipients: readonly DeviceAddress[];
  /** Devices of room members that could not be encrypted for, and why (no keys published, identity changed, …). */
  readonly skipped: readonly SkippedDevice[];
}

const HISTORY_PAGE_DEFAULT = 50;

function checkAccount(userId: unknown, deviceId: unknown): Account {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId must match [a-z0-9][a-z0-9._-]{0,63}');
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) throw new SdkError('INVALID_ARGUMENT', 'deviceId must match [A-Za-z0-9_-]{1,64}');
  return { userId, deviceId };
}

/** What a new device hands an existing one so it can be added (`ParleyClient.deviceLinkRequest`). */
export interface DeviceLinkRequest {
  readonly userId: string;
  readonly deviceId: string;
  /** The new device's Ed25519 identity key. */
  readonly identityKey: Uint8Array;
  /** Its signature over `parley-add-device-v1 \n userId \n deviceId`. */
  readonly signature: Uint8Array;
}

export class ParleyClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly store: ClientStore;
  readonly #link: Link;
  readonly #events: Emitter<ClientEvents>;
  readonly #directory: DeviceDirectory;
  readonly #queue: OutboundQueue;
  readonly #inbound: Inbound;
  readonly #syncWaiters: { resolve: () => void; reject: (e: SdkError) => void }[] = [];
  readonly #members = new Map<string, Promise<readonly string[]>>();
  readonly #directs = new Map<string, Promise<string>>();
  #sendChain: Promise<unknown> = Promise.resolve();
  #prekeyCheck: Promise<void> | null = null;

  private constructor(url: string, account: Account, store: ClientStore, options: ClientOptions) {
    this.userId = account.userId;
    this.deviceId = account.deviceId;
    this.store = store;
    this.#events = new Emitter<ClientEvents>((event, e) => {
      if (event !== 'error') this.#events.emit('error', new SdkError('INTERNAL', `a ${String(event)} listener threw`, { cause: e }));
    });
    const on = options.on ?? {};
    const attach = <K extends keyof ClientEvents>(event: K): void => {
      const listener = on[event];
      if (listener !== undefined) this.#events.on(event, listener);
    };
    for (const event of Object.keys(on) as (keyof ClientEvents)[]) attach(event);
    this.#link = new Link(
      { url, account, identity: () => store.identity.identityKeyPair(), transport: options.transport, reconnect: options.reconnect ?? true },
      {
        frame: (f) => this.#onFrame(f),
        established: (conn, mode) => this.#established(conn, mode),
        connection: (event) => this.#events.emit('connection', event),
        error: (e) => this.#report(e),
        ended: (error) => this.#ended(error),
      },
    );
    this.#directory = new DeviceDirectory((userId) => this.#link.request({ t: 'keys.fetch', userId }, ['keys']));
    this.#queue = new OutboundQueue((frame) => this.#link.request(frame, ['ack']), () => this.#link.connected, {
      queued: (m) => store.addQueuedMessage?.(m),
      settled: (m, ack) => this.#settled(m, ack),
    });
    // Messages an earlier client on this store accepted and never saw stored go first, with their clientId and bytes.
    for (const m of store.queuedMessages?.() ?? []) {
      this.#queue.restore(m).catch((e: unknown) => {
        if (!SdkError.is(e, 'CLOSED')) this.#report(e);
      });
    }
    this.#inbound = new Inbound(store, account, {
      emit: (event, value) => this.#events.emit(event, value),
      prekeyMessageOpened: () => this.#checkPrekeysSoon(),
      membershipChanged: (roomId) => this.#members.delete(roomId),
      messageFrom: (from) => {
        // A device the cached list does not have: the user added one; fetch the list again next time.
        if (!this.#directory.knows(from)) this.#directory.invalidate(from.userId);
      },
    });
  }

  /** Register a new user with this device as its first, publish its prekeys, and stay connected. */
  static async register(url: string, userId: string, deviceId: string, options: ClientOptions = {}): Promise<ParleyClient> {
    const account = checkAccount(userId, deviceId);
    const store = options.store ?? MemoryClientStore.create();
    if (store.account() !== null) throw new SdkError('INVALID_ARGUMENT', 'this store already belongs to a registered device');
    const client = new ParleyClient(v1Url(url), account, store, options);
    await client.#start('register');
    return client;
  }

  /**
   * On a new device: the request that lets one of the user's existing
   * devices add it (pass it to `addDevice` there, e.g. through a QR code).
   * `store` holds the new device's identity (a fresh `MemoryClientStore`
   * makes one); it signs the user and device id with it, proving the key is
   * held. Afterwards the new device logs in with `login` and that store.
   */
  static deviceLinkRequest(store: ClientStore, userId: string, deviceId: string): DeviceLinkRequest {
    const account = checkAccount(userId, deviceId);
    const identity = store.identity.identityKeyPair();
    return { userId: account.userId, deviceId: account.deviceId, identityKey: identity.publicKey.slice(), signature: identity.sign(deviceLinkMessage(account.userId, account.deviceId)) };
  }

  /** Add another device of this user (see `deviceLinkRequest`). Resolves once the server stored it. */
  async addDevice(request: DeviceLinkRequest): Promise<void> {
    if (request.userId !== this.userId) throw new SdkError('INVALID_ARGUMENT', 'the request is for another user');
    checkAccount(request.userId, request.deviceId);
    await this.#link.request({ t: 'device.add', deviceId: request.deviceId, identityKey: toBase64(request.identityKey), signature: toBase64(request.signature) }, ['device.added']);
    this.#directory.invalidate(this.userId);
  }

  /** Log in a registered device whose identity `options.store` holds, and stay connected. */
  static async login(url: string, userId: string, deviceId: string, options: ClientOptions & { readonly store: ClientStore }): Promise<ParleyClient> {
    const account = checkAccount(userId, deviceId);
    const known = options.store.account();
    if (known !== null && (known.userId !== userId || known.deviceId !== deviceId)) throw new SdkError('INVALID_ARGUMENT', `this store belongs to ${known.userId}/${known.deviceId}`);
    const client = new ParleyClient(v1Url(url), account, options.store, options);
    await client.#start('login');
    return client;
  }

  // ------------------------------------------------------------ events

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.#events.on(event, listener);
  }
  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.#events.off(event, listener);
  }
  /** The next `event` that satisfies `predicate`. */
  next<K extends keyof ClientEvents>(event: K, predicate?: (value: ClientEvents[K]) => boolean): Promise<ClientEvents[K]> {
    return this.#events.next(event, predicate);
  }

  /** Whether a connection is up and authenticated. */
  get connected(): boolean {
    return this.#link.connected;
  }

  /** Resolves once the current connection has caught up (everything stored while away delivered). */
  synced(): Promise<void> {
    if (this.#link.ended) return Promise.reject(new SdkError('CLOSED', 'client closed'));
    if (this.connected && !this.#inbound.holding) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
  }

  // ------------------------------------------------------------ conversations

  /** The direct room with `userId`: an existing one this user is in, else a new one. */
  startDirect(userId: string): Promise<string> {
    if (this.#link.ended) return Promise.reject(new SdkError('CLOSED', 'client closed'));
    if (typeof userId !== 'string' || !USER_ID.test(userId) || userId === this.userId) return Promise.reject(new SdkError('INVALID_ARGUMENT', 'startDirect needs another user id'));
    let p = this.#directs.get(userId);
    if (p === undefined) {
      p = this.#findOrCreateDirect(userId).finally(() => this.#directs.delete(userId));
      this.#directs.set(userId, p);
    }
    return p;
  }

  async #findOrCreateDirect(userId: string): Promise<string> {
    for (const room of readRooms(await this.#link.request({ t: 'room.list' }, ['rooms']))) {
      if (room.kind !== 'direct') continue;
      const members = await this.#roomMembers(room.roomId);
      if (members.includes(userId) && members.includes(this.userId)) return room.roomId;
    }
    const f = await this.#link.request({ t: 'room.create', kind: 'direct', members: [userId] }, ['room']);
    const room = f['room'];
    if (typeof room !== 'object' || room === null) throw new SdkError('BAD_RESPONSE', 'room.create answered without a room');
    const roomId = stringField(room as Record<string, unknown>, 'roomId', 'room', ROOM_ID);
    this.#members.set(roomId, Promise.resolve([this.userId, userId]));
    return roomId;
  }

  /**
   * Encrypt `content` for every device in the room (and this user's other
   * devices) and send it as one message. Resolves once the server has
   * stored it; while disconnected it waits in the outbound queue.
   */
  async send(roomId: string, content: string | Uint8Array): Promise<SendResult> {
    if (this.#link.ended) throw new SdkError('CLOSED', 'client closed');
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    let c: PayloadContent;
    if (typeof content === 'string') c = { kind: 'text', text: content };
    else if (content instanceof Uint8Array) c = { kind: 'binary', bytes: content.slice() };
    else throw new SdkError('INVALID_ARGUMENT', 'content must be a string or a Uint8Array');
    const id = randomId();
    const sentAt = Date.now();
    const payload = encodePayload({ ...c, id, sentAt });
    // Sealing is serialised so messages are queued (and numbered by the server) in call order.
    const step = this.#sendChain.then(() => this.#seal({ roomId, clientId: id, sentAt, content: c }, payload));
    this.#sendChain = step.catch(() => undefined);
    const sealed = await step;
    const ack = await sealed.ack; // this device's copy is kept by #settled, before this resolves
    return { id, roomId, seq: ack.seq, sentAt, serverTs: ack.ts, recipients: sealed.recipients, skipped: sealed.skipped };
  }

  async #seal(draft: Omit<QueuedMessage, 'body'>, payload: Uint8Array): Promise<{ ack: Promise<Ack>; recipients: readonly DeviceAddress[]; skipped: readonly SkippedDevice[] }> {
    const { roomId } = draft;
    const members = await this.#roomMembers(roomId);
    const devices = (await Promise.all(members.map((u) => this.#directory.devices(u)))).flat();
    const me = { userId: this.userId, deviceId: this.deviceId };
    const bodyMax = Math.min(BODY_BYTES_MAX, this.#link.limits.bodyBytes ?? BODY_BYTES_MAX);
    // Queued in the same step (and store transaction) as the encryption: queue order is encryption order,
    // and advanced sessions are kept only together with the message they encrypted.
    return this.#atomically(() => {
      const sealed = sealRoomMessage(this.store, me, devices, roomId, payload, bodyMax);
      const ack = this.#queue.push({ ...draft, body: sealed.body });
      ack.catch(() => undefined); // awaited by send(); this only keeps an early rejection from counting as unhandled
      return { ack, recipients: sealed.recipients, skipped: sealed.skipped };
    });
  }

  /** The server stored a queued message (keep this device's copy) or refused it for good; either way the store forgets it. */
  #settled(m: QueuedMessage, ack: Ack | null): void {
    const me = { userId: this.userId, deviceId: this.deviceId };
    try {
      this.#atomically(() => {
        if (ack !== null) this.store.storeMessage({ ...m.content, roomId: m.roomId, seq: ack.seq, id: m.clientId, sender: me, outgoing: true, sentAt: m.sentAt, serverTs: ack.ts });
        this.store.removeQueuedMessage?.(m.clientId);
      });
    } catch (e) {
      this.#report(e);
    }
  }

  /** `fn` in one store transaction, when the store has them. */
  #atomically<T>(fn: () => T): T {
    return this.store.transaction === undefined ? fn() : this.store.transaction(fn);
  }

  /**
   * A page of the room's log, oldest first: entries before `before` (default:
   * the newest), at most `limit`. Messages are what this device can read —
   * its own sent messages from the copies it keeps, others decrypted (and
   * kept) — the rest are `undecryptable` items with a reason.
   */
  async history(roomId: string, options: { readonly before?: number; readonly limit?: number } = {}): Promise<HistoryEntry[]> {
    if (this.#link.ended) throw new SdkError('CLOSED', 'client closed');
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const pageMax = Math.min(HISTORY_PAGE_MAX, this.#link.limits.historyPage ?? HISTORY_PAGE_MAX);
    const limit = options.limit ?? HISTORY_PAGE_DEFAULT;
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > pageMax) throw new SdkError('INVALID_ARGUMENT', `limit must be 1…${pageMax}`);
    if (!Number.isSafeInteger(before) || before < 0) throw new SdkError('INVALID_ARGUMENT', 'before must be a seq');
    const f = await this.#link.request({ t: 'history', roomId, before, limit }, ['history']);
    const raw = f['entries'];
    if (f['roomId'] !== roomId || !Array.isArray(raw)) throw new SdkError('BAD_RESPONSE', 'history answer for another room or without entries');
    const entries = raw.map(readEntry).filter((e) => e.roomId === roomId && e.seq < before);
    entries.sort((a, b) => a.seq - b.seq);
    return this.#atomically(() => entries.map((e) => this.#inbound.historyEntry(e)));
  }

  /** Forget the cached device list of `userId`: the next message fetches it from the key directory again. */
  refreshDevices(userId: string): void {
    this.#directory.invalidate(userId);
  }

  /**
   * Disconnect for good; queued messages fail with `CLOSED`. The store keeps
   * everything needed to `login` again — with a store that keeps the
   * outbound queue (`SqliteClientStore`), those messages too: the next
   * client on the store publishes them.
   */
  async close(): Promise<void> {
    if (this.#link.ended) return;
    const error = new SdkError('CLOSED', 'client closed');
    this.#ended(error);
    await this.#link.close(error);
  }

  /** Everything waiting on the client fails with `error`. */
  #ended(error: SdkError): void {
    this.#queue.failAll(error);
    for (const w of this.#syncWaiters.splice(0)) w.reject(error);
  }

  // ------------------------------------------------------------ connection lifecycle

  async #start(mode: 'register' | 'login'): Promise<void> {
    let conn: Connection;
    try {
      conn = await this.#link.start(mode);
      this.store.setAccount({ userId: this.userId, deviceId: this.deviceId });
      await this.#checkPrekeys();
    } catch (e) {
      this.#ended(asSdkError(e));
      await this.#link.close(asSdkError(e));
      throw asSdkError(e);
    }
    // On the next turn, so listeners attached right after this resolves see the catch-up.
    setTimeout(() => void this.#catchUp(conn, false), 0);
  }

  /** A connection became current: hold deliveries until it has caught up, and resume publishing. */
  #established(conn: Connection, mode: EstablishMode): void {
    this.#inbound.hold();
    this.#queue.kick();
    // A first connection catches up once #start is done; later ones at once.
    if (mode === 'resume' || mode === 'renew') void this.#catchUp(conn, mode === 'resume');
  }

  /** After authenticating: keep prekeys stocked, replay what was missed, then deliver live. */
  async #catchUp(conn: Connection, checkPrekeys: boolean): Promise<void> {
    try {
      if (checkPrekeys) this.#checkPrekeysSoon();
      let rooms = this.store.roomCursors();
      for (;;) {
        const synced = readSynced(await conn.request({ t: 'sync', rooms }, ['synced'], SYNC_TIMEOUT_MS));
        if (synced.more.length === 0) break;
        // Rooms cut short continue from the seq the server reached (docs/protocol.md, "Resume and history").
        rooms = { ...rooms, ...synced.rooms };
      }
      // Only the current connection's catch-up may release held entries (an older one's may be incomplete).
      if (!this.#link.isCurrent(conn) || this.#link.ended) return;
      this.#atomically(() => this.#inbound.flush());
      this.#events.emit('connection', { state: 'synced' });
      for (const w of this.#syncWaiters.splice(0)) w.resolve();
    } catch (e) {
      if (this.#link.ended || SdkError.is(e, 'CLOSED')) return; // the next connection catches up
      this.#report(e);
      // A sync that failed leaves a hole: start over on a new connection.
      this.#link.restart(conn, 'sync failed');
    }
  }

  #onFrame(f: ServerFrame): void {
    if (f.t === 'msg') {
      let entry;
      try {
        entry = readEntry(f);
      } catch (e) {
        this.#report(e);
        return;
      }
      try {
        this.#atomically(() => this.#inbound.receive(entry));
      } catch (e) {
        this.#report(e);
      }
    } else if (f.t === 'error') {
      const code = typeof f['code'] === 'string' ? f['code'] : 'unknown';
      // token_expired is followed by a 4001 close, which the link handles.
      if (code !== 'token_expired') this.#report(new SdkError('SERVER', `server error: ${code}`, { serverCode: code }));
    } else if (f.t === '!invalid') {
      this.#report(new SdkError('BAD_RESPONSE', 'server sent a frame that is not a JSON object with a type'));
    }
    // presence, typing, receipts and mailbox entries are later slices.
  }

  #report(e: unknown): void {
    this.#events.emit('error', asSdkError(e));
  }

  // ------------------------------------------------------------ requests

  #roomMembers(roomId: string): Promise<readonly string[]> {
    let p = this.#members.get(roomId);
    if (p === undefined) {
      const fetched = this.#link.request({ t: 'room.members', roomId }, ['members']).then(readMembers);
      this.#members.set(roomId, fetched);
      fetched.catch(() => {
        if (this.#members.get(roomId) === fetched) this.#members.delete(roomId);
      });
      p = fetched;
    }
    return p;
  }

  #checkPrekeys(): Promise<void> {
    this.#prekeyCheck ??= maintainPrekeys(this.store, (frame) => this.#link.request(frame, ['keys.uploaded']))
      .then(() => undefined)
      .finally(() => (this.#prekeyCheck = null));
    return this.#prekeyCheck;
  }

  #checkPrekeysSoon(): void {
    if (this.#prekeyCheck === null && !this.#link.ended) this.#checkPrekeys().catch((e: unknown) => this.#report(e));
  }

  toString(): string {
    return `ParleyClient(${this.userId}/${this.deviceId}, ${this.#link.ended ? 'closed' : this.connected ? 'connected' : 'connecting'})`;
  }
}
