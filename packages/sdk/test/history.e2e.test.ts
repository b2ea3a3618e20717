/**
 * `history` over messages with large bodies against a real `parley serve`:
 * the server cuts its pages at HISTORY_PAGE_BYTES_MAX of bodies (`more:
 * true`), and the client keeps asking, so a caller asking for N entries
 * gets N when the room has them, for both the sender (its kept copies) and
 * the recipient (what it decrypted).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import type { HistoryEntry } from '../src/events.ts';
import { recorder, serverForSuite, until } from './_harness.ts';

// 60 bodies of ~48 KB: about 2.9 MB, three pages of the server's 1 MiB.
const MESSAGES = 60;
const BYTES = 48_000;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** The number each message carries in every byte; null for entries that are not binary messages. */
const tag = (e: HistoryEntry): number | null => (e.type === 'message' && e.kind === 'binary' && e.bytes.length === BYTES ? (e.bytes[0] ?? null) : null);

describe('history over large messages', () => {
  const server = serverForSuite();
  const { clients } = server;

  it('returns every entry asked for, page after page', async () => {
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'alice', 'laptop');
    clients.push(alice);
    const bob = await ParleyClient.register(server.url, 'bob', 'phone', { on: rb.on });
    clients.push(bob);
    const room = await alice.startDirect('bob');
    for (let i = 1; i <= MESSAGES; i++) await alice.send(room, new Uint8Array(BYTES).fill(i));
    await until(() => rb.messages.length >= MESSAGES, 'bob receives every message', 30_000);
    const entries = MESSAGES + 2; // two member-added events first

    for (const client of [alice, bob]) {
      const who = client.userId;
      const all = await client.history(room, { limit: entries });
      assert.deepEqual(all.map((e) => e.seq), range(1, entries), `${who}: the whole log`);
      assert.deepEqual(all.map(tag).slice(2), range(1, MESSAGES), `${who}: every message, intact`);
      const newest = await client.history(room, { limit: 30 });
      assert.deepEqual(newest.map((e) => e.seq), range(entries - 29, entries), `${who}: the newest 30`);
      const older = await client.history(room, { before: entries - 29, limit: 25 });
      assert.deepEqual(older.map((e) => e.seq), range(entries - 54, entries - 30), `${who}: the 25 before them`);
      const rest = await client.history(room, { before: entries - 54, limit: 25 });
      assert.deepEqual(rest.map((e) => e.seq), range(1, entries - 55), `${who}: what is left, fewer than asked`);
    }
  });
});
