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

// A database migrated before migration 6 (blob completion time): its complete blobs get a
// completion time (their creation), so retention and the sweep still apply to them.
test('migration 6 backfills completed_at of blobs completed before it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  try {
    const db = new Database(join(dir, 'parley.db'));
    db.exec(migrationsTableSql('sqlite'));
    for (const m of MIGRATIONS.filter((x) => x.version <= 5)) {
      db.exec(migrationSql(m, 'sqlite'));
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, 1);
    }
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
