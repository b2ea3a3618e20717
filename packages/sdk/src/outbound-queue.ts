/**
 * Messages on their way to the server. A message is encrypted once, when it
 * is queued; what waits here is the finished body with its `clientId`.
 * Publishing is strictly in queue order, one at a time, and survives lost
 * connections: a publish interrupted before its `ack` is sent again, with
 * the same `clientId` and the same bytes, on the next connection. The server
 * stores a repeated `clientId` from the same device once and answers with
 * the original `ack` (docs/protocol.md, "Messages"), so a message is stored
 * exactly once however often it is sent.
 *
 * Errors: a lost connection or a timeout keeps the message queued;
 * `rate_limited` and `internal` wait PUBLISH_RETRY_DELAY_MS and retry; any
 * other refusal (not a member, no such room) fails that message only.
 *
 * Surviving a restart: a {@link QueueJournal} hears of every message when it
 * is queued and when it is settled (stored by the server, or refused for
 * good). A store that keeps the journal's messages lets the next client
 * `restore` them, so they are published with the same clientId and bytes.
 * Closing the client fails the waiting `push` promises but settles nothing:
 * the journal still holds those messages.
 *
 * @module
 */
import { toBase64 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { intField, type ServerFrame } from './frames.ts';
import { OUTBOUND_QUEUE_MAX, PUBLISH_RETRY_DELAY_MS } from './limits.ts';
import type { StoredContent } from './payload.ts';

export interface Ack {
  readonly roomId: string;
  readonly clientId: string;
  readonly seq: number;
  /** Server clock when stored. */
  readonly ts: number;
  /** True when the server had stored this clientId already (a re-send after a lost ack). */
  readonly duplicate: boolean;
}

/** A message waiting to be published: what it takes to publish it again after a restart, and to keep this device's copy once stored. */
export interface QueuedMessage {
  readonly roomId: string;
  /** The message id: the payload's id and the room entry's clientId. */
  readonly clientId: string;
  /** The finished room body (the container of envelopes), published byte for byte as first encrypted. */
  readonly body: Uint8Array;
  /** The sender's clock when `send` was called (also inside the payload). */
  readonly sentAt: number;
  /** What was sent, for this device's own copy (`history`). */
  readonly content: StoredContent;
}

/** Hears of every message the queue takes and settles (a store keeps them across restarts). */
export interface QueueJournal {
  /** Called synchronously by `push` before the message can be published; a throw refuses the message. Not called for `restore`. */
  queued(message: QueuedMessage): void;
  /** The server stored the message (`ack`) or refused it for good (`null`). Called once, before the push settles; must not throw. */
  settled(message: QueuedMessage, ack: Ack | null): void;
}

interface Outgoing {
  readonly message: QueuedMessage;
  readonly bodyB64: string;
  readonly resolve: (ack: Ack) => void;
  readonly reject: (e: SdkError) => void;
}

/** Sends one `publish` on the current connection and resolves with its `ack` frame. */
export type Publisher = (frame: { t: 'publish'; roomId: string; clientId: string; body: string }) => Promise<ServerFrame>;

const RETRIED_SERVER_CODES: readonly string[] = ['rate_limited', 'internal'];

export class OutboundQueue {
  readonly #publish: Publisher;
  readonly #isConnected: () => boolean;
  readonly #journal: QueueJournal | null;
  readonly #items: Outgoing[] = [];
  #running = false;
  #again = false;
  #failed: SdkError | null = null;

  constructor(publish: Publisher, isConnected: () => boolean, journal: QueueJournal | null = null) {
    this.#publish = publish;
    this.#isConnected = isConnected;
    this.#journal = journal;
  }

  get size(): number {
    return this.#items.length;
  }

  /** Whether the message `clientId` is queued (not settled yet). */
  has(clientId: string): boolean {
    return this.#items.some((item) => item.message.clientId === clientId);
  }

  /**
   * Queue a finished body; the promise resolves with its ack once the server
   * has stored it. Throws (synchronously: `CLOSED`, `LIMIT`, or the
   * journal's error) when the message is not taken, so a caller can undo
   * what it did to make it. Publishing starts only after the caller's
   * synchronous code has run (a store transaction that queued it commits
   * before its bytes leave).
   */
  push(message: QueuedMessage): Promise<Ack> {
    if (this.#failed !== null) throw this.#failed;
    if (this.#items.length >= OUTBOUND_QUEUE_MAX) throw new SdkError('LIMIT', `more than ${OUTBOUND_QUEUE_MAX} messages waiting to be sent`);
    this.#journal?.queued(message);
    return this.#enqueue(message);
  }

  /** Queue a message an earlier client journaled and never settled (after a restart), ahead of anything new. */
  restore(message: QueuedMessage): Promise<Ack> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    return this.#enqueue(message);
  }

  #enqueue(message: QueuedMessage): Promise<Ack> {
    const bodyB64 = toBase64(message.body);
    const done = new Promise<Ack>((resolve, reject) => this.#items.push({ message, bodyB64, resolve, reject }));
    queueMicrotask(() => this.kick());
    return done;
  }

  /** Start publishing (after a connection came up, or something was queued). */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    void this.#pump();
  }

  /** Fail everything queued, and everything queued later, with `error` (the client was closed). The journal keeps what it holds. */
  failAll(error: SdkError): void {
    this.#failed = error;
    for (const item of this.#items.splice(0)) item.reject(error);
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      do {
        this.#again = false;
        while (this.#items.length > 0 && this.#isConnected() && this.#failed === null) {
          const item = this.#items[0] as Outgoing;
          const m = item.message;
          let ack: Ack;
          try {
            ack = readAck(await this.#publish({ t: 'publish', roomId: m.roomId, clientId: m.clientId, body: item.bodyB64 }), m);
          } catch (e) {
            const err = e instanceof SdkError ? e : new SdkError('INTERNAL', String(e), { cause: e });
            if (err.code === 'CLOSED') continue; // the loop re-checks the connection; a new one resumes.
            if (err.code === 'TIMEOUT' || (err.code === 'SERVER' && RETRIED_SERVER_CODES.includes(err.serverCode ?? ''))) {
              await delay(PUBLISH_RETRY_DELAY_MS);
              continue;
            }
            if (this.#items[0] === item) this.#items.shift();
            this.#journal?.settled(m, null);
            item.reject(err);
            continue;
          }
          if (this.#items[0] === item) this.#items.shift();
          this.#journal?.settled(m, ack);
          item.resolve(ack);
        }
      } while (this.#again && this.#items.length > 0 && this.#isConnected());
    } finally {
      this.#running = false;
    }
  }
}

function readAck(f: ServerFrame, item: QueuedMessage): Ack {
  if (f['roomId'] !== item.roomId || f['clientId'] !== item.clientId) throw new SdkError('BAD_RESPONSE', 'ack for another message');
  return { roomId: item.roomId, clientId: item.clientId, seq: intField(f, 'seq', 'ack', 1), ts: intField(f, 'ts', 'ack'), duplicate: f['duplicate'] === true };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
