/**
 * A `sync` reads a room's log HISTORY_PAGE_BYTES_MAX at a time, not all its
 * SYNC_ENTRIES_PER_ROOM_MAX entries (up to 64 MiB) in one read: an
 * in-process server whose storage reads are recorded, a room of full-size
 * bodies, and a sync that still returns all of them in one `synced`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BODY_BYTES_MAX, HISTORY_PAGE_BYTES_MAX } from '../src/limits.ts';
import { startServer } from '../src/server.ts';
import { authed, registered, type RoomInfo } from './_v1-client.ts';

test('a sync reads a room of full-size bodies HISTORY_PAGE_BYTES_MAX at a time and sends all of it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-sync-reads-'));
  const server = await startServer({ config: { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent' }, env: {} });
  try {
    const url = `ws://127.0.0.1:${server.port}/v1`;
    const { client: owner, session } = await registered(url, 'reader');
    const created = await owner.createRoom('group', []);
    const room = (created as unknown as { room: RoomInfo }).room.roomId; // seq 1
    const messages = 2 * (HISTORY_PAGE_BYTES_MAX / BODY_BYTES_MAX) + 3;
    const acks = await Promise.all(Array.from({ length: messages }, (_, i) => owner.publish(room, `m${i}`, randomBytes(BODY_BYTES_MAX))));
    assert.deepEqual(acks.map((a) => a.t), acks.map(() => 'ack'));
    owner.close();

    // Record the body bytes of every log read from here on.
    const reads: number[] = [];
    const storage = server.storage;
    const readAfter = storage.readAfter.bind(storage);
    storage.readAfter = async (...args) => {
      const got = await readAfter(...args);
      reads.push(got.reduce((n, e) => n + e.body.byteLength, 0));
      return got;
    };

    const { client: reader } = await authed(url, session.accessToken as string);
    const synced = await reader.sync({}, 30_000);
    assert.deepEqual(synced.reply['rooms'], { [room]: messages + 1 });
    assert.deepEqual(synced.reply['more'], []);
    assert.deepEqual(synced.entries.map((m) => m.seq), Array.from({ length: messages + 1 }, (_, i) => i + 1));
    assert.ok(reads.length >= 3, `read in parts: ${reads.join(', ')}`);
    for (const bytes of reads) assert.ok(bytes < HISTORY_PAGE_BYTES_MAX + BODY_BYTES_MAX, `a read of ${bytes} bytes`);
    reader.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
