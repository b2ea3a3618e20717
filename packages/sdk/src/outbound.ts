/**
 * The sending side: content in, one room message out — encrypted once for
 * every device of every room member (and this user's other devices), in
 * call order, and handed to the outbound queue (outbound-queue.ts), which
 * publishes it across reconnects; a send resolves when the server stored
 * it, and this device keeps its own copy then.
 *
 * Separate from the client because choosing the recipients (a pinned
 * direct peer, the key directory's lists or, offline, the devices the
 * store recorded), sealing in order and settling the queue's outcome are
 * one pipeline with state of its own (the sealing chain), used by every
 * kind of message: text, binary, files and control messages.
 *
 * @module
 */
import type { DeviceAddress } from '@parley/protocol';
import { randomId } from './_bytes.ts';
import type { ClientStore } from './client-store.ts';
import type { DeviceDirectory, DirectoryDevice } from './device-directory.ts';
import { SdkError } from './errors.ts';
import { ROOM_ID, type DeviceRef } from './frames.ts';
import { BODY_BYTES_MAX } from './limits.ts';
import type { Link } from './link.ts';
import type { Ack, OutboundQueue, QueuedMessage } from './outbound-queue.ts';
import { encodePayload, withDirect, type AnyContent, type PayloadContent, type StoredContent } from './payload.ts';
import { sealRoomMessage, type SkippedDevice } from './room-cipher.ts';

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

export interface OutboundHooks {
  /** The client's link: whether the client closed or is connected, and the server's limits. */
  readonly link: Pick<Link, 'ended' | 'endError' | 'assertOpen' | 'connected' | 'limits'>;
  readonly queue: Pick<OutboundQueue, 'push'>;
  readonly directory: Pick<DeviceDirectory, 'devices'>;
  /** The peer of a direct room this device has not pinned yet, pinned now; null for any other room (direct-rooms.ts). */
  pinDirect(roomId: string): Promise<string | null>;
  /** The members of `roomId` (the client caches them). */
  members(roomId: string): Promise<readonly string[]>;
  /** `fn` in one store transaction, when the store has them. */
  atomically<T>(fn: () => T): T;
  /** This device's message was stored at `seq` of `roomId` (inbound.ts: no hole). */
  sent(roomId: string, seq: number): void;
  error(e: unknown): void;
}

export class Outbound {
  readonly #me: DeviceRef;
  readonly #store: ClientStore;
  readonly #hooks: OutboundHooks;
  #sendChain: Promise<unknown> = Promise.resolve();

  constructor(me: DeviceRef, store: ClientStore, hooks: OutboundHooks) {
    this.#me = me;
    this.#store = store;
    this.#hooks = hooks;
  }

  /** `ParleyClient.send`: text or bytes, checked, as one message. */
  async send(roomId: string, content: string | Uint8Array): Promise<SendResult> {
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    let c: PayloadContent;
    if (typeof content === 'string') {
      // An empty text is a message no one can see: a slip of the caller, not something to deliver.
      if (content.length === 0) throw new SdkError('INVALID_ARGUMENT', 'text is empty');
      c = { kind: 'text', text: content };
    }
    else if (content instanceof Uint8Array) c = { kind: 'binary', bytes: content.slice() };
    else throw new SdkError('INVALID_ARGUMENT', 'content must be a string or a Uint8Array');
    return this.sendContent(roomId, c);
  }

  /** Any kind of content, as one message; resolves once the server stored it. */
  async sendContent(roomId: string, c: AnyContent): Promise<SendResult> {
    this.#hooks.link.assertOpen();
    const id = randomId();
    const sentAt = Date.now();
    // Encoded (and refused) now, not after the wait below; a direct room's peer is added in #seal.
    const payload = encodePayload({ ...c, id, sentAt });
    // A control message's content is not kept: it is the client's, and spent once sent.
    const kept: StoredContent = c.kind === 'control' ? { kind: 'control', controlType: c.bytes[0] } : c;
    // Sealing is serialised so messages are queued (and numbered by the server) in call order.
    const step = this.#sendChain.then(() => this.#seal({ roomId, clientId: id, sentAt, content: kept }, payload));
    this.#sendChain = step.catch(() => undefined);
    const sealed = await step;
    const ack = await sealed.ack; // this device's copy is kept by settled(), before this resolves
    return { id, roomId, seq: ack.seq, sentAt, serverTs: ack.ts, recipients: sealed.recipients, skipped: sealed.skipped };
  }

  async #seal(draft: Omit<QueuedMessage, 'body'>, plain: Uint8Array): Promise<{ ack: Promise<Ack>; recipients: readonly DeviceAddress[]; skipped: readonly SkippedDevice[] }> {
    const { roomId } = draft;
    // A direct room this device pinned is this user and the peer, whatever
    // the server lists: a server that added someone to it would otherwise
    // be handed every message encrypted for them. The payload says so, so
    // the receivers pin it too (payload.ts).
    const peer = this.#store.directPeer(roomId) ?? (await this.#hooks.pinDirect(roomId));
    const payload = peer !== null ? withDirect(plain, peer) : plain;
    const members = peer !== null ? [this.#me.userId, peer] : await this.#hooks.members(roomId);
    const devices = (await Promise.all(members.map((u) => this.#devicesToSealFor(u)))).flat();
    const me = { userId: this.#me.userId, deviceId: this.#me.deviceId };
    const bodyMax = Math.min(BODY_BYTES_MAX, this.#hooks.link.limits.bodyBytes ?? BODY_BYTES_MAX);
    // Queued in the same step (and store transaction) as the encryption: queue order is encryption order,
    // and advanced sessions are kept only together with the message they encrypted.
    return this.#hooks.atomically(() => {
      const sealed = sealRoomMessage(this.#store, me, devices, roomId, payload, bodyMax);
      const ack = this.#hooks.queue.push({ ...draft, body: sealed.body });
      ack.catch(() => undefined); // awaited by send(); this only keeps an early rejection from counting as unhandled
      return { ack, recipients: sealed.recipients, skipped: sealed.skipped };
    });
  }

  /**
   * The devices to encrypt a message for: the key directory's list, or —
   * while there is no connection — the devices this store has recorded for
   * the user, so a message typed offline is encrypted over the sessions that
   * exist and kept in the outbound queue (and the store) until the server
   * is back, instead of waiting for a device list it cannot fetch. A device
   * without a session then is skipped (`skipped` in the result). A user never
   * met still needs the directory (a first message needs a prekey bundle);
   * this user's other devices, when none is recorded, are left out.
   */
  #devicesToSealFor(userId: string): Promise<readonly DirectoryDevice[]> {
    const record = this.#store.peerRecord(userId);
    const recorded = (): readonly DirectoryDevice[] =>
      (record?.devices ?? []).map((d) => ({ userId, deviceId: d.deviceId, bundle: null, problem: 'offline: no key directory to make a session' }));
    if (!this.#hooks.link.connected) {
      if (record === undefined) return userId === this.#me.userId ? Promise.resolve([]) : this.#hooks.directory.devices(userId);
      return Promise.resolve(recorded());
    }
    // A connection that looks open may be dead (a browser gone offline keeps
    // its socket): if the directory does not answer, a known user's message
    // is encrypted for the recorded devices and queued, as when offline.
    if (record === undefined) return this.#hooks.directory.devices(userId);
    return this.#hooks.directory.devices(userId).catch((e: unknown) => {
      if (SdkError.is(e, 'TIMEOUT') || SdkError.is(e, 'CLOSED')) return recorded();
      throw e;
    });
  }

  /** The server stored a queued message (keep this device's copy) or refused it for good; either way the store forgets it. */
  settled(m: QueuedMessage, ack: Ack | null): void {
    const me = { userId: this.#me.userId, deviceId: this.#me.deviceId };
    try {
      this.#hooks.atomically(() => {
        if (ack !== null) {
          // A seq this device already holds another message for: the ack is false (an honest server
          // numbers each entry once). The kept message stays; this one keeps no copy.
          const there = this.#store.loadMessage(m.roomId, ack.seq);
          if (there !== undefined && !(there.id === m.clientId && there.outgoing && there.sender.deviceId === me.deviceId)) {
            this.#hooks.error(new SdkError('BAD_RESPONSE', `the server acknowledged a message with seq ${ack.seq} of room ${m.roomId}, which another message holds`));
          } else {
            this.#store.storeMessage({ ...m.content, roomId: m.roomId, seq: ack.seq, id: m.clientId, sender: me, outgoing: true, sentAt: m.sentAt, serverTs: ack.ts });
            this.#hooks.sent(m.roomId, ack.seq);
          }
        }
        this.#store.removeQueuedMessage?.(m.clientId);
      });
    } catch (e) {
      this.#hooks.error(e);
    }
  }
}
