// Peers gone without a close (v1/dead-peers.ts), against a real server in this
// process whose ping interval is short: a connection that never answers the
// WebSocket pings is cut off within two intervals, and its user is announced
// offline; one that answers stays, however quiet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../src/server.ts';
import { registered, V1Client } from './_v1-client.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const INTERVAL_MS = 200;

test('a v1 peer that answers no ping is cut off within two ping intervals and its user goes offline; a quiet one that answers stays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-dead-peers-'));
  const server = await startServer({ config: { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent' }, env: {}, v1PingIntervalMs: INTERVAL_MS });
  try {
    const url = `ws://127.0.0.1:${server.port}/v1`;
    const { client: watcher } = await registered(url, 'watcher');
    const ghost = await V1Client.connect(url, 'ghost', undefined, undefined, { autoPong: false });
    await ghost.hello();
    await ghost.register('ghost', 'dev1');
    const created = (await watcher.createRoom('direct', ['ghost'])) as unknown as { room: { roomId: string } };
    const roomId = created.room.roomId;
    const online = async (): Promise<boolean> => {
      const f = await watcher.request({ t: 'presence.get', roomId });
      return (f['members'] as { userId: string; online: boolean }[]).some((m) => m.userId === 'ghost' && m.online);
    };
    assert.equal(await online(), true, 'the ghost is online while its socket is open');
    const closed = await Promise.race([ghost.closed, sleep(INTERVAL_MS * 10).then(() => null)]);
    assert.notEqual(closed, null, 'the silent peer was cut off');
    assert.equal(closed?.code, 1006, 'terminated: no closing handshake with a peer that cannot answer');
    assert.equal(await online(), false, 'and its user is offline for the others');
    // The watcher answered every ping (ws does by itself) through many intervals while saying nothing.
    await sleep(INTERVAL_MS * 4);
    assert.equal(watcher.isOpen, true);
    assert.equal((await watcher.request({ t: 'ping' }))['t'], 'pong');
    watcher.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
