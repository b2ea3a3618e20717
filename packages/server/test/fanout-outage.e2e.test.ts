// A real server process on a private redis-server that goes away and comes
// back: readiness says so, the process keeps running, and once Redis is back
// every client is asked to reconnect (1012) so it syncs what it missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { CLOSE_V1 } from '../src/v1/connection.ts';
import { startServerProcess } from './_server-process.ts';
import { freePort, startRedis } from './_redis-server.ts';
import { registered } from './_v1-client.ts';

test('Redis outage: /readyz is 503 and a warning is logged while it is down; once it is back, clients are closed with 1012 (resync), and new ones work', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const server = await startServerProcess([], { env: { PARLEY_REDIS_URL: `redis://127.0.0.1:${port}` } });
  const ready = async (): Promise<number> => (await fetch(`http://127.0.0.1:${server.port}/readyz`)).status;
  const metric = async (name: string): Promise<string | undefined> =>
    (await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  const until = async (cond: () => Promise<boolean> | boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    const url = `ws://127.0.0.1:${server.port}/v1`;
    const { client } = await registered(url, 'outage-alice');
    assert.equal(await ready(), 200);
    assert.equal(await metric('parley_fanout_up'), 'parley_fanout_up 1');
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    await until(async () => (await ready()) === 503, 'readyz 503');
    await until(() => server.logs.some((l) => l.level === 40 && String(l.msg).includes('fan-out lost its Redis connection')), 'the warning');
    assert.equal(client.isOpen, true, 'clients stay connected while Redis is down');
    assert.equal(await metric('parley_fanout_up'), 'parley_fanout_up 0');
    redis = await startRedis(port);
    const closed = await client.closed;
    assert.equal(closed.code, CLOSE_V1.RESYNC);
    await until(async () => (await ready()) === 200, 'readyz 200 again');
    assert.equal(await metric('parley_fanout_up'), 'parley_fanout_up 1');
    assert.equal(await metric('parley_resyncs_total{reason="fanout-reconnected"}'), 'parley_resyncs_total{reason="fanout-reconnected"} 1');
    const again = await registered(url, 'outage-bob');
    const room = (await again.client.createRoom('group', [])) as { t: string };
    assert.equal(room.t, 'room');
    again.client.close();
  } finally {
    await server.stop();
    server.cleanup();
    redis.kill('SIGKILL');
  }
});

// A process started while Redis is down (an outage during a rolling restart)
// starts not ready instead of exiting, and becomes ready once Redis answers.
test('Redis down at start: the process starts not ready (warning logged), serves its own clients, and is ready once Redis answers', async () => {
  const port = await freePort();
  const server = await startServerProcess([], { env: { PARLEY_REDIS_URL: `redis://127.0.0.1:${port}` } });
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  try {
    const ready = async (): Promise<number> => (await fetch(`http://127.0.0.1:${server.port}/readyz`)).status;
    assert.equal(await ready(), 503);
    assert.ok(server.logs.some((l) => l.level === 40 && String(l.msg).includes('Redis does not answer: starting not ready')), 'the warning');
    const url = `ws://127.0.0.1:${server.port}/v1`;
    const { client } = await registered(url, 'down-alice');
    assert.equal(((await client.createRoom('group', [])) as { t: string }).t, 'room', 'its own clients are served');
    client.close();
    redis = await startRedis(port);
    const deadline = Date.now() + 15_000;
    while ((await ready()) !== 200) {
      if (Date.now() > deadline) throw new Error('never ready');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await server.stop();
    server.cleanup();
    redis?.kill('SIGKILL');
  }
});
