/**
 * The conformance cases for the ordered parts of storage: the room log
 * (gap-free sequencing, idempotent append, paged reads) and the per-device
 * mailbox (ids, the `max` bound at its edge, idempotent enqueue, ack).
 * Registered by `storageConformance` in `conformance.ts`.
 *
 * @module
 */

import { deepStrictEqual, equal, ok, rejects } from 'node:assert/strict';
import { describe, test } from 'node:test';
import { STORAGE_PAGE_MAX, isMailboxSenderFull, type MailboxInput, type RoomEntryInput, type Storage } from './types.ts';

type Run = (fn: (s: Storage) => Promise<void>) => () => Promise<void>;

const enc = new TextEncoder();

function message(clientId: string, over: Partial<RoomEntryInput> = {}): RoomEntryInput {
  return {
    kind: 'message',
    senderUserId: 'alice',
    senderDeviceId: 'd1',
    clientId,
    body: enc.encode(`body of ${clientId}`),
    createdAt: 1000,
    ...over,
  };
}

function mail(clientId: string, over: Partial<MailboxInput> = {}): MailboxInput {
  return { fromUserId: 'bob', fromDeviceId: 'e1', clientId, payload: enc.encode(`payload ${clientId}`), createdAt: 5, ...over };
}

async function room(s: Storage, roomId = 'r'): Promise<void> {
  equal(await s.createRoom({ roomId, kind: 'group', createdBy: 'alice', createdAt: 1 }), true);
}

/** Appends `n` messages c1..cn one after another. */
async function fill(s: Storage, n: number, roomId = 'r'): Promise<void> {
  for (let i = 1; i <= n; i++) await s.append(roomId, message(`c${i}`));
}

const seqs = (xs: readonly { seq: number }[]) => xs.map((x) => x.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function roomLogConformance(run: Run): void {
  // User u with devices d and d2: mailbox entries are stored for existing devices only.
  const runMailbox: Run = (fn) =>
    run(async (s) => {
      await s.createUser({ userId: 'u', createdAt: 0 }, { userId: 'u', deviceId: 'd', identityKey: new Uint8Array(32), createdAt: 0 });
      await s.addDevice({ userId: 'u', deviceId: 'd2', identityKey: new Uint8Array(32), createdAt: 0 });
      await fn(s);
    });
  describe('room log', () => {
    test('append assigns seq 1..n per room and stores every field', run(async (s) => {
      await room(s, 'r');
      await room(s, 'q');
      equal(await s.lastSeq('r'), 0);
      const kinds = ['message', 'member-added', 'member-removed', 'role-changed'] as const;
      for (let i = 1; i <= 8; i++) {
        const input = message(`c${i}`, { kind: kinds[i % 4], senderUserId: `u${i % 3}`, body: enc.encode('x'.repeat(i)), createdAt: i });
        const { entry, duplicate } = await s.append('r', input);
        equal(duplicate, false);
        deepStrictEqual(entry, { ...input, roomId: 'r', seq: i });
        if (i % 2 === 0) equal((await s.append('q', message(`c${i}`))).entry.seq, i / 2, 'rooms count separately');
      }
      equal(await s.lastSeq('r'), 8);
      equal(await s.lastSeq('q'), 4);
      const stored = await s.readAfter('r', 0, 100);
      deepStrictEqual(seqs(stored), range(1, 8));
      deepStrictEqual(stored[2], { ...message('c3', { kind: 'role-changed', senderUserId: 'u0', body: enc.encode('xxx'), createdAt: 3 }), roomId: 'r', seq: 3 });
    }));

    test('bodies round-trip: empty, every byte value, 64 KiB', run(async (s) => {
      await room(s);
      const bodies = [new Uint8Array(0), Uint8Array.from({ length: 256 }, (_, i) => i), new Uint8Array(64 * 1024).fill(0xa5)];
      for (const [i, body] of bodies.entries()) await s.append('r', message(`c${i}`, { body }));
      deepStrictEqual((await s.readAfter('r', 0, 10)).map((e) => e.body), bodies);
    }));

    test('a repeated (room, sender, clientId) returns the stored entry, duplicate=true, writes nothing', run(async (s) => {
      await room(s);
      const first = await s.append('r', message('c1'));
      await s.append('r', message('c2'));
      const again = await s.append('r', message('c1', { body: enc.encode('different'), createdAt: 9 }));
      equal(again.duplicate, true);
      deepStrictEqual(again.entry, first.entry);
      equal(await s.lastSeq('r'), 2);
      equal((await s.readAfter('r', 0, 100)).length, 2);
      // The next new entry still gets the next seq: the duplicate consumed none.
      equal((await s.append('r', message('c3'))).entry.seq, 3);
    }));

    test('the same clientId from another device, another user, or in another room is a new entry', run(async (s) => {
      await room(s, 'r');
      await room(s, 'q');
      const a = await s.append('r', message('c'));
      const otherDevice = await s.append('r', message('c', { senderDeviceId: 'd2' }));
      // Device ids are unique per user only: bob's "d1" is not alice's "d1".
      const otherUser = await s.append('r', message('c', { senderUserId: 'bob' }));
      const otherRoom = await s.append('q', message('c'));
      deepStrictEqual([a, otherDevice, otherUser, otherRoom].map((x) => [x.duplicate, x.entry.seq]), [
        [false, 1], [false, 2], [false, 3], [false, 1],
      ]);
    }));

    test('append to an unknown room rejects and creates nothing', run(async (s) => {
      await rejects(s.append('nowhere', message('c1')));
      equal(await s.lastSeq('nowhere'), 0);
      deepStrictEqual(await s.readAfter('nowhere', 0, 10), []);
    }));

    test('200 concurrent appends in one room: seqs exactly 1..200', run(async (s) => {
      await room(s);
      const results = await Promise.all(range(1, 200).map((i) => s.append('r', message(`c${i}`, { senderDeviceId: `d${i % 7}` }))));
      ok(results.every((r) => !r.duplicate));
      deepStrictEqual(seqs(results.map((r) => r.entry)).sort((x, y) => x - y), range(1, 200));
      const stored = [...(await s.readAfter('r', 0, 150)), ...(await s.readAfter('r', 150, 150))];
      deepStrictEqual(seqs(stored), range(1, 200));
      // Each caller was told the seq its own entry got.
      for (const r of results) equal(stored[r.entry.seq - 1]?.clientId, r.entry.clientId);
      equal(await s.lastSeq('r'), 200);
    }));

    test('concurrent repeats: 3 copies of 20 clientIds in each of 3 rooms at once → seqs 1..20 per room', run(async (s) => {
      for (const r of ['r1', 'r2', 'r3']) await room(s, r);
      const calls = [];
      for (let copy = 0; copy < 3; copy++) {
        for (const r of ['r1', 'r2', 'r3']) for (let i = 0; i < 20; i++) calls.push(s.append(r, message(`c${i}`)));
      }
      const results = await Promise.all(calls);
      equal(results.filter((x) => !x.duplicate).length, 60);
      for (const r of ['r1', 'r2', 'r3']) {
        const mine = results.filter((x) => x.entry.roomId === r);
        // All copies of one clientId report the same seq.
        for (let i = 0; i < 20; i++) equal(new Set(mine.filter((x) => x.entry.clientId === `c${i}`).map((x) => x.entry.seq)).size, 1);
        deepStrictEqual(seqs(await s.readAfter(r, 0, 100)), range(1, 20));
        equal(await s.lastSeq(r), 20);
      }
    }));

    test('readAfter: ascending, limit, bounds', run(async (s) => {
      await room(s);
      await fill(s, 10);
      deepStrictEqual(seqs(await s.readAfter('r', 0, 3)), [1, 2, 3]);
      deepStrictEqual(seqs(await s.readAfter('r', 3, 3)), [4, 5, 6]);
      deepStrictEqual(seqs(await s.readAfter('r', 8, 5)), [9, 10]);
      deepStrictEqual(await s.readAfter('r', 10, 5), []);
      deepStrictEqual(await s.readAfter('r', 1000, 5), []);
      deepStrictEqual(await s.readAfter('r', 0, 0), []);
      deepStrictEqual(seqs(await s.readAfter('r', 9, 1)), [10]);
      deepStrictEqual(seqs(await s.readAfter('r', 0, STORAGE_PAGE_MAX)), range(1, 10));
    }));

    test('readBefore: descending (newest first), limit, bounds', run(async (s) => {
      await room(s);
      await fill(s, 10);
      deepStrictEqual(seqs(await s.readBefore('r', 11, 3)), [10, 9, 8]);
      deepStrictEqual(seqs(await s.readBefore('r', 8, 3)), [7, 6, 5]);
      deepStrictEqual(seqs(await s.readBefore('r', 3, 5)), [2, 1]);
      deepStrictEqual(await s.readBefore('r', 1, 5), []);
      deepStrictEqual(await s.readBefore('r', 0, 5), []);
      deepStrictEqual(await s.readBefore('r', 11, 0), []);
      deepStrictEqual(seqs(await s.readBefore('r', Number.MAX_SAFE_INTEGER, 2)), [10, 9]);
    }));

    test('readAfter and readBefore with maxBytes: end at the entry reaching it, at least one entry', run(async (s) => {
      await room(s);
      // Bodies of 100 bytes, but the 4th is 1000.
      for (let i = 1; i <= 6; i++) await s.append('r', message(`c${i}`, { body: new Uint8Array(i === 4 ? 1000 : 100).fill(i) }));
      deepStrictEqual(seqs(await s.readAfter('r', 0, 10, 300)), [1, 2, 3], 'the 3rd reaches 300 exactly');
      deepStrictEqual(seqs(await s.readAfter('r', 0, 10, 301)), [1, 2, 3, 4], 'the 4th takes it over');
      deepStrictEqual(seqs(await s.readAfter('r', 0, 2, 301)), [1, 2], 'limit still applies');
      deepStrictEqual(seqs(await s.readAfter('r', 3, 10, 1)), [4], 'one entry even over maxBytes');
      deepStrictEqual(seqs(await s.readAfter('r', 4, 10, 10_000)), [5, 6]);
      deepStrictEqual(await s.readAfter('r', 6, 10, 1), []);
      deepStrictEqual(seqs(await s.readBefore('r', 7, 10, 200)), [6, 5]);
      deepStrictEqual(seqs(await s.readBefore('r', 7, 10, 201)), [6, 5, 4]);
      deepStrictEqual(seqs(await s.readBefore('r', 5, 10, 1)), [4]);
      deepStrictEqual(seqs(await s.readBefore('r', 4, 10, 10_000)), [3, 2, 1]);
      const [first] = await s.readAfter('r', 3, 10, 1);
      deepStrictEqual(first?.body, new Uint8Array(1000).fill(4), 'bodies are whole');
      for (const maxBytes of [0, -1, 1.5, Number.NaN]) {
        await rejects(s.readAfter('r', 0, 10, maxBytes), RangeError);
        await rejects(s.readBefore('r', 1, 10, maxBytes), RangeError);
      }
    }));

    test('page sizes and positions outside their range are RangeErrors', run(async (s) => {
      await room(s);
      for (const limit of [-1, 1.5, Number.NaN, Infinity, STORAGE_PAGE_MAX + 1]) {
        await rejects(s.readAfter('r', 0, limit), RangeError);
        await rejects(s.readBefore('r', 1, limit), RangeError);
        await rejects(s.readMailbox('u', 'd', 0, limit), RangeError);
      }
      await rejects(s.readAfter('r', -1, 10), RangeError);
      await rejects(s.readBefore('r', 0.5, 10), RangeError);
      await rejects(s.readMailbox('u', 'd', -1, 10), RangeError);
      await rejects(s.ackMailbox('u', 'd', Number.NaN), RangeError);
      await rejects(s.enqueueMailbox('u', 'd', mail('m'), -1), RangeError);
    }));
  });

  describe('mailbox', () => {
    test('enqueue assigns ids 1, 2, 3 per device; read after id with limit; fields round-trip', runMailbox(async (s) => {
      const e1 = (await s.enqueueMailbox('u', 'd', mail('m1'), 100))?.entry;
      const e2 = (await s.enqueueMailbox('u', 'd', mail('m2', { fromUserId: 'carol', payload: new Uint8Array(0) }), 100))?.entry;
      const e3 = (await s.enqueueMailbox('u', 'd', mail('m3'), 100))?.entry;
      const other = (await s.enqueueMailbox('u', 'd2', mail('m1'), 100))?.entry;
      deepStrictEqual([e1?.id, e2?.id, e3?.id, other?.id], [1, 2, 3, 1]);
      deepStrictEqual(e2, { id: 2, ...mail('m2', { fromUserId: 'carol', payload: new Uint8Array(0) }) });
      deepStrictEqual(await s.readMailbox('u', 'd', 0, 10), [e1, e2, e3]);
      deepStrictEqual(await s.readMailbox('u', 'd', 1, 1), [e2]);
      deepStrictEqual(await s.readMailbox('u', 'd', 3, 10), []);
      deepStrictEqual(await s.readMailbox('u', 'd', 0, 0), []);
      deepStrictEqual(await s.readMailbox('u', 'd2', 0, 10), [other]);
      deepStrictEqual(await s.readMailbox('nobody', 'd', 0, 10), []);
    }));

    test('max at its edge: max-1 held accepts, max held refuses (nothing written), ack frees room', runMailbox(async (s) => {
      const max = 5;
      for (let i = 1; i < max; i++) ok(await s.enqueueMailbox('u', 'd', mail(`m${i}`), max));
      // max-1 held: one more fits.
      equal((await s.enqueueMailbox('u', 'd', mail(`m${max}`), max))?.entry.id, max);
      // max held: the (max+1)th is refused and leaves no trace.
      equal(await s.enqueueMailbox('u', 'd', mail('over'), max), null);
      equal((await s.readMailbox('u', 'd', 0, 100)).length, max);
      // A bigger max for the same device takes it, with the next id (the refusal used none).
      equal((await s.enqueueMailbox('u', 'd', mail('over'), max + 1))?.entry.id, max + 1);
      equal(await s.enqueueMailbox('u', 'd', mail('over2'), max + 1), null);
      // Another device's mailbox is separate.
      ok(await s.enqueueMailbox('u', 'd2', mail('m1'), 1));
      // Acking frees room; ids keep increasing.
      equal(await s.ackMailbox('u', 'd', 2), 2);
      equal((await s.enqueueMailbox('u', 'd', mail('after-ack'), max + 1))?.entry.id, max + 2);
      equal(await s.enqueueMailbox('u', 'd', mail('x'), 0), null, 'max 0 refuses everything');
    }));

    test('maxFromSender at its edge: a user holding that many entries in a device\'s mailbox is refused (MailboxSenderFullError, nothing written); other users, its repeats and other devices are not', runMailbox(async (s) => {
      const per = 3;
      for (let i = 1; i <= per; i++) ok(await s.enqueueMailbox('u', 'd', mail(`s${i}`, { fromDeviceId: `e${i}` }), 10, per), 'from any of its devices');
      const refused = await s.enqueueMailbox('u', 'd', mail('s-over'), 10, per).then(() => null, (e: unknown) => e);
      ok(isMailboxSenderFull(refused), String(refused));
      equal((await s.readMailbox('u', 'd', 0, 100)).length, per);
      equal((await s.enqueueMailbox('u', 'd', mail('s1', { fromDeviceId: 'e1' }), 10, per))?.duplicate, true, 'a repeat still answers');
      equal((await s.enqueueMailbox('u', 'd', mail('c1', { fromUserId: 'carol' }), 10, per))?.entry.id, per + 1, 'another user is not held back');
      ok(await s.enqueueMailbox('u', 'd2', mail('s-over'), 10, per), 'another device of the recipient is separate');
      equal(await s.ackMailbox('u', 'd', 1), 1);
      ok(await s.enqueueMailbox('u', 'd', mail('s-over'), 10, per), 'an ack frees the sender\'s share');
      await rejects(s.enqueueMailbox('u', 'd', mail('m'), 10, -1), RangeError);
    }));

    test('a repeated clientId returns the stored entry, even when full; other senders are separate', runMailbox(async (s) => {
      const first = await s.enqueueMailbox('u', 'd', mail('m1'), 2);
      equal(first?.duplicate, false);
      deepStrictEqual(await s.enqueueMailbox('u', 'd', mail('m1', { payload: enc.encode('retry') }), 2), { entry: first?.entry, duplicate: true });
      equal((await s.readMailbox('u', 'd', 0, 10)).length, 1);
      // Same clientId from another device of the same user, or another user's device of the same name.
      equal((await s.enqueueMailbox('u', 'd', mail('m1', { fromDeviceId: 'e2' }), 2))?.entry.id, 2);
      deepStrictEqual(await s.enqueueMailbox('u', 'd', mail('m1'), 2), { entry: first?.entry, duplicate: true }, 'full, but a repeat still answers');
      equal(await s.enqueueMailbox('u', 'd', mail('m1', { fromUserId: 'carol' }), 2), null);
      equal((await s.enqueueMailbox('u', 'd', mail('m1', { fromUserId: 'carol' }), 3))?.entry.id, 3);
    }));

    test('ack deletes ids up to the bound and reports how many', runMailbox(async (s) => {
      for (let i = 1; i <= 6; i++) await s.enqueueMailbox('u', 'd', mail(`m${i}`), 100);
      await s.enqueueMailbox('u', 'd2', mail('m1'), 100);
      equal(await s.ackMailbox('u', 'd', 0), 0);
      equal(await s.ackMailbox('u', 'd', 3), 3);
      equal(await s.ackMailbox('u', 'd', 3), 0);
      deepStrictEqual((await s.readMailbox('u', 'd', 0, 10)).map((e) => e.id), [4, 5, 6]);
      equal(await s.ackMailbox('u', 'd', 100), 3);
      deepStrictEqual((await s.readMailbox('u', 'd2', 0, 10)).map((e) => e.id), [1]);
      // After everything is acked, a repeat of an acked clientId is a new entry.
      equal((await s.enqueueMailbox('u', 'd', mail('m1'), 100))?.entry.id, 7);
    }));

    test('50 concurrent enqueues with max 30: 30 stored with ids 1..30, 20 refused', runMailbox(async (s) => {
      const results = await Promise.all(range(1, 50).map((i) => s.enqueueMailbox('u', 'd', mail(`m${i}`, { fromDeviceId: `e${i % 4}` }), 30)));
      const stored = results.filter((r) => r !== null);
      equal(stored.length, 30);
      deepStrictEqual(stored.map((e) => e.entry.id).sort((x, y) => x - y), range(1, 30));
      deepStrictEqual((await s.readMailbox('u', 'd', 0, 100)).map((e) => e.id), range(1, 30));
    }));

    test('10 concurrent enqueues of one clientId store it once', runMailbox(async (s) => {
      const results = await Promise.all(range(1, 10).map(() => s.enqueueMailbox('u', 'd', mail('same'), 100)));
      deepStrictEqual(new Set(results.map((r) => r?.entry.id)), new Set([1]));
      equal(results.filter((r) => r?.duplicate === false).length, 1, 'exactly one was new');
      equal((await s.readMailbox('u', 'd', 0, 100)).length, 1);
    }));
  });
}
