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
import { HELD_BODY_CHARS_MAX, HELD_ENTRIES_MAX, ROOM_CURSORS_MAX } from '../src/limits.ts';

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

function pipeline(hooks: { ownPending?: (clientId: string) => boolean; store?: MemoryClientStore } = {}) {
  const store = hooks.store ?? MemoryClientStore.create();
  const events: { event: keyof ClientEvents; value: unknown }[] = [];
  const gaps: string[] = [];
  let overflows = 0;
  const inbound = new Inbound(
    store,
    { userId: 'bob', deviceId: 'phone' },
    {
      emit: (event, value) => events.push({ event, value }),
      prekeyMessageOpened: () => undefined,
      membershipChanged: () => undefined,
      messageFrom: () => undefined,
      gap: (roomId) => gaps.push(roomId),
      overflow: () => void overflows++,
      control: () => undefined,
      ownPending: hooks.ownPending ?? (() => false),
    },
  );
  const seen = (): string[] => events.map((e) => `${e.event}:${(e.value as { roomId: string; seq: number }).roomId}#${(e.value as { seq: number }).seq}`);
  return { store, inbound, events, seen, gaps, overflows: () => overflows };
}

describe('inbound ordering', () => {
  it(`holding is bounded: at HELD_ENTRIES_MAX (${HELD_ENTRIES_MAX}) entries past a hole nothing happens; one more drops them all, and nothing is processed`, () => {
    const { store, inbound, seen, overflows } = pipeline();
    inbound.receive(entry('r1', 5)); // a hole: holding from here, a sync asked for
    for (let seq = 6; seq < 5 + HELD_ENTRIES_MAX; seq++) inbound.receive(entry('r1', seq));
    assert.equal(overflows(), 0, 'at the bound');
    inbound.receive(entry('r1', 5 + HELD_ENTRIES_MAX));
    assert.equal(overflows(), 1, 'one past it');
    assert.deepEqual(seen(), [], 'nothing past the hole was processed');
    assert.equal(store.roomCursor('r1'), 0, 'the cursor did not move: a new catch-up reads them again');
    assert.equal(inbound.holding, true, 'still holding until a catch-up flushes');
    // The catch-up on a new connection replays from the cursor.
    for (let seq = 1; seq <= 6; seq++) inbound.receive(entry('r1', seq));
    assert.equal(inbound.flush(false), 0);
    assert.deepEqual(seen(), [1, 2, 3, 4, 5, 6].map((n) => `membership:r1#${n}`));
  });

  it('holding is bounded by body characters too, and entries next in order are processed rather than counted', () => {
    const { inbound, seen, overflows } = pipeline();
    const big = (roomId: string, seq: number): RoomEntry => ({ ...entry(roomId, seq), body: 'A'.repeat(HELD_BODY_CHARS_MAX / 4) });
    inbound.hold();
    // A catch-up streaming in order: each over-the-bound check processes what is next, so it never overflows.
    for (let seq = 1; seq <= 12; seq++) inbound.receive(big('r1', seq));
    assert.equal(overflows(), 0);
    // Each fifth entry crosses the bound and releases what is held.
    assert.equal(seen().length, 10, 'processed early, in order (as decryption errors: the bodies are not JSON)');
    inbound.flush(false);
    assert.equal(seen().length, 12);
    // Far past a hole they can only be held: the fifth one crosses the bound.
    inbound.hold();
    for (let seq = 100; seq < 104; seq++) inbound.receive(big('r2', seq));
    assert.equal(overflows(), 0);
    inbound.receive(big('r2', 104));
    assert.equal(overflows(), 1);
  });

  it('a hole passed over is remembered: its entries are still processed when they come (once), and a catch-up syncs from its start until settled', () => {
    const { inbound, seen } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.receive(entry('r1', 2));
    inbound.receive(entry('r1', 7)); // a hole: 3…6
    assert.equal(inbound.flush(false), 1, 'still holed after a sync');
    assert.equal(inbound.flush(true), 0, 'passed over');
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r1#2', 'membership:r1#7']);
    assert.equal(inbound.syncFrom('r1', 7), 2, 'a catch-up asks from the hole');
    assert.equal(inbound.syncFrom('r2', 9), 9, 'other rooms from their cursor');
    inbound.receive(entry('r1', 4)); // below the cursor, but never processed
    inbound.receive(entry('r1', 4)); // a repeat
    inbound.receive(entry('r1', 2)); // a repeat from before the hole
    assert.deepEqual(seen().slice(3), ['membership:r1#4']);
    assert.equal(inbound.syncFrom('r1', 7), 2, '3 is still missing');
    inbound.receive(entry('r1', 3));
    assert.equal(inbound.syncFrom('r1', 7), 4, 'then 5…6');
    inbound.settlePassedHoles(new Set(['r1']));
    assert.equal(inbound.syncFrom('r1', 7), 7, 'settled: the server had nothing there');
    inbound.receive(entry('r1', 5));
    assert.deepEqual(seen().slice(3), ['membership:r1#4', 'membership:r1#3'], 'a settled hole takes nothing more');
  });

  it('passed holes outlive the pipeline where the store keeps them: after a restart the missing entries are still processed once, and a catch-up still asks from the hole', () => {
    const first = pipeline();
    first.inbound.receive(entry('r1', 1));
    first.inbound.receive(entry('r1', 6)); // a hole: 2…5
    first.inbound.flush(false);
    first.inbound.flush(true);
    assert.deepEqual(first.seen(), ['membership:r1#1', 'membership:r1#6']);
    // The same store, a new pipeline: a new client after a restart.
    const again = pipeline({ store: first.store });
    assert.equal(again.inbound.syncFrom('r1', 6), 1, 'the catch-up asks from the hole');
    again.inbound.receive(entry('r1', 3));
    again.inbound.receive(entry('r1', 3));
    again.inbound.receive({ ...entry('r1', 6), clientId: 'another' }); // another entry at the seq processed past the hole
    assert.deepEqual(again.seen(), ['membership:r1#3', 'membership:r1#6']);
    again.inbound.settlePassedHoles(new Set(['r1']));
    const third = pipeline({ store: first.store });
    assert.equal(third.inbound.syncFrom('r1', 6), 6, 'settled holes are forgotten in the store too');
    third.inbound.receive(entry('r1', 4));
    assert.deepEqual(third.seen(), []);
  });

  it('the entry processed past a hole may have had a false seq: another entry at that seq is processed too, the same one is a repeat', () => {
    const { inbound, seen } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.receive({ ...entry('r1', 5), clientId: 'forged' }); // a hole: 2…4
    inbound.flush(true);
    assert.equal(inbound.syncFrom('r1', 5), 1);
    inbound.receive({ ...entry('r1', 5), clientId: 'forged' }); // the same entry again: a repeat
    for (const seq of [2, 3, 4, 5]) inbound.receive(entry('r1', seq)); // the real ones, 5 included
    assert.deepEqual(seen(), [1, 5, 2, 3, 4, 5].map((n) => `membership:r1#${n}`));
    inbound.receive(entry('r1', 5));
    assert.equal(seen().length, 6, 'and each once');
    assert.equal(inbound.syncFrom('r1', 5), 5);
  });

  it('flushSome: a part at a time, still holding in between (arrivals join in seq order); the end is what flush does, holes included', () => {
    const { inbound, seen } = pipeline();
    inbound.hold();
    for (const seq of [3, 1, 2, 4, 5]) inbound.receive(entry('r1', seq));
    inbound.receive(entry('r2', 3)); // r2 starts past a hole (cursor 0)
    let step = inbound.flushSome(false, 2);
    assert.deepEqual(step, { more: true, holed: 0 });
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r1#2']);
    assert.equal(inbound.holding, true, 'still holding between parts');
    // A live entry during the pause is held, and taken in its place.
    inbound.receive(entry('r1', 7));
    inbound.receive(entry('r1', 6));
    assert.deepEqual(seen().length, 2, 'not processed live');
    step = inbound.flushSome(false, 2);
    assert.deepEqual(step, { more: true, holed: 0 });
    step = inbound.flushSome(false, 100);
    assert.deepEqual(step, { more: false, holed: 1 }, 'r2 left with its hole');
    assert.deepEqual(seen(), [1, 2, 3, 4, 5, 6, 7].map((n) => `membership:r1#${n}`));
    assert.equal(inbound.holding, true, 'r2 still held');
    assert.equal(inbound.flush(true), 0, 'passed over at last');
    assert.deepEqual(seen().at(-1), 'membership:r2#3');
    assert.equal(inbound.holding, false);
  });

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

  it('a live entry past a hole is held and asks for a sync once; the replay fills the hole in order', () => {
    const { store, inbound, seen, gaps } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.receive(entry('r1', 2));
    inbound.receive(entry('r1', 4)); // 3 lost on the way
    assert.deepEqual(gaps, ['r1']);
    assert.equal(inbound.holding, true);
    assert.equal(store.roomCursor('r1'), 2, 'the cursor must not jump the hole');
    // More live entries while the sync runs: held, no second request.
    inbound.receive(entry('r1', 5));
    inbound.receive(entry('r2', 7));
    assert.deepEqual(gaps, ['r1']);
    // The sync replays 3 … 5 (and r2 from 0); repeats are harmless.
    for (const seq of [3, 4, 5]) inbound.receive(entry('r1', seq));
    for (let seq = 1; seq <= 7; seq++) inbound.receive(entry('r2', seq));
    inbound.flush();
    assert.deepEqual(
      seen().filter((s) => s.includes('r1#')),
      [1, 2, 3, 4, 5].map((n) => `membership:r1#${n}`),
    );
    assert.deepEqual(
      seen().filter((s) => s.includes('r2#')),
      [1, 2, 3, 4, 5, 6, 7].map((n) => `membership:r2#${n}`),
    );
    assert.equal(inbound.holding, false);
    // Live again: the next entry passes at once.
    inbound.receive(entry('r1', 6));
    assert.equal(store.roomCursor('r1'), 6);
    assert.deepEqual(gaps, ['r1']);
  });

  it('a hole the sync did not fill stays held for another sync, and is passed over only when told', () => {
    const { store, inbound, seen, gaps } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.receive(entry('r1', 3));
    inbound.receive(entry('r2', 1));
    assert.deepEqual(gaps, ['r1']);
    assert.equal(inbound.flush(false), 1, 'r1 still has a hole');
    assert.equal(inbound.holding, true);
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r2#1'], 'other rooms go on');
    assert.equal(store.roomCursor('r1'), 1);
    inbound.receive(entry('r1', 4)); // held, no second request while holding
    assert.deepEqual(gaps, ['r1']);
    assert.equal(inbound.flush(true), 0); // the last attempt: passed over
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r2#1', 'membership:r1#3', 'membership:r1#4']);
    assert.equal(store.roomCursor('r1'), 4);
    inbound.receive(entry('r1', 2)); // a straggler in the hole passed over: never processed, so it is now
    assert.deepEqual(seen().slice(4), ['membership:r1#2']);
    inbound.receive(entry('r1', 2)); // and once only
    assert.equal(seen().length, 5);
  });

  it('this device’s own stored messages (never echoed live) are no hole', () => {
    const { store, inbound, seen, gaps } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.sent('r1', 2);
    inbound.sent('r1', 3);
    inbound.receive(entry('r1', 4));
    assert.deepEqual(gaps, []);
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r1#4']);
    assert.equal(store.roomCursor('r1'), 4);
    // An own seq above a real hole does not bridge it.
    inbound.sent('r1', 6);
    inbound.receive(entry('r1', 7));
    assert.deepEqual(gaps, ['r1']);
    inbound.receive(entry('r1', 5)); // the replay
    inbound.receive({ ...entry('r1', 6, 'message'), from: { userId: 'bob', deviceId: 'phone' } }); // the own entry, replayed: skipped
    assert.equal(inbound.flush(false), 0);
    assert.deepEqual(seen(), ['membership:r1#1', 'membership:r1#4', 'membership:r1#5', 'membership:r1#7']);
    assert.equal(store.roomCursor('r1'), 7);
  });

  it('another device’s entry at a seq acknowledged as this device’s own is processed, not passed over', () => {
    const { store, inbound, seen, gaps } = pipeline();
    inbound.receive(entry('r1', 1));
    inbound.sent('r1', 2); // a false ack: the server stores another device's entry at 2
    inbound.receive(entry('r1', 2, 'message'));
    inbound.receive(entry('r1', 3));
    assert.deepEqual(gaps, []);
    assert.deepEqual(seen(), ['membership:r1#1', 'decryptionError:r1#2', 'membership:r1#3']);
    // Once: a replay of it is a repeat.
    inbound.receive(entry('r1', 2, 'message'));
    assert.deepEqual(seen(), ['membership:r1#1', 'decryptionError:r1#2', 'membership:r1#3']);
    assert.equal(store.roomCursor('r1'), 3);
  });

  it('the copy kept for a seq stands only for that entry: another one there is reported and opened on its own', () => {
    const { store, inbound, events } = pipeline();
    const alice = { userId: 'alice', deviceId: 'laptop' };
    store.storeMessage({ kind: 'text', text: 'kept', roomId: 'r1', seq: 1, id: 'c1', sender: alice, outgoing: false, sentAt: 1, serverTs: 1 });
    // The same entry: the kept copy, nothing decrypted.
    assert.deepEqual(inbound.historyEntry(entry('r1', 1, 'message')), { type: 'message', kind: 'text', text: 'kept', roomId: 'r1', seq: 1, id: 'c1', sender: alice, outgoing: false, sentAt: 1, serverTs: 1 });
    assert.equal(events.length, 0);
    // Another entry at that seq (another id, or another device): BAD_RESPONSE, and the entry itself is opened.
    for (const other of [{ ...entry('r1', 1, 'message'), clientId: 'c9' }, { ...entry('r1', 1, 'message'), from: { userId: 'alice', deviceId: 'phone' } }]) {
      events.length = 0;
      const h = inbound.historyEntry(other);
      assert.equal(h?.type, 'undecryptable');
      assert.deepEqual(
        events.map((e) => [e.event, (e.value as { code?: string }).code]),
        [['error', 'BAD_RESPONSE']],
      );
    }
    // The kept copy is not overwritten.
    assert.equal((store.loadMessage('r1', 1) as { text?: string } | undefined)?.text, 'kept');
  });

  it(`cursors are kept for at most ROOM_CURSORS_MAX (${ROOM_CURSORS_MAX}) rooms: a room beyond is processed, its place not kept, reported once; known rooms still move`, () => {
    const { store, inbound, events } = pipeline();
    for (let i = 0; i < ROOM_CURSORS_MAX; i++) inbound.receive(entry(`r${i}`, 1));
    assert.equal(Object.keys(store.roomCursors()).length, ROOM_CURSORS_MAX, 'at the bound');
    assert.ok(!events.some((e) => e.event === 'error'));
    inbound.receive(entry('beyond', 1));
    inbound.receive(entry('beyond2', 1));
    assert.equal(store.roomCursor('beyond'), 0, 'one more room: no cursor');
    assert.equal(Object.keys(store.roomCursors()).length, ROOM_CURSORS_MAX);
    assert.ok(events.some((e) => e.event === 'membership' && (e.value as { roomId: string }).roomId === 'beyond'), 'its entry was processed');
    assert.equal(events.filter((e) => e.event === 'error').length, 1, 'reported once');
    inbound.receive(entry('r0', 2));
    assert.equal(store.roomCursor('r0'), 2, 'a known room moves on');
    // A cursor forgotten (a room left and read to its end) makes room for another.
    store.forgetRoomCursor('r1');
    inbound.receive(entry('later', 1));
    assert.equal(store.roomCursor('later'), 1);
  });

  it('a room it has never seen, joined at seq 9, asks for the room from the start', () => {
    const { inbound, gaps } = pipeline();
    inbound.receive(entry('r9', 9));
    assert.deepEqual(gaps, ['r9']);
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

  it('passes over this device’s own messages replayed by a sync (kept, or still waiting for their ack); reports one it has no copy of', () => {
    const pending = new Set(['c2']);
    const { store, inbound, events, seen } = pipeline({ ownPending: (id) => pending.has(id) });
    const me = { userId: 'bob', deviceId: 'phone' };
    store.storeMessage({ kind: 'text', text: 'mine', roomId: 'r1', seq: 1, id: 'c1', sender: me, outgoing: true, sentAt: 1, serverTs: 1 });
    inbound.receive({ ...entry('r1', 1, 'message'), from: me }); // kept
    inbound.receive({ ...entry('r1', 2, 'message'), from: me }); // in the outbound queue
    assert.equal(events.length, 0);
    // No copy and not queued: an earlier store's message, or another's entry labelled as this device's.
    inbound.receive({ ...entry('r1', 3, 'message'), from: me });
    assert.deepEqual(seen(), ['decryptionError:r1#3']);
    assert.equal((events[0]?.value as { reason?: string }).reason, 'NO_LOCAL_COPY');
  });
});
