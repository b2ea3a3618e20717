/**
 * Frames built once and written past `ws` (prebuilt-frame.ts), against a
 * real `ws` server and client: the fast path is the one in use under ESM
 * (it once silently was not: `ws`'s ESM default export has no `Sender`),
 * every payload length class arrives intact and in call order with frames
 * `ws` writes itself, a turn's frames leave in one `writev`, and a closed
 * connection is reported, not written to.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { drained, PREBUILT_FRAMES, PrebuiltFrame, sendText, unsentBytes } from '../src/v1/prebuilt-frame.ts';
import { SEND_BUFFER_BYTES_MAX } from '../src/limits.ts';

/** A connected pair: the server side's socket and a client that collects text messages. */
async function pair(): Promise<{ server: WebSocket; client: WebSocket; received: string[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const received: string[] = [];
  client.on('message', (data, isBinary) => {
    assert.equal(isBinary, false);
    received.push((data as Buffer).toString('utf8'));
  });
  await once(client, 'open');
  const [server] = await accepted;
  return {
    server,
    client,
    received,
    close: async () => {
      client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('PrebuiltFrame', () => {
  test('the frame is built once (ws framing reachable from ESM), as the exact RFC 6455 bytes', () => {
    assert.equal(PREBUILT_FRAMES, true);
    assert.deepEqual([...(new PrebuiltFrame('hi').wire ?? [])], [0x81, 0x02, 0x68, 0x69]);
    const medium = new PrebuiltFrame('x'.repeat(300)).wire;
    assert.deepEqual([...(medium ?? Buffer.alloc(0)).subarray(0, 4)], [0x81, 126, 0x01, 0x2c]);
    const large = new PrebuiltFrame('y'.repeat(70_000)).wire;
    assert.deepEqual([...(large ?? Buffer.alloc(0)).subarray(0, 10)], [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
    // Header and payload in one buffer at every length-class edge (the payload is not encoded, then copied).
    for (const [text, head] of [['é', 2], ['m'.repeat(125), 2], ['n'.repeat(126), 4], ['o'.repeat(65_535), 4], ['p'.repeat(65_536), 10]] as const) {
      const f = new PrebuiltFrame(text);
      assert.equal(f.wire?.buffer, f.payload.buffer);
      assert.equal(f.payload.byteOffset, (f.wire?.byteOffset ?? -1) + head);
      assert.equal(f.wire?.length, head + Buffer.byteLength(text));
    }
  });

  test('every length class arrives intact, in call order with frames ws writes itself', async () => {
    const p = await pair();
    try {
      const texts = ['a', 'é ✓ 𝄞', 'm'.repeat(125), 'n'.repeat(126), 'o'.repeat(65_535), 'p'.repeat(65_536), 'q'.repeat(200_000)];
      const shared = new PrebuiltFrame('shared');
      assert.equal(shared.sendTo(p.server), true);
      for (const [i, t] of texts.entries()) {
        if (i % 2 === 0) assert.equal(new PrebuiltFrame(t).sendTo(p.server), true);
        else p.server.send(t);
        sendText(p.server, `after ${i}`);
      }
      assert.equal(shared.sendTo(p.server), true);
      const expected = ['shared', ...texts.flatMap((t, i) => [t, `after ${i}`]), 'shared'];
      await until(() => p.received.length === expected.length);
      assert.deepEqual(p.received, expected);
    } finally {
      await p.close();
    }
  });

  test("one event-loop turn's frames to a socket leave in one writev", async () => {
    const p = await pair();
    try {
      const socket = (p.server as unknown as { _socket: { _writev: (...args: unknown[]) => unknown; _write: (...args: unknown[]) => unknown } })._socket;
      let writevs = 0;
      let writes = 0;
      const writev = socket._writev.bind(socket);
      const write = socket._write.bind(socket);
      socket._writev = (...args: unknown[]) => (writevs++, writev(...args));
      socket._write = (...args: unknown[]) => (writes++, write(...args));
      const frame = new PrebuiltFrame('one of five');
      for (let i = 0; i < 5; i++) frame.sendTo(p.server);
      await until(() => p.received.length === 5);
      assert.equal(writevs + writes, 1, `${writevs} writev and ${writes} write calls for five frames`);
    } finally {
      await p.close();
    }
  });

  test('a closed connection gets nothing and is reported as not sent', async () => {
    const p = await pair();
    try {
      p.server.close();
      await once(p.client, 'close');
      assert.equal(new PrebuiltFrame('late').sendTo(p.server), false);
    } finally {
      await p.close();
    }
  });
  test(`a connection that stops reading is closed once more than SEND_BUFFER_BYTES_MAX (${SEND_BUFFER_BYTES_MAX}) bytes wait for it`, async () => {
    const p = await pair();
    try {
      // The client stops reading: what the server writes piles up in the kernel, then in Node.
      (p.client as unknown as { _socket: { pause(): void } })._socket.pause();
      const socket = (p.server as unknown as { _socket: { writableLength: number } })._socket;
      const frame = new PrebuiltFrame('z'.repeat(1024 * 1024));
      let sent = 0;
      let queuedAtRefusal = -1;
      for (let i = 0; i < 400 && queuedAtRefusal < 0; i++) {
        const before = socket.writableLength;
        if (frame.sendTo(p.server)) {
          assert.ok(before <= SEND_BUFFER_BYTES_MAX, `written with ${before} bytes already waiting`);
          sent++;
        } else queuedAtRefusal = before;
        // Let the kernel take what it will, as between event-loop turns.
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(queuedAtRefusal > SEND_BUFFER_BYTES_MAX, `refused at ${queuedAtRefusal} bytes`);
      assert.ok(sent * 1024 * 1024 > SEND_BUFFER_BYTES_MAX, 'everything up to the limit was queued');
      assert.equal(p.server.readyState, WebSocket.CLOSING, 'the server closes it');
      assert.equal(frame.sendTo(p.server), false, 'and writes nothing more');
    } finally {
      await p.close();
    }
  });

  test('drained: a reader that keeps reading, however slowly, is waited for; one that reads nothing for the idle time is closed (1008)', async () => {
    const frame = new PrebuiltFrame('z'.repeat(256 * 1024));
    const fill = (ws: WebSocket): void => {
      for (let i = 0; i < 64; i++) frame.sendTo(ws);
    };
    type RawSocket = { pause(): void; resume(): void; on(event: 'data', listener: (chunk: Buffer) => void): void };
    const socketOf = (ws: WebSocket): RawSocket => (ws as unknown as { _socket: RawSocket })._socket;
    // The idle limit has a wide margin over the reader's pace: on a loaded
    // machine (CI runs many test files at once) timers fire late, and a
    // reader paced by wall-clock windows once read nothing for 300 ms.
    const idleMs = 1500;

    // Slow but steady: every 40 ms it reads about 512 KiB (resumed, then
    // paused once that much arrived), so every tick is real progress however
    // late the timers fire.
    const slow = await pair();
    const raw = socketOf(slow.client);
    raw.pause();
    fill(slow.server);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(unsentBytes(slow.server) > 4 * 1024 * 1024, `a backlog to wait on: ${unsentBytes(slow.server)} B unsent`);
    let ticks = 0;
    let readThisTick = 0;
    raw.on('data', (chunk) => {
      readThisTick += chunk.length;
      if (readThisTick >= 512 * 1024) raw.pause();
    });
    const reader = setInterval(() => {
      ticks += 1;
      readThisTick = 0;
      raw.resume();
    }, 40);
    try {
      assert.equal(await drained(slow.server, 1024 * 1024, idleMs), true);
      assert.ok(unsentBytes(slow.server) <= 1024 * 1024);
      assert.equal(slow.server.readyState, WebSocket.OPEN);
      // It really was slow: the backlog took many separate reads.
      assert.ok(ticks > 3, `${ticks} reads`);
    } finally {
      clearInterval(reader);
      await slow.close();
    }

    // Stalled: never reads again.
    const stalled = await pair();
    socketOf(stalled.client).pause();
    fill(stalled.server);
    const closed = once(stalled.server, 'close') as Promise<[number, Buffer]>;
    assert.equal(await drained(stalled.server, 1024 * 1024, idleMs), false);
    socketOf(stalled.client).resume();
    const [code] = await closed;
    assert.equal(code, 1008);
    await stalled.close();
  });
});
