// The storage conformance suite on SQLite: a fresh temporary directory per test; and an upgrade of an older database.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrationSql, migrationsTableSql } from '../src/storage/_schema.ts';
import { storageConformance } from '../src/storage/conformance.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { dedupeDigest } from '../src/storage/sqlite-dedupe.ts';
import type { Storage } from '../src/storage/types.ts';

storageConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  const opened: Storage[] = [];
  const open = async (): Promise<Storage> => {
    const s = new SqliteStorage(dir);
    opened.push(s);
    return s;
  };
  return {
    storage: await open(),
    reopen: open,
    async cleanup() {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** A database in `dir` with the migrations up to `version` applied, as a server of that version left it. */
function databaseAt(dir: string, version: number): Database.Database {
  const db = new Database(join(dir, 'parley.db'));
  // Migration 9 computes digests as the server does (sqlite-connection.ts).
  db.function('parley_dedupe', { deterministic: true }, dedupeDigest);
  db.exec(migrationsTableSql('sqlite'));
  for (const m of MIGRATIONS.filter((x) => x.version <= version)) {
    db.exec(migrationSql(m, 'sqlite') ?? '');
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, 1);
  }
  return db;
}

// A database migrated before migration 6 (blob completion time): its complete blobs get a
// completion time (their creation), so retention and the sweep still apply to them.
test('migration 6 backfills completed_at of blobs completed before it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const db = databaseAt(dir, 5);
    const blob = db.prepare('INSERT INTO blobs (blob_id, owner_user_id, size, complete, created_at) VALUES (?, ?, 1, ?, ?)');
    blob.run('old-done', 'u', 1, 100);
    blob.run('old-open', 'u', 0, 200);
    db.close();
    const s = new SqliteStorage(dir);
    try {
      await s.migrate();
      assert.equal((await s.getBlob('old-done'))?.completedAt, 100);
      assert.equal((await s.getBlob('old-open'))?.completedAt, null);
      assert.equal(await s.expireBlobs({ incompleteBefore: 0, completeBefore: 101 }, 10), 1);
      assert.equal(await s.getBlob('old-done'), null);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A database from before migration 9 (its log in room_entries, keyed by text
// ids): the entries move to room_log with their seqs, later appends continue
// the seqs, a repeated client id is still a duplicate, and rooms created
// afterwards get room numbers of their own.
test('migration 9 moves the room log to room_log and keeps seqs and dedupe', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const db = databaseAt(dir, 8);
    const room = db.prepare('INSERT INTO rooms (room_id, kind, created_by, created_at) VALUES (?, ?, ?, ?)');
    room.run('room-b', 'group', 'ann', 1);
    room.run('room-a', 'direct', 'ann', 2);
    const entry = db.prepare(
      `INSERT INTO room_entries (room_id, seq, kind, sender_user_id, sender_device_id, client_id, body, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    entry.run('room-a', 1, 'member-added', 'ann', 'd1', 'ev-1', Buffer.from('{}'), 10);
    entry.run('room-b', 1, 'message', 'ann', 'd1', 'c-1', Buffer.from([1, 2, 3]), 11);
    entry.run('room-a', 2, 'message', 'bob', 'd9', 'c-1', Buffer.from([4]), 12);
    entry.run('room-a', 3, 'message', 'ann', 'd1', 'c-1', Buffer.from([5, 6]), 13);
    db.close();

    const s = new SqliteStorage(dir);
    try {
      await s.migrate();
      const a = await s.readAfter('room-a', 0, 10);
      assert.deepEqual(a.map((e) => [e.roomId, e.seq, e.kind, e.senderUserId, e.clientId, [...e.body]]), [
        ['room-a', 1, 'member-added', 'ann', 'ev-1', [...Buffer.from('{}')]],
        ['room-a', 2, 'message', 'bob', 'c-1', [4]],
        ['room-a', 3, 'message', 'ann', 'c-1', [5, 6]],
      ]);
      assert.deepEqual((await s.readBefore('room-b', 5, 10)).map((e) => [e.seq, [...e.body]]), [[1, [1, 2, 3]]]);
      assert.equal(await s.lastSeq('room-a'), 3);
      assert.deepEqual((await s.readMembershipEvents('room-a', 0, 10)).map((e) => e.clientId), ['ev-1']);

      const input = { kind: 'message' as const, senderUserId: 'bob', senderDeviceId: 'd9', body: new Uint8Array([7]), createdAt: 20 };
      const again = await s.append('room-a', { ...input, clientId: 'c-1' });
      assert.equal(again.duplicate, true);
      assert.equal(again.entry.seq, 2);
      assert.deepEqual([...again.entry.body], [4]);
      const next = await s.append('room-a', { ...input, clientId: 'c-2' });
      assert.deepEqual([next.duplicate, next.entry.seq], [false, 4]);

      // A room created after the migration: a number of its own, a log of its own.
      assert.equal(await s.createRoom({ roomId: 'room-c', kind: 'group', createdBy: 'ann', createdAt: 3 }), true);
      assert.equal((await s.append('room-c', { ...input, clientId: 'c-1' })).entry.seq, 1);
      assert.deepEqual((await s.readAfter('room-c', 0, 10)).map((e) => e.seq), [1]);
      assert.deepEqual((await s.readAfter('room-b', 0, 10)).map((e) => e.seq), [1]);
      assert.deepEqual((await s.listRoomsOf('ann')).map((r) => r.roomId), []);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A database from before migration 11 (refresh tokens without families):
// each stored token becomes the first of its own family, so it still renews
// once, and a second use is seen as reuse.
test('migration 11 makes each stored refresh token the first of its own family', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const db = databaseAt(dir, 10);
    const token = db.prepare('INSERT INTO refresh_tokens (token_hash, user_id, device_id, expires_at) VALUES (?, ?, ?, ?)');
    token.run('old-a', 'ann', 'd1', 10_000);
    token.run('old-b', 'ann', 'd1', 10_000);
    db.prepare('INSERT INTO devices (user_id, device_id, identity_key, created_at) VALUES (?, ?, ?, ?)').run('ann', 'd1', Buffer.alloc(32), 1);
    db.close();
    const s = new SqliteStorage(dir);
    try {
      await s.migrate();
      const policy = { graceMs: 0, spentKept: 4 };
      const next = (tokenHash: string, issuedAt: number) => ({ tokenHash, issuedAt, expiresAt: 20_000 });
      assert.deepEqual(await s.rotateRefreshToken('old-a', next('new-a', 100), policy), { ok: true, userId: 'ann', deviceId: 'd1', epoch: '' });
      assert.deepEqual(await s.rotateRefreshToken('old-a', next('x', 200), policy), { ok: false, reason: 'reused', userId: 'ann', deviceId: 'd1' });
      assert.deepEqual(await s.rotateRefreshToken('new-a', next('y', 201), policy), { ok: false, reason: 'unknown' });
      assert.deepEqual(await s.rotateRefreshToken('old-b', next('new-b', 202), policy), { ok: true, userId: 'ann', deviceId: 'd1', epoch: '' }, 'another family, untouched');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The dedupe digest only finds candidates: an entry whose digest equals
// another's (a stand-in for a 48-bit collision, written into the file) is
// stored as a new entry, and its repeat is found as its duplicate.
test('room_log: a dedupe digest shared with another entry is not a duplicate', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const s = new SqliteStorage(dir);
    await s.migrate();
    await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'ann', createdAt: 1 });
    const input = { kind: 'message' as const, senderUserId: 'ann', senderDeviceId: 'd1', body: new Uint8Array([1]), createdAt: 2 };
    assert.equal((await s.append('r', { ...input, clientId: 'first' })).entry.seq, 1);
    await s.close();
    const db = new Database(join(dir, 'parley.db'));
    db.prepare("UPDATE room_log SET dedupe = ? WHERE client_id = 'first'").run(dedupeDigest('bob', 'd2', 'second'));
    db.close();

    const t = new SqliteStorage(dir);
    try {
      await t.migrate();
      const second = await t.append('r', { ...input, senderUserId: 'bob', senderDeviceId: 'd2', clientId: 'second', body: new Uint8Array([2]) });
      assert.deepEqual([second.duplicate, second.entry.seq], [false, 2]);
      const again = await t.append('r', { ...input, senderUserId: 'bob', senderDeviceId: 'd2', clientId: 'second' });
      assert.deepEqual([again.duplicate, again.entry.seq, [...again.entry.body]], [true, 2, [2]]);
      assert.deepEqual((await t.readAfter('r', 0, 10)).map((e) => e.clientId), ['first', 'second']);
    } finally {
      await t.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A database from before migration 12 (no session epochs, no removed devices):
// its devices get the empty epoch, which the server's tokens issued before
// (they carry none) match, so nobody is signed out by the upgrade; and its
// devices can be removed, their ids then kept.
test('migration 12: devices stored before have the empty session epoch, and can be removed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const db = databaseAt(dir, 11);
    db.prepare('INSERT INTO users (user_id, created_at) VALUES (?, ?)').run('ann', 1);
    const device = db.prepare('INSERT INTO devices (user_id, device_id, identity_key, created_at) VALUES (?, ?, ?, ?)');
    device.run('ann', 'd1', Buffer.alloc(32, 1), 1);
    device.run('ann', 'd2', Buffer.alloc(32, 2), 1);
    db.close();
    const s = new SqliteStorage(dir);
    try {
      await s.migrate();
      assert.deepEqual((await s.listDevices('ann')).map((d) => d.sessionEpoch), ['', '']);
      assert.equal(await s.removeDevice('ann', 'd2', 5), 'removed');
      assert.deepEqual(await s.removedDeviceKey('ann', 'd2'), new Uint8Array(32).fill(2));
      assert.equal(await s.removeDevice('ann', 'd1', 6), 'last');
      assert.equal(await s.resetSessions('ann', 'new'), 1);
      assert.equal((await s.getDevice('ann', 'd1'))?.sessionEpoch, 'new');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
