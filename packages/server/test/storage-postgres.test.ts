// The storage conformance suite on PostgreSQL: a fresh schema per test in
// the database named by PARLEY_TEST_DATABASE_URL, dropped afterwards, so
// parallel runs never collide. Unreachable server: a loud skip locally, a
// failure under CI=true.
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { storageConformance } from '../src/storage/conformance.ts';
import { PostgresStorage } from '../src/storage/postgres.ts';
import type { Storage } from '../src/storage/types.ts';

const url = process.env['PARLEY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The URL for messages, without its password. */
const shown = url.replace(/^(\w+:\/\/[^:@/]+):[^@/]*@/, '$1:***@');

async function reachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

const problem = await reachable();
if (problem === null) {
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  storageConformance('postgres', async () => {
    const schema = `parley_test_${process.pid}_${randomBytes(6).toString('hex')}`;
    const opened: Storage[] = [];
    const open = async (): Promise<Storage> => {
      const s = new PostgresStorage({ connectionString: url, schema, maxConnections: 8 });
      opened.push(s);
      return s;
    };
    return {
      storage: await open(),
      reopen: open,
      async cleanup() {
        for (const s of opened) await s.close();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      },
    };
  });
  test('postgres: a transaction left open holding a room lock (a frozen process) makes an append fail after lock_timeout, not hang', async () => {
    const schema = `parley_test_${process.pid}_${randomBytes(6).toString('hex')}`;
    const s = new PostgresStorage({ connectionString: url, schema, lockTimeoutMs: 300 });
    const frozen = new pg.Client({ connectionString: url });
    try {
      await s.migrate();
      await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'u', createdAt: 1 });
      await frozen.connect();
      await frozen.query('BEGIN');
      await frozen.query(`SELECT last_seq FROM ${schema}.rooms WHERE room_id = 'r' FOR UPDATE`);
      const started = Date.now();
      await assert.rejects(s.append('r', { kind: 'message', senderUserId: 'u', senderDeviceId: 'd', clientId: 'c', body: new Uint8Array([1]), createdAt: 2 }), /lock timeout/);
      assert.ok(Date.now() - started < 5000);
      await frozen.query('ROLLBACK');
      assert.equal((await s.append('r', { kind: 'message', senderUserId: 'u', senderDeviceId: 'd', clientId: 'c', body: new Uint8Array([1]), createdAt: 2 })).entry.seq, 1);
    } finally {
      await frozen.end().catch(() => {});
      await s.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
  test('postgres: sessions ended by PostgreSQL under load (pg_terminate_backend, a failover) fail those calls only; the process carries on', async () => {
    const schema = `parley_test_${process.pid}_${randomBytes(6).toString('hex')}`;
    const s = new PostgresStorage({ connectionString: url, schema, maxConnections: 4 });
    try {
      await s.migrate();
      await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'u', createdAt: 1 });
      let n = 0;
      const append = () => s.append('r', { kind: 'message', senderUserId: 'u', senderDeviceId: 'd', clientId: `c${n++}`, body: new Uint8Array(64), createdAt: 2 });
      let failed = 0;
      for (let round = 0; round < 40; round++) {
        const load = Array.from({ length: 12 }, () => append().then(() => undefined, () => void failed++));
        await new Promise((r) => setTimeout(r, round % 4));
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`parley:${schema}`]);
        await Promise.all(load);
      }
      // Every failure was an error to the caller, never a crash; the pool serves again.
      assert.equal((await append()).duplicate, false);
      assert.ok(failed > 0, 'the terminations did hit calls in flight');
    } finally {
      await s.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
  after(() => admin.end());
} else if (process.env['CI'] === 'true') {
  test('PostgreSQL is reachable (required under CI)', () => {
    throw new Error(`PostgreSQL at ${shown} is unreachable: ${problem}`);
  });
} else {
  const banner = `PostgreSQL at ${shown} is unreachable (${problem}): the PostgreSQL storage suite is SKIPPED`;
  console.error(`\n${'!'.repeat(banner.length)}\n${banner}\n${'!'.repeat(banner.length)}\n`);
  test('storage conformance: postgres', { skip: banner }, () => {});
}
