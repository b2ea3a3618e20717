/**
 * `ParleyClient`: one device of one user, connected to a Parley server.
 *
 * - **Connecting.** `register` creates the user with this device (identity
 *   key from the store, a new one by default) and publishes its prekeys;
 *   `login` resumes a device whose identity the store holds. The client then
 *   stays connected (link.ts: reconnect with backoff, token renewal), and
 *   every new connection catches up with `sync` from the last seq processed
 *   per room before live deliveries are released (room-log.ts).
 * - **Sending.** `send` encrypts once for every device of every room member
 *   (and this user's other devices), in call order, and queues one room
 *   message (outbound.ts); the queue publishes across reconnects with a
 *   stable clientId (outbound-queue.ts), and `send` resolves when the server
 *   has stored it.
 * - **Receiving.** `message` events, in room order, exactly once; anything
 *   undecryptable is a `decryptionError` event (inbound.ts).
 *
 * Listeners attached in `options.on`, or synchronously after `register` or
 * `login` resolves, see every message: catching up starts on the next turn
 * of the event loop.
 *
 * This class is the facade: the public API and its documentation, the
 * start and the end of a client, and the wiring — each part lives in its
 * own file (rooms.ts, blobs.ts, presence-typing-receipts.ts, key-review.ts,
 * peer-verification.ts, device-restore.ts, …) and reaches the others only
 * through the hooks it is given here.
 *
 * @module
 */
import { objectArg, optionsArg, storeArg } from './_args.ts';
import { toBase64 } from './_bytes.ts';
import { deviceApprovalMessage, deviceLinkMessage, deviceRemovalMessage, type Account } from './auth.ts';
import { Blobs } from './blobs.ts';
import { MemoryClientStore, type ClientStore } from './client-store.ts';
import type { Connection } from './connection.ts';
import { DeviceDirectory } from './device-directory.ts';
import { DeviceRestore, fetchKeyBackup, replaceBackedUpDevice, type StoredKeyBackup } from './device-restore.ts';
import { Emitter, type Listener } from './emitter.ts';
import { asSdkError, SdkError } from './errors.ts';
import type { ChatMessage, ClientEvents, HistoryEntry, ReadMarker } from './events.ts';
import type { FileRef } from './file-transfer.ts';
import { DEVICE_ID, readEntry, readKeys, ROOM_ID, USER_ID, type RoomSummary, type ServerFrame } from './frames.ts';
import { Inbound } from './inbound.ts';
import { backupFetchSecret, exportKeyBackup, keyBackupDeviceId } from './key-backup.ts';
import { KeyReview, type SafetyNumberReport } from './key-review.ts';
import { Link, type EstablishMode } from './link.ts';
import { Outbound, type SendResult } from './outbound.ts';
import { OutboundQueue } from './outbound-queue.ts';
import { CONTROL_SESSION_RESET, CONTROL_VERIFICATION } from './payload.ts';
import type { DeviceKey } from './peer-keys.ts';
import { PeerVerifications, type VerificationOutcome, type VerificationRequest } from './peer-verification.ts';
import { checkSecret } from './verification-secret.ts';
import { HELD_BODY_CHARS_MAX, HELD_ENTRIES_MAX } from './limits.ts';
import { maintainPrekeys, replaceOneTimePrekeys } from './prekey-upkeep.ts';
import { PresenceTypingReceipts } from './presence-typing-receipts.ts';
import { RoomLog } from './room-log.ts';
import { Rooms } from './rooms.ts';
import { parseSearchQuery, searchLimit, searchMessages, type SearchOptions } from './search.ts';
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
  /**
   * Tell senders their messages reached this device: a `delivered` receipt
   * per room, for the newest seq, at most every RECEIPT_INTERVAL_MS
   * (default true). Read receipts are the application's: `markRead`.
   */
  readonly deliveryReceipts?: boolean;
}

function checkAccount(userId: unknown, deviceId: unknown): Account {
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId must match [a-z0-9][a-z0-9._-]{0,63}');
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) throw new SdkError('INVALID_ARGUMENT', 'deviceId must match [A-Za-z0-9_-]{1,64}');
  return { userId, deviceId };
}

/** What `ParleyClient.restore` made. */
export interface RestoredClient {
  /** Logged in as the new device. */
  readonly client: ParleyClient;
  /** The backed-up device the new one replaced (removed: its earlier copies are shut out). */
  readonly replaced: DeviceKey;
  /** True when it was already gone when this restore came to remove it: another restore (of the same backup) or another device removed it meanwhile — look at `otherDevices`. */
  readonly replacedElsewhere: boolean;
  /** The device an interrupted restore had meant to replace (the backup records it), which this restore removed too; null when none was listed. */
  readonly alsoRemoved: DeviceKey | null;
  /**
   * The user's devices other than the new one, as the directory lists them
   * after the restore: ones in use, and any the user does not know — added
   * by whoever held the backed-up key before (a thief), left by an
   * interrupted restore, or made by another restore at the same time. Show
   * them, so the user can remove those that are not theirs.
   */
  readonly otherDevices: readonly DeviceKey[];
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

/** Every event a client emits (a misspelt name would otherwise wait for ever). */
const CLIENT_EVENTS: Readonly<Record<keyof ClientEvents, true>> = {
  message: true,
  decryptionError: true,
  membership: true,
  typing: true,
  receipt: true,
  presence: true,
  connection: true,
  keysChanged: true,
  verificationRequest: true,
  verification: true,
  error: true,
};

function checkListener(event: unknown, listener: unknown): void {
  if (typeof event !== 'string' || !Object.hasOwn(CLIENT_EVENTS, event)) throw new SdkError('INVALID_ARGUMENT', `no event ${JSON.stringify(String(event)).slice(0, 80)} (events: ${Object.keys(CLIENT_EVENTS).join(', ')})`);
  if (typeof listener !== 'function') throw new SdkError('INVALID_ARGUMENT', 'a listener must be a function');
}

/** Stores a live client uses (one client per store). */
const storesInUse = new WeakSet<ClientStore>();

export class ParleyClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly store: ClientStore;
  readonly #link: Link;
  readonly #events: Emitter<ClientEvents>;
  readonly #directory: DeviceDirectory;
  readonly #keyReview: KeyReview;
  readonly #queue: OutboundQueue;
  readonly #outbound: Outbound;
  readonly #blobs: Blobs;
  readonly #restore: DeviceRestore;
  readonly #inbound: Inbound;
  readonly #roomLog: RoomLog;
  readonly #rooms: Rooms;
  readonly #verifications: PeerVerifications;
  readonly #presenceTypingReceipts: PresenceTypingReceipts;
  #prekeyCheck: Promise<void> | null = null;

  private constructor(url: string, account: Account, store: ClientStore, options: ClientOptions) {
    // Two clients on one store would run the same ratchets and lose messages for good.
    if (storesInUse.has(store)) throw new SdkError('INVALID_ARGUMENT', 'this store is in use by another ParleyClient: close that one first');
    storesInUse.add(store);
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
        connection: (event) => {
          // Presence heard on a lost connection may be stale by the next one.
          if (event.state === 'disconnected') this.#presenceTypingReceipts.disconnected();
          this.#events.emit('connection', event);
        },
        error: (e) => this.#report(e),
        ended: (error) => {
          this.#ended(error);
          this.#events.emit('connection', { state: 'ended', error });
        },
      },
    );
    this.#directory = new DeviceDirectory(
      (userId) => this.#link.request({ t: 'keys.fetch', userId }, ['keys']),
      (userId, entries) => this.#keyReview.review(userId, entries),
    );
    this.#keyReview = new KeyReview(account, store, {
      link: this.#link,
      atomically: (fn) => this.#atomically(fn),
      keysChanged: (change) => this.#events.emit('keysChanged', change),
      error: (e) => this.#report(e),
    });
    this.#presenceTypingReceipts = new PresenceTypingReceipts(account, options.deliveryReceipts ?? true, {
      link: this.#link,
      emit: (event, value) => this.#events.emit(event, value),
      error: (e) => this.#report(e),
    });
    this.#rooms = new Rooms(account.userId, store, this.#link);
    this.#verifications = new PeerVerifications(account.userId, {
      parties: (userId) => this.#keyReview.verificationParties(userId),
      room: (userId) => this.startDirect(userId),
      caughtUp: () => this.synced(),
      send: async (roomId, control) => {
        await this.#outbound.sendContent(roomId, { kind: 'control', bytes: control });
      },
      verified: (userId, remote, at) => this.#keyReview.verified(userId, remote, at),
      keep: (userId, kept) => this.store.keepVerification?.(userId, kept),
      request: (r) => this.#events.emit('verificationRequest', r),
      outcome: (o) => this.#events.emit('verification', o),
      error: (e) => this.#report(e),
      now: () => Date.now(),
    });
    this.#queue = new OutboundQueue((frame) => this.#durable().then(() => this.#link.request(frame, ['ack'])), () => this.#link.connected, {
      queued: (m) => store.addQueuedMessage?.(m),
      settled: (m, ack) => this.#outbound.settled(m, ack),
    });
    this.#outbound = new Outbound(account, store, {
      link: this.#link,
      queue: this.#queue,
      directory: this.#directory,
      pinDirect: (roomId) => this.#rooms.pinDirect(roomId),
      members: (roomId) => this.#rooms.members(roomId),
      atomically: (fn) => this.#atomically(fn),
      sent: (roomId, seq) => this.#inbound.sent(roomId, seq),
      error: (e) => this.#report(e),
    });
    this.#restore = new DeviceRestore({
      link: this.#link,
      sendSessionReset: (roomId) => this.#outbound.sendContent(roomId, { kind: 'control', bytes: Uint8Array.of(CONTROL_SESSION_RESET) }),
      replacePrekeys: () => this.#durable().then(() => replaceOneTimePrekeys(this.store, (frame) => this.#durable().then(() => this.#link.request(frame, ['keys.uploaded'])))),
    });
    this.#blobs = new Blobs({ link: this.#link, announce: (roomId, file) => this.#outbound.sendContent(roomId, { kind: 'file', file }) });
    // Messages an earlier client on this store accepted and never saw stored go first, with their clientId and bytes.
    for (const m of store.queuedMessages?.() ?? []) {
      this.#queue.restore(m).catch((e: unknown) => {
        if (!SdkError.is(e, 'CLOSED')) this.#report(e);
      });
    }
    this.#inbound = new Inbound(store, account, {
      emit: (event, value) => {
        if (event === 'message') this.#presenceTypingReceipts.delivered(value as ChatMessage);
        this.#events.emit(event, value);
      },
      prekeyMessageOpened: () => this.#checkPrekeysSoon(),
      membershipChanged: (roomId) => this.#rooms.forgetMembers(roomId),
      messageFrom: (from) => {
        // A device the cached list does not have: the user added one; fetch the list again next time.
        if (!this.#directory.knows(from)) this.#directory.invalidate(from.userId);
        this.#keyReview.messageFrom(from);
      },
      ownPending: (clientId) => this.#queue.has(clientId),
      control: (meta, bytes) => {
        // A session reset did its work by being decrypted; unknown control types come from newer clients: ignored.
        if (bytes[0] === CONTROL_VERIFICATION) this.#verifications.receive(meta.roomId, meta.sender, meta, bytes.subarray(1));
      },
      gap: () => {
        // Inbound holds from now on; a sync on the current connection fills the hole and flushes.
        const conn = this.#link.current;
        if (conn !== null) void this.#roomLog.catchUp(conn, 'gap');
        // Without a connection, the next one's catch-up does it.
      },
      overflow: () => {
        this.#report(new SdkError('BAD_RESPONSE', `more than ${HELD_ENTRIES_MAX} entries or ${HELD_BODY_CHARS_MAX} body characters held past holes while catching up: dropped, to be read again`));
        const conn = this.#link.current;
        if (conn !== null) this.#link.restart(conn, 'held entries over the bound');
      },
    });
    this.#roomLog = new RoomLog(store, {
      link: this.#link,
      inbound: this.#inbound,
      noteRoomKinds: (rooms) => this.#rooms.noteKinds(rooms),
      checkPrekeysSoon: () => this.#checkPrekeysSoon(),
      atomically: (fn) => this.#atomically(fn),
      synced: () => this.#events.emit('connection', { state: 'synced' }),
      error: (e) => this.#report(e),
    });
  }

  /** Register a new user with this device as its first, publish its prekeys, and stay connected. */
  static async register(url: string, userId: string, deviceId: string, optionsIn: ClientOptions = {}): Promise<ParleyClient> {
    const account = checkAccount(userId, deviceId);
    const options = optionsArg(optionsIn, 'options');
    const store = options.store === undefined ? MemoryClientStore.create() : storeArg(options.store, 'options.store');
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
    storeArg(store);
    const account = checkAccount(userId, deviceId);
    const identity = store.identity.identityKeyPair();
    return { userId: account.userId, deviceId: account.deviceId, identityKey: identity.publicKey.slice(), signature: identity.sign(deviceLinkMessage(account.userId, account.deviceId)) };
  }

  /** Add another device of this user (see `deviceLinkRequest`). Resolves once the server stored it. */
  async addDevice(request: DeviceLinkRequest): Promise<void> {
    objectArg(request, 'request');
    if (!(request.identityKey instanceof Uint8Array) || !(request.signature instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'request.identityKey and request.signature must be bytes');
    if (request.userId !== this.userId) throw new SdkError('INVALID_ARGUMENT', 'the request is for another user');
    checkAccount(request.userId, request.deviceId);
    if (request.identityKey.length !== 32) throw new SdkError('INVALID_ARGUMENT', 'request.identityKey must be 32 bytes');
    // This device's key approves the new one: the server does not take a session's word for it.
    const approval = this.store.identity.identityKeyPair().sign(deviceApprovalMessage(this.userId, this.deviceId, request.deviceId, request.identityKey));
    await this.#link.request(
      { t: 'device.add', deviceId: request.deviceId, identityKey: toBase64(request.identityKey), signature: toBase64(request.signature), approval: toBase64(approval) },
      ['device.added'],
    );
    this.#keyReview.deviceAdded(request.deviceId, request.identityKey);
    this.#directory.invalidate(this.userId);
  }

  /**
   * This user's devices as the key directory lists them now (no one-time
   * prekey is claimed): e.g. to choose one to remove. The server's word:
   * compare a device's key fingerprint with what the device shows.
   */
  async ownDevices(): Promise<DeviceKey[]> {
    const f = await this.#link.request({ t: 'keys.fetch', userId: this.userId, claimFor: [] }, ['keys']);
    return readKeys(f, this.userId).map((d) => ({ deviceId: d.deviceId, identityKey: d.identityKey }));
  }

  /**
   * Remove a device of this user — one lost or stolen, or this one. The
   * server deletes it with its prekeys, mailbox and tokens and ends its
   * sessions; it cannot log in again, and its id is not given to another
   * key. This device's key approves the removal (a session alone cannot).
   * Other users' clients stop encrypting to it once they fetch the list
   * again (at once when connected). Removing this device ends this client
   * (`connection` event `ended`, `DEVICE_REMOVED`); its store is left as it
   * is. Resolves once the device is gone, with the id and key the directory
   * listed for it (null: none was listed — gone already, or never there).
   */
  async removeDevice(deviceId: string): Promise<DeviceKey | null> {
    checkAccount(this.userId, deviceId);
    const device = (await this.ownDevices()).find((d) => d.deviceId === deviceId);
    if (device !== undefined) {
      const approval = this.store.identity.identityKeyPair().sign(deviceRemovalMessage(this.userId, this.deviceId, deviceId, device.identityKey));
      try {
        await this.#link.request({ t: 'device.remove', deviceId, approval: toBase64(approval) }, ['device.removed']);
      } catch (e) {
        // A request re-sent after its answer was lost finds the device gone.
        if (!(SdkError.is(e, 'SERVER') && e.serverCode === 'not_found')) throw e;
      }
    }
    if (deviceId !== this.deviceId) this.#keyReview.deviceRemoved(deviceId);
    this.#directory.invalidate(this.userId);
    return device ?? null;
  }

  /**
   * Sign this user out everywhere: every token of every device stops
   * working and every other connection is closed — what ends are copies of
   * tokens; the user's devices log in again with their keys, this one at
   * once, on a new connection.
   */
  async signOutEverywhere(): Promise<void> {
    await this.#link.request({ t: 'sessions.revoke' }, ['sessions.revoked']);
    this.#link.loginAgain();
  }

  /** Log in a registered device whose identity `options.store` holds, and stay connected. */
  static async login(url: string, userId: string, deviceId: string, options: ClientOptions & { readonly store: ClientStore }): Promise<ParleyClient> {
    const account = checkAccount(userId, deviceId);
    objectArg(options, 'options');
    storeArg(options.store, 'options.store (the store that holds the device identity)');
    const known = options.store.account();
    if (known !== null && (known.userId !== userId || known.deviceId !== deviceId)) throw new SdkError('INVALID_ARGUMENT', `this store belongs to ${known.userId}/${known.deviceId}`);
    const client = new ParleyClient(v1Url(url), account, options.store, options);
    await client.#start('login');
    return client;
  }

  /**
   * On a machine without the user's keys: restore from a key backup (from
   * `fetchKeyBackup`, or bytes kept elsewhere) opened with its passphrase.
   * The backup's key does not come back as its device: it approves a new
   * device, whose identity `options.store` (fresh) holds, under
   * `options.deviceId` (default: `laptop` → `laptop-r2`, …), then removes
   * its own — every earlier copy of it (the old machine, stolen or left
   * running, an earlier restore) ends with `DEVICE_REMOVED` and stays out.
   * The user's backup on the server becomes the new device's (under the
   * same passphrase) before anything is removed, so the next restore — also
   * after this one was cut off — starts from a device that exists. The new
   * device logs in and publishes fresh prekeys; `otherDevices` lists the
   * user's other devices, for the user to check (devices the key's earlier
   * holder added are not removed). Contacts see one device removed and a
   * new one (`devices.changed`; safety numbers change); messages sent
   * before are not readable here (no sessions are backed up). Throws as
   * `openKeyBackup`; `DEVICE_REMOVED` for a backup whose device is gone (a
   * later restore replaced it: use the newest backup); `SERVER` `conflict`
   * for a taken `options.deviceId`. Nothing changes on the server unless the
   * new device was added; from then on the store is the new device's.
   */
  static async restore(url: string, backup: Uint8Array, passphrase: string | Uint8Array, options: ClientOptions & { readonly store: ClientStore; readonly deviceId?: string }): Promise<RestoredClient> {
    objectArg(options, 'options');
    const { deviceId, ...clientOptions } = options;
    const r = await replaceBackedUpDevice(url, backup, passphrase, options.store, {
      ...(deviceId !== undefined && { deviceId }),
      ...(options.transport !== undefined && { transport: options.transport }),
    });
    const client = await ParleyClient.login(url, r.userId, r.deviceId, clientOptions);
    try {
      let replacedElsewhere = r.removal === 'already-removed';
      if (r.removal === 'pending') replacedElsewhere = (await client.removeDevice(r.replaced.deviceId)) === null;
      const devices = await client.ownDevices();
      await client.#keepBackupOfListedDevice(devices, passphrase);
      return { client, replaced: r.replaced, replacedElsewhere, alsoRemoved: r.alsoRemoved, otherDevices: devices.filter((d) => d.deviceId !== r.deviceId) };
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  /**
   * After a restore: the backup it stored is replaced if, meanwhile, the
   * earlier copy stored one of the device that was then removed (it could
   * until the removal): a backup must be of a device that exists.
   */
  async #keepBackupOfListedDevice(devices: readonly DeviceKey[], passphrase: string | Uint8Array): Promise<void> {
    const of = keyBackupDeviceId((await this.loadKeyBackup())?.backup);
    if (of !== null && devices.some((d) => d.deviceId === of)) return;
    const [bytes, fetchSecret] = await Promise.all([exportKeyBackup(this.store, passphrase), backupFetchSecret(passphrase, this.userId)]);
    await this.storeKeyBackup(bytes, fetchSecret);
  }

  /**
   * Before login, on a machine without the device's keys: download the
   * user's key backup from the server with its fetch secret
   * (`backupFetchSecret(passphrase, userId)`; docs/protocol.md, "Key
   * backup"), over a connection of its own that is closed afterwards. Then
   * `importKeyBackup` / `openKeyBackup` it and `login`. `AUTH_FAILED`
   * (serverCode `invalid_credentials`) when the server has no backup of that
   * user for that secret — a wrong passphrase, an unknown user or no backup
   * look the same, and count as failed logins of the user; `SERVER`
   * `rate_limited` after too many.
   */
  static fetchKeyBackup(url: string, userId: string, fetchSecret: Uint8Array, options: { readonly transport?: TransportFactory } = {}): Promise<StoredKeyBackup> {
    return fetchKeyBackup(url, userId, fetchSecret, options);
  }

  // ------------------------------------------------------------ events

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    checkListener(event, listener);
    return this.#events.on(event, listener);
  }
  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.#events.off(event, listener);
  }
  /** The next `event` that satisfies `predicate`. */
  next<K extends keyof ClientEvents>(event: K, predicate?: (value: ClientEvents[K]) => boolean): Promise<ClientEvents[K]> {
    try {
      checkListener(event, predicate ?? (() => true));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#events.next(event, predicate);
  }

  /** Whether a connection is up and authenticated. */
  get connected(): boolean {
    return this.#link.connected;
  }

  /** Resolves once the current connection has caught up (everything stored while away delivered). */
  synced(): Promise<void> {
    return this.#roomLog.synced();
  }

  // ------------------------------------------------------------ conversations

  /** The direct room with `userId`: an existing one this user is in, else a new one. */
  startDirect(userId: string): Promise<string> {
    return this.#rooms.startDirect(userId);
  }

  /**
   * Leave a room (for every device of this user: membership is per user).
   * Its `member-removed` event is the last entry this user gets from it; a
   * device that was away gets what it missed up to there when it comes back.
   */
  leave(roomId: string): Promise<void> {
    return this.#rooms.leave(roomId);
  }

  /**
   * Every room this user is in (direct and group), with the last seq of
   * each — to find, and `leave`, rooms others put this user in (anyone can:
   * there are no invitations, docs/protocol.md "Rooms").
   */
  rooms(): Promise<RoomSummary[]> {
    return this.#rooms.list();
  }

  /** The direct room with `userId` if this user is in one, else null; never creates one (unlike `startDirect`). */
  findDirect(userId: string): Promise<string | null> {
    return this.#rooms.findDirect(userId);
  }

  /**
   * Encrypt `content` for every device in the room (and this user's other
   * devices) and send it as one message. Resolves once the server has
   * stored it; while disconnected it waits in the outbound queue. An empty
   * text is refused (`INVALID_ARGUMENT`); empty bytes are a message.
   */
  send(roomId: string, content: string | Uint8Array): Promise<SendResult> {
    return this.#outbound.send(roomId, content);
  }

  /** `fn` in one store transaction, when the store has them. */
  #atomically<T>(fn: () => T): T {
    return this.store.transaction === undefined ? fn() : this.store.transaction(fn);
  }

  /**
   * A page of the room's log, oldest first: entries before `before` (default:
   * the newest), at most `limit` — `limit` when the log has them (the server
   * cuts a page at HISTORY_PAGE_BYTES_MAX of bodies; the rest is asked for
   * again). Messages are what this device can read —
   * its own sent messages from the copies it keeps, others decrypted (and
   * kept) — the rest are `undecryptable` items with a reason.
   */
  history(roomId: string, optionsIn: { readonly before?: number; readonly limit?: number } = {}): Promise<HistoryEntry[]> {
    return this.#roomLog.history(roomId, optionsIn);
  }

  /**
   * Tell the room's other connected devices that this user is typing
   * (ephemeral: never stored; devices offline miss it; not end-to-end
   * encrypted — the server sees who types where and when). Call it on
   * keystrokes: at most one frame per room goes out every
   * TYPING_INTERVAL_MS, the rest are dropped. Returns whether a frame was
   * sent (false when throttled or disconnected). Receivers get a `typing`
   * event and should let it expire after a few seconds: there is no
   * "stopped typing".
   */
  typing(roomId: string): boolean {
    return this.#presenceTypingReceipts.typing(roomId);
  }

  /**
   * Search the messages this device keeps (decrypted and sent ones, see
   * `history`) for `query`: every word must occur, as the start of a word,
   * case, accents and Unicode forms aside (search.ts). Newest first, at
   * most `options.limit` (default 50, at most 1,000), text messages only,
   * in one room or in all. Local: nothing is sent to the server, and
   * nothing extra is kept on disk (a scan of the sealed kept messages, no
   * index). Finds what this device has processed: await `synced()` first
   * to include everything that arrived while away. Works without a
   * connection, after `close()` too while the store is open.
   */
  async search(query: string | readonly string[], optionsIn: SearchOptions = {}): Promise<ChatMessage[]> {
    const options = optionsArg(optionsIn, 'options');
    const q = parseSearchQuery(query);
    const limit = searchLimit(options.limit);
    const roomId = options.roomId;
    if (roomId !== undefined && (typeof roomId !== 'string' || !ROOM_ID.test(roomId))) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const store = this.store;
    if (store.keptMessages === undefined) throw new SdkError('INVALID_ARGUMENT', 'this store cannot list its kept messages (ClientStore.keptMessages)');
    const kept = this.#atomically(() => store.keptMessages?.(roomId) ?? []);
    return searchMessages(kept, q, limit);
  }

  /**
   * The safety number of this user and `userId` (safety-number.ts), over
   * every device's identity key of both as the key directory lists them
   * now (`keys.fetch`, claiming no one-time prekey). Compare it with the
   * other user's, out of band: equal numbers mean both see the same keys.
   * `SERVER` (`not_found`) for an unknown user; `BAD_RESPONSE` when the
   * directory lists another key for this very device.
   */
  safetyNumber(userId: string): Promise<SafetyNumberReport> {
    return this.#keyReview.safetyNumber(userId);
  }

  /**
   * Keep a key backup (from `exportKeyBackup`) on the server, replacing the
   * user's previous one, with the fetch secret that lets a device without
   * keys download it before login (`backupFetchSecret(passphrase, userId)`;
   * without it, only `loadKeyBackup` from a logged-in device can).
   */
  storeKeyBackup(backup: Uint8Array, fetchSecret?: Uint8Array): Promise<{ readonly updatedAt: number }> {
    return this.#restore.storeKeyBackup(backup, fetchSecret);
  }

  /**
   * After restoring this device from a key backup (and logging in): the
   * one-time prekeys its earlier copies published are still in the key
   * directory, and their private halves are not here (a backup holds none,
   * for forward secrecy) — new contacts would get one of those and write a
   * first message this device cannot read. This replaces all of them with a
   * fresh stock of this store's, in one step on the server (two copies
   * restored from one backup even share ids). Resolves with the number of
   * keys dropped.
   */
  discardStaleOneTimePrekeys(): Promise<number> {
    return this.#restore.discardStaleOneTimePrekeys();
  }

  /**
   * After restoring this device from a key backup (and logging in): its
   * sessions are gone, and peers would keep encrypting to it on theirs,
   * which it cannot read. This sends a session-reset control message in
   * every room this user is in — encrypted from fresh prekey bundles, so
   * each peer device that decrypts it replaces its session with the new
   * one, and what it sends next is readable here. Messages sent before
   * that stay unreadable on this device (forward secrecy). Resolves with
   * the number of rooms told.
   */
  resetSessions(): Promise<number> {
    return this.#restore.resetSessions();
  }

  /** The user's key backup on the server (`backup.get`), or null when there is none. */
  loadKeyBackup(): Promise<StoredKeyBackup | null> {
    return this.#restore.loadKeyBackup();
  }

  // ------------------------------------------------------------ identity verification

  /**
   * Verify `userId` with a secret both users know (a word said on a call, a
   * phrase agreed in person), with Themis Secure Comparator inside the
   * direct conversation (peer-verification.ts): neither side learns the
   * other's secret, only whether they are equal — and they are only equal
   * if both also see the same device keys of both users. Starts an attempt,
   * or answers `userId`'s open request. Resolves when it ends: `verified`
   * marks the user's current device keys verified in the store
   * (`verificationStatus`); `failed` means different secrets or someone in
   * the middle. The other user answers on one of its devices within
   * VERIFICATION_TIMEOUT_MS. `IDENTITY_CHANGED` when the key directory lists
   * a refused key for either user.
   */
  verify(userId: string, secret: string | Uint8Array): Promise<VerificationOutcome> {
    if (this.#link.ended) return Promise.reject(this.#link.endError);
    if (typeof userId !== 'string' || !USER_ID.test(userId) || userId === this.userId) return Promise.reject(new SdkError('INVALID_ARGUMENT', 'verify needs another user id'));
    try {
      checkSecret(secret);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#verifications.verify(userId, secret);
  }

  /** Answer `userId`'s open verification request (a `verificationRequest` event) with the secret. */
  acceptVerification(userId: string, secret: string | Uint8Array): Promise<VerificationOutcome> {
    if (this.#link.ended) return Promise.reject(this.#link.endError);
    try {
      checkSecret(secret);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#verifications.accept(userId, secret);
  }

  /** Give up the verification with `userId`, or decline its request; the other side is told. */
  cancelVerification(userId: string): void {
    this.#verifications.cancel(userId);
  }

  /** `userId`'s request that waits for an answer here, if any. */
  verificationRequest(userId: string): VerificationRequest | null {
    return this.#verifications.request(userId);
  }

  /**
   * Every verification request waiting for an answer here — including
   * those an earlier client on this store received and left unanswered
   * (after a reload or a restart they are offered again, and reported
   * again as `verificationRequest` events once the client has started).
   */
  verificationRequests(): VerificationRequest[] {
    return this.#verifications.requests();
  }

  /**
   * What this device knows of `userId`'s device keys (local, no request):
   * `verified` while the keys verified last are still all of them.
   * `devices` is the key set as last reviewed, empty for a user not met yet.
   */
  verificationStatus(userId: string): { readonly verified: boolean; readonly verifiedAt: number | null; readonly devices: readonly DeviceKey[] } {
    return this.#keyReview.verificationStatus(userId);
  }

  // ------------------------------------------------------------ files

  /**
   * Send a file as an encrypted blob (file-transfer.ts): sealed here under
   * a fresh key, uploaded to the server in chunks, then announced in the
   * room by a message carrying the blob id and the key — receivers get a
   * `message` with `kind: 'file'` and fetch it with `downloadFile`. Up to
   * FILE_BYTES_MAX (16 MiB less the seal's overhead). Resolves when the
   * message is stored; an upload cut by a lost connection fails with
   * `CLOSED` (send it again: a new blob).
   */
  sendFile(roomId: string, file: Uint8Array, optionsIn: { readonly name?: string; readonly mediaType?: string } = {}): Promise<SendResult> {
    return this.#blobs.sendFile(roomId, file, optionsIn);
  }

  /** Download the file a `file` message names, check it is the blob the sender stored, and open it. */
  downloadFile(file: FileRef): Promise<Uint8Array> {
    return this.#blobs.download(file);
  }

  /**
   * Delete from the server the blob of a file this user sent (any of the
   * user's devices may), freeing its bytes from the user's blob quota.
   * Recipients who have not downloaded it yet no longer can; the message
   * itself stays. False when the server has no such blob of this user
   * (deleted already, expired, or someone else's).
   */
  deleteFile(file: FileRef): Promise<boolean> {
    return this.#blobs.delete(file);
  }

  // ------------------------------------------------------------ receipts and presence

  /**
   * Report messages of `roomId` up to `seq` read by this user (raises the
   * user's read marker, and its delivered one; a lower seq changes
   * nothing). Resolves once the server took it. Receipts are metadata the
   * server sees and relays; they are not end-to-end encrypted.
   */
  markRead(roomId: string, seq: number): Promise<void> {
    return this.#presenceTypingReceipts.markRead(roomId, seq);
  }

  /** Every member's read marker in `roomId` (members that never reported are absent). */
  receipts(roomId: string): Promise<ReadMarker[]> {
    return this.#presenceTypingReceipts.receipts(roomId);
  }

  /**
   * Who of the members of `roomId` is online now (any device connected),
   * asked of the server; members only. What `isOnline` answers for them
   * from then on, until `presence` events change it.
   */
  presence(roomId: string): Promise<ReadonlyMap<string, boolean>> {
    return this.#presenceTypingReceipts.presence(roomId);
  }

  /** Whether `userId` is online as far as this connection heard (`presence` events and answers); null before anything was heard. */
  isOnline(userId: string): boolean | null {
    return this.#presenceTypingReceipts.isOnline(userId);
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
    const error = new SdkError('CLOSED', 'client closed');
    if (!this.#link.ended) {
      this.#ended(error);
      await this.#link.close(error);
    }
    // Nothing is reported after close resolves (a background request failing
    // as the connection went, say), and a `next` still waiting fails.
    this.#events.close(error);
  }

  /** Everything waiting on the client fails with `error`. */
  #ended(error: SdkError): void {
    storesInUse.delete(this.store);
    this.#verifications.closeAll();
    this.#presenceTypingReceipts.stop();
    this.#queue.failAll(error);
    this.#roomLog.fail(error);
  }

  // ------------------------------------------------------------ connection lifecycle

  async #start(mode: 'register' | 'login'): Promise<void> {
    let conn: Connection;
    try {
      // The identity the server is about to learn must outlive the tab.
      this.store.identity.identityKeyPair();
      await this.#durable();
      conn = await this.#link.start(mode);
      this.store.setAccount({ userId: this.userId, deviceId: this.deviceId });
      if (mode === 'register') this.#keyReview.registered();
      else this.#keyReview.knowOwnDevices();
      await this.#durable();
      await this.#checkPrekeys();
    } catch (e) {
      this.#ended(asSdkError(e));
      await this.#link.close(asSdkError(e));
      throw asSdkError(e);
    }
    // Verifications an earlier client on this store left open: requests answerable at once, the rest ended.
    const restored = this.#verifications.restore(this.store.keptVerifications?.() ?? []);
    // On the next turn, so listeners attached right after this resolves see them and the catch-up.
    setTimeout(() => {
      for (const r of restored.requests) if (this.#verifications.request(r.userId) === r) this.#events.emit('verificationRequest', r);
      for (const o of restored.outcomes) this.#events.emit('verification', o);
      void this.#roomLog.catchUp(conn, 'connect');
    }, 0);
  }

  /** A connection became current: hold deliveries until it has caught up, and resume publishing. */
  #established(conn: Connection, mode: EstablishMode): void {
    this.#inbound.hold();
    // `devices.changed` hints sent while the connection was lost are gone: fetch lists again before encrypting.
    if (mode === 'resume') this.#directory.invalidateAll();
    this.#queue.kick();
    // A first connection catches up once #start is done; later ones at once.
    if (mode === 'resume' || mode === 'renew') void this.#roomLog.catchUp(conn, mode === 'resume' ? 'resume' : 'connect');
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
    } else if (f.t === 'typing') {
      this.#presenceTypingReceipts.typingFrame(f);
    } else if (f.t === 'receipt') {
      this.#presenceTypingReceipts.receiptFrame(f);
    } else if (f.t === 'presence') {
      this.#presenceTypingReceipts.presenceFrame(f);
    } else if (f.t === 'devices.changed') {
      // A hint (the list itself is verified when fetched): fetch it again on next use, and review it now.
      if (typeof f['userId'] === 'string' && USER_ID.test(f['userId'])) {
        this.#directory.invalidate(f['userId']);
        this.#keyReview.listChanged(f['userId']);
      }
    } else if (f.t === '!invalid') {
      this.#report(new SdkError('BAD_RESPONSE', 'server sent a frame that is not a JSON object with a type'));
    }
    // Mailbox entries are a later slice.
  }

  #report(e: unknown): void {
    this.#events.emit('error', asSdkError(e));
  }

  // ------------------------------------------------------------ store and prekeys

  /** Everything written to the store so far is durable (see `ClientStore.flush`). */
  #durable(): Promise<void> {
    return this.store.flush?.() ?? Promise.resolve();
  }

  #checkPrekeys(): Promise<void> {
    this.#prekeyCheck ??= maintainPrekeys(this.store, (frame) => this.#durable().then(() => this.#link.request(frame, ['keys.uploaded'])))
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
