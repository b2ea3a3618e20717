/**
 * A device's link to the server: one authenticated connection at a time,
 * kept up for as long as the client lives.
 *
 * - **Establishing**: open, `hello`, then register, log in, or resume with
 *   the cheapest credential that works (auth.ts). One attempt at a time.
 * - **Losing it**: a connection that closes is replaced after a backoff
 *   (RECONNECT_DELAY_MIN_MS doubling to RECONNECT_DELAY_MAX_MS, with
 *   jitter; at once after 4001, the server's "token expired"). Protocol
 *   version mismatch (1002) and `reconnect: false` end the link instead.
 * - **Renewing**: before the access token expires (auth.ts `renewalTime`) a
 *   new connection is authenticated with the refresh token and replaces the
 *   current one, which finishes its pending requests and closes: make before
 *   break, so delivery has no gap.
 * - **Requests** go to the current connection; while there is none they
 *   wait for the next, and one cut off by a lost connection is sent again
 *   (up to REQUEST_RETRIES_MAX times). Only idempotent requests and
 *   publishes (idempotent by clientId) go through here.
 *
 * What happens on a new connection (holding deliveries, catching up,
 * restarting the outbound queue) is the client's business, through hooks.
 *
 * @module
 */
import type { IdentityKeyPair } from '@parley/protocol';
import { hello, loginDevice, registerDevice, renewalTime, resume, type Account, type Tokens } from './auth.ts';
import { CLOSE_DEVICE_REMOVED, CLOSE_NORMAL, Connection } from './connection.ts';
import { SdkError } from './errors.ts';
import type { ConnectionEvent } from './events.ts';
import type { ServerFrame, ServerLimits } from './frames.ts';
import { CONNECTION_STABLE_MS, HEARTBEAT_TIMEOUT_MS, RECONNECT_DELAY_MAX_MS, RECONNECT_DELAY_MIN_MS, RENEWAL_DELAY_MIN_MS, REQUEST_RETRIES_MAX, REQUEST_TIMEOUT_MS, RETIRE_GRACE_MS } from './limits.ts';
import type { TransportFactory } from './transport.ts';

export type EstablishMode = 'register' | 'login' | 'resume' | 'renew';

export interface LinkHooks {
  /** A frame that answers no request. */
  frame(f: ServerFrame): void;
  /** A connection is authenticated and now current (called before any of its deliveries is handled). */
  established(conn: Connection, mode: EstablishMode): void;
  connection(event: ConnectionEvent): void;
  /** A background failure (reconnect or renewal attempt). */
  error(e: unknown): void;
  /** The link ended for good (not called for `close()`). */
  ended(error: SdkError): void;
}

export interface LinkOptions {
  readonly url: string;
  readonly account: Account;
  readonly identity: () => IdentityKeyPair;
  readonly transport: TransportFactory | undefined;
  readonly reconnect: boolean;
}

const CLOSE_UNSUPPORTED_VERSION = 1002;
const CLOSE_TOKEN_EXPIRED = 4001;
/** The user signed out everywhere (`sessions.revoke`): reconnect at once; the key logs in again. */
const CLOSE_SIGNED_OUT = 4002;
const CLOSE_WAIT_MS = 2_000;
/** setTimeout's largest delay. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export class Link {
  readonly #options: LinkOptions;
  readonly #hooks: LinkHooks;
  #conn: Connection | null = null;
  #tokens: Tokens | null = null;
  #limits: ServerLimits = { bodyBytes: null, historyPage: null, blobBytes: null, blobChunkBytes: null, heartbeatMs: null };
  #ended = false;
  #endError: SdkError | null = null;
  #establishing: Promise<Connection> | null = null;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #renewTimer: ReturnType<typeof setTimeout> | null = null;
  #heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  #attempt = 0;
  /** When the current connection was established (ms), to tell a stable connection from one that fails at once. */
  #establishedAt = 0;
  readonly #waiters: { resolve: (c: Connection) => void; reject: (e: SdkError) => void }[] = [];

  constructor(options: LinkOptions, hooks: LinkHooks) {
    this.#options = options;
    this.#hooks = hooks;
  }

  /** Whether a connection is up and authenticated. */
  get connected(): boolean {
    return this.#conn?.isOpen === true;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Why the link ended (`CLOSED` when the client was closed), as a fresh error for each caller. */
  get endError(): SdkError {
    const e = this.#endError ?? new SdkError('CLOSED', 'client closed');
    return new SdkError(e.code, e.message, { cause: e, ...(e.serverCode !== undefined && { serverCode: e.serverCode }) });
  }

  /** Throws `endError` once the link has ended. */
  assertOpen(): void {
    if (this.#ended) throw this.endError;
  }

  /**
   * The tokens no longer work (the user signed out everywhere): log in
   * again with the device key now, on a new connection that replaces this
   * one, rather than fail a refresh first when the token runs out.
   */
  loginAgain(): void {
    if (this.#ended) return;
    this.#tokens = null;
    void this.#renew();
  }

  /** What the server announced in `welcome`. */
  get limits(): ServerLimits {
    return this.#limits;
  }

  /** The connection frames are sent on now, if one is open. */
  get current(): Connection | null {
    return this.#conn?.isOpen === true ? this.#conn : null;
  }

  /** The current connection, if it is this one (for hooks that must not act for a replaced connection). */
  isCurrent(conn: Connection): boolean {
    return conn === this.#conn;
  }

  /** Establish the first connection by registering or logging in; throws (and ends the link) if that fails. */
  async start(mode: 'register' | 'login'): Promise<Connection> {
    try {
      return await this.#establish(mode);
    } catch (e) {
      this.#end(e instanceof SdkError ? e : new SdkError('INTERNAL', String(e), { cause: e }));
      throw e;
    }
  }

  /**
   * A request on the current connection, waiting for one and re-sent if it
   * drops first. `timeoutMs` bounds the whole: waiting for a connection (the
   * server may be down for long) and the answer; then `TIMEOUT`.
   */
  async request(frame: { t: string; [field: string]: unknown }, expect: readonly string[], timeoutMs: number = REQUEST_TIMEOUT_MS): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const conn = await this.#connection(deadline);
      try {
        return await conn.request(frame, expect, Math.max(1, deadline - Date.now()));
      } catch (e) {
        // No answer on a connection that looks open: it may be dead without a
        // close (a browser gone offline keeps its socket). Give it up and make
        // a new one; the reconnect logic takes over.
        if (SdkError.is(e, 'TIMEOUT') && conn.isOpen) this.#abandon(conn, 'no answer in time');
        if (!SdkError.is(e, 'CLOSED') || this.#ended || attempt >= REQUEST_RETRIES_MAX) throw e;
      }
    }
  }

  /** A frame without an answer (ephemeral signals) on the current connection; false, and dropped, while there is none. */
  notify(frame: { t: string; [field: string]: unknown }): boolean {
    if (this.#ended || this.#conn === null || !this.#conn.isOpen) return false;
    return this.#conn.notify(frame);
  }

  /** Drop the current connection so a new one is made (e.g. after a failed catch-up). */
  restart(conn: Connection, reason: string): void {
    if (conn === this.#conn) conn.close(CLOSE_NORMAL, reason);
  }

  /** Give up on `conn` if it is the current one: closed at once, and a new one made (Connection.abandon). */
  #abandon(conn: Connection, reason: string): void {
    if (conn === this.#conn) conn.abandon(reason);
  }

  /**
   * After `heartbeatMs` without a frame from the server, a `ping`; no `pong`
   * within HEARTBEAT_TIMEOUT_MS and the connection is given up. An idle
   * client would otherwise sit on a dead socket for ever, reporting itself
   * connected while messages wait on the server.
   */
  #scheduleHeartbeat(): void {
    if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
    const interval = this.#limits.heartbeatMs;
    const conn = this.#conn;
    if (interval === null || conn === null || this.#ended) return;
    const timer = setTimeout(() => {
      this.#heartbeatTimer = null;
      if (conn !== this.#conn || !conn.isOpen) return;
      if (conn.silentMs < interval) {
        this.#scheduleHeartbeat();
        return;
      }
      conn.request({ t: 'ping' }, ['pong'], HEARTBEAT_TIMEOUT_MS).then(
        () => this.#scheduleHeartbeat(),
        (e: unknown) => {
          if (SdkError.is(e, 'TIMEOUT')) this.#abandon(conn, 'no answer to a ping');
          else if (conn === this.#conn) this.#scheduleHeartbeat();
        },
      );
    }, Math.max(0, interval - conn.silentMs));
    // A heartbeat alone must not keep a Node process running.
    (timer as { unref?: () => void }).unref?.();
    this.#heartbeatTimer = timer;
  }

  /** End the link and close its connection (resolves once closed, or after CLOSE_WAIT_MS). */
  async close(error: SdkError): Promise<void> {
    if (this.#ended) return;
    this.#end(error, false);
    const conn = this.#conn;
    this.#conn = null;
    if (conn === null) return;
    conn.close(CLOSE_NORMAL, 'client closed');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([conn.closed(), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  #connection(deadline: number): Promise<Connection> {
    if (this.#ended) return Promise.reject(this.endError);
    if (this.#conn !== null && this.#conn.isOpen) return Promise.resolve(this.#conn);
    return new Promise<Connection>((resolve, reject) => {
      const waiter = {
        resolve: (c: Connection) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e: SdkError) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new SdkError('TIMEOUT', 'no connection to the server in time'));
      }, Math.max(0, deadline - Date.now()));
      this.#waiters.push(waiter);
    });
  }

  /** Open, negotiate and authenticate a connection, then make it the current one. One at a time. */
  #establish(mode: EstablishMode): Promise<Connection> {
    this.#establishing ??= this.#open(mode).finally(() => (this.#establishing = null));
    return this.#establishing;
  }

  async #open(mode: EstablishMode): Promise<Connection> {
    let opened: Connection | null = null;
    const conn = await Connection.open(
      this.#options.url,
      { onFrame: (f) => this.#hooks.frame(f), onClose: (code, reason) => this.#onClose(opened, code, reason) },
      this.#options.transport,
    );
    opened = conn;
    try {
      const limits = await hello(conn);
      const identity = this.#options.identity();
      const account = this.#options.account;
      let tokens: Tokens;
      if (mode === 'register') tokens = await registerDevice(conn, identity, account);
      else if (mode === 'login') tokens = await loginDevice(conn, identity, account);
      else tokens = await resume(conn, identity, account, this.#tokens, mode === 'renew');
      if (this.#ended) throw new SdkError('CLOSED', 'client closed');
      if (!conn.isOpen) throw new SdkError('CLOSED', 'connection closed while authenticating');
      this.#limits = limits;
      this.#tokens = tokens;
      const old = this.#conn;
      this.#conn = conn;
      if (old !== conn) this.#establishedAt = Date.now();
      this.#hooks.established(conn, mode);
      // The replaced connection finishes what it has in flight; its deliveries are deduplicated.
      if (old !== null && old !== conn) old.closeWhenIdle(RETIRE_GRACE_MS);
      this.#scheduleRenewal();
      this.#scheduleHeartbeat();
      for (const w of this.#waiters.splice(0)) w.resolve(conn);
      this.#hooks.connection({ state: 'connected', renewal: mode === 'renew' });
      return conn;
    } catch (e) {
      conn.close(CLOSE_NORMAL, 'not established');
      throw e;
    }
  }

  #onClose(conn: Connection | null, code: number, reason: string): void {
    if (conn === null || conn !== this.#conn) return; // not established yet, or replaced
    this.#conn = null;
    // The backoff starts over only after a connection that lasted: one that fails right after
    // login (a catch-up the server keeps answering wrongly) keeps backing off.
    if (Date.now() - this.#establishedAt >= CONNECTION_STABLE_MS) this.#attempt = 0;
    this.#clearTimers();
    if (this.#ended) return;
    this.#hooks.connection({ state: 'disconnected', code, reason });
    if (code === CLOSE_DEVICE_REMOVED) {
      this.#end(new SdkError('DEVICE_REMOVED', `${this.#options.account.userId}/${this.#options.account.deviceId} was removed from its account`));
      return;
    }
    if (!this.#options.reconnect || code === CLOSE_UNSUPPORTED_VERSION) {
      this.#end(new SdkError('CLOSED', `connection closed (${code}${reason === '' ? '' : ` ${reason}`})`));
      return;
    }
    this.#scheduleReconnect(code === CLOSE_TOKEN_EXPIRED || code === CLOSE_SIGNED_OUT ? 0 : undefined);
  }

  #scheduleReconnect(delayMs?: number): void {
    if (this.#ended || this.#reconnectTimer !== null) return;
    const attempt = ++this.#attempt;
    const ceiling = Math.min(RECONNECT_DELAY_MAX_MS, RECONNECT_DELAY_MIN_MS * 2 ** Math.min(attempt - 1, 20));
    // "Equal jitter": half fixed, half random, so clients that lost the same server do not return in step.
    const delay = delayMs ?? Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#hooks.connection({ state: 'reconnecting', attempt, delayMs: delay });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#reconnectNow();
    }, delay);
  }

  async #reconnectNow(): Promise<void> {
    if (this.#ended || this.connected) return;
    try {
      await this.#establish('resume');
    } catch (e) {
      if (this.#ended) return;
      // Removed while away: nothing will authenticate this device again.
      if (SdkError.is(e, 'DEVICE_REMOVED')) return this.#end(e);
      this.#hooks.error(e);
      this.#scheduleReconnect();
    }
  }

  #scheduleRenewal(): void {
    if (this.#renewTimer !== null) clearTimeout(this.#renewTimer);
    this.#renewTimer = null;
    if (this.#tokens === null) return;
    // Never sooner than RENEWAL_DELAY_MIN_MS: a token issued already due (expiresIn 0) must not renew in a loop.
    const delay = Math.max(RENEWAL_DELAY_MIN_MS, Math.min(renewalTime(this.#tokens) - Date.now(), TIMER_MAX_MS));
    this.#renewTimer = setTimeout(() => {
      this.#renewTimer = null;
      void this.#renew();
    }, delay);
  }

  async #renew(): Promise<void> {
    if (this.#ended || !this.connected) return;
    try {
      await this.#establish('renew');
    } catch (e) {
      if (this.#ended) return;
      this.#hooks.error(e);
      // Try again shortly; if the token runs out first, the server closes (4001) and reconnecting takes over.
      if (this.connected && this.#renewTimer === null) {
        this.#renewTimer = setTimeout(() => {
          this.#renewTimer = null;
          void this.#renew();
        }, RECONNECT_DELAY_MIN_MS * 4);
      }
    }
  }

  #clearTimers(): void {
    if (this.#renewTimer !== null) clearTimeout(this.#renewTimer);
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer);
    this.#renewTimer = null;
    this.#reconnectTimer = null;
    this.#heartbeatTimer = null;
  }

  #end(error: SdkError, notify = true): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endError = error;
    this.#clearTimers();
    for (const w of this.#waiters.splice(0)) w.reject(error);
    if (notify) this.#hooks.ended(error);
  }
}
