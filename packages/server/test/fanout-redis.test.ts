// The fan-out conformance suite on Redis pub/sub (the Redis service on this
// machine; PARLEY_TEST_REDIS_URL overrides), with up to three nodes, plus
// what the Redis channel must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fanOutConformance } from '../src/fanout/conformance.ts';
import { RedisFanOut, decodeWireDelivery } from '../src/fanout/redis.ts';
import { FANOUT_MESSAGE_BYTES_MAX } from '../src/limits.ts';

const url = process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

fanOutConformance(
  'redis',
  async (n) => {
    const nodes = await Promise.all(Array.from({ length: n }, () => RedisFanOut.connect(url)));
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

test('redis fan-out: an unreachable Redis is a clear error at start', async () => {
  await assert.rejects(RedisFanOut.connect('redis://127.0.0.1:1'));
});
