/**
 * Presence, typing and receipts (docs/protocol.md, "Presence, typing,
 * receipts"): the metadata the server sees and relays beside the
 * encrypted messages — who is online, who types where, and how far each
 * member has received and read. None of it is end-to-end encrypted.
 *
 * Separate from the client because each has state of its own that
 * messaging does not touch: the typing throttle per room, the delivered
 * seqs waiting for the receipt timer, and the presence heard on this
 * connection (presence-view.ts), and the frames the server sends for them
 * are checked here.
 *
 * @module
 */
import type { ClientEvents, ChatMessage, ReadMarker, ReceiptEvent } from './events.ts';
import { SdkError } from './errors.ts';
import { DEVICE_ID, intField, readPresence, readPresenceVersion, ROOM_ID, stringField, USER_ID, type DeviceRef, type ServerFrame } from './frames.ts';
import { RECEIPT_INTERVAL_MS, TYPING_INTERVAL_MS } from './limits.ts';
import type { Link } from './link.ts';
import { PresenceView } from './presence-view.ts';

export interface PresenceTypingReceiptHooks {
  /** The client's link: requests, fire-and-forget frames, and whether the client closed. */
  readonly link: Pick<Link, 'request' | 'notify' | 'ended' | 'endError' | 'assertOpen'>;
  emit<K extends 'typing' | 'receipt' | 'presence'>(event: K, value: ClientEvents[K]): void;
  error(e: unknown): void;
}

export class PresenceTypingReceipts {
  readonly #me: DeviceRef;
  readonly #hooks: PresenceTypingReceiptHooks;
  /** When a typing frame was last sent, per room. */
  readonly #typingSentAt = new Map<string, number>();
  readonly #deliveryReceipts: boolean;
  /** Per room, the newest seq delivered and not yet reported, and the timer that reports it. */
  readonly #delivered = new Map<string, number>();
  #receiptTimer: ReturnType<typeof setTimeout> | null = null;
  /** The presence heard of each user on this connection. */
  readonly #presence = new PresenceView();

  /** `deliveryReceipts`: ClientOptions.deliveryReceipts. */
  constructor(me: DeviceRef, deliveryReceipts: boolean, hooks: PresenceTypingReceiptHooks) {
    this.#me = me;
    this.#deliveryReceipts = deliveryReceipts;
    this.#hooks = hooks;
  }

  /** `ParleyClient.typing`: whether a frame was sent (false when throttled or disconnected). */
  typing(roomId: string): boolean {
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const now = Date.now();
    const last = this.#typingSentAt.get(roomId);
    if (last !== undefined && now - last < TYPING_INTERVAL_MS) return false;
    if (!this.#hooks.link.notify({ t: 'typing', roomId })) return false;
    this.#typingSentAt.set(roomId, now);
    return true;
  }

  /** `ParleyClient.markRead`: resolves once the server took it. */
  async markRead(roomId: string, seq: number): Promise<void> {
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    if (!Number.isSafeInteger(seq) || seq < 1) throw new SdkError('INVALID_ARGUMENT', 'seq must be a positive integer');
    await this.#hooks.link.request({ t: 'receipt', roomId, seq, kind: 'read' }, ['receipted']);
  }

  /** `ParleyClient.receipts`: every member's read marker in `roomId`. */
  async receipts(roomId: string): Promise<ReadMarker[]> {
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const f = await this.#hooks.link.request({ t: 'receipts', roomId }, ['receipts']);
    const raw = f['members'];
    if (f['roomId'] !== roomId || !Array.isArray(raw)) throw new SdkError('BAD_RESPONSE', 'receipts answer for another room or without members');
    return raw.map((m: unknown) => {
      const o = typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : {};
      return { userId: stringField(o, 'userId', 'receipts', USER_ID), delivered: intField(o, 'delivered', 'receipts'), read: intField(o, 'read', 'receipts') };
    });
  }

  /** `ParleyClient.presence`: who of the members of `roomId` is online now, asked of the server. */
  async presence(roomId: string): Promise<ReadonlyMap<string, boolean>> {
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const f = await this.#hooks.link.request({ t: 'presence.get', roomId }, ['presence.state']);
    if (f['roomId'] !== roomId) throw new SdkError('BAD_RESPONSE', 'presence answer for another room');
    const answer = new Map<string, boolean>();
    for (const [userId, { online, version }] of readPresence(f)) {
      if (userId !== this.#me.userId) this.#presence.note(userId, online, version, true);
      answer.set(userId, userId === this.#me.userId ? online : (this.#presence.get(userId) ?? online));
    }
    return answer;
  }

  /** `ParleyClient.isOnline`: null before anything was heard of `userId`. */
  isOnline(userId: string): boolean | null {
    return this.#presence.get(userId);
  }

  /** The connection was lost: presence heard on it may be stale by the next one. */
  disconnected(): void {
    this.#presence.clear();
  }

  /** A message was delivered to the application: reported `delivered` within RECEIPT_INTERVAL_MS (when enabled). */
  delivered(m: ChatMessage): void {
    if (!this.#deliveryReceipts || m.sender.userId === this.#me.userId) return;
    if (m.seq <= (this.#delivered.get(m.roomId) ?? 0)) return;
    this.#delivered.set(m.roomId, m.seq);
    this.#receiptTimer ??= setTimeout(() => this.#sendDelivered(), RECEIPT_INTERVAL_MS);
  }

  #sendDelivered(): void {
    this.#receiptTimer = null;
    for (const [roomId, seq] of this.#delivered) {
      // Fire and forget; one lost with a connection is superseded by the next.
      if (this.#hooks.link.notify({ t: 'receipt', roomId, seq, kind: 'delivered' })) this.#delivered.delete(roomId);
    }
    if (this.#delivered.size > 0 && !this.#hooks.link.ended) this.#receiptTimer = setTimeout(() => this.#sendDelivered(), RECEIPT_INTERVAL_MS);
  }

  /** The client ended: no more delivered receipts. */
  stop(): void {
    if (this.#receiptTimer !== null) clearTimeout(this.#receiptTimer);
    this.#receiptTimer = null;
  }

  /** A `typing` frame from the server. */
  typingFrame(f: ServerFrame): void {
    const event = readTyping(f);
    if (event === null) this.#hooks.error(new SdkError('BAD_RESPONSE', 'server sent an invalid typing frame'));
    else if (event.from.userId !== this.#me.userId || event.from.deviceId !== this.#me.deviceId) this.#hooks.emit('typing', event);
  }

  /** A `receipt` frame from the server. */
  receiptFrame(f: ServerFrame): void {
    const event = readReceipt(f);
    if (event === null) this.#hooks.error(new SdkError('BAD_RESPONSE', 'server sent an invalid receipt frame'));
    else this.#hooks.emit('receipt', event);
  }

  /** A `presence` frame from the server. */
  presenceFrame(f: ServerFrame): void {
    const userId = f['userId'];
    // undefined: an invalid version (null: none given).
    let version: number | null | undefined;
    try {
      version = readPresenceVersion(f, 'presence');
    } catch {
      version = undefined;
    }
    if (typeof userId !== 'string' || !USER_ID.test(userId) || typeof f['online'] !== 'boolean' || version === undefined) this.#hooks.error(new SdkError('BAD_RESPONSE', 'server sent an invalid presence frame'));
    // An announcement older than one heard already (two server processes' crossed) changes nothing.
    else if (this.#presence.note(userId, f['online'], version)) this.#hooks.emit('presence', { userId, online: f['online'] });
  }
}

/** A `receipt` frame from the server, checked; null when it is not one. */
function readReceipt(f: ServerFrame): ReceiptEvent | null {
  const from = f['from'];
  const seq = f['seq'];
  const kind = f['kind'];
  if (typeof f['roomId'] !== 'string' || !ROOM_ID.test(f['roomId']) || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return null;
  if ((kind !== 'delivered' && kind !== 'read') || typeof from !== 'object' || from === null) return null;
  const { userId, deviceId } = from as Record<string, unknown>;
  if (typeof userId !== 'string' || !USER_ID.test(userId) || typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) return null;
  return { roomId: f['roomId'], seq, kind, from: { userId, deviceId } };
}

/** A `typing` frame from the server, checked; null when it is not one. */
function readTyping(f: ServerFrame): { roomId: string; from: DeviceRef } | null {
  const from = f['from'];
  if (typeof f['roomId'] !== 'string' || !ROOM_ID.test(f['roomId']) || typeof from !== 'object' || from === null) return null;
  const { userId, deviceId } = from as Record<string, unknown>;
  if (typeof userId !== 'string' || !USER_ID.test(userId) || typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) return null;
  return { roomId: f['roomId'], from: { userId, deviceId } };
}
