/**
 * Peers that are gone. A v1 client whose network went away (a NAT that
 * forgot the connection, a laptop lid) sends no close: without this its
 * connection would stay open for hours, and its user would stay "online"
 * to everyone sharing a room. Every V1_PING_INTERVAL_MS each connection is
 * pinged (a WebSocket ping: every client answers it, browsers by
 * themselves); one that has not answered the previous ping by then is
 * terminated, so a dead peer goes within two intervals. One timer for all
 * connections, not one each.
 *
 * @module
 */
import type { WebSocket } from 'ws';

export class DeadPeers {
  /** Connections that answered since the last sweep (or opened since). */
  readonly #answered = new WeakSet<WebSocket>();
  readonly #sockets = new Set<WebSocket>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => this.#sweep(), intervalMs);
    this.#timer.unref();
  }

  /** Watch `ws` until it closes. */
  add(ws: WebSocket): void {
    this.#sockets.add(ws);
    this.#answered.add(ws);
    ws.on('pong', () => this.#answered.add(ws));
    ws.once('close', () => this.#sockets.delete(ws));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    for (const ws of this.#sockets) {
      if (!this.#answered.has(ws)) {
        // No close handshake: the peer cannot answer one either.
        ws.terminate();
        continue;
      }
      this.#answered.delete(ws);
      try {
        ws.ping();
      } catch {
        // Closing already: its close event follows.
      }
    }
  }
}
