// The fan-out conformance suite on Redis pub/sub (the Redis service on this
// machine; PARLEY_TEST_REDIS_URL overrides), with up to three nodes, plus
// what the Redis channel must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fanOutConformance } from '../src/fanout/conformance.ts';
import { RedisFanOut, decodeWireDelivery, fanoutChannel } from '../src/fanout/redis.ts';
import { redactedUrl } from '../src/redacted-url.ts';
import type { Delivery } from '../src/fanout/types.ts';
import { FANOUT_MESSAGE_BYTES_MAX, FANOUT_USERS_PER_MESSAGE } from '../src/limits.ts';
import { freePort, startRedis } from './_redis-server.ts';

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
  for (const bad of ['', 'not json', 'null', '[]', '{"n":1,"u":[],"f":""}', '{"n":"a","u":[1],"f":""}', '{"n":"a","u":[],"f":"x","s":["b"]}', '{"n":"a","u":[],"f":"x","d":5}']) {
    assert.equal(decodeWireDelivery(bad), null, bad);
  }
  assert.equal(decodeWireDelivery(JSON.stringify({ n: 'a', u: ['u'], f: 'x'.repeat(FANOUT_MESSAGE_BYTES_MAX) })), null);
  assert.deepEqual(decodeWireDelivery(JSON.stringify({ n: 'a', u: ['u'], f: 'x', d: 'dev', s: ['b', 3] })), { from: 'a', users: ['u'], frame: 'x', device: 'dev', skip: { node: 'b', connId: 3 } });
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
