/**
 * Peers that are gone. A tutorial client whose network went away sends no
 * close, and its connection would keep its name and its place for ever. So
 * every connection is pinged every TUTORIAL_PING_INTERVAL_MS, and one that
 * does not answer within TUTORIAL_PONG_TIMEOUT_MS is cut off: a dead peer
 * keeps its name at most their sum.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import type { TutorialLimits } from './settings.ts';

/** What the heartbeat needs of a connection: its socket, whether it is closed, and its ping timer. */
export interface Pinged {
  readonly ws: WebSocket;
  readonly phase: string;
  /** The next ping, or (awaitingPong) the deadline for its pong. */
  heartbeat: NodeJS.Timeout | null;
  awaitingPong: boolean;
}

export class Heartbeat<P extends Pinged> {
  readonly #limits: Pick<TutorialLimits, 'pingIntervalMs' | 'pongTimeoutMs'>;
  readonly #cutOff: (p: P, why: string) => void;

  /** `cutOff` drops a connection that did not answer (and clears its `heartbeat` timer, as for any connection that ends). */
  constructor(limits: Pick<TutorialLimits, 'pingIntervalMs' | 'pongTimeoutMs'>, cutOff: (p: P, why: string) => void) {
    this.#limits = limits;
    this.#cutOff = cutOff;
  }

  /** Ping `c` TUTORIAL_PING_INTERVAL_MS from now. */
  schedule(c: P): void {
    c.heartbeat = setTimeout(() => this.#ping(c), this.#limits.pingIntervalMs);
  }

  /** Ping; a peer that does not answer within TUTORIAL_PONG_TIMEOUT_MS is gone (its network, most likely) and is cut off. */
  #ping(c: P): void {
    if (c.phase === 'closed') return;
    c.awaitingPong = true;
    try {
      c.ws.ping();
    } catch {
      // Not open any more: its close event follows.
    }
    c.heartbeat = setTimeout(() => this.#cutOff(c, 'no answer to a ping'), this.#limits.pongTimeoutMs);
  }

  /** `c` answered a ping: the next one in TUTORIAL_PING_INTERVAL_MS. */
  pong(c: P): void {
    if (!c.awaitingPong || c.phase === 'closed') return;
    c.awaitingPong = false;
    if (c.heartbeat !== null) clearTimeout(c.heartbeat);
    this.schedule(c);
  }
}
