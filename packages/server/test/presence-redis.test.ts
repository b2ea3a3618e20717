// The presence conformance suite on Redis (the Redis service on this
// machine; PARLEY_TEST_REDIS_URL overrides) with up to three nodes, plus
// what only several processes can show: a node that stops without saying
// so, and a node whose entry lapsed and comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { cuttableProxy, freePort, startRedis } from './_redis-server.ts';
import { presenceConformance } from '../src/presence/conformance.ts';
import { RedisPresence, presencePrefix } from '../src/presence/redis.ts';
import type { PresenceChange } from '../src/presence/types.ts';

const url = process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** A deployment of its own for each use: other test runs share this Redis. */
const prefix = (): string => presencePrefix(randomBytes(16));

presenceConformance(
  'redis',
  async (n) => {
    const p = prefix();
    const nodes = await Promise.all(Array.from({ length: n }, () => RedisPresence.connect(url, p)));
    return { nodes, cleanup: async () => void (await Promise.all(nodes.map((x) => x.close()))) };
  },
  3,
);

/** Make `node`'s entry lapse at once, as if it had stopped renewing long ago. */
async function lapse(p: string, node: string): Promise<void> {
  const raw = new Redis(url);
  try {
    assert.equal(await raw.zadd(`${p}:nodes`, 'XX', 'CH', 1, node), 1, 'the node was registered');
  } finally {
    raw.disconnect();
  }
}

test('redis presence: a node that stops without saying so — its users lapse and are reported offline once, by one node, unless online elsewhere', async () => {
  const p = prefix();
  const [a, b, c] = await Promise.all([RedisPresence.connect(url, p), RedisPresence.connect(url, p), RedisPresence.connect(url, p)]);
  try {
    const changes: [string, PresenceChange][] = [];
    b.onChange((cs) => changes.push(...cs.map((x): [string, PresenceChange] => ['b', x])));
    c.onChange((cs) => changes.push(...cs.map((x): [string, PresenceChange] => ['c', x])));
    const arrivedAt = await a.arrive('alice');
    await a.arrive('bob');
    await b.arrive('bob');
    await lapse(p, a.node);
    assert.deepEqual([...(await b.online(['alice', 'bob']))].filter(([, s]) => s.online).map(([u]) => u), ['bob'], 'a lapsed node counts for no one');
    await Promise.all([b.renew(), c.renew()]);
    assert.deepEqual(changes.map(([, x]) => [x.userId, x.online]), [['alice', false]], 'alice reported once; bob is still on b');
    assert.ok((changes[0]?.[1].version ?? 0) > arrivedAt, 'a newer version than her arrival');
    await Promise.all([b.renew(), c.renew()]);
    assert.equal(changes.length, 1, 'claimed once only');
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('redis presence: a node whose entry lapsed puts its users back at its next renewal and reports those online nowhere else', async () => {
  const p = prefix();
  const [a, b] = await Promise.all([RedisPresence.connect(url, p), RedisPresence.connect(url, p)]);
  try {
    const back: PresenceChange[] = [];
    a.onChange((cs) => back.push(...cs.filter((x) => x.online)));
    await a.arrive('alice');
    await a.arrive('bob');
    await b.arrive('bob');
    await lapse(p, a.node);
    await b.renew();
    const lapsed = (await b.online(['alice'])).get('alice');
    assert.equal(lapsed?.online, false);
    await a.renew();
    assert.deepEqual(back.map((x) => x.userId), ['alice'], 'bob never went offline: he was on b');
    assert.ok((back[0]?.version ?? 0) > (lapsed?.version ?? 0), 'her return is newer than her lapse');
    assert.deepEqual([...(await b.online(['alice', 'bob']))].filter(([, s]) => s.online).map(([u]) => u).sort(), ['alice', 'bob']);
    assert.ok((await a.leave('alice')) > 0, 'a knows alice again');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('redis presence: entries lapse on their own after the node stops renewing (short ttl)', async () => {
  const p = prefix();
  const a = await RedisPresence.connect(url, p, { ttlMs: 1000 });
  const b = await RedisPresence.connect(url, p, { ttlMs: 1000 });
  try {
    await a.arrive('alice');
    assert.equal((await b.online(['alice'])).get('alice')?.online, true);
    // a stops renewing without telling Redis (its timer now calls a renew that does nothing), as a frozen process would.
    const lost: string[] = [];
    b.onChange((cs) => lost.push(...cs.filter((x) => !x.online).map((x) => x.userId)));
    (a as unknown as { renew: () => Promise<void> }).renew = async () => undefined;
    const deadline = Date.now() + 10_000;
    while (lost.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(lost, ['alice']);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('redis presence: an unreachable Redis is a clear error at start, without the password', async () => {
  await assert.rejects(RedisPresence.connect('redis://:hunter2@127.0.0.1:1', prefix()), (e: Error) => {
    assert.match(e.message, /^presence: cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    assert.ok(!e.message.includes('hunter2'));
    return true;
  });
});

test('redis presence: after Redis restarts empty, each node registers again at once (not at its next renewal) and its users are online again', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const p = prefix();
  const a = await RedisPresence.connect(`redis://127.0.0.1:${port}`, p);
  const b = await RedisPresence.connect(`redis://127.0.0.1:${port}`, p);
  try {
    await a.arrive('alice');
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    // While Redis is away a call fails at once (the caller falls back), it does not wait.
    const t0 = Date.now();
    await assert.rejects(b.online(['alice']));
    assert.ok(Date.now() - t0 < 1000, `failed in ${Date.now() - t0} ms`);
    redis = await startRedis(port);
    const deadline = Date.now() + 5000; // well inside the 10 s renewal period
    let online = false;
    while (!online && Date.now() < deadline) {
      online = (await b.online(['alice']).catch(() => new Map<string, { online: boolean }>())).get('alice')?.online === true;
      if (!online) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(online, true, 'alice is online again before any renewal');
    // A node with no entry that sees a user arrive registers at once too.
    assert.ok((await b.arrive('bob')) > 0);
    assert.equal((await a.online(['bob'])).get('bob')?.online, true);
  } finally {
    await Promise.all([a.close(), b.close()]);
    redis.kill('SIGKILL');
  }
});

// A node cut off from Redis for a moment (Redis itself keeps running, with
// the node's entry): a user who leaves meanwhile, and one who arrives, are
// put right once it is back — announced with versions — instead of staying
// online (or offline) until the node's next restart.
test('redis presence: arrivals and leaves that failed while this node was cut off are reconciled when it is back', async () => {
  const proxy = await cuttableProxy(Number(new URL(url).port || 6379));
  const p = prefix();
  const a = await RedisPresence.connect(proxy.url, p);
  const b = await RedisPresence.connect(url, p);
  const announced: PresenceChange[] = [];
  a.onChange((changes) => announced.push(...changes));
  try {
    await a.arrive('stays');
    await a.arrive('leaves');
    await proxy.cut();
    await assert.rejects(a.leave('leaves'));
    await assert.rejects(a.arrive('comes'));
    assert.deepEqual([...(await b.online(['leaves', 'comes'])).values()].map((s) => s.online), [true, false], 'Redis still has the old picture');
    await proxy.restore();
    const deadline = Date.now() + 5000; // well inside the 10 s renewal period: on reconnecting
    let state = new Map<string, { online: boolean }>();
    while (Date.now() < deadline) {
      state = await b.online(['stays', 'leaves', 'comes']);
      if (state.get('leaves')?.online === false && state.get('comes')?.online === true) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...state.values()].map((s) => s.online), [true, false, true]);
    // The node announces both changes itself (the server relays them to the rooms), each with a version.
    assert.deepEqual(announced.map((c) => [c.userId, c.online, c.version > 0]).sort(), [['comes', true, true], ['leaves', false, true]]);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.close();
  }
});

test('redis presence: started while Redis is down (whileDown), a node registers with its users once Redis answers', async () => {
  const port = await freePort();
  const p = prefix();
  const a = await RedisPresence.connect(`redis://127.0.0.1:${port}`, p, { whileDown: true });
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  try {
    await assert.rejects(a.arrive('early')); // calls fail meanwhile (the caller falls back)
    redis = await startRedis(port);
    const b = await RedisPresence.connect(`redis://127.0.0.1:${port}`, p);
    try {
      const deadline = Date.now() + 5000;
      let online = false;
      while (!online && Date.now() < deadline) {
        online = (await b.online(['early'])).get('early')?.online === true;
        if (!online) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(online, true, 'the user who arrived while Redis was down is online');
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
    redis?.kill('SIGKILL');
  }
});
