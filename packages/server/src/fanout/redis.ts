/**
 * Fan-out across server processes through Redis pub/sub: every node
 * publishes its deliveries on one channel and writes the deliveries of the
 * others to its own sockets.
 *
 * A node hands its own deliveries to its local subscriber at once (no round
 * trip through Redis for its own sockets) and skips them when Redis echoes
 * them back. Redis delivers one connection's publishes to every subscriber
 * in the order they were made, so each node's deliveries reach every other
 * node in publish order — the order the hub relies on for one room when one
 * node serialises it. Deliveries of one room published by two nodes may
 * interleave out of seq order on any node (a node's own go to its sockets at
 * once, the other's a round trip later): clients order by `seq` and fill
 * gaps with `sync` (docs/protocol.md).
 *
 * Pub/sub is fire-and-forget: a node that loses its Redis connection misses
 * deliveries meanwhile. Nothing durable rides on this path — every entry is
 * in the store before it is published — so such clients catch up with
 * `sync`, as after any disconnect. `healthy` turns false when the
 * subscription's connection drops and true once ioredis has reconnected
 * and subscribed again; the server then makes its clients reconnect, so
 * they sync what they missed.
 *
 * Wire message (JSON, bounded on receipt):
 * `{ "n": node, "u": [userId…], "d"?: deviceId, "f": frame, "s"?: [node, connId] }`
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Delivery, FanOut } from './types.ts';
import { FANOUT_MESSAGE_BYTES_MAX, FANOUT_USERS_PER_MESSAGE } from '../limits.ts';
import { redactedUrl } from '../redacted-url.ts';

/** The channel of one deployment: its id (from the shared store) keeps deployments that share a Redis apart. */
export function fanoutChannel(deploymentId: Uint8Array): string {
  return `parley:${Buffer.from(deploymentId).toString('hex')}:fanout:v1`;
}

/** The store's name for the deployment id (`Storage.serverSecret`). */
export const DEPLOYMENT_ID_NAME = 'deployment-id';


interface WireDelivery {
  n: string;
  u: string[];
  d?: string;
  f: string;
  s?: [string, number];
}

function encode(node: string, d: Delivery): string {
  const w: WireDelivery = { n: node, u: [...d.users], f: d.frame };
  if (d.device !== undefined) w.d = d.device;
  if (d.skip !== undefined) w.s = [d.skip.node, d.skip.connId];
  return JSON.stringify(w);
}

/** Parse a message from the channel; null for anything malformed or oversized (another program may share the Redis). */
export function decodeWireDelivery(text: string): (Delivery & { from: string }) | null {
  if (text.length > FANOUT_MESSAGE_BYTES_MAX) return null;
  let w: unknown;
  try {
    w = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof w !== 'object' || w === null) return null;
  const { n, u, d, f, s } = w as Record<string, unknown>;
  if (typeof n !== 'string' || typeof f !== 'string' || !Array.isArray(u) || !u.every((x) => typeof x === 'string')) return null;
  if (d !== undefined && typeof d !== 'string') return null;
  let skip: Delivery['skip'];
  if (s !== undefined) {
    if (!Array.isArray(s) || s.length !== 2 || typeof s[0] !== 'string' || !Number.isSafeInteger(s[1])) return null;
    skip = { node: s[0], connId: s[1] as number };
  }
  return { from: n, users: u as string[], frame: f, ...(d !== undefined && { device: d }), ...(skip !== undefined && { skip }) };
}

export class RedisFanOut implements FanOut {
  readonly node: string;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #channel: string;
  #handlers: ((d: Delivery) => void)[] = [];
  #healthHandlers: ((healthy: boolean) => void)[] = [];
  #healthy = true;
  #closed = false;

  private constructor(pub: Redis, sub: Redis, channel: string, node: string) {
    this.#pub = pub;
    this.#sub = sub;
    this.#channel = channel;
    this.node = node;
    sub.on('message', (from: string, text: string) => {
      if (from !== this.#channel || this.#closed) return;
      const d = decodeWireDelivery(text);
      if (d === null || d.from === this.node) return;
      for (const h of this.#handlers) h(d);
    });
    sub.on('close', () => this.#setHealthy(false));
    // ioredis re-subscribes before it reports ready again.
    sub.on('ready', () => this.#setHealthy(true));
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  onHealth(handler: (healthy: boolean) => void): void {
    this.#healthHandlers.push(handler);
  }

  #setHealthy(healthy: boolean): void {
    if (this.#closed || healthy === this.#healthy) return;
    this.#healthy = healthy;
    for (const h of this.#healthHandlers) h(healthy);
  }

  /**
   * Connect both connections and subscribe to `channel` (one per deployment:
   * {@link fanoutChannel}); rejects, naming Redis and the URL, if it is unreachable.
   */
  static async connect(url: string, channel: string, node = `n-${randomBytes(6).toString('hex')}`): Promise<RedisFanOut> {
    const options = { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true } as const;
    const pub = new Redis(url, options);
    const sub = new Redis(url, options);
    // Connection errors are retried by ioredis; without a listener they would be thrown as unhandled events.
    pub.on('error', () => undefined);
    sub.on('error', () => undefined);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(channel);
    } catch (e) {
      pub.disconnect();
      sub.disconnect();
      throw new Error(`fan-out: cannot use Redis at ${redactedUrl(url)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new RedisFanOut(pub, sub, channel, node);
  }

  publish(delivery: Delivery): void {
    if (this.#closed) return;
    // `users` may be any iterable: read it once, for both paths.
    const users = [...delivery.users];
    const d: Delivery = { ...delivery, users };
    for (const h of this.#handlers) h(d);
    // Other nodes: best effort (see the module comment); a failure is not this node's delivery.
    if (users.length <= FANOUT_USERS_PER_MESSAGE) {
      this.#pub.publish(this.#channel, encode(this.node, d)).catch(() => undefined);
      return;
    }
    // A long recipient list goes in several messages, each under the size others accept.
    for (let i = 0; i < users.length; i += FANOUT_USERS_PER_MESSAGE) {
      this.#pub.publish(this.#channel, encode(this.node, { ...d, users: users.slice(i, i + FANOUT_USERS_PER_MESSAGE) })).catch(() => undefined);
    }
  }

  subscribe(handler: (delivery: Delivery) => void): void {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers = [];
    this.#healthHandlers = [];
    // quit() waits for a live connection; with Redis away it would wait for ever: give it a second, then cut.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([this.#sub.quit(), this.#pub.quit()]), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
    clearTimeout(timer);
    this.#sub.disconnect();
    this.#pub.disconnect();
  }
}
