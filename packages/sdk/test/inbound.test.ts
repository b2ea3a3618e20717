/**
 * The receive pipeline's ordering and exactly-once rules, without a server:
 * membership entries (plain JSON bodies) stand in for messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toBase64, utf8 } from '../src/_bytes.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import type { ClientEvents } from '../src/events.ts';
import type { RoomEntry } from '../src/frames.ts';
import { Inbound } from '../src/inbound.ts';

function entry(roomId: string, seq: number, kind = 'member-added'): RoomEntry {
  return {
    roomId,
    seq,
    kind,
    from: { userId: 'alice', deviceId: 'laptop' },
    clientId: `c${seq}`,
    body: toBase64(utf8(JSON.stringify({ userId: `u${seq}`, role: 'member', by: 'alice' }))),
    ts: 1000 + seq,
  };
}

function pipeline() {
  const store = MemoryClientStore.create();
  const events: { event: keyof ClientEvents; value: unknown }[] = [];
  const inbound = new Inbound(
    store,
    { userId: 'bob', deviceId: 'phone' },
    {
      emit: (event, value) => events.push({ event, value }),
      prekeyMessageOpened: () => undefined,
      membershipChanged: () => undefined,
      messageFrom: () => undefined,
    },
  );
  const seen = (): string[] => events.map((e) => `${e.event}:${(e.value as { roomId: string; seq: number }).roomId}#${(e.value as { seq: number }).seq}`);
  return { store, inbound, events, seen };
}

describe('inbound ordering', () => {
  it('while holding, processes entries by seq per room, each once, then goes live', () => {
    const { store, inbound, seen } = pipeline();
    inbound.hold();
    for (const [room, seq] of [
      ['r1', 3],
      ['r2', 2],
      ['r1', 1],
      ['r1', 2],
      ['r2', 1],
      ['r1', 2],
      ['r1', 5],
      ['r1', 4],
      ['r1', 3],
    ] as const)
      inbound.receive(entry(room, seq));
    assert.deepEqual(seen(), []);
    inbound.flush();
    const order = seen();
    assert.deepEqual(
      order.filter((s) => s.includes('r1#')),
      ['membership:r1#1', 'membership:r1#2', 'membership:r1#3', 'membership:r1#4', 'membership:r1#5'],
    );
    assert.deepEqual(
      order.filter((s) => s.includes('r2#')),
      ['membership:r2#1', 'membership:r2#2'],
    );
    assert.equal(store.roomCursor('r1'), 5);
    assert.deepEqual(store.roomCursors(), { r1: 5, r2: 2 });
    // Live: repeats are dropped, new entries pass at once.
    inbound.receive(entry('r1', 5));
    inbound.receive(entry('r1', 6));
    assert.deepEqual(seen().slice(order.length), ['membership:r1#6']);
  });

  it('an entry it cannot read is one decryptionError, and the cursor still advances', () => {
    const { store, inbound, events } = pipeline();
    const bad = { ...entry('r1', 1, 'message'), body: toBase64(Uint8Array.of(9, 9, 9)) };
    inbound.receive(bad);
    inbound.receive({ ...entry('r1', 2, 'message'), body: '***' });
    assert.deepEqual(
      events.map((e) => [e.event, (e.value as { reason: string }).reason]),
      [
        ['decryptionError', 'MALFORMED_BODY'],
        ['decryptionError', 'MALFORMED_BODY'],
      ],
    );
    assert.equal(store.roomCursor('r1'), 2);
  });

  it('ignores this device’s own messages replayed by a sync', () => {
    const { inbound, events } = pipeline();
    inbound.receive({ ...entry('r1', 1, 'message'), from: { userId: 'bob', deviceId: 'phone' } });
    assert.deepEqual(events, []);
  });
});
