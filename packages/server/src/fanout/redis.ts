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
 * Lost deliveries. The other direction fails too: a delivery this node
 * publishes while its connection to Redis is down never reaches the other
 * nodes, whose clients would not learn of it until their room's next entry
 * (or never, in a quiet room). So this node remembers the recipients of
 * each publish that fails (up to FANOUT_LOST_USERS_MAX, then "everyone"),
 * and once its publishing connection is back it tells the other nodes,
 * which ask those users' connections to reconnect and sync.
 *
 * Wire messages (JSON, bounded on receipt): a delivery
 * `{ "n": node, "u": [userId…], "d"?: deviceId, "f": frame, "s"?: [node, connId], "c"?: close code }`;
 * lost deliveries `{ "n": node, "lost": [userId…] | "*" }`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Delivery, FanOut } from './types.ts';
import { FANOUT_LOST_USERS_MAX, FANOUT_MESSAGE_BYTES_MAX, FANOUT_USERS_PER_MESSAGE } from '../limits.ts';
import { redactedUrl } from '../redacted-url.ts';
import { redisRetryStrategy } from '../redis-retry.ts';

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
  c?: number;
}

function encode(node: string, d: Delivery): string {
  const w: WireDelivery = { n: node, u: [...d.users], f: d.frame };
  if (d.device !== undefined) w.d = d.device;
  if (d.skip !== undefined) w.s = [d.skip.node, d.skip.connId];
  if (d.close !== undefined) w.c = d.close;
  return JSON.stringify(w);
}

/** A channel message as an object; null for anything malformed or oversized (another program may share the Redis). */
function wireObject(text: string): Record<string, unknown> | null {
  if (text.length > FANOUT_MESSAGE_BYTES_MAX) return null;
  let w: unknown;
  try {
    w = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof w === 'object' && w !== null ? (w as Record<string, unknown>) : null;
}

/** Parse a delivery from the channel; null for anything else. */
export function decodeWireDelivery(text: string): (Delivery & { from: string }) | null {
  const w = wireObject(text);
  if (w === null) return null;
  const { n, u, d, f, s, c } = w;
  if (typeof n !== 'string' || typeof f !== 'string' || !Array.isArray(u) || !u.every((x) => typeof x === 'string')) return null;
  if (d !== undefined && typeof d !== 'string') return null;
  // Only the codes sessions are ended with: an application's own range (RFC 6455 §7.4.2), which ws sends as given.
  if (c !== undefined && !(Number.isInteger(c) && (c as number) >= 4000 && (c as number) <= 4999)) return null;
  let skip: Delivery['skip'];
  if (s !== undefined) {
    if (!Array.isArray(s) || s.length !== 2 || typeof s[0] !== 'string' || !Number.isSafeInteger(s[1])) return null;
    skip = { node: s[0], connId: s[1] as number };
  }
  return { from: n, users: u as string[], frame: f, ...(d !== undefined && { device: d }), ...(skip !== undefined && { skip }), ...(c !== undefined && { close: c as number }) };
}

/** A lost-deliveries notice from the channel (`lost` null: everyone); null for anything else. */
export function decodeWireLost(text: string): { from: string; lost: Set<string> | null } | null {
  const w = wireObject(text);
  if (w === null) return null;
  const { n, lost } = w;
  if (typeof n !== 'string') return null;
  if (lost === '*') return { from: n, lost: null };
  if (!Array.isArray(lost) || lost.length > FANOUT_USERS_PER_MESSAGE || !lost.every((x) => typeof x === 'string')) return null;
  return { from: n, lost: new Set(lost as string[]) };
}

export class RedisFanOut implements FanOut {
  readonly node: string;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #channel: string;
  #handlers: ((d: Delivery) => void)[] = [];
  #healthHandlers: ((healthy: boolean) => void)[] = [];
  #lostHandlers: ((users: ReadonlySet<string> | null) => void)[] = [];
  #healthy = true;
  #closed = false;
  /** Recipients of this node's deliveries that did not reach Redis, not yet told (null: too many: everyone). */
  #lost: Set<string> | null = new Set();
  #retry: ReturnType<typeof setTimeout> | undefined;

  private constructor(pub: Redis, sub: Redis, channel: string, node: string) {
    this.#pub = pub;
    this.#sub = sub;
    this.#channel = channel;
    this.node = node;
    sub.on('message', (from: string, text: string) => {
      if (from !== this.#channel || this.#closed) return;
      const d = decodeWireDelivery(text);
      if (d !== null) {
        if (d.from !== this.node) for (const h of this.#handlers) h(d);
        return;
      }
      const lost = decodeWireLost(text);
      if (lost !== null && lost.from !== this.node) for (const h of this.#lostHandlers) h(lost.lost);
    });
    pub.on('ready', () => this.#tellLost());
    sub.on('close', () => this.#setHealthy(false));
    // Subscribed again by hand, not by ioredis' autoResubscribe: its subscribe
    // has no rejection handler, and a connection that drops again right away
    // rejects it — an unhandled rejection, which ends the process. Healthy
    // only once subscribed; a failure waits for the next 'ready'.
    sub.on('ready', () => {
      sub.subscribe(this.#channel).then(
        () => this.#setHealthy(true),
        () => undefined,
      );
    });
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
   * {@link fanoutChannel}); rejects, naming Redis and the URL, if it is
   * unreachable — unless `whileDown`: then it starts unhealthy and
   * subscribes once Redis answers (ioredis keeps trying).
   */
  static async connect(url: string, channel: string, node = `n-${randomBytes(6).toString('hex')}`, start: { whileDown?: boolean } = {}): Promise<RedisFanOut> {
    const options = { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true, retryStrategy: redisRetryStrategy } as const;
    const pub = new Redis(url, options);
    const sub = new Redis(url, { ...options, autoResubscribe: false });
    // Connection errors are retried by ioredis; without a listener they would be thrown as unhandled events.
    pub.on('error', () => undefined);
    sub.on('error', () => undefined);
    const fanout = new RedisFanOut(pub, sub, channel, node);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(channel);
    } catch (e) {
      if (start.whileDown === true) {
        fanout.#setHealthy(false);
        return fanout;
      }
      pub.disconnect();
      sub.disconnect();
      throw new Error(`fan-out: cannot use Redis at ${redactedUrl(url)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return fanout;
  }

  publish(delivery: Delivery): void {
    if (this.#closed) return;
    // `users` may be any iterable: read it once, for both paths.
    const users = [...delivery.users];
    const d: Delivery = { ...delivery, users };
    for (const h of this.#handlers) h(d);
    // Other nodes: through Redis; a delivery that fails is remembered and told once Redis is back ("Lost deliveries").
    if (users.length <= FANOUT_USERS_PER_MESSAGE) {
      this.#publishOrRemember(users, encode(this.node, d));
      return;
    }
    // A long recipient list goes in several messages, each under the size others accept.
    for (let i = 0; i < users.length; i += FANOUT_USERS_PER_MESSAGE) {
      const part = users.slice(i, i + FANOUT_USERS_PER_MESSAGE);
      this.#publishOrRemember(part, encode(this.node, { ...d, users: part }));
    }
  }

  subscribe(handler: (delivery: Delivery) => void): void {
    this.#handlers.push(handler);
  }

  onLost(handler: (users: ReadonlySet<string> | null) => void): void {
    this.#lostHandlers.push(handler);
  }

  #publishOrRemember(users: readonly string[], message: string): void {
    this.#pub.publish(this.#channel, message).catch(() => this.#remember(users));
  }

  /** A delivery to `users` (null: a notice to everyone) did not reach Redis. */
  #remember(users: readonly string[] | null): void {
    if (this.#closed) return;
    if (this.#lost !== null) {
      if (users === null) this.#lost = null;
      else for (const u of users) this.#lost.add(u);
      if (this.#lost !== null && this.#lost.size > FANOUT_LOST_USERS_MAX) this.#lost = null;
    }
    // A failure on a connection that stayed up (a Redis error) gets no 'ready': try again shortly.
    if (this.#pub.status === 'ready' && this.#retry === undefined) {
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        this.#tellLost();
      }, 1000);
      this.#retry.unref();
    }
  }

  /** Tell the other nodes whose deliveries were lost (a notice that fails is remembered again). */
  #tellLost(): void {
    if (this.#closed || (this.#lost !== null && this.#lost.size === 0)) return;
    const lost = this.#lost;
    this.#lost = new Set();
    if (lost === null) {
      this.#pub.publish(this.#channel, JSON.stringify({ n: this.node, lost: '*' })).catch(() => this.#remember(null));
      return;
    }
    const users = [...lost];
    for (let i = 0; i < users.length; i += FANOUT_USERS_PER_MESSAGE) {
      const part = users.slice(i, i + FANOUT_USERS_PER_MESSAGE);
      this.#publishOrRemember(part, JSON.stringify({ n: this.node, lost: part }));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#handlers = [];
    this.#healthHandlers = [];
    this.#lostHandlers = [];
    // quit() waits for a live connection; with Redis away it would wait for ever: give it a second, then cut.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([this.#sub.quit(), this.#pub.quit()]), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
    clearTimeout(timer);
    this.#sub.disconnect();
    this.#pub.disconnect();
  }
}
