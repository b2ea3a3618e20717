/**
 * One WebSocket to the server and its request/response plumbing: every
 * request gets a connection-unique `id`, its answer is the frame whose `re`
 * matches (docs/protocol.md, "Framing"); an `error` answer rejects with
 * `SERVER` carrying the server's code; no answer within the timeout rejects
 * with `TIMEOUT`; a closed socket rejects everything pending with `CLOSED`.
 * Frames without a matching `re` (deliveries, presence, unsolicited
 * errors) go to `onFrame`, in arrival order.
 *
 * A connection knows nothing about authentication or rooms: that is the
 * client's job (client.ts, auth.ts).
 *
 * @module
 */
import { SdkError } from './errors.ts';
import { parseServerFrame, type ServerFrame } from './frames.ts';
import { REQUEST_TIMEOUT_MS } from './limits.ts';
import { defaultTransport } from '#default-transport';
import type { Transport, TransportFactory } from './transport.ts';

export interface ConnectionHandlers {
  /** A frame that answers no pending request. */
  onFrame(frame: ServerFrame): void;
  /** The socket closed (called once). */
  onClose(code: number, reason: string): void;
}

interface Pending {
  readonly t: string;
  readonly expect: readonly string[];
  readonly resolve: (f: ServerFrame) => void;
  readonly reject: (e: SdkError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Normal closure (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000;
/** The server's close code for the sessions of a removed device (docs/protocol.md, "Removing a device"): nothing will authenticate it again. */
export const CLOSE_DEVICE_REMOVED = 4003;
/** Abnormal closure (RFC 6455 §7.4.1): reported for a socket given up on, never sent. */
export const CLOSE_ABNORMAL = 1006;

export class Connection {
  readonly #transport: Transport;
  readonly #pending = new Map<string, Pending>();
  #handlers: ConnectionHandlers;
  #nextId = 1;
  #closed: { code: number; reason: string } | null = null;
  #closeWhenIdle = false;
  #lastReceivedAt = Date.now();
  readonly #closedWaiters: (() => void)[] = [];

  private constructor(transport: Transport, handlers: ConnectionHandlers) {
    this.#transport = transport;
    this.#handlers = handlers;
  }

  /** Open a socket to `url` (a `/v1` URL). */
  static async open(url: string, handlers: ConnectionHandlers, transport: TransportFactory = defaultTransport): Promise<Connection> {
    // The transport calls back into the connection, which exists only once the socket is open.
    let conn: Connection | null = null;
    const early: string[] = [];
    let earlyClose: { code: number; reason: string } | null = null;
    const t = await transport(url, {
      message: (text) => (conn === null ? early.push(text) : conn.#onText(text)),
      close: (code, reason) => (conn === null ? (earlyClose = { code, reason }) : conn.#onClose(code, reason)),
    });
    conn = new Connection(t, handlers);
    for (const text of early) conn.#onText(text);
    const closedEarly = earlyClose as { code: number; reason: string } | null;
    if (closedEarly !== null) conn.#onClose(closedEarly.code, closedEarly.reason);
    return conn;
  }

  /** Replace the handlers (used when a connection changes owner). */
  set handlers(h: ConnectionHandlers) {
    this.#handlers = h;
  }

  get isOpen(): boolean {
    return this.#closed === null;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Milliseconds since the last frame from the server (or since the socket opened). */
  get silentMs(): number {
    return Date.now() - this.#lastReceivedAt;
  }

  /**
   * Send `frame` with a fresh `id` and resolve with the answer, which must
   * be one of the frame types in `expect` (an `error` answer rejects).
   */
  request(frame: { t: string; [field: string]: unknown }, expect: readonly string[], timeoutMs: number = REQUEST_TIMEOUT_MS): Promise<ServerFrame> {
    return new Promise<ServerFrame>((resolve, reject) => {
      if (this.#closed !== null) {
        reject(new SdkError('CLOSED', `connection closed (${this.#closed.code}) before ${frame.t}`));
        return;
      }
      const id = String(this.#nextId++);
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SdkError('TIMEOUT', `no answer to ${frame.t} within ${timeoutMs} ms`));
        this.#maybeCloseIdle();
      }, timeoutMs);
      this.#pending.set(id, { t: frame.t, expect, resolve, reject, timer });
      try {
        this.#transport.send(JSON.stringify({ ...frame, id }));
      } catch (e) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new SdkError('CLOSED', `cannot send ${frame.t}`, { cause: e }));
      }
    });
  }

  /**
   * Send a frame that gets no answer when it succeeds (`typing`): no `id`, so
   * an error about it arrives as an unsolicited `error` frame. False when
   * the connection is closed or the socket refused it.
   */
  notify(frame: { t: string; [field: string]: unknown }): boolean {
    if (this.#closed !== null) return false;
    try {
      this.#transport.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Close now; pending requests reject with `CLOSED` once the socket is closed. */
  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.#closed !== null) return;
    try {
      this.#transport.close(code, reason);
    } catch {
      this.#onClose(code, reason);
    }
  }

  /**
   * Give up on a socket that does not answer: it may be dead without a close
   * (a NAT or Wi-Fi change), and its closing handshake would then wait for
   * the platform's timeout (Chromium: 60 s, `ws`: 30 s) before the close
   * event. So it counts as closed now (CLOSE_ABNORMAL, pending requests
   * reject with `CLOSED`); the socket's own close event, whenever it comes,
   * is ignored.
   */
  abandon(reason: string): void {
    if (this.#closed !== null) return;
    try {
      this.#transport.close(CLOSE_NORMAL, reason);
    } catch {
      // Closed already: nothing to tell the server.
    }
    this.#onClose(CLOSE_ABNORMAL, reason);
  }

  /** Close once no request is pending (or after `graceMs`): for a connection that another has replaced. */
  closeWhenIdle(graceMs: number): void {
    this.#closeWhenIdle = true;
    setTimeout(() => this.close(CLOSE_NORMAL, 'replaced'), graceMs).unref?.();
    this.#maybeCloseIdle();
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<void> {
    if (this.#closed !== null) return Promise.resolve();
    return new Promise<void>((resolve) => this.#closedWaiters.push(resolve));
  }

  #maybeCloseIdle(): void {
    if (this.#closeWhenIdle && this.#pending.size === 0) this.close(CLOSE_NORMAL, 'replaced');
  }

  #onText(text: string): void {
    if (this.#closed !== null) return;
    this.#lastReceivedAt = Date.now();
    const frame = parseServerFrame(text);
    if (frame === null) {
      this.#handlers.onFrame({ t: '!invalid' });
      return;
    }
    const pending = frame.re === undefined ? undefined : this.#pending.get(frame.re);
    if (pending === undefined || frame.re === undefined) {
      this.#handlers.onFrame(frame);
      return;
    }
    this.#pending.delete(frame.re);
    clearTimeout(pending.timer);
    if (frame.t === 'error') {
      const code = typeof frame['code'] === 'string' ? frame['code'] : 'unknown';
      const message = typeof frame['message'] === 'string' ? frame['message'] : '';
      pending.reject(new SdkError('SERVER', `${pending.t}: ${code}${message === '' ? '' : ` (${message})`}`, { serverCode: code }));
    } else if (!pending.expect.includes(frame.t)) {
      pending.reject(new SdkError('BAD_RESPONSE', `${pending.t} answered with ${frame.t}`));
    } else {
      pending.resolve(frame);
    }
    this.#maybeCloseIdle();
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = { code, reason };
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new SdkError('CLOSED', `connection closed (${code}${reason === '' ? '' : ` ${reason}`}) before the answer to ${p.t}`));
    }
    this.#pending.clear();
    for (const w of this.#closedWaiters.splice(0)) w();
    this.#handlers.onClose(code, reason);
  }
}
