/**
 * Presence across server processes in Redis: each process (node) keeps the
 * set of users connected to it, and a sorted set lists the live nodes with
 * the time each one's entry lapses. Every step is one Lua script, so it is
 * atomic against every other node's: a user's first connection anywhere is
 * announced once, and the last one to leave anywhere is announced once.
 *
 * ```
 * <prefix>:nodes        ZSET   node id → lapse time (ms, Redis clock)
 * <prefix>:node:<id>    SET    user ids connected to that node
 * <prefix>:versions     HASH   user id → version of its last change
 * ```
 *
 * A node renews its entry every `ttlMs / 3`. A node that stops without
 * saying so (killed) lapses after `ttlMs`; the next renewal of any other
 * node claims the lapsed entry (removing it from the sorted set, so only one
 * node does) and reports the lapsed node's users that are online nowhere
 * else, to be announced offline. A node's user set outlives its entry
 * (3 × ttlMs) so that the claim can still read it.
 *
 * A call that fails (Redis unreachable: there is no offline queue, the
 * caller falls back) leaves this node's set behind its connections: a
 * user who left meanwhile would stay online, one who came stay offline.
 * Once a call has failed, the next renewal (and Redis coming back) first
 * makes the set what this node holds (`#reconcile`), announcing the
 * differences with versions.
 *
 * Redis' own clock (`TIME`) dates everything, so the nodes' clocks need not
 * agree.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Presence, PresenceChange, PresenceState } from './types.ts';
import { redactedUrl } from '../redacted-url.ts';
import { redisRetryStrategy } from '../redis-retry.ts';

/** How long a node's entry lasts without renewal (it renews every third of it). */
export const PRESENCE_NODE_TTL_MS = 30_000;

/** Users put back per script call after a lapse (each call blocks Redis while it runs). */
const REJOIN_BATCH = 500;

/** The key prefix of one deployment (its id keeps deployments sharing a Redis apart). */
export function presencePrefix(deploymentId: Uint8Array): string {
  return `parley:${Buffer.from(deploymentId).toString('hex')}:presence:v1`;
}

// KEYS[1] the nodes' sorted set. ARGV[1] prefix, ARGV[2] node, ARGV[3] ttl ms.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local me = ARGV[1] .. ':node:' .. ARGV[2]
-- On a live node other than \`skip\` (nil: any live node).
local function online(user, skip)
  for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    if n ~= skip and redis.call('SISMEMBER', ARGV[1] .. ':node:' .. n, user) == 1 then return true end
  end
  return false
end
local function elsewhere(user) return online(user, ARGV[2]) end
local function bump(user) return redis.call('HINCRBY', ARGV[1] .. ':versions', user, 1) end
`;

// ARGV[4] user: { the change's version if it was on no node before, else 0;
// 1 if this node had no entry (new Redis, or lapsed and claimed), which is
// added at once so the user counts — its other users are then put back by
// the caller (REJOIN) }.
const ARRIVE = `${NOW}
local absent = 0
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false then
  absent = 1
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
end
if redis.call('SADD', me, ARGV[4]) == 0 then return {0, absent} end
redis.call('PEXPIRE', me, ttl * 3)
if elsewhere(ARGV[4]) then return {0, absent} end
return {bump(ARGV[4]), absent}
`;

// ARGV[4] user: the change's version if it is now on no node, else 0.
const LEAVE = `${NOW}
if redis.call('SREM', me, ARGV[4]) == 0 then return 0 end
if elsewhere(ARGV[4]) then return 0 end
return bump(ARGV[4])
`;

// ARGV[4…] users: for each, 1 or 0 (online on some live node, this one
// included) and the version of its last change (0: none).
const ONLINE = `${NOW}
local out = {}
local versions = redis.call('HMGET', ARGV[1] .. ':versions', unpack(ARGV, 4))
for i = 4, #ARGV do
  out[2 * (i - 3) - 1] = 0
  out[2 * (i - 3)] = tonumber(versions[i - 3]) or 0
end
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local key = ARGV[1] .. ':node:' .. n
  for i = 4, #ARGV do
    if out[2 * (i - 3) - 1] == 0 and redis.call('SISMEMBER', key, ARGV[i]) == 1 then out[2 * (i - 3) - 1] = 1 end
  end
end
return out
`;

// Renew this node (first element: 1 if its entry was still there, 0 if it
// had lapsed or is new); claim every lapsed node and list its users online
// nowhere else, each followed by the version of that change.
const RENEW = `${NOW}
local present = redis.call('ZADD', KEYS[1], now + ttl, ARGV[2]) == 0 and 1 or 0
redis.call('PEXPIRE', me, ttl * 3)
local lost = {present}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[1], n)
  local key = ARGV[1] .. ':node:' .. n
  for _, user in ipairs(redis.call('SMEMBERS', key)) do
    if not online(user, nil) then
      lost[#lost + 1] = user
      lost[#lost + 1] = bump(user)
    end
  end
  redis.call('DEL', key)
end
return lost
`;

// ARGV[4…] users: put them back on this node (after its entry lapsed); list
// those it had lost that are online nowhere else, each followed by the
// version of that change (one already back is not announced twice).
const REJOIN = `${NOW}
local back = {}
for i = 4, #ARGV do
  if redis.call('SADD', me, ARGV[i]) == 1 and not elsewhere(ARGV[i]) then
    back[#back + 1] = ARGV[i]
    back[#back + 1] = bump(ARGV[i])
  end
end
redis.call('PEXPIRE', me, ttl * 3)
return back
`;

// ARGV[4…] users: take them off this node (it no longer holds them); list
// those now online nowhere, each followed by the version of that change.
const DEPART = `${NOW}
local gone = {}
for i = 4, #ARGV do
  if redis.call('SREM', me, ARGV[i]) == 1 and not elsewhere(ARGV[i]) then
    gone[#gone + 1] = ARGV[i]
    gone[#gone + 1] = bump(ARGV[i])
  end
end
return gone
`;

const GONE = `${NOW}
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('DEL', me)
return 0
`;

interface Script {
  text: string;
  sha: string;
}
/** A version from a script's answer (a non-negative integer; anything else is a broken answer). */
function version(x: unknown): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new Error('presence: unexpected answer from Redis');
  return x;
}

const script = (text: string): Script => ({ text, sha: createHash('sha1').update(text).digest('hex') });
const SCRIPTS = { arrive: script(ARRIVE), leave: script(LEAVE), online: script(ONLINE), renew: script(RENEW), rejoin: script(REJOIN), depart: script(DEPART), gone: script(GONE) };

export interface RedisPresenceOptions {
  /** This node's id (default: random). */
  node?: string;
  /** Lapse time of a node's entry (default PRESENCE_NODE_TTL_MS; tests use less). */
  ttlMs?: number;
  /** Start even if Redis does not answer: calls fail (the caller falls back) until it does, then this node registers. */
  whileDown?: boolean;
}

export class RedisPresence implements Presence {
  readonly node: string;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #timer: ReturnType<typeof setInterval>;
  /** This node's users, as told to Redis (to put back after a lapse). */
  readonly #mine = new Set<string>();
  /** An arrive or leave failed: Redis may disagree with #mine until the next `#reconcile`. */
  #stale = false;
  #changeHandlers: ((changes: PresenceChange[]) => void)[] = [];
  #closed = false;

  private constructor(redis: Redis, prefix: string, node: string, ttlMs: number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.node = node;
    this.#ttlMs = ttlMs;
    this.#timer = setInterval(() => void this.renew().catch(() => undefined), Math.max(1, Math.floor(ttlMs / 3)));
    this.#timer.unref();
  }

  /** Connect and register this node; rejects, naming Redis and the URL, if it is unreachable. */
  static async connect(url: string, prefix: string, options: RedisPresenceOptions = {}): Promise<RedisPresence> {
    const ttlMs = options.ttlMs ?? PRESENCE_NODE_TTL_MS;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 3) throw new RangeError('presence: ttlMs must be an integer ≥ 3');
    // No offline queue: while Redis is away a call fails at once (the caller falls back), never waits seconds.
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: redisRetryStrategy });
    // Connection errors are retried by ioredis; without a listener they would be thrown as unhandled events.
    redis.on('error', () => undefined);
    const p = new RedisPresence(redis, prefix, options.node ?? `n-${randomBytes(6).toString('hex')}`, ttlMs);
    // Back after an outage (Redis may have restarted empty): register again now, not at the next renewal.
    redis.on('ready', () => void p.renew().catch(() => undefined));
    try {
      await redis.connect();
      await p.renew();
    } catch (e) {
      if (options.whileDown === true) {
        p.#stale = true;
        return p;
      }
      clearInterval(p.#timer);
      redis.disconnect();
      throw new Error(`presence: cannot use Redis at ${redactedUrl(url)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return p;
  }

  async #run(s: Script, ...args: string[]): Promise<unknown> {
    const keys = [`${this.#prefix}:nodes`];
    const argv = [this.#prefix, this.node, String(this.#ttlMs), ...args];
    try {
      return await this.#redis.evalsha(s.sha, keys.length, ...keys, ...argv);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
      return await this.#redis.eval(s.text, keys.length, ...keys, ...argv);
    }
  }

  async arrive(userId: string): Promise<number> {
    this.#mine.add(userId);
    const answer = await this.#run(SCRIPTS.arrive, userId).catch((e: unknown) => this.#failed(e));
    if (!Array.isArray(answer) || answer.length !== 2) throw new Error('presence: unexpected answer from Redis');
    // This node had no entry: its other users are gone from Redis too — put them back.
    if (answer[1] === 1) void this.#rejoin().catch(() => undefined);
    return version(answer[0]);
  }

  async leave(userId: string): Promise<number> {
    this.#mine.delete(userId);
    return version(await this.#run(SCRIPTS.leave, userId).catch((e: unknown) => this.#failed(e)));
  }

  #failed(e: unknown): never {
    this.#stale = true;
    throw e;
  }

  async online(userIds: readonly string[]): Promise<Map<string, PresenceState>> {
    const out = new Map<string, PresenceState>();
    if (userIds.length === 0) return out;
    const flat = await this.#run(SCRIPTS.online, ...userIds);
    if (!Array.isArray(flat) || flat.length !== 2 * userIds.length) throw new Error('presence: unexpected answer from Redis');
    userIds.forEach((u, i) => out.set(u, { online: flat[2 * i] === 1, version: version(flat[2 * i + 1]) }));
    return out;
  }

  onChange(handler: (changes: PresenceChange[]) => void): void {
    this.#changeHandlers.push(handler);
  }

  /** `[user, version, user, version, …]` from a script, as changes to `online`. */
  #changed(flat: unknown[], online: boolean): void {
    const changes: PresenceChange[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const userId = flat[i];
      if (typeof userId === 'string') changes.push({ userId, online, version: version(flat[i + 1]) });
    }
    if (changes.length === 0 || this.#closed) return;
    for (const h of this.#changeHandlers) h(changes);
  }

  /** Renew this node's entry and claim lapsed nodes (on a timer; public for tests). */
  async renew(): Promise<void> {
    if (this.#closed) return;
    const answer = await this.#run(SCRIPTS.renew);
    if (!Array.isArray(answer)) throw new Error('presence: unexpected answer from Redis');
    const [present, ...lost] = answer as unknown[];
    this.#changed(lost, false);
    if (this.#stale) {
      this.#stale = false;
      await this.#reconcile().catch((e: unknown) => this.#failed(e));
      return;
    }
    // Another node claimed this one's lapsed entry and forgot its users (or Redis restarted empty): put them back.
    if (present === 0) await this.#rejoin();
  }

  /** Make this node's set what it holds: take off the users it no longer has, put back the others. */
  async #reconcile(): Promise<void> {
    const stored = await this.#redis.smembers(`${this.#prefix}:node:${this.node}`);
    for (let i = 0; i < stored.length; i += REJOIN_BATCH) {
      // Checked against #mine when sent: a user back meanwhile stays (calls run in order on the connection).
      const left = stored.slice(i, i + REJOIN_BATCH).filter((u) => !this.#mine.has(u));
      if (left.length === 0) continue;
      const gone = await this.#run(SCRIPTS.depart, ...left);
      if (Array.isArray(gone)) this.#changed(gone, false);
    }
    await this.#rejoin();
  }

  /** Put every user of this node back in its set; those online nowhere else are announced again. */
  async #rejoin(): Promise<void> {
    const users = [...this.#mine];
    for (let i = 0; i < users.length; i += REJOIN_BATCH) {
      const back = await this.#run(SCRIPTS.rejoin, ...users.slice(i, i + REJOIN_BATCH));
      if (Array.isArray(back)) this.#changed(back, true);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#changeHandlers = [];
    this.#mine.clear();
    await this.#run(SCRIPTS.gone).catch(() => undefined);
    // quit() needs a live connection; without one (Redis away) disconnect() stops the reconnecting for good.
    await this.#redis.quit().catch(() => undefined);
    this.#redis.disconnect();
  }
}
