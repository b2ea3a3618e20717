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
 * @module
 */
import { SdkError } from './errors.ts';
import { intField, type ServerFrame } from './frames.ts';
import { OUTBOUND_QUEUE_MAX, PUBLISH_RETRY_DELAY_MS } from './limits.ts';

export interface Ack {
  readonly roomId: string;
  readonly clientId: string;
  readonly seq: number;
  /** Server clock when stored. */
  readonly ts: number;
  /** True when the server had stored this clientId already (a re-send after a lost ack). */
  readonly duplicate: boolean;
}

interface Outgoing {
  readonly roomId: string;
  readonly clientId: string;
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
  readonly #items: Outgoing[] = [];
  #running = false;
  #again = false;
  #failed: SdkError | null = null;

  constructor(publish: Publisher, isConnected: () => boolean) {
    this.#publish = publish;
    this.#isConnected = isConnected;
  }

  get size(): number {
    return this.#items.length;
  }

  /** Queue a finished body; resolves with its ack once the server has stored it. */
  push(roomId: string, clientId: string, bodyB64: string): Promise<Ack> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    if (this.#items.length >= OUTBOUND_QUEUE_MAX) return Promise.reject(new SdkError('LIMIT', `more than ${OUTBOUND_QUEUE_MAX} messages waiting to be sent`));
    const done = new Promise<Ack>((resolve, reject) => this.#items.push({ roomId, clientId, bodyB64, resolve, reject }));
    this.kick();
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

  /** Fail everything queued, and everything queued later, with `error` (the client was closed). */
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
          let ack: Ack;
          try {
            ack = readAck(await this.#publish({ t: 'publish', roomId: item.roomId, clientId: item.clientId, body: item.bodyB64 }), item);
          } catch (e) {
            const err = e instanceof SdkError ? e : new SdkError('INTERNAL', String(e), { cause: e });
            if (err.code === 'CLOSED') continue; // the loop re-checks the connection; a new one resumes.
            if (err.code === 'TIMEOUT' || (err.code === 'SERVER' && RETRIED_SERVER_CODES.includes(err.serverCode ?? ''))) {
              await delay(PUBLISH_RETRY_DELAY_MS);
              continue;
            }
            if (this.#items[0] === item) this.#items.shift();
            item.reject(err);
            continue;
          }
          if (this.#items[0] === item) this.#items.shift();
          item.resolve(ack);
        }
      } while (this.#again && this.#items.length > 0 && this.#isConnected());
    } finally {
      this.#running = false;
    }
  }
}

function readAck(f: ServerFrame, item: Outgoing): Ack {
  if (f['roomId'] !== item.roomId || f['clientId'] !== item.clientId) throw new SdkError('BAD_RESPONSE', 'ack for another message');
  return { roomId: item.roomId, clientId: item.clientId, seq: intField(f, 'seq', 'ack', 1), ts: intField(f, 'ts', 'ack'), duplicate: f['duplicate'] === true };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
