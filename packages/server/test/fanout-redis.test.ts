// The fan-out conformance suite on Redis pub/sub (the Redis service on this
// machine; PARLEY_TEST_REDIS_URL overrides), with up to three nodes, plus
// what the Redis channel must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fanOutConformance } from '../src/fanout/conformance.ts';
import { RedisFanOut, decodeWireDelivery, decodeWireLost, fanoutChannel } from '../src/fanout/redis.ts';
import { redactedUrl } from '../src/redacted-url.ts';
import type { Delivery } from '../src/fanout/types.ts';
import { FANOUT_LOST_USERS_MAX, FANOUT_MESSAGE_BYTES_MAX, FANOUT_USERS_PER_MESSAGE } from '../src/limits.ts';
import { cuttableProxy, freePort, startRedis } from './_redis-server.ts';

const url = process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** A channel of its own for each use: other test runs share this Redis. */
const channel = (): string => fanoutChannel(randomBytes(16));

fanOutConformance(
  'redis',
  async (n) => {
    const ch = channel();
    const nodes = await Promise.all(Array.from({ length: n }, () => RedisFanOut.connect(url, ch)));
    return { nodes, cleanup: async () => void (await Promise.all(nodes.map((x) => x.close()))) };
  },
  3,
);

test('redis fan-out: malformed or oversized channel messages are dropped', () => {
  for (const bad of ['', 'not json', 'null', '[]', '{"n":1,"u":[],"f":""}', '{"n":"a","u":[1],"f":""}', '{"n":"a","u":[],"f":"x","s":["b"]}', '{"n":"a","u":[],"f":"x","d":5}', '{"n":"a","u":[],"f":"x","c":999}', '{"n":"a","u":[],"f":"x","c":1005}', '{"n":"a","u":[],"f":"x","c":3999}', '{"n":"a","u":[],"f":"x","c":5000}', '{"n":"a","u":[],"f":"x","c":4002.5}', '{"n":"a","u":[],"f":"x","c":"4002"}']) {
    assert.equal(decodeWireDelivery(bad), null, bad);
  }
  assert.equal(decodeWireDelivery(JSON.stringify({ n: 'a', u: ['u'], f: 'x'.repeat(FANOUT_MESSAGE_BYTES_MAX) })), null);
  assert.deepEqual(decodeWireDelivery(JSON.stringify({ n: 'a', u: ['u'], f: 'x', d: 'dev', s: ['b', 3] })), { from: 'a', users: ['u'], frame: 'x', device: 'dev', skip: { node: 'b', connId: 3 } });
  // Close codes at the edges of what an application may send.
  for (const c of [4000, 4999]) assert.deepEqual(decodeWireDelivery(JSON.stringify({ n: 'a', u: ['u'], f: 'x', c })), { from: 'a', users: ['u'], frame: 'x', close: c });
});

test('redis fan-out: a delivery to very many users (longest ids) reaches another node whole, split under the size limit', async () => {
  const ch = channel();
  const a = await RedisFanOut.connect(url, ch);
  const b = await RedisFanOut.connect(url, ch);
  try {
    const users = Array.from({ length: 20_000 }, (_, i) => `u${String(i).padStart(63, '0')}`);
    const frame = JSON.stringify({ t: 'presence', userId: 'busy', online: true });
    assert.ok(JSON.stringify(users).length > FANOUT_MESSAGE_BYTES_MAX, 'one message would be refused');
    const seen: Delivery[] = [];
    b.subscribe((d) => seen.push(d));
    a.publish({ users: new Set(users), frame });
    const deadline = Date.now() + 10_000;
    const count = (): number => seen.reduce((n, d) => n + [...d.users].length, 0);
    while (count() < users.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen.flatMap((d) => [...d.users]), users, 'every user once, in order');
    assert.ok(seen.every((d) => d.frame === frame));
    assert.equal(seen.length, Math.ceil(users.length / FANOUT_USERS_PER_MESSAGE));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('redis fan-out: an unreachable Redis is a clear error at start, naming Redis and the URL without its password', async () => {
  await assert.rejects(RedisFanOut.connect('redis://:hunter2@127.0.0.1:1', channel()), (e: Error) => {
    assert.match(e.message, /^fan-out: cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    assert.ok(!e.message.includes('hunter2'));
    return true;
  });
  assert.equal(redactedUrl('redis://user:pw@h:1/2'), 'redis://user:***@h:1/2');
});

test('redis fan-out: deployments on one Redis (two channels) never see each other’s deliveries', async () => {
  const [x, y] = [channel(), channel()];
  const a = await RedisFanOut.connect(url, x);
  const b = await RedisFanOut.connect(url, y);
  const a2 = await RedisFanOut.connect(url, x);
  try {
    const seenB: Delivery[] = [];
    const seenA2: Delivery[] = [];
    b.subscribe((d) => seenB.push(d));
    a2.subscribe((d) => seenA2.push(d));
    a.publish({ users: ['carol'], frame: 'for deployment x' });
    const deadline = Date.now() + 5000;
    while (seenA2.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seenA2.length, 1, 'the same deployment gets it');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seenB.length, 0, 'the other deployment does not');
  } finally {
    await Promise.all([a.close(), b.close(), a2.close()]);
  }
});

test('redis fan-out: healthy turns false when Redis goes away and true once it is back and subscribed again (a private redis-server)', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const ch = channel();
  const a = await RedisFanOut.connect(`redis://127.0.0.1:${port}`, ch);
  const b = await RedisFanOut.connect(`redis://127.0.0.1:${port}`, ch);
  try {
    const changes: boolean[] = [];
    b.onHealth((h) => changes.push(h));
    assert.equal(b.healthy, true);
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    const wait = async (cond: () => boolean): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await wait(() => !b.healthy);
    assert.deepEqual(changes, [false]);
    redis = await startRedis(port);
    await wait(() => b.healthy);
    assert.deepEqual(changes, [false, true]);
    // Subscribed again: deliveries flow.
    const seen: Delivery[] = [];
    b.subscribe((d) => seen.push(d));
    await wait(() => {
      a.publish({ users: ['u'], frame: 'after' });
      return seen.length > 0;
    });
    assert.equal(seen[0]?.frame, 'after');
  } finally {
    await Promise.all([a.close(), b.close()]);
    redis.kill('SIGKILL');
  }
});

// A node cut off from Redis (Redis keeps running for the others): what it
// published meanwhile either reaches the others late (ioredis' queue held it)
// or is lost — and then, once the node is back, the others learn whose
// deliveries were lost (everyone's, past FANOUT_LOST_USERS_MAX).
test('redis fan-out: each delivery a node made while cut off reaches the other nodes or is told to them as lost once it is back', async () => {
  const proxy = await cuttableProxy(Number(new URL(url).port || 6379));
  const ch = channel();
  const a = await RedisFanOut.connect(proxy.url, ch);
  const b = await RedisFanOut.connect(url, ch);
  const told: (string[] | null)[] = [];
  b.onLost((users) => told.push(users === null ? null : [...users]));
  const frames: string[] = [];
  b.subscribe((d) => frames.push(d.frame));
  const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const toldOf = (user: string): boolean => told.some((t) => t === null || t.includes(user));
  try {
    a.publish({ users: ['before'], frame: 'f0' });
    await waitFor(() => frames.includes('f0'), 'the delivery before the cut');
    await proxy.cut();
    a.publish({ users: ['carol', 'bob'], frame: 'f1' });
    a.publish({ users: ['bob', 'dave'], frame: 'f2' });
    await new Promise((r) => setTimeout(r, 1500)); // long past ioredis' retries: lost, in all likelihood
    assert.deepEqual(told, [], 'nothing told while cut off');
    await proxy.restore();
    await waitFor(() => (frames.includes('f1') || (toldOf('carol') && toldOf('bob'))) && (frames.includes('f2') || (toldOf('bob') && toldOf('dave'))), 'each delivery, or its notice');
    assert.equal(toldOf('before'), false, 'a delivery that arrived is not told');

    // Past the bound: one notice for everyone.
    await waitFor(() => a.healthy, 'a healthy again');
    const before = frames.length;
    await proxy.cut();
    a.publish({ users: Array.from({ length: FANOUT_LOST_USERS_MAX + 1 }, (_, i) => `u${i}`), frame: 'f3' });
    await new Promise((r) => setTimeout(r, 1500));
    await proxy.restore();
    const parts = Math.ceil((FANOUT_LOST_USERS_MAX + 1) / FANOUT_USERS_PER_MESSAGE);
    await waitFor(() => frames.length - before === parts || told.some((t) => t === null), 'the delivery, or the notice to everyone');
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.close();
  }
});

test('redis fan-out: lost-delivery notices are bounded like deliveries; malformed ones are dropped', () => {
  assert.deepEqual(decodeWireLost('{"n":"a","lost":"*"}'), { from: 'a', lost: null });
  assert.deepEqual(decodeWireLost('{"n":"a","lost":["x"]}'), { from: 'a', lost: new Set(['x']) });
  for (const bad of ['{"n":"a"}', '{"n":"a","lost":"x"}', '{"n":"a","lost":[1]}', '{"lost":"*"}', `{"n":"a","lost":${JSON.stringify(Array.from({ length: FANOUT_USERS_PER_MESSAGE + 1 }, () => 'u'))}}`]) {
    assert.equal(decodeWireLost(bad), null, bad.slice(0, 40));
  }
  assert.equal(decodeWireDelivery('{"n":"a","lost":"*"}'), null, 'a notice is no delivery');
});
